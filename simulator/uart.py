"""A bit-level model of two UARTs joined by a line, so that bytes sent at one speed and
received at another come out garbled exactly as real hardware garbles them.

A sender turns each byte into a frame of bits (start 0, data LSB first, parity, stop 1s) of
``1/baud`` seconds each; the line idles at 1 between frames.  A receiver waits for a falling
edge, samples the middle of every bit at its own speed, checks the parity and the stop bit,
and re-arms after the middle of the stop bit.  Deterministic: the same frames give the same
bytes, framing and parity errors included.

One transmitter drives a line, so a line carries one frame at a time: :class:`Line` keeps its
edges in time order whatever it is given (a frame that would start before the previous one
has ended is laid down only from where the line is free again), and :class:`Receiver` moves
strictly forward in time.  Together they cannot loop or grow without bound on any input:
each character a receiver delivers consumes a falling edge, and the edges behind the
receiver are dropped.
"""

from __future__ import annotations

from bisect import bisect_right
from collections import deque
from collections.abc import Callable, Iterable
from itertools import islice
from typing import NamedTuple

from me162.protocol.line import LineSettings


def frame_bits(byte: int, fmt: LineSettings, *, bad_parity: bool = False) -> tuple[int, ...]:
    data = [(byte >> i) & 1 for i in range(fmt.bits)]
    parity: list[int] = []
    if fmt.parity == "E":
        parity = [(sum(data) & 1) ^ bad_parity]
    elif fmt.parity == "O":
        parity = [1 - (sum(data) & 1) ^ bad_parity]
    return (0, *data, *parity, *([1] * fmt.stop))


class Frame(NamedTuple):
    """One character on the line.  (Named tuples: a readout makes hundreds of each.)"""

    start: float
    byte: int
    fmt: LineSettings
    raw: bool = False  #: the receiver's port passes all 8 bits (see Transmit.raw)
    bad_parity: bool = False  #: sent with the wrong parity bit (a fault)

    @property
    def bits(self) -> tuple[int, ...]:
        return frame_bits(self.byte, self.fmt, bad_parity=self.bad_parity)

    @property
    def end(self) -> float:
        return self.start + self.fmt.bits_per_char / self.fmt.baud


class RxChar(NamedTuple):
    """What a receiver made of the line: a value, when its stop bit was sampled, errors."""

    t: float
    byte: int
    framing_error: bool = False
    parity_error: bool = False

    @property
    def error(self) -> bool:
        return self.framing_error or self.parity_error


def decode_bits(bits: tuple[int, ...], rx: LineSettings) -> tuple[int, bool, bool]:
    """Decode one frame's bit pattern with the receiver's format: (value, framing, parity)."""
    data = bits[1 : 1 + rx.bits]
    value = sum(b << i for i, b in enumerate(data))
    pos = 1 + rx.bits
    parity_error = False
    if rx.parity != "N":
        p = bits[pos] if pos < len(bits) else 1
        want = (sum(data) & 1) if rx.parity == "E" else 1 - (sum(data) & 1)
        parity_error = p != want
        pos += 1
    stops = [bits[i] if i < len(bits) else 1 for i in range(pos, pos + rx.stop)]
    return value, any(s == 0 for s in stops), parity_error


class Line:
    """The level of one direction of the line over time (idle 1 outside frames).

    Frames are laid down in the order they are given; the edges stay sorted because a frame
    is clipped to the part after the line's last edge.  :meth:`frame_at` finds the frame that
    starts exactly at a time, for the receiver's exact path.

    The fast path: a frame that starts after everything on the line has ended waits in
    :attr:`pending` as a frame, not as edges; a receiver whose settings match it takes it whole
    (:meth:`next_pending`), and its bits are never laid down.  A question that needs levels
    lays down only the pending frames it needs (:meth:`level` those that start by then,
    :meth:`next_falling_edge` those up to the first start bit after the time asked; a frame that
    overlaps, all of them), so the answers are those of a line that laid each frame down as it
    came (``lazy=False``; a property test compares the two), and a receiver that asked with
    settings which then changed (the reader switched speed after the link looked ahead) still
    finds the frames after those taken whole.
    """

    def __init__(self, *, lazy: bool = True) -> None:
        self.edges: list[float] = []
        self.levels: list[int] = []
        self.free = float("-inf")  #: when the last frame laid down ends
        self._starts: dict[float, Frame] = {}
        self._first = 0  #: edges before this index are behind every receiver and may be dropped
        self.version = 0  #: changes whenever a frame is laid down
        self.lazy = lazy
        self.pending: deque[Frame] = deque()  #: frames after every edge, not laid down yet
        self._last_taken: Frame | None = None  #: the last pending frame a receiver took whole

    def add(self, frame: Frame) -> None:
        self.version += 1
        if frame.start >= self.free:
            self._starts[frame.start] = frame
            if self.lazy:
                self.pending.append(frame)
                self.free = frame.end
                return
        self._flush()
        self._lay(frame)

    def add_run(self, frames: list[Frame]) -> None:
        """Lay down frames that follow each other (each starts where the one before ends), as
        :meth:`add` would one by one: a transmission of hundreds in one step."""
        if not frames:
            return
        if not self.lazy or frames[0].start < self.free:
            for f in frames:
                self.add(f)
            return
        self.version += 1
        self._starts.update((f.start, f) for f in frames)
        self.pending.extend(frames)
        self.free = frames[-1].end

    def _flush(self, until: float = float("inf")) -> None:
        """Lay down the pending frames that start by ``until``."""
        pending = self.pending
        while pending and pending[0].start <= until:
            self._lay(pending.popleft())

    def _lay(self, frame: Frame) -> None:
        dt = 1.0 / frame.fmt.baud
        last = self.edges[-1] if self.edges else float("-inf")
        level = self.levels[-1] if self.levels else 1
        taken = self._last_taken
        if taken is not None and taken.start > last:  # its bits were never laid: its last edge
            bits = taken.bits
            tdt = 1.0 / taken.fmt.baud
            last = (
                taken.start + max(i for i in range(len(bits)) if bits[i] != (bits[i - 1] if i else 1)) * tdt
            )
            level = 1  # (a frame ends in its stop bits)
        for i, b in enumerate(frame.bits):
            t = frame.start + i * dt
            if t <= last:  # the line is still busy with an earlier frame there
                continue
            if b != level:
                self.edges.append(t)
                self.levels.append(b)
                level = b
                last = t
        end = frame.end
        if level != 1 and end > last:
            self.edges.append(end)
            self.levels.append(1)
        self.free = max(self.free, end)

    def next_pending(self, after: float) -> Frame | None:
        """The frame whose start bit is the first falling edge after ``after``, if it is
        still pending: it starts after ``after`` and no laid-down edge lies after ``after``."""
        if not self.pending:
            return None
        frame = self.pending[0]
        if frame.start <= after:
            return None
        edges = self.edges
        if edges and edges[-1] > after:  # laid-down edges after it: is one of them a start bit?
            levels = self.levels
            i = max(bisect_right(edges, after), self._first)
            if 0 in levels[i:]:
                return None
        return frame

    def taken(self, frame: Frame) -> None:
        """A receiver took this pending frame whole and re-armed in its stop bit: only idle
        stop bits remain of it, and it leaves the line."""
        if self.pending and self.pending[0] is frame:
            self.pending.popleft()
            self._last_taken = frame  # a frame laid down later is clipped after its last edge

    def level(self, t: float) -> int:
        if self.pending:
            self._flush(t)
        i = bisect_right(self.edges, t) - 1
        return 1 if i < self._first else self.levels[i]

    def next_falling_edge(self, after: float) -> float | None:
        """The first falling edge strictly after ``after``."""
        edges, levels = self.edges, self.levels
        while True:
            i = max(bisect_right(edges, after), self._first)
            while i < len(edges):
                if levels[i] == 0:
                    return edges[i]
                i += 1
            if not self.pending:
                return None
            self._lay(self.pending.popleft())  # the next frame: its start bit, unless before ``after``

    def frame_at(self, t: float) -> Frame | None:
        return self._starts.get(t)

    def forget_before(self, t: float) -> None:
        """Drop what lies before ``t`` (the receiver is past it)."""
        i = bisect_right(self.edges, t) - 1
        self._first = max(self._first, i)
        if self._first > 4096:
            del self.edges[: self._first]
            del self.levels[: self._first]
            self._first = 0
        if len(self._starts) > 4096:
            self._starts = {s: f for s, f in self._starts.items() if s >= t}


class Receiver:
    """A UART listening to a :class:`Line`, its settings given as a function of time.

    A character whose start bit falls exactly on a frame sent with the receiver's own settings
    is taken as sent (and delivered at the frame's end); anything else is sampled bit by bit.
    Characters are delivered one by one as their time comes, as a real UART hands them over.
    """

    def __init__(
        self,
        line: Line,
        settings_at: Callable[[float], LineSettings],
        settings_span: Callable[[float], tuple[LineSettings, float]] | None = None,
    ) -> None:
        self.line = line
        self.settings_at = settings_at
        #: the settings at a time and until when they hold at least (a frame starting before
        #: then is read with them): a readout's characters need not ask one by one
        self.settings_span = settings_span or (lambda t: (settings_at(t), t))
        self.armed_at = float("-inf")  #: the receiver looks for a start bit after this time
        self._memo: tuple[tuple[object, ...], tuple[RxChar, float] | None] | None = None
        #: the fast path's last answer: the pending frame, the settings, what was made of it
        self._fast: tuple[Frame, LineSettings, tuple[RxChar, float]] | None = None

    def _next(self) -> tuple[RxChar, float] | None:
        """The next character and the time after which the receiver looks for a start bit
        again (the middle of the stop bit), or None.  Remembered until the line, the
        receiver's position or its settings change (the link asks often)."""
        frame = self.line.next_pending(self.armed_at)
        if frame is not None:  # the fast path: a whole frame, if sent as this receiver reads
            rx = self.settings_at(frame.start)
            fast = self._fast
            if fast is not None and fast[0] is frame and (fast[1] is rx or fast[1] == rx):
                return fast[2]
            if frame.fmt == rx or (
                frame.raw and frame.fmt.bits_per_char == rx.bits_per_char and frame.fmt.baud == rx.baud
            ):
                answer = self._exact(frame, rx)
                self._fast = (frame, rx, answer)
                return answer
        edge = self.line.next_falling_edge(self.armed_at)
        key = (self.line.version, self.armed_at, edge, None if edge is None else self.settings_at(edge))
        if self._memo is None or self._memo[0] != key:
            self._memo = (key, self._decode_next())
        return self._memo[1]

    def _decode_next(self) -> tuple[RxChar, float] | None:
        line = self.line
        armed = self.armed_at
        while True:
            edge = line.next_falling_edge(armed)
            if edge is None:
                return None
            rx = self.settings_at(edge)
            dt = 1.0 / rx.baud
            n = rx.bits_per_char
            stop_sample = edge + (n - 0.5) * dt
            frame = line.frame_at(edge)
            if frame is not None and (
                frame.fmt == rx
                or (frame.raw and frame.fmt.bits_per_char == rx.bits_per_char and frame.fmt.baud == rx.baud)
            ):
                return self._exact(frame, rx)
            if line.level(edge + 0.5 * dt) != 0:  # a glitch shorter than half a bit
                armed = edge
                continue
            samples = tuple(line.level(edge + (k + 0.5) * dt) for k in range(n))
            value, framing, parity = decode_bits(samples, rx)
            return RxChar(stop_sample, value, framing, parity), stop_sample

    @staticmethod
    def _exact(frame: Frame, rx: LineSettings) -> tuple[RxChar, float]:
        """A frame taken as sent: delivered at its end, the receiver re-armed at the middle of
        its own stop bit."""
        stop_sample = frame.start + (rx.bits_per_char - 0.5) * (1.0 / rx.baud)  # as the bit model
        return RxChar(frame.end, frame.byte, False, frame.bad_parity and rx.parity != "N"), stop_sample

    def next_time(self) -> float | None:
        """When the next character will be delivered (None: nothing on the line)."""
        nxt = self._next()
        return None if nxt is None else nxt[0].t

    def take(self, until: float) -> list[RxChar]:
        """Every character delivered by ``until``, in order."""
        out: list[RxChar] = []
        while True:
            nxt = self._next()
            if nxt is None or nxt[0].t > until:
                break
            ch, rearm = nxt
            self.armed_at = rearm  # strictly later than the start bit: never stands still
            out.append(ch)
            fast = self._fast
            if fast is not None and nxt is fast[2]:  # a pending frame, taken whole
                self.line.taken(fast[0])
                self._take_whole(until, fast[1], out)
        self.line.forget_before(self.armed_at)
        return out

    def coming(
        self, until: float, limit: int = 1 << 30, start: Frame | None = None
    ) -> list[tuple[float, int, Frame]]:
        """The characters :meth:`take` will deliver by ``until`` as long as each is a frame
        sent as this receiver reads it, without taking them (the receiver is left where it
        is; the line may lay down frames it would lay down anyway): (time, value, frame) of
        each, frames laid down as bits first.  The settings are those at each frame's start,
        so a switch already known ends the list where the frames stop matching; it is empty
        where the next character needs the bit model.  At most ``limit`` characters; with
        ``start`` (the last frame of an earlier answer), those after it.

        A transport paces these out itself, and :meth:`skip` then moves the receiver past
        them in one step; :meth:`take` would give the same characters (the property test
        compares the two).  (Value and time only: a frame sent as it is read has no framing
        error, and a parity error does not change what a Linux tty hands over.)"""
        out: list[tuple[float, int, Frame]] = []
        line = self.line
        settings_at = self.settings_at
        armed, taken = (self.armed_at, 0) if start is None else self._after(start)
        if not taken:
            while line.next_pending(armed) is None:  # frames laid down as bits: as _decode_next
                edge = line.next_falling_edge(armed)
                if edge is None:
                    return out
                frame = line.frame_at(edge)
                rx = settings_at(edge)
                if frame is None or frame.fmt != rx:
                    return out
                ch, armed = self._exact(frame, rx)
                if ch.t > until or len(out) >= limit:
                    return out
                out.append((ch.t, frame.byte, frame))
        span = self.settings_span
        now: LineSettings | None = None
        holds = -float("inf")  #: ``now`` holds for a frame that starts before this
        char = rearm = 0.0
        for frame in islice(line.pending, taken, None):  # then frames taken whole: as _take_whole
            if len(out) >= limit:
                break
            begins = frame.start
            if not begins < holds:
                before = now
                now, holds = span(begins)
                if now is not before:
                    char = now.bits_per_char / now.baud
                    rearm = (now.bits_per_char - 0.5) / now.baud
            fmt = frame.fmt
            if (fmt is not now and fmt != now) or begins <= armed:
                break
            t = begins + char
            if t > until:
                break
            armed = begins + rearm
            out.append((t, frame.byte, frame))
        return out

    def _after(self, frame: Frame) -> tuple[float, int]:
        """Where the receiver is once it has delivered ``frame`` taken as sent: re-armed in its
        stop bit, and how many of the line's pending frames it has taken whole (through
        ``frame``, if it is one of them; 0 for a frame laid down as bits)."""
        fmt = frame.fmt
        try:
            taken = self.line.pending.index(frame) + 1
        except ValueError:
            taken = 0
        return frame.start + (fmt.bits_per_char - 0.5) / fmt.baud, taken

    def skip(self, through: Frame) -> bool:
        """Move past every character :meth:`coming` gave up to the one of frame ``through``,
        as :meth:`take` would, without handing them over; False (and nothing done) where the
        receiver is past it already, for :meth:`take` to do it the long way."""
        armed, taken = self._after(through)
        if armed <= self.armed_at:
            return False
        pending = self.line.pending
        for _ in range(taken):
            self.line.taken(pending[0])
        self.armed_at = armed
        self.line.forget_before(armed)
        return True

    def _take_whole(self, until: float, rx: LineSettings, out: list[RxChar]) -> None:
        """After a pending frame taken whole: the pending frames behind it that this receiver
        reads as sent, up to ``until``, taken in one go (what :meth:`_next` would answer for
        each: no edge is laid down behind them, and the settings are those at each start)."""
        line = self.line
        pending = line.pending
        span = self.settings_span
        holds = -float("inf")  #: ``rx`` holds for a frame that starts before this
        rearm = (rx.bits_per_char - 0.5) / rx.baud
        char = rx.bits_per_char / rx.baud
        while pending:
            frame = pending[0]
            fmt = frame.fmt
            if fmt is not rx and fmt != rx:
                break
            if frame.start <= self.armed_at or frame.start + char > until:
                break
            if not frame.start < holds:
                now, holds = span(frame.start)
                if now is not rx and now != rx:
                    break
            line.taken(frame)
            self.armed_at = frame.start + rearm
            out.append(RxChar(frame.start + char, frame.byte, False, frame.bad_parity and rx.parity != "N"))


def receive(frames: Iterable[Frame], rx: LineSettings, after: float = float("-inf")) -> list[RxChar]:
    """Everything a receiver set to ``rx`` makes of ``frames`` (laid down in start order)."""
    line = Line()
    for f in sorted(frames, key=lambda fr: fr.start):
        line.add(f)
    receiver = Receiver(line, lambda t: rx)
    receiver.armed_at = after
    return receiver.take(float("inf"))
