"""The conformance catalogue as data: ids that never change meaning, docs generated from it,
declarations found by name and filled in right."""

from __future__ import annotations

import re
from dataclasses import replace
from pathlib import Path

import pytest

from me162 import fixtures
from me162.conformance.cases import RENAMED, catalogue, markdown_table, registry, registry_problems
from me162.conformance.declaration import find_declaration, load_declaration, shipped
from me162.conformance.run import select
from me162.protocol.errors import ConfigError

ROOT = Path(__file__).resolve().parent.parent


def between(text: str, start: str, end: str) -> str:
    m = re.search(re.escape(start) + r"\n(.*?)\n" + re.escape(end), text, re.S)
    assert m, f"{start} ... {end} not found"
    return m.group(1)


def test_no_published_id_changed_meaning_or_went_away_and_every_id_is_published() -> None:
    assert registry_problems(catalogue()) == []


def test_changing_what_a_case_does_is_caught() -> None:
    cases = catalogue()
    changed = [replace(c, args={"what": "something else"}) if c.id == "FRAME-01" else c for c in cases]
    assert any("FRAME-01 changed meaning" in p for p in registry_problems(changed))
    assert any("LINE-01 was published and is gone" in p for p in registry_problems(cases[1:]))
    reworded = [replace(c, purpose=c.purpose + " Better said.") if c.id == "FRAME-01" else c for c in cases]
    assert registry_problems(reworded) == []  # better words do not change what a case means


def test_docs_conformance_md_is_generated_from_the_catalogue() -> None:
    doc = (ROOT / "docs" / "conformance.md").read_text()
    assert between(doc, "<!-- cases:start -->", "<!-- cases:end -->") == markdown_table(catalogue()), (
        "docs/conformance.md is stale: python tools/gen_docs.py"
    )


def test_docs_scenarios_md_lists_every_built_in_scenario() -> None:
    doc = (ROOT / "docs" / "scenarios.md").read_text()
    table = between(doc, "<!-- scenarios:start -->", "<!-- scenarios:end -->")
    for name in fixtures.scenarios():
        assert f"| `{name}` |" in table, f"{name} is not in docs/scenarios.md: python tools/gen_docs.py"


def test_replay_cases_are_named_after_their_captures_and_old_numbers_say_the_new_name() -> None:
    ids = {c.id for c in catalogue()}
    assert "REPLAY-ME162_1" in ids and "REPLAY-ME162_1-R1" in ids
    assert set(RENAMED.values()) <= ids
    assert set(RENAMED) <= set(registry()) or not set(RENAMED) & ids
    with pytest.raises(ConfigError, match="REPLAY-07 is now called REPLAY-ME162_4"):
        select(catalogue(), ids=["REPLAY-07"])


def test_declarations_are_found_by_name() -> None:
    assert {"me162-read", "pwitab", "c-reader"} <= set(shipped())
    assert find_declaration("me162-read") == shipped()["me162-read"]
    assert load_declaration("me162-read").name.startswith("me162-read")
    with pytest.raises(ConfigError, match="not one shipped with me162"):
        load_declaration("no-such-reader")


@pytest.mark.parametrize(
    ("template", "password", "argv"),
    [
        (["r", "{port}", "--password", "{password}", "--json"], None, ["r", "P", "--json"]),
        (
            ["r", "{port}", "--password", "{password}", "--json"],
            "secret",
            ["r", "P", "--password", "secret", "--json"],
        ),
        (["r", "{port}", "--password={password}", "--json"], None, ["r", "P", "--json"]),
        (["r", "{port}", "-p", "{password}"], None, ["r", "P"]),
        (["r", "{port}", "{password}"], None, ["r", "P"]),
    ],
)
def test_an_absent_password_takes_its_option_with_it_and_never_the_next_argument(
    tmp_path: Path, template: list[str], password: str | None, argv: list[str]
) -> None:
    path = tmp_path / "r.toml"
    path.write_text(
        '[reader]\nname = "r"\ncommand = ["r", "{port}"]\nregisters_command = '
        + "[" + ", ".join(f'"{a}"' for a in template) + "]\n[claims]\nprogramming = true\n"
    )  # fmt: skip
    decl = load_declaration(path)
    assert decl.argv(port="P", speed=1, registers=["1.8.0"], password=password) == argv


def test_prepare_builds_into_the_users_cache_never_into_the_package(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("XDG_CACHE_HOME", str(tmp_path))
    decl = load_declaration("c-reader")
    argv = decl.prepare_argv()
    out = argv[argv.index("-o") + 1]
    assert out.startswith(str(tmp_path / "me162" / "readers"))
    assert decl.argv(port="P", speed=1)[0] == out
