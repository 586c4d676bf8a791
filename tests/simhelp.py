"""Drive a virtual meter through its link on virtual time: no pty, no thread, no sleep."""

from __future__ import annotations

from datetime import datetime

from me162.protocol.line import LineSettings
from me162.simulator.link import Link
from me162.simulator.meter import Meter
from me162.simulator.profile import load_profile

CLOCK = datetime(2026, 6, 21, 12, 0, 0)


class Bench:
    """A reader's view of a virtual meter, on virtual time."""

    def __init__(
        self,
        profile: str = "me162",
        *,
        seed: int = 1,
        moving: bool = False,
        parity_bit: bool = False,
        scenarios: list[str] | None = None,
        chaos: tuple[int, float] | None = None,
    ) -> None:
        from me162.simulator.faults import attach, load_scenario

        self.meter = Meter(load_profile(profile), seed=seed, clock_start=CLOCK, moving=moving)
        self.link = Link(self.meter, parity_bit=parity_bit)
        self.faults = attach(self.link, [load_scenario(s) for s in scenarios or []], chaos=chaos)
        self.t = 0.0

    def send(self, data: bytes, *, gap: float = 0.0) -> float:
        """Write at now+gap; returns when the bytes have left the wire (and moves now there)."""
        self.t += gap
        self.t = self.link.reader_write(data, self.t)
        return self.t

    def baud(self, baud: int, *, at: float | None = None) -> None:
        if at is not None:
            self.t = at
        self.link.reader_configure(self.link.reader_settings.with_baud(baud), self.t)

    def configure(self, settings: LineSettings) -> None:
        self.link.reader_configure(settings, self.t)

    def wait(self, seconds: float) -> bytes:
        self.t += seconds
        self.link.advance(self.t)
        return self.link.reader_take(self.t)

    def read_until(self, end: bytes, limit: float = 30.0, extra: int = 0) -> bytes:
        """Bytes up to and including ``end`` (+``extra`` bytes), advancing time as needed."""
        buf = bytearray()
        stop = self.t + limit
        while self.t < stop:
            nxt = self.link.next_event()
            step = 0.01 if nxt is None else max(1e-6, min(nxt - self.t, 0.5))
            buf += self.wait(step)
            i = buf.find(end)
            if i >= 0 and len(buf) >= i + len(end) + extra:
                self.pending = bytes(buf[i + len(end) + extra :])
                return bytes(buf[: i + len(end) + extra])
        return bytes(buf)

    def sign_on(self, request: bytes = b"/?!\r\n") -> bytes:
        self.send(request)
        return self.read_until(b"\r\n", limit=3.0)

    def meter_events(self, kind: str) -> list[str]:
        return [e.detail for e in self.meter.events if e.kind == kind]


def drive(session: object, link: Link, *, start: float | None = None, limit: float = 600.0) -> object:
    """Run a reader session against a link on virtual time; returns the session's outcome
    (or raises the session's ReaderError)."""
    from me162.reader.session import ReaderSession
    from me162.reader.soak import SessionHang, run_on_link

    assert isinstance(session, ReaderSession)
    try:
        return run_on_link(session, link, start=start, limit=limit)
    except SessionHang as e:
        raise AssertionError(f"session ran past the time limit: {e}") from None
