"""The one stream framer: every boundary rule, any cut of the input, every real capture."""

from __future__ import annotations

from pathlib import Path

import pytest
from hypothesis import given
from hypothesis import strategies as st

from me162.protocol.capture import read_capture
from me162.protocol.frames import Command, DataMessage, ErrorMessage, Identification, OptionSelect
from me162.protocol.framing import AckRule, Framer, Kind, Message, classify, split

CAPTURES = Path(__file__).resolve().parent.parent / "fixtures" / "captures"
READOUT = DataMessage(b"1.8.0(0033402.264*kWh)\r\n!\r\n").to_bytes()


def kinds(data: bytes, **kw: object) -> list[str]:
    return [m.kind.value for m in split(data, **kw)]  # type: ignore[arg-type]


def test_a_whole_me162_session_from_the_meter_splits_into_its_messages() -> None:
    stream = b"/ISK5ME162-0033\r\n" + READOUT + b"\x01P0\x02()\x03`" + b"\x06" + b"\x15"
    assert kinds(stream, ack=AckRule.ALONE) == ["identification", "data", "command", "ack", "nak"]


def test_the_bcc_is_the_byte_after_etx_whatever_it_is() -> None:
    for bcc in (0x0A, 0x06, 0x02, 0x03, 0x2F):
        msgs = split(b"\x02AB\x03" + bytes([bcc]) + b"\x15")
        assert [m.kind for m in msgs] == [Kind.DATA, Kind.NAK]
        assert msgs[0].data[-1] == bcc


def test_bcc_verdicts_are_carried_by_the_message() -> None:
    good = classify(READOUT)
    bad = classify(READOUT[:-1] + bytes([READOUT[-1] ^ 1]))
    assert good.kind is Kind.DATA and good.bcc_ok is True and good.bcc == READOUT[-1]
    assert bad.bcc_ok is False
    assert "BCC WRONG" in bad.describe() and "BCC ok" in good.describe()
    assert classify(b"\x06").bcc_ok is None


def test_partial_blocks_and_commands_with_data() -> None:
    part = DataMessage(b"1.8.0(00", partial=True).to_bytes()
    w1 = Command.write("1.8.0", "5").to_bytes()
    assert [m.kind for m in split(part + w1)] == [Kind.PARTIAL, Kind.COMMAND]
    assert split(w1)[0].name == "W1"
    assert split(Command.break_().to_bytes())[0].is_break


def test_request_echo_then_identification() -> None:
    assert kinds(b"/?!\r\n/ISK5ME162-0033\r\n") == ["request", "identification"]


def test_a_new_start_inside_a_line_cuts_it_short() -> None:
    msgs = split(b"/ISK5/ISK5ME162-0033\r\n")
    assert [m.kind for m in msgs] == [Kind.NOISE, Kind.IDENTIFICATION]
    assert msgs[0].began_as is Kind.IDENTIFICATION
    assert "identification cut short" in msgs[0].describe()
    # an identification cut by the meter's 300 Bd readout that follows it
    assert kinds(b"/ISK5ME" + READOUT) == ["noise", "data"]


def test_a_request_without_its_exclamation_mark_is_noise() -> None:
    msgs = split(b"/?12\r\n")
    assert msgs[0].kind is Kind.NOISE and msgs[0].began_as is Kind.REQUEST


def test_ack_or_option_select_depends_on_who_listens() -> None:
    option = OptionSelect("0", "5", "0").to_bytes()
    assert kinds(option) == ["option-select"]
    assert kinds(b"\x06\x01R1\x02x()\x03_") == ["ack", "command"]
    assert kinds(option, ack=AckRule.ALONE) == ["ack", "noise"]
    # the meter waiting for an option select reads six characters and then judges them
    garbled = split(b"\x06\x00\x35\x30\r\n", ack=AckRule.OPTION)
    assert [m.kind for m in garbled] == [Kind.NOISE] and garbled[0].began_as is Kind.OPTION_SELECT


def test_an_ack_at_the_end_of_a_stream_waits_for_a_possible_option_select() -> None:
    f = Framer()
    f.feed(b"\x06050")
    assert f.next() is None
    f.feed(b"\r\n")
    msg = f.next()
    assert msg is not None and msg.kind is Kind.OPTION_SELECT
    g = Framer()
    g.feed(b"\x06")
    assert g.next() is None
    assert [m.kind for m in g.flush()] == [Kind.ACK]


def test_plain_data_blocks_and_mode_d_pushes() -> None:
    push = b"/EBZ5DD3BZ06ETA_107\r\n\r\n1-0:1.8.0*255(000123.4*kWh)\r\n!\r\n"
    assert kinds(push) == ["identification", "plain"]
    assert kinds(b"1.8.0(1)\r\n!\r\n\x03\x11") == ["plain", "noise"]  # a readout whose STX was lost


def test_a_listener_to_whom_no_block_can_come_takes_stx_and_soh_for_noise() -> None:
    # Mode D: a push read at a wrong speed holds an STX; taken as the start of a block message,
    # it would hold every later push in a block that never ends.
    stream = b"\x00LBs\x02R\x13+*B\n/EBZ5DD3BZ06ETA_107\r\n\r\n1-0:1.8.0*255(000123.4*kWh)\r\n!\r\n"
    f = Framer(blocks=False)
    f.feed(stream)
    msgs = list(f)
    assert [m.kind for m in msgs][-2:] == [Kind.IDENTIFICATION, Kind.PLAIN]
    assert b"".join(m.data for m in msgs) == stream  # lossless as ever
    f = Framer()
    f.feed(stream)
    assert all(m.kind is not Kind.IDENTIFICATION for m in f)  # the block swallows the push


def test_noise_runs_come_out_as_one_message() -> None:
    msgs = split(b"\x7f\x7f\x7f\x00/ISK5ME162-0033\r\n")
    assert [m.kind for m in msgs] == [Kind.NOISE, Kind.IDENTIFICATION]
    assert msgs[0].data == b"\x7f\x7f\x7f\x00" and msgs[1].offset == 4


def test_text_that_never_ends_in_a_message_is_noise_at_the_next_start() -> None:
    assert kinds(b"hello\r\n/ISK5ME162-0033\r\n") == ["noise", "identification"]


def test_a_stream_cut_inside_a_message_flushes_it_as_noise_of_its_kind() -> None:
    f = Framer()
    f.feed(READOUT[:20])
    assert f.next() is None
    (msg,) = f.flush()
    assert msg.kind is Kind.NOISE and msg.began_as is Kind.DATA and msg.data == READOUT[:20]


def test_a_block_over_the_limit_is_noise_and_the_framer_resynchronises() -> None:
    f = Framer(max_block=32)
    f.feed(b"\x02" + b"x" * 40 + b"/ISK5ME162-0033\r\n")
    out = list(f)
    assert [m.kind for m in out] == [Kind.NOISE, Kind.IDENTIFICATION]


def test_lines_over_the_limit_are_noise() -> None:
    assert kinds(b"/" + b"A" * 200 + b"\r\n")[0] == "noise"
    f = Framer(max_line=37)
    f.feed(b"/?" + b"1" * 40 + b"!\r\n")
    assert [m.kind for m in f] == [Kind.NOISE]


def test_clear_forgets_pending_bytes_and_offsets_keep_counting() -> None:
    f = Framer()
    f.feed(b"\x02half a readout")
    assert f.next() is None
    f.clear()
    f.feed(b"\x15")
    msg = f.next()
    assert msg is not None and msg.kind is Kind.NAK and msg.offset == 15


@given(st.lists(st.sampled_from([
    b"/?!\r\n", b"/ISK5ME162-0033\r\n", b"\x06050\r\n", b"\x06", b"\x15", READOUT,
    b"\x01P0\x02()\x03`", b"\x01B0\x03q", b"\x7f", b"\x00\xff", b"1.8.0(1)\r\n!\r\n", b"junk", b"\r\n",
    DataMessage(b"(1)", partial=True).to_bytes(), ErrorMessage("ERROR").to_bytes(),
]), max_size=12), st.data())  # fmt: skip
def test_any_cut_of_the_input_gives_the_same_messages(parts: list[bytes], data: st.DataObject) -> None:
    stream = b"".join(parts)
    whole = split(stream)
    cuts = sorted(data.draw(st.lists(st.integers(0, len(stream)), max_size=8)))
    f = Framer()
    pieces: list[Message] = []
    prev = 0
    for c in [*cuts, len(stream)]:
        f.feed(stream[prev:c])
        prev = c
        pieces.extend(f)
    pieces.extend(f.flush())
    assert pieces == whole


@given(st.binary(max_size=400))
def test_framing_is_lossless_and_never_raises(stream: bytes) -> None:
    msgs = split(stream)
    assert b"".join(m.data for m in msgs) == stream
    offset = 0
    for m in msgs:
        assert m.offset == offset and m.data
        offset = m.end
        assert m.describe()


def test_every_message_of_every_real_capture_is_framed_as_its_first_byte_says() -> None:
    for path in sorted(CAPTURES.glob("*.capture.jsonl")):
        cap = read_capture(path)
        for direction in ("r2m", "m2r"):
            raw = bytes(b & 0x7F for b in cap.stream(direction))
            for m in split(raw, ack=AckRule.AUTO if direction == "r2m" else AckRule.ALONE):
                if m.kind is Kind.IDENTIFICATION and m.data.endswith(b"\r\n") and b"\r\n\r\n" not in m.data:
                    Identification.from_bytes(m.data)  # parses
                if m.kind in (Kind.DATA, Kind.COMMAND, Kind.PARTIAL):
                    assert m.data[0] in (1, 2), (path.name, m)


@pytest.mark.parametrize("name", ["ME162_1", "ME162_3"])
def test_the_me162_captures_hold_whole_messages_with_good_bccs(name: str) -> None:
    cap = read_capture(CAPTURES / f"{name}.capture.jsonl")
    msgs = [m for m in split(cap.stream("m2r"), ack=AckRule.ALONE) if m.kind.framed]
    assert msgs and all(m.bcc_ok for m in msgs)
