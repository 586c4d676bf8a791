"""The optical link on virtual time: the reader's UART, the meter's UART, and the line.

:class:`Link` is a discrete-event engine with no I/O and no clock of its own.  A transport
tells it what the reader did and when (:meth:`Link.reader_write`, :meth:`Link.reader_configure`),
lets time pass (:meth:`Link.advance`) and collects what reached the reader
(:meth:`Link.reader_take`).  Bytes take 10 bit times each at the sender's speed; a receiver
set to another speed or format gets what :mod:`me162.simulator.uart` says real hardware
would get.  A reader that switches speed before its last byte has left the wire sends the
rest at the new speed, which the meter cannot read.
"""

from __future__ import annotations

import logging
from collections.abc import Callable
from dataclasses import replace

from me162.protocol.line import LineSettings, line_settings
from me162.simulator.clock import in_force
from me162.simulator.events import Did, Dir, Wire, WireEvent
from me162.simulator.meter import MeterLike, Transmit
from me162.simulator.uart import Frame, Line, Receiver, RxChar

log = logging.getLogger(__name__)

R2M = Dir.R2M
M2R = Dir.M2R
INF = float("inf")


class _Path:
    """One direction of the line: the frames on it and the UART at the far end, which hands
    over each character when a real one would (at the middle of its stop bit)."""

    def __init__(
        self,
        rx_at: Callable[[float], LineSettings],
        deliver: Callable[[RxChar], None],
        rx_span: Callable[[float], tuple[LineSettings, float]] | None = None,
    ) -> None:
        self.line = Line()
        self.receiver = Receiver(self.line, rx_at, rx_span)
        self.deliver = deliver

    @property
    def free(self) -> float:
        """When the last frame on this direction of the line has left it."""
        return self.line.free

    def add(self, frame: Frame) -> None:
        self.line.add(frame)

    def next_time(self) -> float | None:
        return self.receiver.next_time()

    def process(self, until: float) -> None:
        for ch in self.receiver.take(until):
            self.deliver(ch)


class Link:
    """A reader's UART, a line and one meter, on virtual time in seconds."""

    def __init__(
        self,
        meter: MeterLike,
        *,
        reader: LineSettings | None = None,
        parity_bit: bool = False,
        follow_meter: bool = False,
        record: bool = True,
    ) -> None:
        self.meter = meter
        self.now = 0.0
        self.parity_bit = parity_bit
        self.follow_meter = follow_meter
        self.record = record
        if reader is not None:
            reader = line_settings(reader.baud, reader.bits, reader.parity, reader.stop)
        self._reader_history: list[tuple[float, LineSettings]] = [(0.0, reader or self._reader_default())]
        self.reader_tx_free = 0.0
        self._tx_queue = bytearray()
        self._to_reader: list[tuple[float, int]] = []
        self.events: list[WireEvent] = []
        self.interceptors: list[Callable[[Transmit], list[Transmit]]] = []
        self.line_drops: list[tuple[float, float]] = []  #: (when, how long): a fault pulled the probe off
        #: transmissions a fault holds back (:meth:`hold`): (at the latest, transmission)
        self.held: list[tuple[float, Transmit]] = []
        self._r2m = _Path(self._meter_rx_format, self._deliver_to_meter)
        self._m2r = _Path(self.reader_settings_at, self._deliver_to_reader, self._reader_settings_span)
        self._meter_tx: list[tuple[float, float]] = []  #: (start, end) of the meter's transmissions
        self._meter_events_seen = 0
        #: nothing happens before this virtual time unless the reader acts (None: not known):
        #: advancing to an earlier time only moves the clock, which a transport does on every
        #: look (at 9600 Bd a meter is looked at every character time)
        self._calm_until: float | None = None
        #: before this virtual time nothing happens but characters reaching the reader, unless
        #: the reader acts (None: not known).  Nothing on the link reacts to those characters,
        #: so advancing to an earlier time only takes them: a readout streams at a few
        #: microseconds a character instead of a turn of the whole engine for each
        self._quiet_until: float | None = None
        #: the transport paced out by itself every character that reaches the reader by this
        #: virtual time (:meth:`coming`): :meth:`reader_take` leaves them out
        self._handed = -INF
        #: what :meth:`coming` gave, for the next answer and for the catch-up: (time, value,
        #: frame) of each character
        self._ahead: list[tuple[float, int, Frame]] = []

    def _reader_default(self) -> LineSettings:
        return line_settings(300, 8, "N", 1) if self.parity_bit else line_settings(300)

    # --- the reader's side --------------------------------------------------------------------

    def reader_settings_at(self, t: float) -> LineSettings:
        if self.follow_meter:  # a raw TCP converter: its UART always runs at the meter's speed
            return self._reader_history[0][1].with_baud(self.meter.uart_baud(t))
        return in_force(self._reader_history, t)

    def _reader_settings_span(self, t: float) -> tuple[LineSettings, float]:
        """The reader's settings at ``t``, and a time before which they hold at least: the
        end of time from the last change on (what the reader does next comes after now)."""
        history = self._reader_history
        if not self.follow_meter and t + 1e-9 >= history[-1][0]:
            return history[-1][1], INF
        return self.reader_settings_at(t), t

    @property
    def reader_settings(self) -> LineSettings:
        if self.follow_meter:
            return self.reader_settings_at(max(self.now, self.reader_tx_free))
        return self._reader_history[-1][1]

    def reader_configure(self, settings: LineSettings, at: float) -> None:
        """The reader set its UART (speed, and where the transport carries it, the format)."""
        self.advance(at)
        self._calm_until = self._quiet_until = None
        settings = line_settings(settings.baud, settings.bits, settings.parity, settings.stop)
        if settings != self.reader_settings:
            self._reader_history.append((at, settings))
            self._note(WireEvent(at, Wire.SETTINGS, R2M, baud=settings.baud, detail=settings.describe()))

    def reader_set_baud(self, baud: int, at: float) -> None:
        self.reader_configure(self.reader_settings.with_baud(baud), at)

    def reader_write(self, data: bytes, at: float) -> float:
        """The reader wrote ``data`` at ``at``; returns when its last stop bit will leave the
        wire at the current speed.

        Bytes wait in the reader's transmit queue; each goes out at the speed the reader's UART
        has when that byte starts, so a speed change before the queue is empty garbles the rest.
        """
        self.advance(at)
        self._calm_until = self._quiet_until = None
        if not self._tx_queue:
            self.reader_tx_free = max(at, self.reader_tx_free)
        if data:
            start = self.reader_tx_done
            self._note(WireEvent(start, Wire.DATA, R2M, bytes(data), self.reader_settings.baud))
        self._tx_queue.extend(data)
        self._materialize(at)
        return self.reader_tx_done

    @property
    def reader_tx_done(self) -> float:
        """When the reader's transmit queue will be empty (at the current speed)."""
        return self.reader_tx_free + len(self._tx_queue) * self.reader_settings.char_time

    def _materialize(self, to: float) -> None:
        fmt = self.reader_settings
        while self._tx_queue and self.reader_tx_free <= to:
            f = Frame(self.reader_tx_free, self._tx_queue.pop(0), fmt)
            self._r2m.add(f)
            self.reader_tx_free = f.end

    def reader_take(self, until: float | None = None) -> bytes:
        """Bytes that have reached the reader's UART by ``until`` (default: now)."""
        limit = self.now if until is None else until
        n = 0
        while n < len(self._to_reader) and self._to_reader[n][0] <= limit:
            n += 1
        handed = self._handed
        out = bytes(b for t, b in self._to_reader[:n] if t > handed)
        del self._to_reader[:n]
        return out

    def coming(self, until: float, limit: int = 1 << 30, after: float = -INF) -> list[tuple[float, int]]:
        """What reaches the reader after ``after`` (and after what :meth:`reader_take` took)
        and by ``until``, as (time, value) of each character, if the reader does nothing in
        between: what :meth:`advance` and :meth:`reader_take` will give, without taking it.
        It ends before anything else can happen on the link (the meter's next deadline, the
        reader's bytes reaching the meter) and where a character needs the bit model, so it
        may be shorter than asked, or empty.  At most ``limit`` characters.

        A transport that writes these to the reader itself, each when its time comes, says
        how far it got with :meth:`reader_handed` and asks for more with ``after`` the last
        it has: a readout then costs the transport one write a character, and the link,
        when it next advances, moves past what was handed in one step."""
        if self._calm_until is None:
            self._look_ahead()
        quiet = self._quiet_until
        assert quiet is not None
        handed = self._handed
        if any(t > handed for t, _ in self._to_reader):
            return []  # taken by the link, not by the transport yet: a turn first
        ahead = self._ahead
        start = ahead[-1][2] if ahead and ahead[-1][0] == after else None
        if start is None:
            ahead.clear()
        out: list[tuple[float, int]] = []
        for c in self._m2r.receiver.coming(min(until, quiet), limit, start):
            t = c[0]
            if t >= quiet:
                break
            ahead.append(c)
            if t > after:
                out.append((t, c[1]))
        return out

    def reader_handed(self, through: float) -> None:
        """The transport has handed the reader every character from :meth:`coming` that
        reaches it by ``through``: the link moves past them as it advances, and leaves them
        out of what :meth:`reader_take` returns."""
        self._handed = max(self._handed, through)

    def _catch_up(self, to: float) -> None:
        """Move the reader's UART past what the transport handed over by ``to`` in one step."""
        ahead = self._ahead
        limit = min(to, self._handed)
        n = 0
        while n < len(ahead) and ahead[n][0] <= limit:
            n += 1
        if n and self._m2r.receiver.skip(ahead[n - 1][2]):
            self._calm_until = None  # the next character to reach the reader is another one
        ahead.clear()

    # --- held transmissions (the fault action ``hold``) --------------------------------------

    def hold(self, tx: Transmit, until: float) -> None:
        """Keep ``tx`` off the line until a whole message from the reader has reached the
        meter (it then goes out, at its own time or at once if that has passed, ahead of the
        meter's answer to the message) or, at the latest, until ``until``: a late answer that
        lands after the reader's next request, however long the reader took to send it."""
        self.held.append((until, tx))

    def _release(self, t: float, why: str) -> None:
        for _, tx in self.held:
            at = max(t, tx.at)
            detail = f"hold: {tx.kind} ({len(tx.data)} bytes) due at t={tx.at:.3f} goes out ({why})"
            self._note(WireEvent(at, Wire.FAULT, detail=detail, fault="hold"))
            self._transmit(replace(tx, at=at))
        self.held.clear()

    def _held_until(self) -> float | None:
        return min(until for until, _ in self.held) if self.held else None

    # --- time -------------------------------------------------------------------------------

    def next_event(self) -> float | None:
        """When something next happens on the link, a character reaching the reader included
        (None: nothing is scheduled)."""
        if self._calm_until is None:
            self._look_ahead()
        assert self._calm_until is not None
        t = self._calm_until
        if self._to_reader:
            t = min(t, self._to_reader[0][0])
        return None if t == INF else t

    def _look_ahead(self, quiet: float | None = None) -> None:
        """Set :attr:`_quiet_until` (to ``quiet``, or from the state of the link) and
        :attr:`_calm_until`."""
        if quiet is None:
            quiet = INF
            for t in (self.meter.next_deadline(), self._r2m.next_time(), self._held_until()):
                if t is not None and t < quiet:
                    quiet = t
            if self._tx_queue and self.reader_tx_free < quiet:
                quiet = self.reader_tx_free
        m2r = self._m2r.next_time()
        self._quiet_until = quiet
        self._calm_until = quiet if m2r is None or m2r > quiet else m2r

    def advance(self, to: float) -> None:
        """Run everything that happens up to virtual time ``to``."""
        if self._ahead:
            self._catch_up(to)
        if self._calm_until is not None and to < self._calm_until:
            self.now = max(self.now, to)
            return
        if self._quiet_until is not None and to < self._quiet_until:
            # Only characters reaching the reader until then: take them, in one go.
            self._m2r.process(to)
            self.meter.advance(to)
            self.now = max(self.now, to)
            self._look_ahead(self._quiet_until)
            return
        self._materialize(to)
        while True:
            candidates = [
                t
                for t in (
                    self.meter.next_deadline(),
                    self._r2m.next_time(),
                    self._m2r.next_time(),
                    self._held_until(),
                )
                if t is not None
            ]
            nxt = min(candidates) if candidates else None
            if nxt is None or nxt > to:
                break
            self._r2m.process(nxt)
            self.meter.advance(nxt)
            self._collect_meter()
            if (held := self._held_until()) is not None and held <= nxt:
                self._release(nxt, "its time is up")
            self._m2r.process(nxt)
            self.now = max(self.now, nxt)
        self._r2m.process(to)
        self.meter.advance(to)
        self._collect_meter()
        self._m2r.process(to)
        self.now = max(self.now, to)
        self._look_ahead()

    # --- internals --------------------------------------------------------------------------

    def _meter_rx_format(self, t: float) -> LineSettings:
        return line_settings(self.meter.uart_baud(t))

    def meter_transmitting(self, t: float) -> bool:
        """Whether the meter's transmitter is busy at ``t`` (as the line carries it, faults
        included)."""
        return any(start <= t < end for start, end in self._meter_tx)

    def _deliver_to_meter(self, ch: RxChar) -> None:
        self.meter.advance(ch.t)
        self._collect_meter()
        if self.meter_transmitting(ch.t):
            # Half duplex: the meter's optical receiver is blind while it transmits.
            self._note(
                WireEvent(ch.t, Wire.METER, detail=f"0x{ch.byte:02X} while transmitting", did=Did.IGNORED)
            )
            return
        self.meter.receive(ch.t, ch.byte, ch.error)
        self._collect_meter()

    def _deliver_to_reader(self, ch: RxChar) -> None:
        value = ch.byte
        if ch.framing_error:
            value = 0x00  # what a Linux tty delivers for a framing error (no PARMRK, no IGNPAR)
        self._to_reader.append((ch.t, value))

    def _collect_meter(self) -> None:
        if self.held:  # a whole message from the reader releases them, before the meter answers it
            for e in self.meter.events[self._meter_events_seen :]:
                if e.kind is Did.RECEIVED:
                    self._release(e.t, "the reader's next message reached the meter")
                    break
        for tx in self.meter.take():
            for out in self._intercept(tx):
                self._transmit(out)
        events = self.meter.events
        while self._meter_events_seen < len(events):
            e = events[self._meter_events_seen]
            self._meter_events_seen += 1
            if e.kind is Did.FAULT:  # a fault the meter applies itself (partial blocks)
                name = e.detail.split(":", 1)[0]
                self._note(WireEvent(e.t, Wire.FAULT, detail=e.detail, fault=name))
            else:
                self._note(
                    WireEvent(e.t, Wire.METER, detail=e.detail, did=e.kind, message=e.message, error=e.error)
                )

    def forget_events(self, count: int) -> None:
        """Drop the first ``count`` wire events, and the meter's events already noted as wire
        events: for a server that has logged and recorded them and keeps no record."""
        del self.events[:count]
        del self.meter.events[: self._meter_events_seen]
        self._meter_events_seen = 0

    def _intercept(self, tx: Transmit) -> list[Transmit]:
        out = [tx]
        for hook in self.interceptors:
            out = [y for x in out for y in hook(x)]
        return out

    def _transmit(self, tx: Transmit) -> None:
        fmt = line_settings(tx.baud, 8, "N", 1) if tx.raw else line_settings(tx.baud)
        # One transmitter: a message the meter (or a fault) schedules while another is still
        # going out follows it; two transmissions never overlap on the line.
        t = max(tx.at, self._m2r.free)
        if t > tx.at:
            tx = replace(tx, at=t)
        if tx.data:
            self._meter_tx = [(a, b) for a, b in self._meter_tx if b > self.now - 5.0]
            self._meter_tx.append((t, t + len(tx.data) * fmt.char_time))
        char = fmt.bits_per_char / fmt.baud  # (each frame's end, as Frame.end computes it)
        frames = []
        bad = tx.bad_parity
        for i, b in enumerate(tx.data):
            if tx.raw:  # the parity travels in bit 7: a wrong one is a wrong bit 7
                frames.append(Frame(t, b ^ (0x80 if i in bad else 0), fmt, True))
            else:
                frames.append(Frame(t, b & 0x7F, fmt, False, bool(bad) and i in bad))
            t = t + char
        self._m2r.line.add_run(frames)
        self._note(WireEvent(tx.at, Wire.DATA, M2R, tx.data, tx.baud, tx.kind, sent=tx.kind))

    def _note(self, event: WireEvent) -> None:
        # Logged once, in time order, by whoever serves the link (Served._flush).
        if self.record:
            self.events.append(event)
