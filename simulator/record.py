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
from me162.protocol.line import MODE_C_BAUDS
from me162.simulator.clock import in_force
from me162.simulator.events import Did, Dir, Sent, Wire, WireEvent

#: fault actions that change what a transmission carries, at the speed the meter agreed
BYTE_FAULTS = frozenset(
    {"corrupt_bcc", "set_bcc", "flip", "drop", "insert", "duplicate", "noise", "truncate", "parity_error",
     "answer", "reset", "delay"}
)  # fmt: skip


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
        message was still on the wire; an option select that came
        after the meter had given up waiting for it but before the reader signed on again; a
        switch to the speed the meter agreed to that came after its answer at that speed had
        begun (and before the reader signed on again); or (a replay) anything off the recording.
        At a fast time scale a reader held back a few milliseconds by a busy machine does these,
        and so does one whose bytes a busy kernel hands to the simulator late (a pty passes a
        write on through a work queue, a speed change at once); a reader that never selects or
        never switches does not."""
        switches = self.switches()
        wrote = [w for w in self.wrote() if w.baud and w.data]
        idents = self.sent(Sent.IDENTIFICATION)
        for i, w in enumerate(wrote):
            after = wrote[i + 1] if i + 1 < len(wrote) else None
            baud = w.baud or 1
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
            if w.data[:1] == b"\x06":
                # an option select at a speed the reader had only just switched to, away from the
                # identification's: one written before the switch that reached the simulator after
                # it, or a reader that switches first (by design: as soon as before, at any scale)
                ident = next((e for e in reversed(idents) if e.t < w.t), None)
                switch = next((e for e in reversed(switches) if e.t <= w.t), None)
                took = len(w.data) * 10 / (ident.baud or 300) if ident else 0.0
                if ident and switch and w.baud != ident.baud and switch.t > ident.t and w.t - switch.t < took:
                    by = took - (w.t - switch.t)
                    return Slip(f"its option select went out at {w.baud} Bd, just after it switched", by)
        requests = [e.t for e in self.received(Kind.REQUEST, clean=False)]
        selects = self.received(Kind.OPTION_SELECT, clean=False)
        # (after the meter gave up, its framer no longer expects an option select: an ACK
        # starts what the reader meant as one)
        acks = [e for e in self.received(clean=False) if e.message and e.message.data[:1] == b"\x06"]
        # (or never read whole: an ACK that came while the meter was sending its readout)
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
        # the speed the reader listened at: its last switch, else the speed it last wrote at
        # (known only where the reader sets speeds: through a raw TCP converter it follows the meter)
        speeds = sorted([*self.reader_speeds(), *((w.t, w.baud or 0) for w in wrote)], key=lambda x: x[0])
        speeds = [(-1.0, 0), *speeds] if switches else [(-1.0, 0)]
        for f in self.faults():
            if f.fault not in BYTE_FAULTS:
                continue  # (a speed the reader cannot follow, a silence: those are the fault)
            hit = next((e for e in answers if e.t >= f.t - 1e-9), None)
            if hit is None or not hit.baud:
                continue
            listening = in_force(speeds, hit.t)
            if listening and listening != hit.baud:
                return Slip(
                    f"a fault ({f.fault}) hit a {hit.sent or 'message'} sent at {hit.baud} Bd while it listened "
                    f"at {listening} Bd",
                    None,
                )
        off = self.meter_did(Did.MISMATCH)
        if off:
            return Slip(f"it went off the recording ({off[0].detail})", None)
        return None

    def order_unknown_near(self, t: float) -> str:
        """A caveat when the simulator read bytes near ``t`` together with a settings change, so
        that the pty cannot tell whether they were written before or after it."""
        for e in self.events:
            if e.kind is Wire.ORDER_UNKNOWN and abs(e.t - t) < 0.05:
                return " (the simulator read these bytes together with a speed change: which came first is not known)"
        return ""
