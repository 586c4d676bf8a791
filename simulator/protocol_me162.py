"""pyserial URL handler: ``serial.serial_for_url("me162://?profile=me162&speed=50")`` opens a
virtual meter inside the calling process, with no pty and no thread.

Parameters: ``profile`` (built-in name or a path), ``speed`` (time scale, default 1),
``seed`` (default 0), ``clock`` (the meter's ISO start time; default now), ``frozen`` (``1``:
registers do not move), ``parity_bit`` (``1``: the link carries 7E1 as 8N1 with the parity in
bit 7), ``scenario`` (fault scenario files, comma-separated), ``chaos`` and ``rate`` (seeded
random faults).  The port's baud rate, byte size, parity and stop bits are the reader's UART settings
and are modelled exactly: a reader at the wrong speed or format reads garbage.  ``flush()``
waits until the written bytes have left the wire, like a UART's tcdrain.

Register the handler by importing :mod:`me162.simulator` (done for you by the package).
"""

from __future__ import annotations

import time
import urllib.parse
from datetime import datetime
from typing import TYPE_CHECKING, Any

from serial.serialutil import PortNotOpenError, SerialBase, SerialException

from me162.protocol.errors import Me162Error
from me162.protocol.line import LineSettings
from me162.simulator.clock import ScaledClock
from me162.simulator.link import Link

if TYPE_CHECKING:
    from _typeshed import ReadableBuffer


def parse_url(url: str) -> dict[str, str]:
    parts = urllib.parse.urlsplit(url)
    if parts.scheme != "me162":
        raise SerialException(f"expected a URL of the form me162://?profile=NAME, not {url!r}")
    params = {k: v[-1] for k, v in urllib.parse.parse_qs(parts.query).items()}
    known = {"profile", "speed", "seed", "clock", "frozen", "parity_bit", "scenario", "chaos", "rate"}
    unknown = set(params) - known
    if unknown:
        raise SerialException(
            f"unknown option(s) {', '.join(sorted(unknown))} in {url!r}; known: {', '.join(sorted(known))}"
        )
    return params


class Serial(SerialBase):
    """A virtual meter behind the pyserial API."""

    BAUDRATES = (300, 600, 1200, 2400, 4800, 9600, 19200)

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        self.link: Link | None = None
        self.clock: ScaledClock | None = None
        self._rx = bytearray()
        super().__init__(*args, **kwargs)

    def open(self) -> None:
        if self.is_open:
            raise SerialException("port is already open")
        if self.port is None:
            raise SerialException("port must be configured before it can be used")
        params = parse_url(self.port)
        try:
            from me162 import fixtures
            from me162.simulator.session import MeterOptions, Served

            options = MeterOptions(
                params.get("profile", "me162"),
                seed=int(params.get("seed", "0")),
                speed=float(params.get("speed", "1")),
                clock_start=datetime.fromisoformat(params["clock"]) if "clock" in params else None,
                moving=params.get("frozen", "0") != "1",
                parity_bit=params.get("parity_bit", "0") == "1",
                scenarios=[fixtures.scenario(p) for p in params.get("scenario", "").split(",") if p],
                chaos=(int(params["chaos"]), float(params.get("rate", "0.1"))) if "chaos" in params else None,
            )
            if not options.speed > 0:
                raise ValueError(f"speed must be positive, not {params['speed']!r}")
            # built as every transport builds its meter: profile, faults and clock alike
            self.served = Served(options, transport="me162", reader=self._settings())
        except (Me162Error, ValueError) as e:
            raise SerialException(f"{self.port}: {e}") from None
        self.link = self.served.link
        self.clock = self.served.clock
        self.is_open = True
        self._reconfigure_port()

    def _settings(self) -> LineSettings:
        parity = {"N": "N", "E": "E", "O": "O"}.get(str(self.parity), "N")
        return LineSettings(int(self.baudrate), int(self.bytesize), parity, int(self.stopbits))  # type: ignore[arg-type]

    def _reconfigure_port(self) -> None:
        if self.link is not None and self.clock is not None:
            self.link.reader_configure(self._settings(), self.clock.now())

    def close(self) -> None:
        self.is_open = False
        self.link = None

    def _pump(self) -> None:
        if self.link is None or self.clock is None:
            raise PortNotOpenError()
        now = self.clock.now()
        for when, seconds in self.link.line_drops:
            if when <= now < when + seconds:
                raise SerialException("device disconnected (the probe was pulled off the meter)")
        self.link.advance(now)
        self._rx.extend(self.link.reader_take(now))

    @property
    def in_waiting(self) -> int:
        self._pump()
        return len(self._rx)

    def read(self, size: int = 1) -> bytes:
        self._pump()
        assert self.link is not None and self.clock is not None
        deadline = None if self.timeout is None else time.monotonic() + self.timeout
        while len(self._rx) < size:
            now = time.monotonic()
            if deadline is not None and now >= deadline:
                break
            nxt = self.link.next_event()
            wait = 0.05 if nxt is None else max(0.0, self.clock.real(nxt - self.clock.now()))
            if deadline is not None:
                wait = min(wait, deadline - now)
            time.sleep(min(wait, 0.05))
            self._pump()
        out = bytes(self._rx[:size])
        del self._rx[:size]
        return out

    def write(self, data: ReadableBuffer, /) -> int:
        if self.link is None or self.clock is None:
            raise PortNotOpenError()
        raw = bytes(data)
        self.link.reader_write(raw, self.clock.now())
        return len(raw)

    def flush(self) -> None:
        if self.link is None or self.clock is None:
            raise PortNotOpenError()
        self.clock.sleep_until(self.link.reader_tx_done)

    @property
    def out_waiting(self) -> int:
        if self.link is None or self.clock is None:
            raise PortNotOpenError()
        left = self.link.reader_tx_done - self.clock.now()
        return max(0, int(left / self.link.reader_settings.char_time + 0.999))

    def reset_input_buffer(self) -> None:
        self._pump()
        self._rx.clear()

    def reset_output_buffer(self) -> None:
        pass

    def _update_break_state(self) -> None:
        pass

    def _update_rts_state(self) -> None:
        pass

    def _update_dtr_state(self) -> None:
        pass

    @property
    def cts(self) -> bool:
        return True

    @property
    def dsr(self) -> bool:
        return True

    @property
    def ri(self) -> bool:
        return False

    @property
    def cd(self) -> bool:
        return True
