"""Questions a test asks of the virtual line's record: what the reader wrote, what the meter
received (whole messages, as its receiver framed them), what the meter sent and did, when the
reader changed speed, which faults fired.

:class:`WireRecord` answers them over a list of :class:`~me162.simulator.events.WireEvent`; the
conformance suite grades with it, and the pytest fixtures hand it to a reader project's tests
(``me162_meter.record``).
"""

from __future__ import annotations

from collections.abc import Iterable

from me162.protocol.framing import Kind
from me162.simulator.events import Did, Dir, Sent, Wire, WireEvent


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

    def order_unknown_near(self, t: float) -> str:
        """A caveat when the simulator read bytes near ``t`` together with a settings change, so
        that the pty cannot tell whether they were written before or after it."""
        for e in self.events:
            if e.kind is Wire.ORDER_UNKNOWN and abs(e.t - t) < 0.05:
                return " (the simulator read these bytes together with a speed change: which came first is not known)"
        return ""
