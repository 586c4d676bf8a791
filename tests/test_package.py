"""me162 as a reader author gets it: the sdist and wheel built from this tree, installed into a
fresh virtualenv outside the repository, where the README's me162-check and plugin examples run
exactly as written; and the GitHub Action's steps run the way the action runs them.

These tests install from PyPI (me162's dependencies, pytest, the ``build`` frontend) into
virtualenvs of their own, as a user's machine or CI would.
"""

from __future__ import annotations

import json
import os
import re
import subprocess
import sys
import tarfile
import zipfile
from collections.abc import Iterator
from pathlib import Path
from typing import Any, NamedTuple

import pytest
import yaml

pytestmark = pytest.mark.timeout(900)
ROOT = Path(__file__).resolve().parent.parent


class Install(NamedTuple):
    bin: Path  #: the virtualenv's bin
    work: Path  #: a folder outside the repository to run the examples in
    env: dict[str, str]
    wheel: Path
    sdist: Path


def venv_env(venv: Path, home: Path) -> dict[str, str]:
    env = {k: v for k, v in os.environ.items() if k not in ("PYTHONPATH", "VIRTUAL_ENV", "PYTHONHOME")}
    env["PATH"] = f"{venv / 'bin'}{os.pathsep}{env.get('PATH', '')}"
    env["VIRTUAL_ENV"] = str(venv)
    env["XDG_CACHE_HOME"] = str(home / "cache")  # what `prepare` builds lands here, not in site-packages
    return env


def make_venv(path: Path, home: Path) -> dict[str, str]:
    subprocess.run([sys.executable, "-m", "venv", str(path)], check=True)
    return venv_env(path, home)


def pip(env: dict[str, str], *args: str) -> None:
    p = subprocess.run(
        ["python", "-m", "pip", "install", "--quiet", "--disable-pip-version-check", *args],
        env=env, capture_output=True, text=True, check=False, timeout=600,
    )  # fmt: skip
    assert p.returncode == 0, p.stdout + p.stderr


@pytest.fixture(scope="module")
def installed(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Install]:
    home = tmp_path_factory.mktemp("user")
    builder = make_venv(home / "build-venv", home)
    pip(builder, "build")
    dist = home / "dist"
    p = subprocess.run(
        ["python", "-m", "build", "--sdist", "--wheel", "--outdir", str(dist), str(ROOT)],
        env=builder, capture_output=True, text=True, check=False, timeout=600,
    )  # fmt: skip
    assert p.returncode == 0, p.stdout[-3000:] + p.stderr[-3000:]
    assert "BuildBackendWarning" not in p.stdout + p.stderr, "the build warns: fix pyproject.toml"
    env = make_venv(home / "venv", home)
    (wheel,) = dist.glob("me162-*.whl")
    (sdist,) = dist.glob("me162-*.tar.gz")
    pip(env, str(wheel), "pytest")
    work = home / "my-reader-project"
    work.mkdir()
    yield Install(home / "venv" / "bin", work, env, wheel, sdist)


def test_the_wheel_and_sdist_carry_what_a_user_needs(installed: Install) -> None:
    names = set(zipfile.ZipFile(installed.wheel).namelist())
    for needed in ("me162/conformance/readers/me162-read.toml", "me162/conformance/readers/iec_read.c",
                   "me162/conformance/case-ids.json", "me162/fixtures/scenarios/late-switch.yaml",
                   "me162/simulator/profiles/me162.yaml", "me162/protocol/py.typed",
                   "me162/simulator/ptyfix.c", "me162/simulator/pacer.c", "me162/simulator/iec62056_21.lua",
                   "me162/conformance/readers/peer_env.py", "me162/conformance/readers/smartmeter_obis_reader.js",
                   *(f"me162/protocol/schemas/{n}.schema.json"
                     for n in ("profile", "scenario", "declaration", "capture-header"))):  # fmt: skip
        assert needed in names, needed
    assert any(n.endswith(".dist-info/licenses/LICENSE") for n in names)
    assert sum(n.startswith("me162/fixtures/captures/") and n.endswith(".capture.jsonl") for n in names) >= 40
    assert not any("/tests/" in n or n.startswith("tests/") for n in names)
    metadata = next(
        zipfile.ZipFile(installed.wheel).read(n) for n in names if n.endswith("METADATA")
    ).decode()
    assert "License-Expression: MIT" in metadata and "Classifier: Framework :: Pytest" in metadata
    with tarfile.open(installed.sdist) as tar:
        members = {m.name.split("/", 1)[1] for m in tar.getmembers() if "/" in m.name}
    for needed in ("LICENSE", "README.md", "action.yml", "docs/conformance.md", "docs/pytest-plugin.md"):
        assert needed in members, needed


def readme_block(heading: str) -> list[str]:
    text = (ROOT / "README.md").read_text()
    section = text[text.index(heading) :]
    block = re.search(r"```sh\n(.*?)```", section, re.S)
    assert block, f"no sh block under {heading}"
    return [line for line in block.group(1).splitlines() if line.strip()]


def run_line(install: Install, line: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        ["bash", "-c", line], cwd=install.work, env=install.env, capture_output=True, text=True,
        check=False, timeout=600, stdin=subprocess.DEVNULL,
    )  # fmt: skip


def test_the_readmes_conformance_examples_work_outside_the_clone_as_written(installed: Install) -> None:
    lines = readme_block("## The conformance suite: `me162-check`")
    assert any(line.startswith("pytest ") for line in lines) and len(lines) >= 5
    for line in lines:
        said = re.search(r"# exit (\d)", line)
        p = run_line(installed, line)
        assert p.returncode == (int(said.group(1)) if said else 0), (
            f"{line}\n{p.stdout[-2000:]}\n{p.stderr[-2000:]}"
        )
    w = installed.work
    assert (w / "results" / "report.html").is_file() and (w / "c-reader" / "junit.xml").is_file()
    assert "me162-read (reference reader)" in (w / "compare.html").read_text()
    assert (w / "my-reader.toml").read_text().startswith("# The reference reader's declaration")
    # The C reader was built into the user's cache, not into the installed package.
    assert list((w.parent / "cache" / "me162").rglob("iec_read*"))


def test_scenarios_profiles_and_captures_are_found_by_name_outside_the_clone(installed: Install) -> None:
    p = run_line(installed, "me162-sim --list-scenarios")
    assert p.returncode == 0 and "late-switch" in p.stdout
    p = run_line(installed, "me162-sim --list-profiles")
    assert p.returncode == 0 and "mt174" in p.stdout
    line = "me162-read 'me162://?profile=me162&frozen=1' --json --speed 20"
    p = run_line(installed, line)
    assert p.returncode == 0, p.stderr
    assert json.loads(p.stdout)["session"]["virtual"] is True
    # A meter with a built-in scenario by name, on a pty, read by the reference reader.
    script = (
        "me162-sim --pty --speed 20 --scenario late-switch > port.txt & sim=$!; "
        "for i in $(seq 100); do [ -s port.txt ] && break; sleep 0.05; done; "
        'me162-read "$(head -1 port.txt)" --json --speed 20 > reading.json; rc=$?; kill $sim; wait $sim; exit $rc'
    )
    p = run_line(installed, script)
    assert p.returncode == 0, p.stderr
    reading = json.loads((installed.work / "reading.json").read_text())
    assert [d["address"] for d in reading["data_sets"]][:3] == ["C.1.0", "0.0.0", "1.8.0"]


def expand(text: str, values: dict[str, str]) -> str:
    """The action's ``${{ … }}`` expressions, for what its run steps use."""

    def one(m: re.Match[str]) -> str:
        key = m.group(1).strip()
        assert key in values, f"the test does not know {key}"
        return values[key]

    return re.sub(r"\$\{\{(.*?)\}\}", one, text)


def run_action(install: Install, inputs: dict[str, str], tmp: Path) -> tuple[int, dict[str, str], str]:
    """The composite action's run steps, in order, as a runner runs them: bash, the step's env
    with the inputs filled in, GITHUB_OUTPUT and GITHUB_STEP_SUMMARY files; the steps that use
    other actions (setup-python, upload, JUnit) are theirs to run."""
    action: dict[str, Any] = yaml.safe_load((ROOT / "action.yml").read_text())
    values = {f"inputs.{k}": str(v.get("default", "")) for k, v in action["inputs"].items()}
    values |= {f"inputs.{k}": v for k, v in inputs.items()}
    values["github.action_path"] = str(ROOT)
    output, summary = tmp / "output", tmp / "summary"
    output.write_text("")
    summary.write_text("")
    failed = 0
    for step in action["runs"]["steps"]:
        if "run" not in step:
            assert step["uses"].split("@")[0] in ("actions/setup-python", "actions/upload-artifact",
                                                   "mikepenz/action-junit-report")  # fmt: skip
            continue
        if failed and "always()" not in str(step.get("if", "")):
            continue
        assert step["shell"] == "bash"
        env = dict(install.env)
        env |= {k: expand(str(v), values) for k, v in step.get("env", {}).items()}
        env |= {"GITHUB_OUTPUT": str(output), "GITHUB_STEP_SUMMARY": str(summary)}
        p = subprocess.run(
            ["bash", "-e", "-o", "pipefail", "-c", expand(step["run"], values)],
            cwd=install.work, env=env, capture_output=True, text=True, check=False, timeout=600,
        )  # fmt: skip
        failed = failed or p.returncode
    outputs = dict(line.split("=", 1) for line in output.read_text().splitlines() if "=" in line)
    return failed, outputs, summary.read_text()


def test_the_github_actions_steps_grade_a_reader_the_way_the_action_runs_them(
    tmp_path: Path, tmp_path_factory: pytest.TempPathFactory
) -> None:
    home = tmp_path_factory.mktemp("runner")
    env = make_venv(home / "python", home)  # what actions/setup-python gives: a bare Python
    install = Install(home / "python" / "bin", tmp_path, env, Path(), Path())
    failed, outputs, summary = run_action(install, {"reader": "me162-read", "groups": "FRAME DATA"}, home)
    assert failed == 0 and outputs == {"exit-code": "0"}
    assert summary.startswith("# me162 conformance report: me162-read (reference reader)")
    assert "| FRAME | 13 | 0 | 0 | 0 |" in summary
    bundle = tmp_path / "me162-results"
    assert (bundle / "junit.xml").is_file() and (bundle / "SHA256SUMS").is_file()
    # A failing case fails the step, and the summary is still written.
    failed, outputs, summary = run_action(install, {"reader": "c-reader", "cases": "FRAME-08 FRAME-01"}, home)
    assert failed == 1 and outputs == {"exit-code": "1"}
    assert "| FRAME-08 | FAIL |" in summary and "| FRAME-01 | PASS |" in summary
