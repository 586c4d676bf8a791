"""Virtual time for transports: the link runs on seconds of protocol time, which a
:class:`ScaledClock` maps onto the wall clock ``speed`` times faster (``--speed N``)."""

from __future__ import annotations

import time
from typing import TypeVar

T = TypeVar("T")


def in_force(history: list[tuple[float, T]], t: float) -> T:
    """The value of a time-ordered ``[(since, value), ...]`` history at time ``t`` (the first
    entry before it begins).  A nanosecond of tolerance keeps float noise from putting a byte
    on the wrong side of a speed switch.

    The last entry in list order that has begun, found from the end: a transport asks about
    the present, so this costs one or two steps however long the history grows."""
    limit = t + 1e-9
    for when, v in reversed(history):
        if when <= limit:
            return v
    return history[0][1]


class ScaledClock:
    def __init__(self, speed: float = 1.0) -> None:
        if speed <= 0:
            raise ValueError("speed must be positive")
        self.speed = speed
        self._t0 = time.monotonic()

    def now(self) -> float:
        """Virtual seconds since the clock started."""
        return (time.monotonic() - self._t0) * self.speed

    def real(self, virtual_seconds: float) -> float:
        """Wall-clock seconds that ``virtual_seconds`` take."""
        return virtual_seconds / self.speed

    def at(self, virtual_t: float) -> float:
        """The ``time.monotonic()`` reading at which virtual time ``virtual_t`` comes."""
        return self._t0 + virtual_t / self.speed

    def at_many(self, virtual_times: list[float]) -> list[float]:
        """:meth:`at` of each (a readout's characters at once)."""
        t0, speed = self._t0, self.speed
        return [t0 + t / speed for t in virtual_times]

    def sleep_until(self, virtual_t: float) -> None:
        delay = self.real(virtual_t - self.now())
        if delay > 0:
            time.sleep(delay)
