"""Run a :class:`~me162.reader.session.ReaderSession` over a pyserial port.

Any pyserial URL works: ``/dev/ttyUSB0``, ``socket://host:port``, ``rfc2217://host:port``
and the virtual meter's ``me162://?profile=me162``.  The port is opened once at 300 Bd 7E1
in raw mode and never re-opened; speed changes are made on the open port.
"""

from __future__ import annotations

import logging
import sys
import termios
import time
from collections.abc import Callable
from dataclasses import dataclass, replace
from datetime import datetime
from pathlib import Path
from typing import TextIO

import serial

# me162:// opens the built-in virtual meter: pyserial finds its handler in this package when
# such a URL is opened (the simulator is not imported before that).
if "me162.simulator" not in serial.protocol_handler_packages:
    serial.protocol_handler_packages.append("me162.simulator")
from me162.protocol.capture import CaptureWriter, new_header
from me162.protocol.errors import Me162Error, ParityError
from me162.protocol.frames import Command
from me162.protocol.line import T_R_MAX, add_parity, check_and_strip_parity, even_parity_bit
from me162.reader.session import (
    Event,
    ReaderConfig,
    ReaderError,
    ReaderSession,
    Send,
    SessionResult,
    SetSpeed,
    State,
    Wait,
)

log = logging.getLogger(__name__)
wire = logging.getLogger("me162.wire")


POLL = 0.005  #: seconds one read may block; the session's deadlines are checked between reads
SWITCH_MARGIN = 0.002  #: real seconds added before a speed switch, after the bytes' wire time


class PortError(Me162Error):
    """The port cannot be opened or went away."""


@dataclass
class PortOptions:
    url: str
    parity_in_software: bool = False
    time_scale: float = 1.0


def open_port(opts: PortOptions) -> serial.SerialBase:
    """Open at 300 Bd, 7E1 (or 8N1 when the parity is done in software), raw mode."""
    url = opts.url
    if url.startswith("me162://") and "speed=" not in url and opts.time_scale != 1.0:
        url += ("&" if "?" in url else "?") + f"speed={opts.time_scale}"
    bits, parity = (
        (serial.EIGHTBITS, serial.PARITY_NONE)
        if opts.parity_in_software
        else (serial.SEVENBITS, serial.PARITY_EVEN)
    )
    try:
        port = serial.serial_for_url(
            url, baudrate=300, bytesize=bits, parity=parity, stopbits=1, timeout=POLL, do_not_open=True
        )
        port.xonxoff = False
        port.rtscts = False
        port.open()
    except (serial.SerialException, OSError, ValueError, termios.error) as e:
        raise PortError(f"cannot open {opts.url}: {e}") from None
    return port


class Driver:
    """Blocking reader over one open port."""

    def __init__(
        self,
        port: serial.SerialBase,
        opts: PortOptions,
        *,
        progress: Callable[[int, float], None] | None = None,
        record: CaptureWriter | None = None,
    ) -> None:
        self.port = port
        self.opts = opts
        self.progress = progress
        self.record = record
        self.t0 = time.monotonic()

    def now(self) -> float:
        """Protocol seconds since the driver started: a virtual meter run ``time_scale`` times
        faster than real time is read on its own clock, so the session's arithmetic stays in
        protocol seconds."""
        return (time.monotonic() - self.t0) * self.opts.time_scale

    def _real(self, protocol_seconds: float) -> float:
        return protocol_seconds / self.opts.time_scale

    def run(self, config: ReaderConfig) -> SessionResult:
        session = ReaderSession(config)
        self.session = session
        try:
            self._set_baud(300)
            self.port.reset_input_buffer()  # type: ignore[attr-defined]
        except (serial.SerialException, OSError, termios.error) as e:
            raise PortError(f"{self.opts.url}: {e}") from None
        try:
            return self._drive(session)
        except KeyboardInterrupt:
            self._abandon(session)
            raise

    def _abandon(self, session: ReaderSession) -> None:
        """Stopped in the middle (Ctrl-C, SIGTERM): a meter left in programming mode stays deaf
        for up to a minute, so send B0 at the session's speed and let it leave the wire."""
        if session.state not in (State.OPERAND, State.PASSWORD, State.COMMANDS, State.SIGN_OFF):
            return
        b0 = Command.break_().to_bytes()
        try:
            # Half duplex: a B0 sent while the meter prepares or sends an answer is not heard.
            # Wait for a silence as long as the meter's longest reaction time (bounded), then send.
            quiet_until = self.now() + T_R_MAX
            give_up = self.now() + 2 * T_R_MAX
            while self.now() < min(quiet_until, give_up):
                if self.port.read(max(1, self.port.in_waiting)):  # type: ignore[attr-defined]
                    quiet_until = self.now() + T_R_MAX
            self.port.write(add_parity(b0) if self.opts.parity_in_software else b0)
            time.sleep(self._real(len(b0) * 10 / session.baud) + SWITCH_MARGIN)
        except (serial.SerialException, OSError, termios.error) as e:
            log.warning("could not send B0 while stopping: %s", e)
            return
        wire.debug("%9.3f >> %5d %s (stopping)", self.now(), session.baud, b0.hex(" "))
        if self.record is not None:
            self.record.data(self.now(), "r2m", b0, baud=session.baud)

    def _drive(self, session: ReaderSession) -> SessionResult:
        action = session.start(self.now())
        readout_started: float | None = None
        while True:
            data = b""
            try:
                if isinstance(action, Send):
                    out = add_parity(action.data) if self.opts.parity_in_software else action.data
                    shown = redact(action.data)
                    wire.debug("%9.3f >> %5d %s", self.now(), session.baud, shown.hex(" "))
                    if self.record is not None:
                        extra = {"redacted": True} if shown != action.data else {}
                        self.record.data(self.now(), "r2m", shown, baud=session.baud, **extra)
                    self.port.write(out)
                elif isinstance(action, SetSpeed):
                    # SWITCH_MARGIN: the driver (a pty, a USB adapter) needs a moment to hand the
                    # last bytes over before the speed changes under them.
                    delay = self._real(action.not_before - self.now()) + SWITCH_MARGIN
                    if delay > 0:
                        time.sleep(delay)
                    self._set_baud(action.baud)
                    wire.debug("%9.3f -- speed %d", self.now(), action.baud)
                    if self.record is not None:
                        self.record.event(self.now(), "settings", side="reader", baud=action.baud)
                elif isinstance(action, Wait):
                    data = self._read_until(action.until)
                    if data:
                        wire.debug("%9.3f << %5d %s", self.now(), session.baud, data.hex(" "))
                        if self.record is not None:
                            self.record.data(self.now(), "m2r", data, baud=session.baud)
            except (serial.SerialException, OSError, termios.error) as e:
                raise PortError(f"{self.opts.url}: {e}") from None
            if self.progress is not None and session.state is State.READOUT:
                readout_started = readout_started or self.now()
                self.progress(session.progress, self.now() - readout_started)
            next_action = session.feed(Event(data, self.now()))
            if next_action is None:
                break
            action = next_action
        assert session.outcome is not None
        return session.outcome

    def _set_baud(self, baud: int) -> None:
        if self.port.baudrate != baud:  # glibc rejects an unchanged 7E1 tcsetattr on some ports
            self.port.baudrate = baud

    def _read_until(self, until: float) -> bytes:
        # The port keeps the short timeout it was opened with: changing pyserial's timeout
        # re-applies the termios settings, which a pty refuses with EINVAL when nothing changed.
        while True:
            waiting = self.port.in_waiting  # type: ignore[attr-defined]
            raw = self.port.read(max(1, waiting))
            if raw or self.now() >= until:
                break
        if self.opts.parity_in_software and raw:
            try:
                raw = check_and_strip_parity(raw)
            except ParityError as e:
                # As a Linux tty with INPCK delivers it: a character with a parity error reads as
                # NUL, so the message it is in fails its BCC and is asked for again.
                log.info("%s; read as NUL", e)
                raw = bytes(0 if (b >> 7) != even_parity_bit(b) else b & 0x7F for b in raw)
        return bytes(raw)


def redact(data: bytes) -> bytes:
    """A P1 (password) command with the password replaced by asterisks, for logs and captures."""
    if not data.startswith(b"\x01P1\x02(") or b")" not in data:
        return data
    start = data.index(b"(") + 1
    end = data.rindex(b")")
    return data[:start] + b"*" * (end - start) + data[end:]


def capture_header(opts: PortOptions) -> dict[str, object]:
    virtual = opts.url.startswith("me162://")
    return new_header(
        origin="emulated" if virtual else "real",
        link={"recorder": "me162-read", "port": opts.url, "parity_in_software": opts.parity_in_software},
        line={
            "baud": 300,
            "bits": 8 if opts.parity_in_software else 7,
            "parity": "N" if opts.parity_in_software else "E",
            "stop": 1,
        },
        start=datetime.now().isoformat(timespec="milliseconds"),
        timing="recorded",
        redactions=["P1 passwords replaced by asterisks (their BCC no longer matches)"],
    )


def read_once(
    opts: PortOptions,
    config: ReaderConfig,
    *,
    retries: int | None = None,
    progress: Callable[[int, float], None] | None = None,
    record: Path | None = None,
) -> SessionResult:
    """One reading, with the session's bounded retries (``retries`` overrides
    ``config.session_retries``); the port is opened once and ``config`` is not changed."""
    if retries is not None:
        config = replace(config, session_retries=retries)
    writer = CaptureWriter(record, capture_header(opts)) if record is not None else None
    try:
        port = open_port(opts)
    except PortError:
        if writer is not None:
            writer.close()
        raise
    driver = Driver(port, opts, progress=progress, record=writer)
    try:
        return driver.run(config)
    except ReaderError as e:
        if writer is not None:
            writer.event(driver.now(), "error", message=str(e))
        raise
    finally:
        port.close()
        if writer is not None:
            writer.close()


def progress_printer(out: TextIO = sys.stderr) -> Callable[[int, float], None]:
    def show(nbytes: int, elapsed: float) -> None:
        if elapsed > 1.0:
            out.write(f"\rreceiving readout: {nbytes} bytes, {elapsed:.0f} s ")
            out.flush()

    return show
