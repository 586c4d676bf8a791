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

from me162.protocol.capture import CaptureWriter, new_header
from me162.protocol.line import LineSettings
from me162.simulator.clock import ScaledClock
from me162.simulator.events import Wire, WireEvent
from me162.simulator.link import Link
from me162.simulator.meter import Meter, MeterLike
from me162.simulator.profile import Profile, load_profile

log = logging.getLogger(__name__)

#: notes logged only with --verbose
QUIET_NOTES = {Wire.ORDER_UNKNOWN}


@dataclass
class MeterOptions:
    """How to build a virtual meter (the CLI's and the URL handler's options)."""

    profile: str | Path = "me162"
    seed: int = 0
    speed: float = 1.0
    clock_start: datetime | None = None
    moving: bool = True
    parity_bit: bool = False
    record: Path | None = None  #: folder to write a capture of every session into
    replay: Path | None = None  #: serve the meter side of this capture instead of a profile
    loop: bool = False  #: replay: after the last recorded session, serve the first again
    scenarios: list[Path] = field(default_factory=list)  #: fault scenario files
    chaos: tuple[int, float] | None = None  #: (seed, rate): random faults from the catalogue
    interceptors: list[Callable[..., object]] = field(default_factory=list)
    #: keep every wire and meter event in memory (``link.events``: grading and queries read
    #: them); False for a server that only logs and records them (me162-sim), which drops
    #: each once logged and recorded, so that days of sessions do not pile up in memory
    keep_events: bool = True

    def load(self) -> Profile:
        return load_profile(self.profile)


class Recorder:
    """Writes every session a meter serves as a capture (format v1) into a folder.

    A session runs from the reader opening the port (or connecting) to it closing it.  Events
    are written in time order once their time has come, each line flushed.
    """

    def __init__(self, folder: Path, served: Served) -> None:
        self.folder = folder
        self.served = served
        self.writer: CaptureWriter | None = None
        self.count = 0
        self.t0 = 0.0
        self.paths: list[Path] = []

    def begin(self, t: float) -> None:
        self.end()
        self.count += 1
        self.folder.mkdir(parents=True, exist_ok=True)
        stamp = datetime.now().strftime("%Y%m%dT%H%M%S")
        path = self.folder / f"{self.served.name.replace('#', '-')}-{stamp}-{self.count}.capture.jsonl"
        prof = self.served.meter.profile
        header = new_header(
            origin="emulated",
            meter={"make": "virtual", "model": prof.name, "ident": prof.identification.raw},
            link={"recorder": "me162-sim", "transport": self.served.transport},
            start=datetime.now().isoformat(timespec="milliseconds"),
            timing="recorded",
            provenance={
                "notes": f"virtual meter, profile {prof.name}, seed {self.served.options.seed}"
                + (f", replaying {self.served.options.replay}" if self.served.options.replay else "")
            },
        )
        self.writer = CaptureWriter(path, header)
        self.paths.append(path)
        self.t0 = t

    def write(self, e: WireEvent) -> None:
        if self.writer is None:
            return
        t = max(0.0, e.t - self.t0)
        if e.kind is Wire.DATA:
            self.writer.data(
                t, e.dir or "m2r", e.data, baud=e.baud, **({"kind": e.detail} if e.detail else {})
            )
        elif e.kind is Wire.SETTINGS:
            self.writer.event(t, "settings", side="reader", baud=e.baud or 0, detail=e.detail)
        elif e.kind in (Wire.OPEN, Wire.CLOSE):
            self.writer.event(t, str(e.kind), side="reader", detail=e.detail)
        elif e.kind is Wire.FAULT:
            self.writer.event(t, "fault", name=e.fault, detail=e.detail)
        elif e.kind is Wire.METER:
            self.writer.note(t, f"meter: {e.did}: {e.detail}")
        else:
            self.writer.note(t, f"{e.kind}: {e.detail}")

    def end(self) -> None:
        if self.writer is not None:
            self.writer.close()
            self.writer = None


class Served:
    """One meter served over some transport, in scaled real time."""

    MAX_SLEEP = 0.05  # wall-clock seconds between checks when nothing is scheduled

    def __init__(
        self,
        options: MeterOptions,
        *,
        index: int = 0,
        clock: ScaledClock | None = None,
        transport: str = "pty",
        meter: MeterLike | None = None,
        reader: LineSettings | None = None,
    ) -> None:
        self.options = options
        self.transport = transport
        if meter is None and options.replay is not None:
            from me162.simulator.replay import ReplayMeter

            meter = ReplayMeter.from_file(options.replay, loop=options.loop, speed=options.speed)
        if meter is None:
            meter = Meter(
                options.load(),
                seed=options.seed + index,
                clock_start=options.clock_start,
                moving=options.moving,
            )
        profile = meter.profile
        self.meter: MeterLike = meter
        self.clock = clock or ScaledClock(options.speed)
        # ``reader``: the reader's UART from the start (a port opened with its settings given)
        self.link = Link(self.meter, parity_bit=options.parity_bit, reader=reader)
        self.attach_faults()
        self.name = f"{profile.name}#{index}"
        self._logged = 0
        self._pending: list[WireEvent] = []
        self.observed_at: float | None = None  #: when what a transport is taking happened
        self.recorder = Recorder(options.record, self) if options.record is not None else None

    def attach_faults(self) -> None:
        """(Re)attach the options' scenarios and chaos to the current link."""
        from me162.simulator.faults import attach, load_scenario

        scenarios = [load_scenario(p) for p in self.options.scenarios]
        self.faults = attach(self.link, scenarios, chaos=self.options.chaos)

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
        self.link.reader_write(data, self._when(at))

    def reader_configured(self, settings: LineSettings, at: float | None = None) -> None:
        self.link.reader_configure(settings, self._when(at))

    def _when(self, at: float | None) -> float:
        if at is not None:
            return at
        return self.observed_at if self.observed_at is not None else self.now()

    def woke(self, looked_at: float, late: float) -> None:
        """A transport woke up and is about to take what the reader did: that happened ``late``
        real seconds ago (its thread's wait for a CPU, :mod:`me162.simulator.lateness`), but not
        before ``looked_at`` (its last look found nothing) nor before what the link has processed.
        Until :meth:`done`, what the reader wrote or set is dated then."""
        self.observed_at = max(looked_at, self.link.now, self.now() - late * self.clock.speed)

    def done(self) -> None:
        self.observed_at = None

    def note(self, kind: Wire, detail: str) -> None:
        t = self.now()
        self.link.advance(t)
        self._log_events()
        if kind is Wire.OPEN and self.recorder is not None:
            self.recorder.begin(t)
        self.link.events.append(WireEvent(t, kind, detail=detail))
        self._log_events()
        if kind is Wire.CLOSE:
            self._flush(float("inf"))
            if self.recorder is not None:
                self.recorder.end()
        log.log(logging.DEBUG if kind in QUIET_NOTES else logging.INFO, "%s: %s", self.name, detail)

    def _log_events(self) -> None:
        events = self.link.events
        if self._logged == len(events) and not self._pending:  # (most looks: nothing new)
            return
        while self._logged < len(events):
            self._pending.append(events[self._logged])
            self._logged += 1
        if not self.options.keep_events:
            self.link.forget_events(self._logged)
            self._logged = 0
        self._flush(self.link.now)

    def _flush(self, until: float) -> None:
        """Log and record the events whose time has come, in time order."""
        ready = sorted((e for e in self._pending if e.t <= until), key=lambda e: e.t)
        self._pending = [e for e in self._pending if e.t > until]
        for e in ready:
            if e.kind is Wire.DATA:
                log.debug("%s %9.3f %s %5s %s", self.name, e.t, e.dir, e.baud, e.data.hex(" "))
            elif e.kind in (Wire.METER, Wire.SETTINGS, Wire.FAULT):
                log.debug("%s %9.3f %s %s", self.name, e.t, e.kind, e.detail)
            if self.recorder is not None:
                self.recorder.write(e)

    def close(self) -> None:
        self._flush(float("inf"))
        if self.recorder is not None:
            self.recorder.end()
