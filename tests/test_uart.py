"""The bit-level UART model: exact at equal settings, deterministic garbage otherwise."""

from __future__ import annotations

import bisect
import itertools

import pytest
from hypothesis import given
from hypothesis import strategies as st

from me162.protocol.line import LineSettings, add_parity
from me162.simulator.link import Link
from me162.simulator.uart import Frame, frame_bits, receive

E7_300 = LineSettings(300)


def frames(data: bytes, fmt: LineSettings, start: float = 0.0) -> list[Frame]:
    out, t = [], start
    for b in data:
        f = Frame(t, b, fmt)
        out.append(f)
        t = f.end
    return out


@given(st.binary(max_size=40).map(lambda b: bytes(c & 0x7F for c in b)), st.sampled_from([300, 2400, 9600]))
def test_same_settings_receive_exactly(data: bytes, baud: int) -> None:
    fmt = LineSettings(baud)
    got = receive(frames(data, fmt), fmt)
    assert bytes(c.byte for c in got) == data
    assert not any(c.error for c in got)


def test_frame_is_start_seven_data_even_parity_stop() -> None:
    assert frame_bits(ord("/"), E7_300) == (0, 1, 1, 1, 1, 0, 1, 0, 1, 1)  # 0x2F: five ones, parity 1


def test_7e1_read_by_an_8n1_port_has_the_parity_in_bit_7() -> None:
    data = b"/?!\r\n"
    got = receive(frames(data, E7_300), LineSettings(300, 8, "N", 1))
    assert bytes(c.byte for c in got) == add_parity(data) == bytes.fromhex("af3f218d0a")


def test_8n1_without_parity_bit_gives_parity_errors_at_a_7e1_meter() -> None:
    got = receive(frames(b"/", LineSettings(300, 8, "N", 1)), E7_300)
    assert got[0].byte == ord("/") and got[0].parity_error


def test_mismatched_speed_is_garbage_and_deterministic() -> None:
    readout = b"\x02C.1.0(28342193)\r\n0.0.0(28342193)\r\n"
    at_9600 = frames(readout, LineSettings(9600))
    slow = receive(at_9600, LineSettings(300))
    assert bytes(c.byte for c in slow) != readout and len(slow) < len(readout)
    assert receive(at_9600, LineSettings(300)) == slow
    fast = receive(frames(readout, E7_300), LineSettings(9600))
    assert any(c.framing_error for c in fast)
    assert len(fast) > len(readout)


def test_receiver_rearms_after_the_stop_bit() -> None:
    data = b"AB"
    f = frames(data, E7_300, start=1.0)
    got = receive(f, E7_300)
    assert [c.byte for c in got] == [0x41, 0x42]
    # A character sent with the receiver's own settings is handed over when its frame ends.
    assert abs(got[0].t - (1.0 + 10 / 300)) < 1e-9
    assert abs(got[1].t - (1.0 + 20 / 300)) < 1e-9


def test_garbled_characters_are_handed_over_one_by_one_at_their_stop_bit() -> None:
    # 9600 Bd bytes read at 300 Bd: each garbled character is delivered at the middle of the
    # receiver's stop bit, not held back until the whole transmission has ended.
    sent = frames(b"\x00" * 40, LineSettings(9600), start=0.0)
    got = receive(sent, E7_300)
    assert got and got[0].t == pytest.approx(9.5 / 300)
    assert all(b.t > a.t for a, b in itertools.pairwise(got))


_FORMATS = [
    fmt.with_baud(b)
    for b in (300, 2400, 9600)
    for fmt in (LineSettings(300, 7, "E", 1), LineSettings(300, 8, "N", 1), LineSettings(300, 7, "O", 2))
]


@given(
    st.lists(
        st.tuples(
            st.floats(0, 0.5),
            st.binary(min_size=1, max_size=12),
            st.sampled_from(_FORMATS),
        ),
        max_size=6,
    ),
    st.sampled_from(_FORMATS),
)
def test_any_overlapping_transmissions_terminate_with_bounded_output(
    sends: list[tuple[float, bytes, LineSettings]], rx: LineSettings
) -> None:
    laid = [f for start, data, fmt in sends for f in frames(data, fmt, start)]
    got = receive(laid, rx)
    # Every character consumes a falling edge of the line, and time only moves forward.
    assert len(got) <= sum(len(f.bits) for f in laid)
    assert all(b.t > a.t for a, b in itertools.pairwise(got))


# --- the fast path: frames a receiver takes whole are never laid down as bits ------------------

_RX_CHOICES = [LineSettings(300), LineSettings(9600), LineSettings(2400), LineSettings(9600, 8, "N", 1)]


@st.composite
def _line_script(draw: st.DrawFn) -> tuple[list[tuple[str, object]], list[tuple[float, LineSettings]]]:
    """Frames laid down in start order (some overlapping, some back to back, some after a
    pause), raw and bad-parity ones among them, and takes at growing times between them; the
    receiver's settings change at some times."""
    ops: list[tuple[str, object]] = []
    t = 0.0
    until = 0.0
    for _ in range(draw(st.integers(1, 30))):
        fmt = draw(st.sampled_from(_RX_CHOICES))
        raw = fmt.bits == 8 and draw(st.booleans())
        start = max(0.0, t + draw(st.sampled_from([0.0, 0.0, -0.002, 0.0005, 0.05])))
        frame = Frame(
            start, draw(st.integers(0, 0x7F if not raw else 0xFF)), fmt, raw, draw(st.booleans()) and not raw
        )
        ops.append(("add", frame))
        t = max(t, frame.end)
        if draw(st.booleans()):
            until = max(until, draw(st.floats(0, t + 0.05)))
            ops.append(("take", until))
        if draw(st.integers(0, 4)) == 0:  # the reader switches now, after the link looked ahead
            until = draw(st.floats(until, max(until, t + 0.01)))
            ops.append(("switch", (until, draw(st.sampled_from(_RX_CHOICES)))))
    ops.append(("take", t + 1.0))
    switches = sorted(
        draw(st.lists(st.tuples(st.floats(0, t + 0.01), st.sampled_from(_RX_CHOICES)), max_size=3)),
        key=lambda switch: switch[0],
    )
    return ops, [(-1.0, draw(st.sampled_from(_RX_CHOICES))), *switches]


def _play(
    script: tuple[list[tuple[str, object]], list[tuple[float, LineSettings]]],
    *,
    lazy: bool = True,
    ask: bool = False,
) -> list[object]:
    """Run a line script; what the receiver answers and takes.  With ``ask``, before each take
    the receiver is asked what is coming, which must be the start of what it then takes."""
    from me162.simulator.clock import in_force
    from me162.simulator.uart import Line, Receiver

    ops, history = script
    line = Line(lazy=lazy)
    settings = list(history)
    rx = Receiver(line, lambda t: in_force(settings, t))
    out: list[object] = []
    for op, arg in ops:
        if op == "add":
            assert isinstance(arg, Frame)
            line.add(arg)
            out.append(("next", rx.next_time()))
        elif op == "switch":
            assert isinstance(arg, tuple)
            bisect.insort(settings, arg, key=lambda switch: switch[0])
            out.append(("next", rx.next_time()))
        else:
            assert isinstance(arg, float)
            coming = rx.coming(arg) if ask else None
            took = rx.take(arg)
            if coming is not None:
                assert [(t, b) for t, b, _ in coming] == [(c.t, c.byte) for c in took[: len(coming)]]
                assert not any(c.framing_error for c in took[: len(coming)])
            out.append(("took", took))
    return out


@given(_line_script())
def test_the_fast_path_gives_what_the_bit_model_gives(
    script: tuple[list[tuple[str, object]], list[tuple[float, LineSettings]]],
) -> None:
    """A line that keeps frames whole until a receiver needs their bits (the fast path) and one
    that lays every frame down as bits at once hand over the same characters at the same
    times, flags included, on any script: matching settings, switches mid-stream, overlaps,
    and switches that come after the receiver was asked what comes next (as a reader switches
    after the link looked ahead)."""
    assert _play(script, lazy=True) == _play(script, lazy=False)


@given(_line_script())
def test_what_is_coming_is_what_the_receiver_then_takes(
    script: tuple[list[tuple[str, object]], list[tuple[float, LineSettings]]],
) -> None:
    """A transport paces out what :meth:`Receiver.coming` says without taking it, and lets the
    receiver take it later: on any script (switches mid-stream, overlaps, raw frames, frames
    already laid down as bits) the characters coming by a time are the first the receiver
    then takes by that time, flags and times included, and asking changes nothing it takes
    (compared with a receiver that was never asked)."""
    assert _play(script, ask=True) == _play(script, ask=False)


def test_a_readout_is_coming_whole_once_the_switch_is_known() -> None:
    """After the reader's switch, the readout's frames that the receiver had to lay down as
    bits (it looked at them at 300 Bd) and those still whole are all coming at once."""
    from me162.simulator.uart import Line, Receiver

    line = Line()
    rx = Receiver(line, lambda t: E7_300)
    readout = b"\x021.8.0(001234.5*kWh)\r\n!\r\n\x03="
    for f in frames(readout, LineSettings(9600), start=0.06):
        line.add(f)
    assert rx.next_time() is not None  # asked while the receiver is still at 300 Bd ...
    assert line.edges  # ... which laid the first frames down as bits
    rx.settings_at = lambda t: LineSettings(9600)  # the switch, before the readout began
    coming = rx.coming(1.0)
    assert bytes(b for _, b, _ in coming) == readout and coming[0][2] not in line.pending  # (laid first)
    assert [(t, b) for t, b, _ in coming] == [(c.t, c.byte) for c in rx.take(1.0)]


def test_matching_frames_are_never_laid_down_as_bits() -> None:
    from me162.simulator.uart import Line, Receiver

    line = Line()
    rx = Receiver(line, lambda t: LineSettings(9600))
    for f in frames(b"/ISK5ME162-0033\r\n", LineSettings(9600)):
        line.add(f)
    assert bytes(c.byte for c in rx.take(1.0)) == b"/ISK5ME162-0033\r\n"
    assert line.edges == [] and not line.pending  # nothing was modelled bit by bit


def test_a_readout_after_a_switch_the_link_did_not_foresee_is_taken_whole(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    """The link asks what the reader's UART gets next as soon as the meter has queued its
    readout, before the reader's switch to 9600 Bd reaches it (on a pty, always): the first
    frames are then modelled bit by bit at 300 Bd, but only the ones that question needs; once
    the switch is known the rest of the readout is taken whole, never laid down as bits."""
    from me162.simulator.uart import Line

    laid: list[Frame] = []
    lay = Line._lay

    def counting(self: Line, frame: Frame) -> None:
        laid.append(frame)
        lay(self, frame)

    monkeypatch.setattr(Line, "_lay", counting)
    link, t = _identified()
    link.reader_write(b"\x06050\r\n", t)
    ack_end = link.reader_tx_done
    link.advance(ack_end)  # the meter has the ACK and queues its readout ...
    link.next_event()  # ... and the link looks ahead: the reader is still at 300 Bd
    link.reader_configure(LineSettings(9600), ack_end + 0.003)  # then the reader's switch
    readout = bytearray()
    while not (len(readout) > 2 and readout[-2] == 0x03):
        t = link.next_event() or t + 0.01
        link.advance(t)
        readout += link.reader_take(t)
    assert readout.startswith(b"\x02") and b"1.8.0(" in readout
    at_9600 = [f for f in laid if f.fmt.baud == 9600]
    assert len(at_9600) <= 40, f"{len(at_9600)} of {len(readout)} readout frames were modelled bit by bit"


def _identified() -> tuple[Link, float]:
    """A link whose reader has signed on and has the identification; and when it had it."""
    from datetime import datetime

    from me162.simulator.session import MeterOptions, Served

    link = Served(MeterOptions(clock_start=datetime(2026, 6, 21, 12))).link
    link.reader_write(b"/?!\r\n", 0.0)
    got = bytearray()
    t = 0.0
    while not got.endswith(b"\r\n"):
        t = link.next_event() or t + 0.01
        link.advance(t)
        got += link.reader_take(t)
    return link, t


def _signed_on() -> tuple[Link, float]:
    """A link whose reader has signed on, sent ACK 0 5 0 and switched to 9600 Bd in time."""
    link, t = _identified()
    link.reader_write(b"\x06050\r\n", t)
    link.reader_configure(LineSettings(9600), link.reader_tx_done + 0.001)
    return link, t


@pytest.mark.parametrize("ask", [1, 3, 8, 500])
def test_a_readout_handed_over_by_the_transport_leaves_the_link_as_taking_it_would(ask: int) -> None:
    """A transport that asks the link what is coming, writes it itself and says how far it
    got (as the pty hub does while a readout streams) ends with the same bytes at the same
    times, and the link in the same state afterwards (the reader then asks for the readout
    again and gets it), as a transport that lets the link take every character."""

    def by_turns(link: Link, t: float) -> list[tuple[float, bytes]]:
        out = []
        while (nxt := link.next_event()) is not None and nxt < t + 3.0:
            link.advance(nxt)
            if data := link.reader_take(nxt):
                out.append((nxt, data))
        return out

    def handed(link: Link, t: float) -> list[tuple[float, bytes]]:
        out: list[tuple[float, bytes]] = []
        after = -float("inf")
        while (nxt := link.next_event()) is not None and nxt < t + 3.0:
            coming = link.coming(float("inf"), ask, after)
            if not coming:  # nothing to hand over: a turn of the link
                if out and after > -float("inf"):
                    link.advance(after)
                    after = -float("inf")
                link.advance(nxt)
                if data := link.reader_take(nxt):
                    out.append((nxt, data))
                continue
            for when, value in coming:  # "written" when due
                link.reader_handed(when)
                out.append((when, bytes([value])))
            after = coming[-1][0]
        return out

    results = []
    for drive in (by_turns, handed):
        link, t = _signed_on()
        first = drive(link, t)
        # the reader asks again at once: the same readout follows
        end = max(w for w, _ in first)
        link.reader_configure(LineSettings(300), end + 2.0)
        link.reader_write(b"/?!\r\n", end + 2.0)
        second = by_turns(link, end + 2.0)
        results.append(
            (
                b"".join(d for _, d in first),
                [(round(w, 9), b) for w, d in first for b in d],
                b"".join(d for _, d in second),
            )
        )
    turns, pacing = results
    assert turns[0].startswith(b"\x02") and turns[0][-2] == 0x03
    assert pacing[0] == turns[0]
    assert pacing[1] == turns[1]  # each byte at the same time
    assert pacing[2] == turns[2] and pacing[2].startswith(b"/ISK5ME162")
