"""The virtual meter on a Linux pseudo-terminal.

The reader opens the slave side (``/dev/pts/N``, or a symlink given with ``--link``) like a
USB probe.  The simulator holds the master side in packet mode with EXTPROC set, so every
``tcsetattr`` the reader makes arrives as a TIOCPKT_IOCTL packet: the simulator then reads the
reader's speed and flags.  Data bits and parity are invisible on a pty (the kernel forces CS8),
so the character format is taken as 7E1 unless ``--parity-bit`` says the reader runs 8N1 with
the parity in bit 7.

Pacing: what the reader writes is queued on the virtual wire and leaves it at 10 bits per
character; bytes still queued when the reader changes speed go out at the new speed.  A pty's
``tcdrain`` (pyserial's ``flush()``) returns at once, as it does on many USB serial adapters,
so a reader must wait for the transmission time itself before it switches speed.  When the reader closes the port the slave's speed is reset, so the next
``open`` at 300 7E1 changes something (glibc rejects a 7E1 ``tcsetattr`` on a pty that changes
nothing, with EINVAL).
"""

from __future__ import annotations

import contextlib
import errno
import fcntl
import logging
import os
import select
import termios
import time
import tty
from pathlib import Path

from me162.protocol.errors import ConfigError
from me162.protocol.line import LineSettings
from me162.simulator.background import Background
from me162.simulator.meter import MeterLike
from me162.simulator.session import MeterOptions, Served

log = logging.getLogger(__name__)

EXTPROC = 0o200000
TIOCPKT_DATA = 0x00
TIOCPKT_IOCTL = 0x40
_SPEEDS = {getattr(termios, f"B{b}"): b for b in (50, 75, 110, 134, 150, 200, 300, 600, 1200, 1800, 2400,
                                                  4800, 9600, 19200, 38400, 57600, 115200, 230400)}  # fmt: skip
CLOSED_POLL = 0.02


#: (which flag word, bits, complaint) for everything a reader should have switched off
_UNRAW = (
    (3, termios.ICANON, "canonical mode (ICANON): reads wait for a line end"),
    (3, termios.ECHO, "echo (ECHO)"),
    (3, termios.ISIG, "signals (ISIG): a received 0x03 (ETX) becomes SIGINT"),
    (0, termios.ICRNL, "CR to LF translation (ICRNL)"),
    (0, termios.INLCR, "LF to CR translation (INLCR)"),
    (0, termios.IGNCR, "CR dropped (IGNCR)"),
    (0, termios.ISTRIP, "bit 7 stripped (ISTRIP)"),
    (0, termios.IXON | termios.IXOFF, "software flow control (IXON/IXOFF): 0x11 and 0x13 are swallowed"),
    (1, termios.OPOST, "output processing (OPOST)"),
)


def describe_port_flags(attrs: list[object]) -> list[str]:
    """What a reader left unraw on its port, as a list of complaints (empty = raw mode)."""
    flags = [int(x) for x in attrs[:4]]  # type: ignore[call-overload]
    return [text for word, bits, text in _UNRAW if flags[word] & bits]


def apply_input_flags(data: bytes, iflag: int) -> bytes:
    """Do to the meter's bytes what the reader's tty input flags would (EXTPROC turns the line
    discipline's own processing off)."""
    if iflag & termios.ISTRIP:
        data = bytes(b & 0x7F for b in data)
    if iflag & termios.IGNCR:
        data = data.replace(b"\r", b"")
    elif iflag & termios.ICRNL and iflag & termios.INLCR:
        data = data.translate(bytes.maketrans(b"\r\n", b"\n\r"))
    elif iflag & termios.ICRNL:
        data = data.replace(b"\r", b"\n")
    elif iflag & termios.INLCR:
        data = data.replace(b"\n", b"\r")
    return data


def open_packet_pty(link: str | Path | None = None) -> tuple[int, str, Path | None]:
    """A pty whose master reports the slave's settings changes (TIOCPKT + EXTPROC), with the
    slave raw at 38400 Bd and closed, and optionally a symlink to it."""
    master, slave = os.openpty()
    path = os.ttyname(slave)
    tty.setraw(slave)
    attrs = termios.tcgetattr(slave)
    attrs[4] = attrs[5] = termios.B38400
    termios.tcsetattr(slave, termios.TCSANOW, attrs)
    os.close(slave)
    fcntl.ioctl(master, termios.TIOCPKT, b"\x01\x00\x00\x00")
    m = termios.tcgetattr(master)
    m[3] |= EXTPROC
    termios.tcsetattr(master, termios.TCSANOW, m)
    os.set_blocking(master, False)
    with contextlib.suppress(OSError):  # the setup's own settings-change packets: not the reader's
        while os.read(master, 4096):
            pass
    link_path: Path | None = None
    if link is not None:
        link_path = Path(link)
        if link_path.exists() and not link_path.is_symlink():
            os.close(master)
            raise ConfigError(f"--link {link_path}: exists and is not a symlink; not replacing it")
        with contextlib.suppress(FileNotFoundError):
            link_path.unlink()
        link_path.symlink_to(path)
    return master, path, link_path


def slave_speed(master: int) -> int:
    return _SPEEDS.get(termios.tcgetattr(master)[5], 0)


class PtyMeter(Background):
    """One virtual meter served on one pty, in a thread of its own."""

    def __init__(
        self,
        options: MeterOptions,
        *,
        index: int = 0,
        link: str | Path | None = None,
        meter: MeterLike | None = None,
    ) -> None:
        self.served = Served(options, index=index, meter=meter)
        self.master, self.path, self.link_path = open_packet_pty(link)
        self.reader_open = False
        self.iflag = 0
        self.port_reports: list[str] = []
        super().__init__()
        self.thread_name = f"me162-pty-{self.path}"

    @property
    def device(self) -> str:
        return str(self.link_path or self.path)

    def close(self) -> None:
        with contextlib.suppress(OSError):
            os.close(self.master)
        self.served.close()
        if self.link_path is not None:
            with contextlib.suppress(FileNotFoundError):
                self.link_path.unlink()

    # --- the loop -----------------------------------------------------------------------------

    def run(self) -> None:
        s = self.served
        poller = select.poll()
        poller.register(self.master, select.POLLIN)
        while not self._stop.is_set():
            out = s.due()
            if s.link.line_drops and s.link.line_drops[0][0] <= s.now():
                _, seconds = s.link.line_drops.pop(0)
                poller.unregister(self.master)
                self._pull_probe(seconds)
                poller.register(self.master, select.POLLIN)
                continue
            if out and self.reader_open:
                self._write(apply_input_flags(out, self.iflag))
            try:
                events = poller.poll(s.wake_in() * 1000)
            except (OSError, ValueError):
                return
            flags = events[0][1] if events else 0
            if flags & (select.POLLHUP | select.POLLERR | select.POLLNVAL):
                # Nobody holds the slave: the reader closed the port (or never opened it).
                # What the reader wrote just before closing (a B0) is still to be read, and a
                # reader opening the port right now may already have written its request:
                # process every pending packet, losing nothing, before calling the port closed.
                if flags & select.POLLIN and self.reader_open:
                    self._take_pending()
                self._closed()
                time.sleep(CLOSED_POLL)
            elif flags & select.POLLIN:
                if not self.reader_open:
                    self._opened()
                self._take()

    def _pull_probe(self, seconds: float) -> None:
        """A fault: the probe is pulled off (the device goes away) and plugged back in."""
        s = self.served
        s.note("note", f"fault: the probe is pulled off for {seconds} s ({self.device} goes away)")
        with contextlib.suppress(OSError):
            os.close(self.master)
        if self.link_path is not None:
            with contextlib.suppress(FileNotFoundError):
                self.link_path.unlink()
        if self.reader_open:
            self.reader_open = False
            s.note("close", "the probe was pulled off")
        self._stop.wait(s.clock.real(seconds))
        self.master, self.path, self.link_path = open_packet_pty(self.link_path)
        s.note("note", f"fault: the probe is back on {self.device}")

    def _write(self, data: bytes) -> None:
        try:
            os.write(self.master, data)
        except BlockingIOError:
            log.warning("%s: reader is not reading; %d byte(s) dropped", self.path, len(data))
        except OSError as e:
            if e.errno != errno.EIO:
                raise

    def _take_pending(self) -> None:
        for _ in range(64):
            ready, _, _ = select.select([self.master], [], [], 0)
            if not ready or not self._take():
                return

    def _take(self) -> bool:
        """Read one packet: a settings change, or what the reader wrote; False if none."""
        try:
            packet = os.read(self.master, 4096)
        except BlockingIOError:
            return False
        except OSError as e:
            if e.errno == errno.EIO:
                return False
            raise
        if not packet:
            return False
        if packet[0] == TIOCPKT_DATA:
            self.served.reader_wrote(packet[1:])
        elif packet[0] & TIOCPKT_IOCTL and self.reader_open:
            self._settings_changed()
        return True

    def _opened(self) -> None:
        self.reader_open = True
        self.served.note("open", f"reader opened {self.device}")
        self._settings_changed()

    def _closed(self) -> None:
        if not self.reader_open:
            return
        self.reader_open = False
        self.served.note("close", f"reader closed {self.device}")
        try:
            attrs = termios.tcgetattr(self.master)
            attrs[4] = attrs[5] = termios.B38400
            termios.tcsetattr(self.master, termios.TCSANOW, attrs)
        except termios.error as e:  # pragma: no cover - defensive
            log.warning("could not reset the port speed: %s", e)

    def _settings_changed(self) -> None:
        attrs = termios.tcgetattr(self.master)
        baud = _SPEEDS.get(attrs[5], 0)
        self.iflag = int(attrs[0])
        s = self.served
        current = s.link.reader_settings
        settings = LineSettings(baud, current.bits, current.parity, 2 if attrs[2] & termios.CSTOPB else 1)
        if baud and settings != current:
            s.reader_configured(settings)
        problems = describe_port_flags(attrs)
        report = "raw mode" if not problems else "not raw: " + "; ".join(problems)
        if not self.port_reports or self.port_reports[-1] != report:
            self.port_reports.append(report)
            s.note("port", f"reader set {baud} Bd, {report}")
