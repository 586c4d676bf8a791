"""Registers that move like a real installation's.

A household load and a solar array behind one import/export meter: the net power at a given
time comes from a seeded load curve (base load, morning and evening peaks, appliance bursts)
minus a seeded solar curve (daylight bell, clouds); positive net power is imported, negative
exported.  Energy registers integrate it minute by minute on the meter's clock, into the
tariff the schedule gives, so totals stay consistent (1.8.0 = 1.8.1 + 1.8.2 + ...) and two
reads a minute apart differ the way real ones do.  Everything is a pure function of the
seed, the start values and the clock: the same seed gives the same readings.
"""

from __future__ import annotations

import math
import random
from dataclasses import dataclass, field
from datetime import datetime, timedelta

STEP = 60.0  # seconds per integration step


@dataclass
class Installation:
    """What the meter measures: load and solar sizes (kW) and a seed."""

    seed: int = 162
    base_load_kw: float = 0.25
    peak_load_kw: float = 1.8
    solar_peak_kw: float = 3.0


def _unit_noise(seed: int, *key: int) -> float:
    """A deterministic number in [0, 1) for (seed, key...)."""
    value: float = random.Random(hash((seed, *key)) & 0xFFFFFFFF).random()
    return value


def net_power_kw(inst: Installation, when: datetime) -> float:
    """Net power (import positive) at ``when`` on the meter's clock."""
    h = when.hour + when.minute / 60 + when.second / 3600
    minute_index = int(when.timestamp() // 60)
    load = inst.base_load_kw
    load += inst.peak_load_kw * 0.6 * math.exp(-(((h - 7.5) / 1.0) ** 2))
    load += inst.peak_load_kw * math.exp(-(((h - 19.0) / 1.6) ** 2))
    burst = _unit_noise(inst.seed, 1, minute_index // 5)
    if burst > 0.8:  # a kettle, an oven, a washing machine
        load += (burst - 0.8) * 10 * inst.peak_load_kw
    load *= 0.85 + 0.3 * _unit_noise(inst.seed, 2, minute_index)
    day_of_year = when.timetuple().tm_yday
    season = 0.55 + 0.45 * math.cos(2 * math.pi * (day_of_year - 172) / 365)
    daylight = max(0.0, math.sin(math.pi * (h - 6.0) / 14.0)) if 6.0 <= h <= 20.0 else 0.0
    clouds = 0.3 + 0.7 * _unit_noise(inst.seed, 3, minute_index // 10)
    solar = inst.solar_peak_kw * season * math.pow(daylight, 1.5) * clouds
    return load - solar


@dataclass
class TariffSchedule:
    """Which tariff register (1, 2, ...) counts at a time of day: ``[(start_hour, tariff)]``."""

    spans: list[tuple[float, int]] = field(default_factory=lambda: [(0.0, 2)])

    def tariff_at(self, when: datetime) -> int:
        h = when.hour + when.minute / 60
        current = self.spans[-1][1]
        for start, tariff in self.spans:
            if h >= start:
                current = tariff
        return current


class RegisterModel:
    """Energy counters (kWh) per direction and tariff, advanced on the meter's clock."""

    def __init__(
        self,
        start: datetime,
        *,
        import_kwh: dict[int, float] | None = None,
        export_kwh: dict[int, float] | None = None,
        installation: Installation | None = None,
        schedule: TariffSchedule | None = None,
        moving: bool = True,
    ) -> None:
        self.installation = installation or Installation()
        self.schedule = schedule or TariffSchedule()
        self.imports: dict[int, float] = dict(import_kwh or {1: 0.0, 2: 0.0})
        self.exports: dict[int, float] = dict(export_kwh or {1: 0.0, 2: 0.0})
        self.start = start
        self.now = start
        self.moving = moving
        self._last_power = net_power_kw(self.installation, start)

    def set_energy(self, direction: str, tariff: int, kwh: float) -> None:
        """Set a tariff register (tests use this to reproduce a capture's values)."""
        (self.imports if direction == "import" else self.exports)[tariff] = kwh

    def advance_to(self, when: datetime) -> None:
        """Integrate the net power from the last update to ``when`` (never backwards)."""
        if when <= self.now or not self.moving:
            self.now = max(self.now, when)
            return
        t = self.now
        while t < when:
            step_end = min(when, t + timedelta(seconds=STEP - t.timestamp() % STEP))
            dt_h = (step_end - t).total_seconds() / 3600
            p = net_power_kw(self.installation, t)
            tariff = self.schedule.tariff_at(t)
            if p >= 0:
                self.imports[tariff] = self.imports.get(tariff, 0.0) + p * dt_h
            else:
                self.exports[tariff] = self.exports.get(tariff, 0.0) - p * dt_h
            self._last_power = p
            t = step_end
        self.now = when

    @property
    def power_kw(self) -> float:
        return self._last_power

    def energy(self, direction: str, tariff: int = 0) -> float:
        """kWh of ``direction`` ("import"/"export"/"absolute"), tariff 0 = total."""
        if direction == "absolute":
            return self.energy("import", tariff) + self.energy("export", tariff)
        regs = self.imports if direction == "import" else self.exports
        if tariff == 0:
            return sum(regs.values())
        return regs.get(tariff, 0.0)
