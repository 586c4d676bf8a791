"""The reference reader's session logic: every path, against the virtual meter's state
machine on virtual time, or against scripted bytes.  No pty, no thread, no sleep."""

from __future__ import annotations

from dataclasses import replace
from pathlib import Path

import pytest

from me162.protocol import DataMessage
from me162.reader.session import (
    Event,
    Failure,
    ReaderConfig,
    ReaderError,
    ReaderSession,
    Send,
    SessionResult,
    SetSpeed,
    State,
    Wait,
)
from me162.simulator.events import Sent
from me162.simulator.meter import Transmit
from tests.simhelp import Bench, drive


def read(bench: Bench, config: ReaderConfig | None = None) -> SessionResult:
    result = drive(ReaderSession(config or ReaderConfig()), bench.link)
    assert isinstance(result, SessionResult)
    return result


def failure(bench: Bench, config: ReaderConfig | None = None) -> ReaderError:
    with pytest.raises(ReaderError) as e:
        drive(ReaderSession(config or ReaderConfig()), bench.link)
    return e.value


def wire(bench: Bench, direction: str) -> list[tuple[float, int | None, bytes]]:
    return [(e.t, e.baud, e.data) for e in bench.link.events if e.kind == "data" and e.dir == direction]


def test_mode_c_readout_at_9600() -> None:
    b = Bench()
    res = read(b)
    assert res.readout is not None and res.readout.bcc_valid
    assert res.identification is not None and res.identification.ident == "ME162-0033"
    assert res.mode == "C" and res.speeds == [300, 9600]
    assert [ds.address for _, ds in res.readout.data.data_sets][:3] == ["C.1.0", "0.0.0", "1.8.0"]


def test_the_speed_switch_waits_for_the_ack_to_leave_the_wire() -> None:
    b = Bench()
    read(b)
    ack_t, _, ack = next(x for x in wire(b, "r2m") if x[2].startswith(b"\x06"))
    switch = next(e for e in b.link.events if e.kind == "settings")
    assert switch.t >= ack_t + len(ack) * 10 / 300 - 1e-9
    assert switch.t < ack_t + len(ack) * 10 / 300 + 0.2  # and before the meter's t_r min


def test_ack_is_sent_after_the_minimum_reaction_time_and_within_t_t() -> None:
    b = Bench()
    read(b)
    ident_t, _, ident = wire(b, "m2r")[0]
    ident_end = ident_t + len(ident) * 10 / 300
    ack_t = next(t for t, _, d in wire(b, "r2m") if d.startswith(b"\x06"))
    assert 0.2 - 1e-9 <= ack_t - ident_end < 1.5


def test_change_delay_and_baud_cap() -> None:
    b = Bench()
    res = read(b, ReaderConfig(change_delay=0.05))
    assert res.readout is not None
    b = Bench()
    res = read(b, ReaderConfig(baud="4800"))
    assert res.speeds == [300] and res.readout is not None  # 9600 offered, cap 4800: stays at 300
    assert any("staying at 300" in n for n in res.notes)
    assert wire(b, "m2r")[-1][1] == 300


def test_baud_300_never_switches() -> None:
    b = Bench()
    res = read(b, ReaderConfig(baud="300"))
    assert res.readout is not None and res.speeds == [300]
    assert b"\x06000\r\n" in [d for _, _, d in wire(b, "r2m")]


def test_programming_mode_reads_registers_and_ends_with_b0() -> None:
    b = Bench()
    res = read(b, ReaderConfig(registers=("1.8.0", "2.8.0", "0.9.1", "1.7.0")))
    assert res.registers["1.8.0"] == {
        "value": "0033402.264",
        "unit": "kWh",
        "error": None,
        "raw": "(0033402.264*kWh)",
    }
    assert res.registers["1.7.0"]["error"] == "ERROR"
    assert res.registers["0.9.1"]["value"].count(":") == 2
    sent = [d for _, _, d in wire(b, "r2m")]
    assert sent[-1] == b"\x01B0\x03q"
    assert b"\x06" not in sent  # never ACKs the P0 (the ME162 would NAK the next R1)
    assert res.speeds == [300, 9600]


def test_nak_is_retried_and_bounded() -> None:
    b = Bench()
    naks = {"left": 2}

    def nak_first_replies(tx: Transmit) -> list[Transmit]:
        if tx.kind == "reply" and naks["left"] > 0:
            naks["left"] -= 1
            return [replace(tx, data=b"\x15", kind=Sent.NAK)]
        return [tx]

    b.link.interceptors.append(nak_first_replies)
    res = read(b, ReaderConfig(registers=("1.8.0",)))
    assert res.registers["1.8.0"]["value"] == "0033402.264" and res.retries == 2

    b = Bench()
    b.link.interceptors.append(
        lambda tx: [replace(tx, data=b"\x15", kind=Sent.NAK)] if tx.kind == "reply" else [tx]
    )
    e = failure(b, ReaderConfig(registers=("1.8.0",), retries=3, session_retries=0))
    assert e.failure is Failure.PROGRAMMING and "after 3 retries" in str(e)
    assert [d for _, _, d in wire(b, "r2m")].count(b"\x01R1\x021.8.0()\x03Z") == 4
    assert wire(b, "r2m")[-1][2] == b"\x01B0\x03q"  # B0 even after the failure


def test_a_reply_with_a_bad_bcc_gets_a_nak_and_the_repeat_is_used() -> None:
    b = Bench()
    spoiled = {"done": False}

    def corrupt_once(tx: Transmit) -> list[Transmit]:
        if tx.kind == "reply" and not spoiled["done"]:
            spoiled["done"] = True
            return [replace(tx, data=tx.data[:-1] + bytes([tx.data[-1] ^ 1]))]
        return [tx]

    b.link.interceptors.append(corrupt_once)
    res = read(b, ReaderConfig(registers=("1.8.0",)))
    assert res.registers["1.8.0"]["value"] == "0033402.264"
    assert b"\x15" in [d for _, _, d in wire(b, "r2m")]


def test_readout_with_a_corrupted_bcc_is_refused_unless_asked() -> None:
    def corrupt(tx: Transmit) -> list[Transmit]:
        return [replace(tx, data=tx.data[:-1] + b"K")] if tx.kind == "readout" else [tx]

    b = Bench()
    b.link.interceptors.append(corrupt)
    e = failure(b)
    assert e.failure is Failure.BCC and "BCC mismatch: computed 0x4C, received 0x4B" in str(e)
    b = Bench()
    b.link.interceptors.append(corrupt)
    res = read(b, ReaderConfig(verify_bcc=False))
    assert res.readout is not None and res.readout.bcc_valid is False


def test_no_meter_means_no_identification_with_a_hint() -> None:
    b = Bench()
    b.link.interceptors.append(lambda tx: [])  # the probe sees nothing
    e = failure(b)
    assert e.failure is Failure.NO_IDENTIFICATION and "cable down" in str(e)


def test_meter_answering_at_another_speed_is_diagnosed() -> None:
    b = Bench()
    b.link.interceptors.append(lambda tx: [replace(tx, baud=4800)] if tx.kind == "readout" else [tx])
    e = failure(b)
    assert e.failure is Failure.UNEXPECTED_SPEED


def test_silence_after_the_ack() -> None:
    b = Bench()
    b.link.interceptors.append(lambda tx: [] if tx.kind == "readout" else [tx])
    e = failure(b)
    assert e.failure is Failure.NO_DATA and "change-delay" in str(e)


def test_wrong_password_and_right_password() -> None:
    b = Bench("mt174")
    e = failure(b, ReaderConfig(registers=("1.8.0",), password="12345678"))
    assert e.failure is Failure.PASSWORD
    b = Bench("mt174")
    res = read(b, ReaderConfig(registers=("1.8.0", "0-0:C.1.0*255"), password="00000000"))
    assert res.registers["1.8.0"]["value"] == "0692930.505"
    assert res.registers["0-0:C.1.0*255"]["value"] == "62807889"
    assert all("00000000" not in n for n in res.notes)


def test_partial_blocks_are_acked_and_joined() -> None:
    b = Bench("mt174")
    object.__setattr__(b.meter.profile, "partial_block_size", 8)
    res = read(b, ReaderConfig(registers=("1-0:1.8.0*255",), password="00000000", partial_blocks=True))
    assert res.registers["1-0:1.8.0*255"]["value"] == "0692930.505"
    assert [d for _, _, d in wire(b, "r2m")].count(b"\x06") == 3


def test_mode_e_meter_is_diagnosed_and_read_in_mode_c(tmp_path: Path) -> None:
    profile = (Path(__file__).resolve().parent.parent / "simulator" / "profiles" / "me162.yaml").read_text()
    p = tmp_path / "mode_e.yaml"
    p.write_text(profile.replace("/ISK5ME162-0033", "/ISK5\\2MT372-3107"))
    b = Bench(str(p))
    res = read(b)
    assert res.mode == "C" and any("mode E" in n for n in res.notes) and res.readout is not None


def test_modes_a_b_and_d() -> None:
    res = read(Bench("mode_a"))
    assert res.mode == "A" and res.readout is not None and res.readout.data.find("1.8.0") is not None
    b = Bench("mode_b")
    res = read(b)
    assert res.mode == "B" and res.speeds == [300, 2400] and res.readout is not None
    b = Bench("ebz_dd3")
    res = read(b, ReaderConfig(mode="D", push_baud=9600))
    assert res.mode == "D" and res.readout is not None and res.readout.mode_d


def test_break_first_ends_a_session_left_open() -> None:
    b = Bench()
    read(b, ReaderConfig(registers=("1.8.0",)))
    # a reader that died in programming mode: sign on, enter programming, leave without B0
    b.meter.abandon_session()  # the meter is in programming mode at 9600 Bd
    b.meter.outbox.clear()  # (without the P0 it would have sent then)
    e = failure(b, ReaderConfig(session_retries=0))
    assert e.failure is Failure.NO_IDENTIFICATION  # deaf
    res = read(b, ReaderConfig(break_first=True))
    assert res.readout is not None
    assert any("sent B0" in n for n in res.notes)


def test_echo_of_the_request_is_skipped() -> None:
    s = ReaderSession(ReaderConfig())
    action: Send | SetSpeed | Wait | None = s.start(0.0)
    assert isinstance(action, Send) and action.data == b"/?!\r\n"
    action = s.feed(Event(b"", 0.17))
    assert isinstance(action, Wait)
    action = s.feed(Event(b"/?!\r\n/ISK5ME162-0033\r\n", 1.0))
    assert s.state is State.OPTION_SELECT
    assert s.result.identification is not None and s.result.identification.raw == "/ISK5ME162-0033"
    assert any("echo" in n for n in s.result.notes)
    while isinstance(action, Wait):
        action = s.feed(Event(b"", action.until))
    assert isinstance(action, Send) and action.data == b"\x06050\r\n"
    action = s.feed(Event(b"", 1.25))
    assert isinstance(action, SetSpeed) and action.baud == 9600 and action.not_before >= 1.2 + 0.2 - 1e-9
    readout = DataMessage(b"1.8.0(1*kWh)\r\n!\r\n").to_bytes()
    action = s.feed(Event(b"", action.not_before))
    assert isinstance(action, Wait)
    assert s.feed(Event(readout, 2.0)) is None
    assert s.outcome is not None and s.outcome.readout is not None


def test_inter_character_timeout_not_a_short_total_timeout() -> None:
    s = ReaderSession(ReaderConfig(baud="300"))
    s.start(0.0)
    s.feed(Event(b"", 0.2))
    action: Send | SetSpeed | Wait | None = s.feed(Event(b"/ISK5ME162-0033\r\n", 1.0))
    t = 1.0
    while isinstance(action, Wait | Send):
        t = max(t, getattr(action, "until", t))
        action = s.feed(Event(b"", t))
        if s.state is State.READOUT:
            break
    # a slow 300 Bd readout: one byte every 1.0 s keeps the session alive for a long time
    chunk = DataMessage(b"1.8.0(1*kWh)\r\n!\r\n").to_bytes()
    for byte in chunk[:-1]:
        t += 1.0
        action = s.feed(Event(bytes([byte]), t))
        assert action is not None
    assert s.feed(Event(chunk[-1:], t + 1.0)) is None


def test_wake_up_sends_nuls_then_waits_then_signs_on() -> None:
    b = Bench()
    res = read(b, ReaderConfig(wake_up=True))
    assert res.readout is not None
    sent = wire(b, "r2m")
    assert sent[0][2] == b"\x00" * 65  # 2.17 s of NULs at 300 Bd (2.1-2.3 s)
    nul_end = sent[0][0] + 65 * 10 / 300
    assert 2.1 <= nul_end - sent[0][0] <= 2.3
    assert sent[1][2] == b"/?!\r\n" and 1.5 <= sent[1][0] - nul_end <= 1.7 + 1e-6


# --- defects found by the chaos soak: each test failed before its fix --------------------------


def _scenario(tmp_path: Path, faults: str) -> str:
    p = tmp_path / "s.yaml"
    p.write_text(f"name: s\npurpose: p\nreference: r\nfaults:\n{faults}")
    return str(p)


def test_an_r1_answer_after_the_repeat_is_never_taken_for_the_next_register(tmp_path: Path) -> None:
    # The first answer has a bad BCC (the reader NAKs), the repeat comes 2.3 s late: after the
    # reader's timeout and its own repeat of R1 1.8.0.  The meter then answers that repeat too.
    # The ME162's answers carry no address: the second copy must not become 2.8.0's value.
    late = _scenario(
        tmp_path,
        "  - when: {message: reply}\n    do: {action: corrupt_bcc}\n"
        "  - when: {message: reply, nth: 2}\n    do: {action: delay, seconds: 2.3}\n",
    )
    b = Bench(scenarios=[late])
    res = read(b, ReaderConfig(registers=("1.8.0", "2.8.0", "1.8.1", "2.8.2")))
    values = {r: v["value"] for r, v in res.registers.items()}
    assert values == {
        "1.8.0": "0033402.264",
        "2.8.0": "0000013.465",
        "1.8.1": "0000000.000",
        "2.8.2": "0000013.465",
    }
    assert any("late second answer" in n for n in res.notes)


@pytest.mark.parametrize("mask", [0x03, 0x01, 0x02, 0x04, 0x08, 0x10, 0x20, 0x40])  # 0x03: STX -> SOH
def test_a_flipped_first_byte_of_an_r1_answer_is_retried_not_a_traceback(tmp_path: Path, mask: int) -> None:
    flip = _scenario(
        tmp_path, f"  - when: {{message: reply}}\n    do: {{action: flip, at: 0, mask: {mask}}}\n"
    )
    res = read(Bench(scenarios=[flip]), ReaderConfig(registers=("1.8.0", "2.8.0")))
    assert res.registers["1.8.0"]["value"] == "0033402.264"
    assert res.registers["2.8.0"]["value"] == "0000013.465"


@pytest.mark.parametrize(("at", "mask"), [(1, 0x7A), (21, 0x0F), (23, 0x33), (0, 0x08), (40, 0x08)])
def test_a_corrupted_push_is_a_clean_failure_or_a_correct_reading(tmp_path: Path, at: int, mask: int) -> None:
    flip = _scenario(
        tmp_path, f"  - when: {{message: push}}\n    do: {{action: flip, at: {at}, mask: {mask}}}\n"
    )
    b = Bench("ebz_dd3", scenarios=[flip])
    try:
        res = read(b, ReaderConfig(mode="D", push_baud=9600, session_retries=0))
    except ReaderError as e:
        assert e.failure in (Failure.PROTOCOL, Failure.LINE_BUSY, Failure.NO_IDENTIFICATION)
    else:
        assert res.readout is not None and res.identification is not None


def test_a_stray_stx_before_the_pushes_does_not_hold_them() -> None:
    # Garbage with an STX in it (the first push heard at a wrong speed, light on the probe)
    # comes before the pushes: the next push is read, in the first attempt.
    b = Bench("ebz_dd3")
    first = [True]

    def garbage_first(tx: Transmit) -> list[Transmit]:
        if first[0] and tx.data.startswith(b"/"):
            first[0] = False
            return [replace(tx, data=b"\x00LBs\x02R\x13+*B" + tx.data[40:])]
        return [tx]

    b.link.interceptors.append(garbage_first)
    res = read(b, ReaderConfig(mode="D", push_baud=9600, session_retries=0))
    assert res.readout is not None and res.readout.mode_d and res.retries == 0


def test_a_mode_d_retry_listens_again_at_once() -> None:
    # A pushing meter never leaves the line quiet: a retry in mode D does not wait for that
    # (it used to wait the whole 30 s limit), it listens to the next pushes.
    b = Bench("ebz_dd3")
    spoiled = [0]

    def three_spoiled(tx: Transmit) -> list[Transmit]:
        if tx.data.startswith(b"/") and spoiled[0] < 3:
            spoiled[0] += 1
            return [replace(tx, data=b"/?" + tx.data[2:])]
        return [tx]

    b.link.interceptors.append(three_spoiled)
    res = read(b, ReaderConfig(mode="D", push_baud=9600, session_retries=1))
    assert res.readout is not None and res.retries == 1
    assert b.link.now < 10.0


def test_pushes_that_are_all_spoiled_end_the_reading_after_a_few_not_after_megabytes(tmp_path: Path) -> None:
    # Every push's "/EBZ5" reads as "/?BZ5": no push can be read.  Waiting for one used to last
    # until 64 KiB had arrived (160 s of pushes at 9600 Bd) for every attempt.
    flip = _scenario(
        tmp_path, "  - when: {message: push, count: 0}\n    do: {action: flip, at: 1, mask: 0x7a}\n"
    )
    b = Bench("ebz_dd3", scenarios=[flip])
    e = failure(b, ReaderConfig(mode="D", push_baud=9600, session_retries=0))
    assert e.failure is Failure.PROTOCOL and "3 pushes in a row could not be read" in str(e)
    assert b.link.now < 6.0  # three pushes, one a second


def test_a_meter_that_never_stops_pushing_does_not_hold_auto_mode_for_ever() -> None:
    # eBZ DD3 pushes at 9600 Bd every second; a reader in auto mode listens at 300 Bd and hears
    # garbage that never ends.  Each byte used to extend the deadline, for ever.
    e = failure(Bench("ebz_dd3"), ReaderConfig(session_retries=0))
    assert e.failure is Failure.LINE_BUSY and "--mode D" in str(e)


def test_a_line_that_never_goes_quiet_is_not_retried_into() -> None:
    # Retries wait for the line to go quiet; a meter pushing every second never lets it.  Once
    # the wait runs out, a retry would sign on into the pushes, and so would the next one: the
    # reading ends there, after the first attempt, with the reason.
    e = failure(Bench("ebz_dd3"), ReaderConfig(session_retries=2, quiet_limit=10.0))
    assert e.failure is Failure.LINE_BUSY and "did not go quiet" in str(e)
    assert e.result is not None and e.result.retries == 1


def test_a_line_that_goes_quiet_in_time_is_retried() -> None:
    # The same wait on a line that is quiet (the first attempt met a meter deaf until B0): the
    # retry goes ahead and reads.
    b = Bench()
    b.meter.abandon_session()
    b.meter.outbox.clear()
    res = read(b, ReaderConfig(quiet_limit=10.0))
    assert res.readout is not None and res.retries == 1


def test_garbage_shaped_like_an_identification_is_passed_over() -> None:
    # A line of garbage that frames as an identification (bytes read at another speed) comes
    # before the meter's own: the reader waits on for the real one, within its byte budget.
    b = Bench()
    b.link.interceptors.append(
        lambda tx: [replace(tx, data=b"/12X5abc\r\n" + tx.data)] if tx.kind == Sent.IDENTIFICATION else [tx]
    )
    res = read(b)
    assert res.identification is not None and res.identification.ident == "ME162-0033"
    assert res.readout is not None and any("passed over 1 line" in n for n in res.notes)


def test_only_garbage_shaped_like_identifications_says_what_was_passed_over() -> None:
    b = Bench()
    b.link.interceptors.append(
        lambda tx: [replace(tx, data=b"/12X5abc\r\n" * 20)] if tx.kind == Sent.IDENTIFICATION else [tx]
    )
    e = failure(b, ReaderConfig(session_retries=0))
    assert e.failure is Failure.LINE_BUSY and "manufacturer '12X' is not three letters" in str(e)


def test_steady_noise_is_bytes_but_no_identification() -> None:
    b = Bench()
    b.link.interceptors.append(lambda tx: [replace(tx, data=b"\x7f" * 400, kind=Sent.NOISE)])
    e = failure(b, ReaderConfig(session_retries=0))
    assert e.failure is Failure.LINE_BUSY


def test_after_a_lost_identification_the_retry_waits_out_the_300_bd_fallback_readout(tmp_path: Path) -> None:
    # The identification is cut; the ME162, getting no ACK, sends its readout at 300 Bd (6.6 s).
    # A retry inside it is not heard; the reader must wait for the line to go quiet first.
    cut = _scenario(tmp_path, "  - when: {message: identification}\n    do: {action: truncate, keep: 8}\n")
    res = read(Bench(scenarios=[cut]))
    assert res.readout is not None and res.retries == 1
    assert any("quiet" in n for n in res.notes)


def test_every_repeat_is_counted_in_retries() -> None:
    b = Bench()
    b.meter.abandon_session()  # deaf until B0: the first attempt gets no identification
    b.meter.outbox.clear()
    res = read(b)
    assert res.readout is not None and res.retries == 1
    assert any("attempt 1 failed" in n for n in res.notes)


def test_the_session_never_changes_the_config_it_is_given() -> None:
    config = ReaderConfig()
    before = replace(config)
    b = Bench()
    b.meter.abandon_session()
    b.meter.outbox.clear()
    read(b, config)
    assert config == before
