"""Every conformance case can fail: each is run against a mutant reader (tests/readers/
broken_reader.py, the reference reader with one bug) that it must judge FAIL.

A case without a mutant here is a test that may never fail, and this file says so.
"""

from __future__ import annotations

import sys
from collections import defaultdict
from pathlib import Path

import pytest

from me162.conformance.cases import catalogue
from me162.conformance.declaration import load_declaration
from me162.conformance.run import run_suite, select
from me162.conformance.suite import Verdict

pytestmark = pytest.mark.timeout(600)
MUTANT = Path(__file__).resolve().parent / "readers" / "broken_reader.py"

#: the mutant each case must fail
CATCHES: dict[str, str] = {
    "LINE-01": "sign-on-at-9600",
    "LINE-02": "switch-early",
    "LINE-03": "switch-late",
    "LINE-04": "ack-at-new-speed",
    "LINE-05": "cooked-port",
    "LINE-06": "stay-at-300",
    "LINE-07": "favourite-speed",
    "LINE-08": "uppercase-manufacturer-only",
    "LINE-09": "no-software-parity",
    "LINE-10": "rfc2217-as-raw-tcp",
    "LINE-11": "sign-on-at-9600",
    "LINE-12": "accept-bad-bcc",
    "LINE-13": "favourite-speed",
    "LINE-14": "ignore-parity",
    "FRAME-01": "accept-bad-bcc",
    "FRAME-02": "accept-bad-bcc",
    "FRAME-03": "accept-bad-bcc",
    "FRAME-04": "accept-bad-bcc",
    "FRAME-05": "accept-bad-bcc",
    "FRAME-06": "wait-for-ever",
    "FRAME-07": "first-line-is-ident",
    "FRAME-08": "first-line-is-ident",
    "FRAME-09": "no-partial-blocks",
    "FRAME-10": "repeat-command-on-bcc",
    "FRAME-11": "repeat-command-on-bcc",
    "FRAME-12": "crash-on-odd-ident",
    "FRAME-13": "crash-on-noise",
    "SESSION-01": "misparse-ident",
    "SESSION-02": "misparse-ident",
    "SESSION-03": "misparse-ident",
    "SESSION-04": "swap-y",
    "SESSION-05": "swap-y",
    "SESSION-06": "ack-at-once",
    "SESSION-07": "ignore-address",
    "SESSION-08": "ignore-address",
    "SESSION-09": "force-mode-c",
    "SESSION-10": "force-mode-c",
    "SESSION-11": "short-ident-timeout",
    "SESSION-12": "no-retry",
    "SESSION-13": "wrong-values",
    "SESSION-14": "wrong-values",
    "PROG-01": "wrong-values",
    "PROG-02": "no-b0",
    "PROG-03": "no-retry",
    "PROG-04": "no-retry",
    "PROG-05": "retry-forever",
    "PROG-06": "error-as-value",
    "PROG-07": "error-as-value",
    "PROG-08": "no-password",
    "PROG-09": "exit-0-on-errors",
    "PROG-10": "short-ident-timeout",
    "PROG-11": "wait-for-ever",
    "PROG-12": "retry-forever",
    "PROG-13": "wrong-values",
    "PROG-14": "rfc2217-as-raw-tcp",
    "PROG-15": "trust-p0",
    "DATA-01": "wrong-values",
    "DATA-02": "merge-billing",
    "DATA-03": "drop-empty-values",
    "DATA-04": "strip-values",
    "DATA-05": "strip-values",
    "DATA-06": "split-unit-on-space",
    "DATA-07": "decimal-point",
    "DATA-08": "first-value-only",
    "DATA-09": "one-set-per-line",
    "DATA-10": "ampersand-as-star",
    "DATA-11": "unsigned",
    "DATA-12": "decimal-point",
    "ROBUST-01": "retry-forever",
    "ROBUST-02": "impatient-exit-0",
    "ROBUST-03": "crash-on-garbage",
    "ROBUST-04": "crash-on-garbage",
    "ROBUST-05": "impatient-exit-0",
    "ROBUST-06": "crash-on-timeout",
    "ROBUST-07": "accept-bad-bcc",
    "ROBUST-08": "accept-bad-bcc",
    "ROBUST-09": "accept-bad-bcc",
    "ROBUST-10": "accept-bad-bcc",
    "ROBUST-11": "crash-on-garbage",
    "ROBUST-12": "take-late-answer",
    "ROBUST-13": "crash-on-garbage",
    "ROBUST-14": "parse-any-answer",
    "ROBUST-15": "trust-push",
    "ROBUST-16": "retry-at-once",
    "ROBUST-17": "unbounded-wait",
}


def mutant_for(case_id: str) -> str:
    if case_id.startswith("REPLAY-"):
        return "wrong-values"  # a replay's values, as the real meter sent them
    return CATCHES[case_id]


def declaration(tmp_path: Path, fault: str) -> Path:
    base = [sys.executable, str(MUTANT), "{port}", "{speed}", "--fault", fault]
    if fault == "trust-push":
        base += ["--mode", "D", "--push-baud", "9600"]

    def toml(args: list[str]) -> str:
        return "[" + ", ".join(f'"{a}"' for a in args) + "]"

    path = tmp_path / f"{fault}.toml"
    path.write_text(
        f'[reader]\nname = "mutant {fault}"\ntimeout = 25\n'
        f"command = {toml([*base, '--address', '{address}'])}\n"
        f"registers_command = {toml([*base, '--registers', '{registers}', '--password', '{password}'])}\n"
        f"software_parity_command = {toml([*base, '--parity-in-software'])}\n"
        "[claims]\n"
        f"modes = {toml(['D'] if fault == 'trust-push' else ['A', 'B', 'C'])}\n"
        "max_baud = 19200\nprogramming = true\n"
        'registers = ["1.8.0", "2.8.0", "0.9.1", "0.9.2"]\n'
        "partial_blocks = true\npassword = true\naddress = true\nsoftware_parity = true\nfixed_speed = true\n"
        'transports = ["pty", "rfc2217", "tcp-parity"]\n'
    )
    return path


def test_every_case_has_a_mutant_that_it_catches() -> None:
    ids = {c.id for c in catalogue()}
    missing = sorted(i for i in ids if not i.startswith("REPLAY-") and i not in CATCHES)
    assert not missing, f"cases without a mutant reader to catch: {missing}"
    assert not set(CATCHES) - ids, f"mutants for cases that do not exist: {sorted(set(CATCHES) - ids)}"


def by_mutant() -> dict[str, list[str]]:
    groups: dict[str, list[str]] = defaultdict(list)
    for c in catalogue():
        groups[mutant_for(c.id)].append(c.id)
    return dict(sorted(groups.items()))


@pytest.mark.parametrize(("fault", "case_ids"), list(by_mutant().items()), ids=list(by_mutant()))
def test_the_mutant_fails_the_cases_meant_to_catch_it(
    tmp_path: Path, fault: str, case_ids: list[str]
) -> None:
    decl = load_declaration(declaration(tmp_path, fault))
    results = run_suite(decl, select(catalogue(), ids=case_ids), speed=20)
    wrong = [
        (r.case_id, r.verdict.value, r.reason[:140], r.retimed, [run.stderr[-600:] for run in r.runs])
        for r in results
        if r.verdict is not Verdict.FAIL
    ]
    assert not wrong, f"mutant {fault!r} was not caught by: {wrong}"
