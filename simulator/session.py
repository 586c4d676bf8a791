"""What every transport shares: a meter, its link and a clock, driven in real time.

A transport feeds what the reader did into :class:`Served` and writes back what
:meth:`Served.due` returns; :meth:`Served.wake_in` says how long it may sleep.
"""

from __future__ import annotations

import logging
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import datetime
from pathlib import Path

from me162.protocol.line import LineSettings
from me162.simulator.clock import ScaledClock
from me162.simulator.link import Link, WireEvent
from me162.simulator.meter import Meter
from me162.simulator.profile import Profile, load_profile

log = logging.getLogger(__name__)


@dataclass
class MeterOptions:
    """How to build a virtual meter (the CLI's and the URL handler's options)."""

    profile: str | Path = "me162"
    seed: int = 0
    speed: float = 1.0
    clock_start: datetime | None = None
    moving: bool = True
    parity_bit: bool = False
    interceptors: list[Callable[..., object]] = field(default_factory=list)

    def load(self) -> Profile:
        return load_profile(self.profile)


class Served:
    """One meter served over some transport, in scaled real time."""

    MAX_SLEEP = 0.05  # wall-clock seconds between checks when nothing is scheduled

    def __init__(self, options: MeterOptions, *, index: int = 0, clock: ScaledClock | None = None) -> None:
        self.options = options
        profile = options.load()
        self.meter = Meter(
            profile, seed=options.seed + index, clock_start=options.clock_start, moving=options.moving
        )
        self.clock = clock or ScaledClock(options.speed)
        self.link = Link(self.meter, parity_bit=options.parity_bit)
        self.name = f"{profile.name}#{index}"
        self._logged = 0

    def now(self) -> float:
        return self.clock.now()

    def due(self) -> bytes:
        """Advance to now and return the bytes that have reached the reader since last time."""
        t = self.now()
        self.link.advance(t)
        self._log_events()
        return self.link.reader_take(t)

    def wake_in(self) -> float:
        """Wall-clock seconds until something is due (capped)."""
        nxt = self.link.next_event()
        if nxt is None:
            return self.MAX_SLEEP
        return max(0.0, min(self.MAX_SLEEP, self.clock.real(nxt - self.now())))

    def reader_wrote(self, data: bytes, at: float | None = None) -> None:
        self.link.reader_write(data, self.now() if at is None else at)

    def reader_configured(self, settings: LineSettings) -> None:
        self.link.reader_configure(settings, self.now())

    def note(self, kind: str, detail: str) -> None:
        self.link.events.append(WireEvent(self.now(), kind, detail=detail))
        log.info("%s: %s", self.name, detail)

    def _log_events(self) -> None:
        events = self.link.events
        while self._logged < len(events):
            e = events[self._logged]
            self._logged += 1
            if e.kind == "data":
                log.debug("%s %9.3f %s %5s %s", self.name, e.t, e.dir, e.baud, e.data.hex(" "))
            elif e.kind in ("meter", "settings"):
                log.debug("%s %9.3f %s %s", self.name, e.t, e.kind, e.detail)
