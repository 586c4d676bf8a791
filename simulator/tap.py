"""``me162-sim tap``: a pty in front of a real probe that records everything.

The reader opens the tap's pty as if it were the probe.  The tap forwards its bytes to the
real port and the meter's bytes back, follows every speed change the reader makes on the pty
by making it on the real port, and records both directions with timing as a capture.
"""

from __future__ import annotations

import contextlib
import errno
import logging
import os
import select
import time
from datetime import datetime
from pathlib import Path

import serial

from me162.protocol.capture import CaptureWriter, new_header
from me162.simulator.background import Background
from me162.simulator.pty_transport import TIOCPKT_DATA, TIOCPKT_IOCTL, open_packet_pty, slave_speed

log = logging.getLogger(__name__)


class Tap(Background):
    def __init__(self, device: str, record: Path, *, link: Path | None = None) -> None:
        try:
            self.port = serial.serial_for_url(device, baudrate=300, bytesize=7, parity="E", timeout=0)
        except (serial.SerialException, OSError) as e:
            from me162.protocol.errors import ConfigError

            raise ConfigError(f"cannot open {device}: {e}") from None
        self.device = device
        self.master, self.path, self.link_path, self._handle = open_packet_pty(link)
        header = new_header(
            origin="real",
            link={"recorder": "me162-sim tap", "adapter": device},
            start=datetime.now().isoformat(timespec="milliseconds"),
            timing="recorded",
        )
        self.writer = CaptureWriter(record, header)
        self.t0 = time.monotonic()
        self.baud = 300
        self.reader_open = False
        super().__init__()
        self.thread_name = "me162-tap"

    @property
    def tty(self) -> str:
        return str(self.link_path or self.path)

    def now(self) -> float:
        return time.monotonic() - self.t0

    def close(self) -> None:
        self.writer.close()
        self.port.close()
        with contextlib.suppress(OSError):
            os.close(self.master)
        if self._handle is not None:
            with contextlib.suppress(OSError):
                os.close(self._handle)
        if self.link_path is not None:
            with contextlib.suppress(FileNotFoundError):
                self.link_path.unlink()

    def run(self) -> None:
        poller = select.poll()
        poller.register(self.master, select.POLLIN)
        while not self._stop.is_set():
            waiting = self.port.in_waiting
            if waiting:
                data = self.port.read(waiting)
                self.writer.data(self.now(), "m2r", data, baud=self.baud)
                if self.reader_open:
                    with contextlib.suppress(OSError):
                        os.write(self.master, data)
            events = poller.poll(1)
            flags = events[0][1] if events else 0
            if flags & select.POLLIN:
                self._from_reader()
            if flags & select.POLLHUP:
                if self.reader_open:
                    self.reader_open = False
                    self.writer.event(self.now(), "close", side="reader")
                time.sleep(0.01)

    def _from_reader(self) -> None:
        try:
            packet = os.read(self.master, 4096)
        except OSError as e:
            if e.errno == errno.EIO:
                return
            raise
        if not packet:
            return
        if not self.reader_open:
            self.reader_open = True
            self.writer.event(self.now(), "open", side="reader")
        if packet[0] == TIOCPKT_DATA and len(packet) > 1:
            self.port.write(packet[1:])
            self.writer.data(self.now(), "r2m", packet[1:], baud=self.baud)
        elif packet[0] & TIOCPKT_IOCTL:
            baud = slave_speed(self.master)
            if baud and baud != self.baud:
                self.baud = baud
                with contextlib.suppress(serial.SerialException, OSError):
                    self.port.baudrate = baud
                self.writer.event(self.now(), "settings", side="reader", baud=baud)
