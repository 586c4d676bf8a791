"""What a reader did just outside a window (WireRecord.slipped): the suite runs such a case
again at a slower time scale, so that a reader held back by a busy machine is not judged for it.  Each
case here drives the virtual meter on virtual time, the reader's moves placed by hand."""

from __future__ import annotations

from pathlib import Path

from me162.conformance.cases import catalogue
from me162.conformance.declaration import load_declaration
from me162.conformance.run import run_suite, select
from me162.conformance.suite import Verdict
from me162.simulator.record import WireRecord
from tests.simhelp import Bench
from tests.test_mutants import declaration

SCENARIOS = "fixtures/scenarios"
OPTION_9600 = b"\x06050\r\n"


def record(b: Bench) -> WireRecord:
    rec = WireRecord()
    rec.events = list(b.link.events)
    return rec


def signed_on(*scenarios: str) -> Bench:
    b = Bench(scenarios=[f"{SCENARIOS}/{s}.yaml" for s in scenarios])
    assert b.sign_on().startswith(b"/ISK5ME162")
    return b


def test_a_reader_on_time_was_not_late() -> None:
    b = signed_on()
    b.send(OPTION_9600, gap=0.3)
    b.baud(9600)
    assert b"!\r\n" in b.read_until(b"!\r\n", extra=2)
    assert record(b).slipped() is None


def test_an_option_select_after_the_meter_gave_up_waiting_was_late() -> None:
    b = signed_on()
    b.send(OPTION_9600, gap=2.1)  # t_t of the ME162 is 2.0 s
    b.wait(0.5)
    assert "option select came" in str(record(b).slipped())


def test_a_reader_that_never_selects_was_not_late() -> None:
    b = signed_on()
    b.read_until(b"!\r\n", extra=1)  # the readout at 300 Bd after t_t
    assert record(b).slipped() is None


def test_a_switch_while_the_answer_is_on_the_line_was_late() -> None:
    b = signed_on()
    b.send(OPTION_9600, gap=0.3)
    b.wait(0.45)  # the ME162 answers 0.30-0.40 s after the option select
    b.baud(9600)
    b.read_until(b"!\r\n", extra=2)
    assert "switched to 9600 Bd" in str(record(b).slipped())


def test_a_switch_while_the_ack_is_still_on_the_wire_slipped() -> None:
    b = signed_on()
    b.send(OPTION_9600, gap=0.3)
    b.baud(9600, at=b.t - 0.05)  # 50 ms before the ACK's last stop bit
    b.wait(1.0)
    slip = record(b).slipped()
    assert slip is not None and "before its message had left the wire" in slip.what
    assert slip.by is not None and abs(slip.by - 0.05) < 1e-6


def test_a_message_cut_in_two_by_a_switch_slipped() -> None:
    """The end of an ACK that reached the simulator after the switch (a kernel slow to pass
    the bytes on) goes out at the new speed: one message at two speeds."""
    b = signed_on()
    b.send(OPTION_9600[:3], gap=0.3)
    b.baud(9600)
    b.send(OPTION_9600[3:])
    b.wait(1.0)
    slip = record(b).slipped()
    assert slip is not None and "partly at 300 Bd and partly at 9600 Bd" in slip.what


def test_an_ack_at_the_new_speed_just_after_the_switch_slipped() -> None:
    b = signed_on()
    b.baud(9600, at=b.t + 0.3)
    b.send(OPTION_9600, gap=0.001)
    b.wait(3.0)
    slip = record(b).slipped()
    assert slip is not None and "went out at 9600 Bd, just after it switched" in slip.what


def test_a_record_without_writes_did_not_slip() -> None:
    empty = WireRecord()
    empty.events = []
    assert empty.slipped() is None


def test_a_fault_spent_on_a_message_the_reader_could_not_hear_slipped() -> None:
    """A reader listening at another speed when the faulted readout came never met the fault;
    its case must run again rather than be judged on a clean second readout."""
    b = signed_on("drop-byte-of-readout")
    b.baud(2400)
    b.wait(5.0)  # the readout comes at 300 Bd after t_t, a byte short
    slip = record(b).slipped()
    assert (
        slip is not None
        and "a fault (drop) hit a readout sent at 300 Bd while it listened at 2400 Bd" in slip.what
    )


def test_a_reader_that_never_switches_was_not_late() -> None:
    b = signed_on()
    b.send(OPTION_9600, gap=0.3)
    b.wait(3.0)
    assert record(b).slipped() is None


def test_a_switch_after_a_meter_that_did_not_switch_was_not_late() -> None:
    b = signed_on("no-switch")
    b.send(OPTION_9600, gap=0.3)
    b.baud(9600)
    b.wait(0.5)
    b.baud(300)  # the reader hears garble and goes back to 300 Bd to sign on again
    b.wait(3.0)
    assert record(b).slipped() is None


def test_a_reader_held_back_by_the_machine_passes_after_a_slower_run(tmp_path: Path) -> None:
    """40 ms of real time between the ACK and the switch is 0.8 s of protocol time at 20x (the
    ME162 answers after 0.3-0.4 s) but 0.2 s at 5x: the case runs again and passes there."""
    decl = load_declaration(declaration(tmp_path, "held-back"))
    (result,) = run_suite(decl, select(catalogue(), ids=["SESSION-01"]), speed=20)
    assert result.verdict is Verdict.PASS, result.reason
    assert result.retimed.startswith("run again at 5x: at 20x it switched to"), result.retimed
    assert result.outcome is not None and result.outcome.speed == 5


def test_a_reader_that_switches_early_by_design_fails_at_every_time_scale(tmp_path: Path) -> None:
    """A reader that switches as soon as it has written its ACK cuts it at any time scale."""
    decl = load_declaration(declaration(tmp_path, "switch-early"))
    (result,) = run_suite(decl, select(catalogue(), ids=["LINE-02"]), speed=20)
    assert result.verdict is Verdict.FAIL, result.reason
    assert result.retimed.startswith("run again at 5x: at 20x it switched to 9600 Bd"), result.retimed


def test_a_reader_late_by_design_fails_at_every_time_scale(tmp_path: Path) -> None:
    """A reader that switches a protocol second after its ACK is as late at 5x as at 20x: that
    is its design, not the machine, and it fails there without a third run."""
    decl = load_declaration(declaration(tmp_path, "switch-late"))
    (result,) = run_suite(decl, select(catalogue(), ids=["SESSION-01"]), speed=20)
    assert result.verdict is Verdict.FAIL, result.reason
    assert result.retimed.startswith("run again at 5x: at 20x it switched to"), result.retimed
    assert len(result.runs) == 1
    assert result.runs[0].argv[3] == "5", result.runs[0].argv  # python, reader, port, speed
