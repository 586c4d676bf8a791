"""The conformance suite itself: the reference reader passes, each case can fail (a
deliberately broken reader fails the cases meant to catch it), and a misbehaving reader does
not break the suite."""

from __future__ import annotations

import re
import subprocess
import sys
from pathlib import Path

import pytest

from me162.conformance.cases import GROUPS, catalogue
from me162.conformance.declaration import load_declaration
from me162.conformance.grading import GRADERS
from me162.conformance.report import write_bundle
from me162.conformance.run import run_suite, select
from me162.conformance.suite import Verdict
from me162.protocol.errors import ConfigError

pytestmark = pytest.mark.timeout(300)
ROOT = Path(__file__).resolve().parent.parent
REFERENCE = ROOT / "conformance" / "readers" / "me162-read.toml"
BROKEN = Path(__file__).resolve().parent / "readers" / "broken_reader.py"
MISBEHAVING = Path(__file__).resolve().parent / "readers" / "misbehaving.py"


def declaration(tmp_path: Path, name: str, command: list[str], *, timeout: float = 30, programming: bool = True,
                registers_command: list[str] | None = None, modes: str = '["C"]') -> Path:  # fmt: skip
    def toml_list(items: list[str]) -> str:
        return "[" + ", ".join(f'"{a}"' for a in items) + "]"

    text = f'[reader]\nname = "{name}"\ncommand = {toml_list(command)}\ntimeout = {timeout}\n'
    if registers_command:
        text += f"registers_command = {toml_list(registers_command)}\n"
    text += f'[claims]\nmodes = {modes}\nprogramming = {"true" if programming else "false"}\nregisters = ["1.8.0", "2.8.0"]\n'
    path = tmp_path / f"{name}.toml"
    path.write_text(text)
    return path


def test_the_catalogue_is_data_in_seven_groups_every_case_named_graded_and_documented() -> None:
    cases = catalogue()
    assert len(cases) >= 90
    assert [c.group for c in cases] == sorted((c.group for c in cases), key=GROUPS.index)
    assert {c.group for c in cases} == set(GROUPS)
    assert len({c.id for c in cases}) == len(cases)
    for c in cases:
        assert c.purpose and c.reference and c.title
        assert c.grade in GRADERS, f"{c.id}: no grader {c.grade!r}"
        c.applies(load_declaration(REFERENCE))  # every need is one the suite knows
    doc = (ROOT / "docs" / "conformance.md").read_text()
    for c in cases:
        assert f"| {c.id} |" in doc, f"{c.id} is not in docs/conformance.md"


def test_the_reference_reader_passes_every_applicable_case_of_each_group(tmp_path: Path) -> None:
    decl = load_declaration(REFERENCE)
    # one or two cases of every group here; the whole suite runs in bench/bench_conformance.py
    ids = ["LINE-02", "LINE-05", "FRAME-01", "FRAME-09", "SESSION-01", "SESSION-12", "PROG-02", "PROG-05", "DATA-12",
           "ROBUST-01", "ROBUST-07", "REPLAY-ME162_1", "REPLAY-ME162_1-R1"]  # fmt: skip
    results = run_suite(decl, select(catalogue(), ids=ids), speed=20, bundle=tmp_path / "bundle")
    bad = [(r.case_id, r.verdict.value, r.reason) for r in results if r.verdict is not Verdict.PASS]
    assert not bad
    write_bundle(
        tmp_path / "bundle", decl, select(catalogue(), ids=ids), results, speed=20, seed=0, seconds=1.0
    )
    bundle = tmp_path / "bundle"
    for name in ("report.md", "report.html", "junit.xml", "declaration.toml", "seed.json", "SHA256SUMS"):
        assert (bundle / name).is_file()
    assert list((bundle / "captures" / "FRAME-01").glob("*.capture.jsonl"))
    sums = (bundle / "SHA256SUMS").read_text()
    assert "report.html" in sums and "captures/FRAME-01/" in sums


def test_cases_with_the_same_setup_share_one_run_and_each_grades_it(tmp_path: Path) -> None:
    # LINE-01 and LINE-02 set up the same meter and ask the same reading; LINE-07 another.
    cases = select(catalogue(), ids=["LINE-01", "LINE-02", "LINE-07"])
    assert cases[0].setup == cases[1].setup != cases[2].setup
    for jobs in (1, 2):
        bundle = tmp_path / f"bundle-{jobs}"
        one, two, other = run_suite(load_declaration(REFERENCE), cases, speed=20, jobs=jobs, bundle=bundle)
        assert one.runs == two.runs and one.runs != other.runs  # the reader ran once for both
        assert one.reason != two.reason  # each case judged the run by its own grader
        for r in (one, two, other):
            assert r.verdict is Verdict.PASS, (r.case_id, r.reason)
            assert list((bundle / "captures" / r.case_id).glob("*.capture.jsonl")), r.case_id


def test_the_broken_reader_passes_what_it_does_right(tmp_path: Path) -> None:
    cmd = [sys.executable, str(BROKEN), "{port}", "{speed}", "--fault", "no-b0"]  # no B0: not in a readout
    path = declaration(tmp_path, "broken-no-b0", cmd, registers_command=[*cmd, "--registers", "{registers}"])
    (result,) = run_suite(load_declaration(path), select(catalogue(), ids=["DATA-01"]), speed=20)
    assert result.verdict is Verdict.PASS, result.reason


@pytest.mark.parametrize(
    ("how", "verdict", "words"),
    [
        ("hang", Verdict.FAIL, "did not finish within"),
        ("crash", Verdict.FAIL, "exit 1"),
        ("flood", Verdict.FAIL, "flooding"),
        ("garbage", Verdict.FAIL, "not JSON"),
    ],
)
def test_a_misbehaving_reader_does_not_break_the_suite(
    tmp_path: Path, how: str, verdict: Verdict, words: str
) -> None:
    path = declaration(
        tmp_path,
        f"bad-{how}",
        [sys.executable, str(MISBEHAVING), "{port}", how],
        timeout=3,
        programming=False,
    )
    results = {
        r.case_id: r
        for r in run_suite(
            load_declaration(path), select(catalogue(), ids=["DATA-01", "SESSION-04"]), speed=20
        )
    }
    assert len(results) == 2  # the run went on after the first case
    r = results["DATA-01"]
    assert r.verdict is verdict and words in r.reason, r.reason


def test_a_reader_that_cannot_start_is_inconclusive(tmp_path: Path) -> None:
    path = declaration(tmp_path, "missing", ["/nonexistent/reader", "{port}"], programming=False)
    results = {
        r.case_id: r
        for r in run_suite(load_declaration(path), select(catalogue(), ids=["DATA-01", "PROG-01"]), speed=20)
    }
    assert (
        results["DATA-01"].verdict is Verdict.INCONCLUSIVE
        and "the reader cannot start" in results["DATA-01"].reason
    )
    assert results["PROG-01"].verdict is Verdict.NOT_APPLICABLE


@pytest.mark.parametrize(
    ("text", "message"),
    [
        ("[claims]\n", "r.toml:1: reader: is required"),
        (
            '[reader]\nname = "x"\ncommand = "my-reader {port}"\n',
            "r.toml:3: reader.command: must be array, not str 'my-reader {port}' (a list of arguments (never a shell line)",
        ),
        (
            '[reader]\nname = "x"\ncomand = ["r", "{port}"]\n',
            "r.toml:3: reader.comand: unknown key; did you mean 'command'?",
        ),
        ('[reader]\nname = "x"\ncommand = ["r"]\n', "must contain {port}"),
        ('[reader]\nname = "x"\ncommand = ["r", "{port}", "{colour}"]\n', "unknown placeholder {colour}"),
        ('[reader]\nname = "x"\ncommand = ["r", "{port}"]\n[claims]\nprogramming = true\n', "needs it"),
        ('[reader]\nname = "x"\ncommand = ["r", "{port}"]\n[claims]\nmodes = ["Z"]\n', "claims.modes"),
        ("not toml = = =", "not valid TOML"),
    ],
)
def test_bad_declarations_are_explained(tmp_path: Path, text: str, message: str) -> None:
    path = tmp_path / "r.toml"
    path.write_text(text)
    with pytest.raises(
        ConfigError,
        match=message.replace("[", r"\[").replace("{", r"\{").replace("(", r"\(").replace(")", r"\)"),
    ):
        load_declaration(path)


def test_me162_check_cli_and_exit_codes(tmp_path: Path) -> None:
    import subprocess

    p = subprocess.run(
        [sys.executable, "-m", "me162.conformance.cli", "--reader", str(REFERENCE), "--case", "DATA-01", "--case", "ROBUST-15"],
        capture_output=True, text=True, timeout=120, check=False,
    )  # fmt: skip
    assert p.returncode == 0, p.stdout + p.stderr
    verdicts = {
        line.split()[0]: line.split()[1]
        for line in p.stdout.splitlines()
        if line.strip() and "-" in line.split()[0]
    }
    assert verdicts == {"DATA-01": "PASS", "ROBUST-15": "NOT-APPLICABLE"}, p.stdout
    cmd = [sys.executable, str(BROKEN), "{port}", "{speed}", "--fault", "accept-bad-bcc"]
    bad = declaration(tmp_path, "broken", cmd, programming=False)
    p = subprocess.run(
        [sys.executable, "-m", "me162.conformance.cli", "--reader", str(bad), "--case", "FRAME-01", "--bundle", str(tmp_path / "b")],
        capture_output=True, text=True, timeout=120, check=False,
    )  # fmt: skip
    assert p.returncode == 1 and re.search(r"^FRAME-01 +FAIL", p.stdout, re.M)
    html = (tmp_path / "b" / "report.html").read_text()
    assert "<svg" in html and "accepted a readout" in html
    p = subprocess.run([sys.executable, "-m", "me162.conformance.cli", "--reader", str(REFERENCE), "--case", "NOPE-1"],
                       capture_output=True, text=True, timeout=60, check=False)  # fmt: skip
    assert p.returncode == 2 and "no case NOPE-1" in p.stderr


def test_pytest_plugin_runs_the_suite(tmp_path: Path) -> None:
    import subprocess

    (tmp_path / "test_nothing.py").write_text(
        "def test_own(me162_meter):\n    assert me162_meter.port.startswith('/dev/pts/')\n"
    )
    p = subprocess.run(
        [sys.executable, "-m", "pytest", "-q", "-p", "no:cacheprovider", f"--me162-reader={REFERENCE}", "--me162-case=DATA-01",
         "--me162-case=ROBUST-15", f"--me162-bundle={tmp_path / 'b'}", str(tmp_path)],
        capture_output=True, text=True, timeout=120, check=False, cwd=tmp_path,
    )  # fmt: skip
    assert p.returncode == 0, p.stdout[-2000:]
    assert "2 passed, 1 skipped" in p.stdout
    assert (tmp_path / "b" / "junit.xml").is_file()


def test_a_reader_in_c_is_graded(tmp_path: Path) -> None:
    decl = load_declaration("c-reader")
    results = {
        r.case_id: r
        for r in run_suite(decl, select(catalogue(), ids=["DATA-01", "FRAME-01", "PROG-01"]), speed=20)
    }
    assert results["DATA-01"].verdict is Verdict.PASS, results["DATA-01"].reason
    assert results["FRAME-01"].verdict is Verdict.PASS and "exit 5" in results["FRAME-01"].reason
    assert results["PROG-01"].verdict is Verdict.NOT_APPLICABLE


def test_pwitabs_client_is_graded_through_its_adapter() -> None:
    decl = load_declaration("pwitab")
    assert not decl.scales_time  # it runs against real-time meters
    (result,) = run_suite(decl, select(catalogue(), ids=["LINE-03"]), speed=20)
    # it sleeps 0.5 s after the ACK and re-opens the port: the meter is already answering
    assert result.verdict is Verdict.FAIL and "after the meter had started answering" in result.reason


def test_a_verdict_on_bytes_read_together_with_a_switch_says_the_order_is_unknown(tmp_path: Path) -> None:
    # The switch-early mutant writes its ACK and switches at once: on a pty the simulator then
    # usually reads both together, and the kernel does not say which came first.
    cmd = [sys.executable, str(BROKEN), "{port}", "{speed}", "--fault", "switch-early"]
    path = declaration(tmp_path, "broken-switch-early", cmd, programming=False)
    (result,) = run_suite(load_declaration(path), select(catalogue(), ids=["LINE-04"]), speed=20)
    assert result.verdict is Verdict.PASS or "which came first is not known" in result.reason, result.reason


def me162_check(*args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", "me162.conformance.cli", *args],
        capture_output=True,
        text=True,
        timeout=300,
        check=False,
    )


def test_a_reader_that_cannot_start_is_never_green(tmp_path: Path) -> None:
    path = declaration(tmp_path, "missing", ["/no/such/reader", "{port}"], programming=False)
    p = me162_check("--reader", str(path), "--group", "FRAME")
    assert p.returncode == 3, p.stderr
    assert p.stderr.strip().splitlines()[-1] == (
        "me162-check: nothing could be judged: the reader cannot start: /no/such/reader does not exist"
    )


def test_a_reader_whose_dependency_is_missing_is_said_once_and_not_run_again(tmp_path: Path) -> None:
    script = tmp_path / "reader.py"
    script.write_text("import me162_no_such_dependency\n")
    path = declaration(tmp_path, "nodep", [sys.executable, str(script), "{port}"], programming=False)
    results = run_suite(load_declaration(path), select(catalogue(), groups=["FRAME"]), speed=20)
    judged = [r for r in results if r.verdict is not Verdict.NOT_APPLICABLE]
    reasons = {r.reason for r in judged}
    assert judged and all(r.verdict is Verdict.INCONCLUSIVE for r in judged)
    assert reasons == {
        "the reader could not start: ModuleNotFoundError: No module named 'me162_no_such_dependency'"
    }
    assert sum(1 for r in results if r.seconds > 0) == 1  # run once, not once per case
