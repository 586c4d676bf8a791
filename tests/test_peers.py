"""The third-party readers shipped as declarations: each installs by its own prepare step into
the user's cache (pip or npm from the public registries) and is graded through its adapter; a
case that each one fails is failed for the behaviour docs/conformance-results.md names.

They need the registries the project installs from and, for smartmeter-obis, Node.js and npm
(`make test-deps`); in CI a missing part fails these tests, never skips them."""

from __future__ import annotations

import pytest

from me162.conformance.cases import catalogue
from me162.conformance.declaration import load_declaration
from me162.conformance.run import prepare, run_suite, select
from me162.conformance.suite import Verdict

pytestmark = pytest.mark.timeout(900)


def grade(name: str, *ids: str) -> dict[str, tuple[Verdict, str]]:
    decl = load_declaration(name)
    assert not decl.scales_time  # none of them takes a time scale: real-time meters
    failed = prepare(decl)
    assert failed is None, failed
    return {
        r.case_id: (r.verdict, r.reason)
        for r in run_suite(decl, select(catalogue(), ids=list(ids)), speed=20)
    }


def test_iec62056_21_dzg_drops_the_first_character_of_the_identification() -> None:
    got = grade("iec62056-21-dzg", "SESSION-01", "LINE-01")
    assert got["LINE-01"][0] is Verdict.PASS, got
    verdict, reason = got["SESSION-01"]
    # its parser always skips two characters after the speed letter, as if '\W' were there
    assert verdict is Verdict.FAIL and "'/ISK5E162-0033'" in reason, reason


def test_pymeterreader_reads_one_line_of_the_readout() -> None:
    got = grade("pymeterreader", "DATA-01", "LINE-01")
    assert got["LINE-01"][0] is Verdict.PASS, got  # with the pty fix its open-then-set works
    verdict, reason = got["DATA-01"]
    # it sends no ACK, and reads the fallback readout with one readline()
    assert (
        verdict is Verdict.FAIL
        and "C.1.0 is missing" in reason
        and "1 of 9 data sets: .1.0(28342193.0)" in reason
    ), reason


def test_smartmeter_obis_reads_the_me162_and_checks_no_bcc() -> None:
    got = grade("smartmeter-obis", "DATA-01", "FRAME-01")
    # it reports C.1.0 as 96.1.0 and F.F as 97.97: the same addresses (IEC 62056-61)
    assert got["DATA-01"][0] is Verdict.PASS, got
    verdict, reason = got["FRAME-01"]  # a readout with a wrong BCC, reported as good
    assert verdict is Verdict.FAIL and "accepted a readout with a wrong BCC" in reason, reason


def test_letters_and_numbers_of_obis_groups_c_and_d_name_the_same_data_set() -> None:
    from me162.conformance.grading import diff

    expected = {"C.1.0": "28342193", "F.F": "0000000", "1.8.0": "0033402.264*kWh"}
    assert diff({"96.1.0": "28342193", "97.97": "0000000", "1.8.0": "0033402.264*kWh"}, expected) is None
    assert diff({"96.1.0": "28342193", "97.97": "0", "1.8.0": "0033402.264*kWh"}, expected) == (
        "F.F: reported '0', the meter sent '0000000'"
    )
    assert diff({"96.1.1": "28342193", "F.F": "0000000", "1.8.0": "0033402.264*kWh"}, expected) is not None
