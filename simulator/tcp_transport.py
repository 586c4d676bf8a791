"""The virtual meter on a TCP port of 127.0.0.1: raw, or RFC 2217.

Raw (``--tcp PORT``) stands for a serial-to-TCP converter in raw mode (ser2net, an ESP-link):
the converter's UART follows the meter's speed, so the reader cannot and need not switch.
With ``--parity-bit`` the converter runs 8N1 and the 7E1 parity bit travels in bit 7, as
many converters deliver it; the reader must add and strip it in software.

RFC 2217 (``--rfc2217 PORT``) carries the reader's baud rate, data bits, parity and stop bits
over telnet options (pyserial's ``rfc2217://`` client): the simulator models them exactly, so
7E1 against 8N1 is checked for real and a speed switch works as on a local port.
"""

from __future__ import annotations

import contextlib
import logging
import select
import socket
from typing import Any, cast

from serial.rfc2217 import PortManager

from me162.protocol.line import LineSettings
from me162.simulator.background import Background
from me162.simulator.events import Wire
from me162.simulator.lateness import Lateness
from me162.simulator.link import Link
from me162.simulator.meter import MeterLike
from me162.simulator.session import MeterOptions, Served

log = logging.getLogger(__name__)


class _PortSettings:
    """What PortManager needs of a serial port: settings it writes, modem lines it reads."""

    def __init__(self, served: Served) -> None:
        self._served = served
        self._baudrate = 300
        self._bytesize = 7
        self._parity = "E"
        self._stopbits: float = 1
        self.xonxoff = False
        self.rtscts = False
        self.break_condition = False
        self.dtr = True
        self.rts = True
        self.cts = True
        self.dsr = True
        self.ri = False
        self.cd = True
        self.name = "me162"

    def _apply(self) -> None:
        parity = self._parity if self._parity in ("N", "E", "O") else "N"
        settings = LineSettings(int(self._baudrate), int(self._bytesize), parity, int(self._stopbits))  # type: ignore[arg-type]
        self._served.reader_configured(settings)

    @property
    def baudrate(self) -> int:
        return self._baudrate

    @baudrate.setter
    def baudrate(self, value: int) -> None:
        self._baudrate = value
        self._apply()

    @property
    def bytesize(self) -> int:
        return self._bytesize

    @bytesize.setter
    def bytesize(self, value: int) -> None:
        self._bytesize = value
        self._apply()

    @property
    def parity(self) -> str:
        return self._parity

    @parity.setter
    def parity(self, value: str) -> None:
        self._parity = value
        self._apply()

    @property
    def stopbits(self) -> float:
        return self._stopbits

    @stopbits.setter
    def stopbits(self, value: float) -> None:
        self._stopbits = value
        self._apply()

    def reset_input_buffer(self) -> None:
        pass

    def reset_output_buffer(self) -> None:
        pass


class _Connection:
    """The socket as PortManager wants it: with a ``write`` method."""

    def __init__(self, sock: socket.socket) -> None:
        self.sock = sock

    def write(self, data: bytes) -> None:
        with contextlib.suppress(OSError):
            self.sock.sendall(data)


class TcpMeter(Background):
    """One virtual meter on one TCP port; one client at a time."""

    def __init__(
        self,
        options: MeterOptions,
        port: int,
        *,
        rfc2217: bool = False,
        index: int = 0,
        meter: MeterLike | None = None,
    ) -> None:
        self.served = Served(options, index=index, transport="rfc2217" if rfc2217 else "tcp", meter=meter)
        self.rfc2217 = rfc2217
        if not rfc2217:
            self.served.link = Link(self.served.meter, parity_bit=options.parity_bit, follow_meter=True)
            self.served.attach_faults()
        self.server = socket.create_server(("127.0.0.1", port), reuse_port=False)
        self.port = self.server.getsockname()[1]
        self.client: socket.socket | None = None
        self.manager: Any = None
        super().__init__()
        self.thread_name = f"me162-tcp-{self.port}"

    @property
    def reader_open(self) -> bool:
        """Whether a reader is connected."""
        return self.client is not None

    @property
    def url(self) -> str:
        return f"{'rfc2217' if self.rfc2217 else 'socket'}://127.0.0.1:{self.port}"

    def close(self) -> None:
        self._drop_client()
        self.server.close()
        self.served.close()

    def _drop_client(self) -> None:
        if self.client is not None:
            with contextlib.suppress(OSError):
                self.client.close()
            self.client = None
            self.manager = None
            self.served.note(Wire.CLOSE, "reader disconnected")

    def run(self) -> None:
        self._lateness = Lateness()
        try:
            self._loop()
        finally:
            self._lateness.close()

    def _loop(self) -> None:
        s = self.served
        looked_at = s.now()
        self.ready.set()
        while not self._stop.is_set():
            out = s.due()
            if s.link.line_drops and s.link.line_drops[0][0] <= s.now():
                _, seconds = s.link.line_drops.pop(0)
                s.note(Wire.NOTE, f"fault: the line drops for {seconds} s (the reader is disconnected)")
                self._drop_client()
                self._stop.wait(s.clock.real(seconds))
                continue
            if out and self.client is not None:
                if self.rfc2217 and self.manager is not None:
                    out = b"".join(self.manager.escape(out))
                # (with --parity-bit the 8N1 receiver model has already put the parity into bit 7)
                try:
                    self.client.sendall(out)
                except OSError:
                    self._drop_client()
            socks: list[socket.socket] = [self.server] + ([self.client] if self.client else [])
            try:
                readable, _, _ = select.select(socks, [], [], s.wake_in())
            except (OSError, ValueError):
                return
            if readable:  # what the reader did while this thread ran or waited happened earlier
                s.woke(looked_at, self._lateness.since_mark())
            for sock in readable:
                if sock is self.server:
                    self._accept()
                else:
                    self._receive()
            s.done()
            looked_at = s.now()  # everything the reader did so far is taken
            self._lateness.mark()

    def _accept(self) -> None:
        conn, peer = self.server.accept()
        if self.client is not None:
            self.served.note(Wire.NOTE, f"second connection from {peer} refused: one reader at a time")
            conn.close()
            return
        conn.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
        self.client = conn
        self.served.note(Wire.OPEN, f"reader connected from {peer[0]}:{peer[1]}")
        if self.rfc2217:
            port = _PortSettings(self.served)
            self.manager = PortManager(cast(Any, port), cast(Any, _Connection(conn)), logger=None)

    def _receive(self) -> None:
        assert self.client is not None
        try:
            data = self.client.recv(4096)
        except OSError:
            data = b""
        if not data:
            self._drop_client()
            return
        if self.rfc2217 and self.manager is not None:
            data = b"".join(self.manager.filter(data))
        if data:
            self.served.reader_wrote(data)
