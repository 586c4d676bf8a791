"""Questions a test asks of the virtual line's record: what the reader wrote, what the meter
received (whole messages, as its receiver framed them), what the meter sent and did, when the
reader changed speed, which faults fired.

:class:`WireRecord` answers them over a list of :class:`~me162.simulator.events.WireEvent`; the
conformance suite grades with it, and the pytest fixtures hand it to a reader project's tests
(``me162_meter.record``).
"""

from __future__ import annotations

from collections.abc import Iterable
from typing import NamedTuple

from me162.protocol.framing import Kind
from me162.protocol.line import INITIAL_BAUD, MODE_C_BAUDS
from me162.simulator.clock import in_force
from me162.simulator.events import Did, Dir, Sent, Wire, WireEvent


class Slip(NamedTuple):
    """Something a reader did just outside its window (:meth:`WireRecord.slipped`)."""

    what: str
    by: float | None  #: protocol seconds outside the window, where its edge gives a measure


class WireRecord:
    """Typed queries over ``self.events`` (every answer in time order)."""

    events: list[WireEvent]

    def _sorted(self, events: Iterable[WireEvent]) -> list[WireEvent]:
        return sorted(events, key=lambda e: e.t)

    def data(self, direction: Dir) -> list[WireEvent]:
        return self._sorted(e for e in self.events if e.kind is Wire.DATA and e.dir is direction)

    def wrote(self) -> list[WireEvent]:
        """What the reader wrote, as it wrote it (7E1, or 8-bit bytes with the parity bit)."""
        return self.data(Dir.R2M)

    def sent(self, *kinds: Sent) -> list[WireEvent]:
        """What the meter sent (of these kinds, or all), in time order."""
        return [e for e in self.data(Dir.M2R) if not kinds or e.sent in kinds]

    def received(self, kind: Kind | None = None, *, clean: bool = True) -> list[WireEvent]:
        """The whole messages the meter read from the reader (of one framing kind), in time order;
        ``clean``: only those with no parity or framing error in any character."""
        return self._sorted(
            e
            for e in self.events
            if e.did is Did.RECEIVED
            and e.message is not None
            and (kind is None or e.message.kind is kind)
            and not (clean and e.error)
        )

    def meter_did(self, did: Did) -> list[WireEvent]:
        """What the meter did of this kind, in time order."""
        return self._sorted(e for e in self.events if e.kind is Wire.METER and e.did is did)

    def faults(self) -> list[WireEvent]:
        return self._sorted(e for e in self.events if e.kind is Wire.FAULT)

    def switches(self) -> list[WireEvent]:
        """The reader's speed changes, in time order."""
        return self._sorted(e for e in self.events if e.kind is Wire.SETTINGS)

    def port_reports(self) -> list[str]:
        """How the reader set its port, as the pty saw it."""
        return [e.detail for e in self._sorted(e for e in self.events if e.kind is Wire.PORT)]

    def reader_speeds(self) -> list[tuple[float, int]]:
        """(time, baud) of every speed the reader set, in order."""
        return [(e.t, e.baud or 0) for e in self.switches()]

    def commands(self, name: str | None = None) -> list[WireEvent]:
        """The commands the meter read whole (of one name, e.g. ``R1`` or ``B0``), in order."""
        return [
            e
            for e in self.received(Kind.COMMAND)
            if e.message is not None and (name is None or e.message.name == name)
        ]

    def ended_with_b0(self) -> bool:
        """Whether the last command the meter read was a B0."""
        cmds = self.commands()
        return bool(cmds) and cmds[-1].message is not None and cmds[-1].message.is_break

    def slipped(self) -> Slip | None:
        """What the reader did just outside a window, if anything: a speed switch while its own
        message was still on the wire, or one message at two speeds, or an option select at a
        speed it had only just switched to; an option select after the meter had given up
        waiting for it; a switch to the agreed speed after the meter began to answer; a fault
        spent on a transmission the reader was not listening at; (a replay) anything off the
        recording.  At a fast time scale a reader held back a few milliseconds by a busy machine
        does these, and so does one whose bytes a busy kernel hands to the simulator late (a pty
        passes a write on through a work queue, a speed change at once); a reader that never
        selects or never switches does not."""
        wrote = [w for w in self.wrote() if w.baud and w.data]
        off = self.meter_did(Did.MISMATCH)
        return (
            self._slipped_writing(wrote)
            or self._slipped_select(wrote)
            or self._slipped_switch()
            or self._slipped_fault(wrote)
            or (Slip(f"it went off the recording ({off[0].detail})", None) if off else None)
        )

    def _slipped_writing(self, wrote: list[WireEvent]) -> Slip | None:
        switches = self.switches()
        idents = self.sent(Sent.IDENTIFICATION)
        for i, w in enumerate(wrote):
            after = wrote[i + 1] if i + 1 < len(wrote) else None
            baud = w.baud or INITIAL_BAUD
            end = w.t + len(w.data) * 10 / baud
            early = next((e for e in switches if w.t < e.t < end), None)
            if early is not None:
                by = end - early.t
                return Slip(
                    f"it switched to {early.baud} Bd {by:.3f} s before its message had left the wire", by
                )
            if after is not None and after.baud != w.baud and after.t - end < 10 / baud:
                # one message cut in two by a switch (its end reached the simulator late)
                by = len(after.data) * 10 / baud
                return Slip(f"its message went out partly at {w.baud} Bd and partly at {after.baud} Bd", by)
            ident = next((e for e in reversed(idents) if e.t < w.t), None)
            switch = next((e for e in reversed(switches) if e.t <= w.t), None)
            if w.data[:1] == b"\x06" and ident is not None and switch is not None and switch.t > ident.t:
                # an option select at a speed the reader had only just switched to, away from the
                # identification's: one written before the switch that reached the simulator after
                # it, or a reader that switches first (by design: as soon as before, at any scale)
                took = len(w.data) * 10 / (ident.baud or INITIAL_BAUD)
                if w.baud != ident.baud and w.t - switch.t < took:
                    by = took - (w.t - switch.t)
                    return Slip(f"its option select went out at {w.baud} Bd, just after it switched", by)
        return None

    def _slipped_select(self, wrote: list[WireEvent]) -> Slip | None:
        requests = [e.t for e in self.received(Kind.REQUEST, clean=False)]
        # an ACK the meter read (no longer framed as an option select once it gave up), or one
        # it never read whole (it came while the meter was sending its readout)
        acks = [e for e in self.received(clean=False) if e.message and e.message.data[:1] == b"\x06"]
        acks += [e for e in wrote if e.data[:1] in (b"\x06", b"\x86")]
        faults = [e.t for e in self.faults()]
        for fb in self.meter_did(Did.FALLBACK):
            signed = max((t for t in requests if t < fb.t), default=0.0)
            if any(signed <= t <= fb.t for t in faults):
                continue  # the meter's own fault may have cut its wait short
            resigned = min((t for t in requests if t > fb.t), default=float("inf"))
            late = [e for e in acks if fb.t < e.t < resigned]
            if late:
                by = late[0].t - fb.t
                return Slip(f"its option select came {by:.3f} s after the meter gave up waiting for it", by)
        return None

    def _slipped_switch(self) -> Slip | None:
        requests = [e.t for e in self.received(Kind.REQUEST, clean=False)]
        selects = self.received(Kind.OPTION_SELECT, clean=False)
        switches = self.switches()
        answers = self.data(Dir.M2R)
        for opt in self.meter_did(Did.OPTION):
            select = next((e.message for e in reversed(selects) if e.t <= opt.t and e.message), None)
            asked = MODE_C_BAUDS.get(chr(select.data[2])) if select and len(select.data) > 2 else None
            answer = next((e for e in answers if e.t >= opt.t), None)
            if asked is None or answer is None:
                continue
            # (whatever speed the answer came at, a fault's or the agreed one: the reader was to be
            # at the agreed speed before it began, and what it heard depends on that)
            resigned = min((t for t in requests if t > opt.t), default=float("inf"))
            first = next((e for e in switches if e.t > opt.t - 1.0 and e.baud == asked), None)
            if first is not None and answer.t < first.t < resigned:
                by = first.t - answer.t
                return Slip(f"it switched to {asked} Bd {by:.3f} s after the meter's answer began", by)
        return None

    def _slipped_fault(self, wrote: list[WireEvent]) -> Slip | None:
        if not self.switches():
            return None  # (the reader sets no speeds: through a raw TCP converter it follows the meter)
        from me162.simulator.faults import BYTE_FAULTS

        # the speed the reader listened at: its last switch, else the speed it last wrote at
        speeds = sorted([*self.reader_speeds(), *((w.t, w.baud or 0) for w in wrote)], key=lambda x: x[0])
        answers = self.data(Dir.M2R)
        for f in self.faults():
            if f.fault not in BYTE_FAULTS:
                continue  # (a speed the reader cannot follow, a silence: those are the fault)
            hit = next((e for e in answers if e.t >= f.t - 1e-9), None)
            if hit is None or not hit.baud:
                continue
            listening = in_force([(-1.0, 0), *speeds], hit.t)
            if listening and listening != hit.baud:
                return Slip(
                    f"a fault ({f.fault}) hit a {hit.sent or 'message'} sent at {hit.baud} Bd while it listened "
                    f"at {listening} Bd",
                    None,
                )
        return None

    def order_unknown_near(self, t: float) -> str:
        """A caveat when the simulator read bytes near ``t`` together with a settings change, so
        that the pty cannot tell whether they were written before or after it."""
        for e in self.events:
            if e.kind is Wire.ORDER_UNKNOWN and abs(e.t - t) < 0.05:
                return " (the simulator read these bytes together with a speed change: which came first is not known)"
        return ""
