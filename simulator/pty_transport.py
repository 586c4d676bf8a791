"""The virtual meter on a Linux pseudo-terminal.

The reader opens the slave side (``/dev/pts/N``, or a link given with ``--link``) like a USB
probe.  The simulator holds the master side and must know, at every moment it matters — when
each byte arrives from the reader and before each byte goes to it — the speed and flags the
reader's port has, however the reader set them (docs/serial-port.md tells the whole story):

- **Packet mode** (TIOCPKT with EXTPROC): every ``tcsetattr`` of the reader wakes the simulator
  with a TIOCPKT_IOCTL packet at once, so a switch is timed to the moment it happens and kept in
  order with the data written before it.  A reader that clears ``c_lflag`` (``cfmakeraw``,
  node-serialport, much C code) clears EXTPROC too; the simulator sets it again right away.
- **Polling**: the settings are read again (TCGETS2, so ``BOTHER`` speeds set with ``TCSETS2``
  are seen) before every write to the reader, after every read from it and on every wake-up;
  while packet mode is off the simulator wakes every millisecond.  ``--verbose`` says which of
  the two saw each change.  (While packet mode is on, a streaming readout is handed to the
  pacer thread, :mod:`~me162.simulator.pacer`, and paced out without looks: any act of the
  reader stops the pacer at that port and wakes the meter, which cancels the rest and looks.)
- **A fresh port for every session**: when the reader closes, the slave gets the settings of a
  newly created port again (38400 Bd, cooked, as Linux creates it), so nothing one reader left
  can change what the next one sees.
- **glibc's EINVAL**: Debian's and Fedora's glibc make ``tcsetattr`` fail with EINVAL when a
  7E1 request changes nothing on a pty (the pty always reports CS8 without parity, so glibc
  believes the request was dropped; the kernel's ioctl itself succeeds).  After each change the
  simulator sets IGNBRK (meaningless on a pty), which pyserial and ``cfmakeraw`` clear, so
  their next ``tcsetattr`` always changes something.  A reader that re-applies its settings by
  read-modify-write, or twice back to back, still gets EINVAL from glibc: the simulator says
  so in one line; ``ptyfix`` (LD_PRELOAD, used by me162-check) removes it in the reader's libc.

Data bits and parity are invisible on a pty (the kernel forces CS8), so the character format is
taken as 7E1 unless ``--parity-bit`` says the reader runs 8N1 with the parity in bit 7.  A pty's
``tcdrain`` returns at once, as on many USB serial adapters, so a reader must wait for the
transmission time itself before it switches speed.

``--link PATH`` makes PATH a symlink to ``/proc/<pid>/fd/<n>``, an O_PATH handle on the slave
held by the simulator: it opens the pty while the simulator lives, and nothing at all once it is
gone, even after ``kill -9`` (a plain link to ``/dev/pts/N`` would lead into whatever terminal
the kernel hands that number to next).
"""

from __future__ import annotations

import contextlib
import errno
import fcntl
import functools
import heapq
import logging
import math
import os
import select
import struct
import termios
import threading
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from me162.protocol.errors import ConfigError
from me162.protocol.line import LineSettings
from me162.simulator import pacer
from me162.simulator.background import Background
from me162.simulator.events import Wire
from me162.simulator.lateness import Lateness
from me162.simulator.meter import MeterLike
from me162.simulator.session import MeterOptions, Served

log = logging.getLogger(__name__)

EXTPROC = 0o200000
TIOCPKT_DATA = 0x00
TIOCPKT_IOCTL = 0x40
_SPEEDS = {getattr(termios, f"B{b}"): b for b in (50, 75, 110, 134, 150, 200, 300, 600, 1200, 1800, 2400,
                                                  4800, 9600, 19200, 38400, 57600, 115200, 230400)}  # fmt: skip
CLOSED_POLL = 0.02
#: without the pacer thread (ME162_PACER=python): characters a pacing meter asks the link for
#: at a time, when its plan runs short: a few
#: microseconds a character, spread over the readout (a hundred meters starting their readouts
#: at once must not hold each other up for a whole readout each)
PACE_AHEAD = 16
#: how early a paced character may be written: an eighth of a character time, and no more than
#: half a millisecond of protocol time (at 300 Bd an eighth is 4 ms, which a reader timing its
#: reply from the last byte would feel).  A wake-up then serves every meter whose next
#: character is due that soon, not one meter a wake-up; the wake-up itself comes later than
#: asked by up to the kernel's timer slack (50 us)
EARLY = 0.125
EARLY_MAX = 0.0005
#: a wait longer than LONG_WAIT ends WARM_UP early and the hub stays awake until it is over:
#: the first byte after a meter's reaction time otherwise reached the reader 0.3-0.5 ms later
#: than the bytes after it (the CPU's wake-up from a long idle; bench_pacing, 1 meter)
LONG_WAIT = 0.01
WARM_UP = 0.0005
#: how often the hub turns one meter in one wake-up at most (a wake-up taking a hundred readers'
#: acts lasts long, and meters come due again in it); then it waits for the next one
TURNS_A_WAKE_UP = 64
#: with the pacing thread: characters handed to it at a time (at least; as many as NATIVE_LEAD
#: of real time takes on a faster line, up to NATIVE_MAX), more when a quarter is left
NATIVE_AHEAD = 64
NATIVE_LEAD = 0.25
NATIVE_MAX = 1024
_BYTES = [bytes((b,)) for b in range(256)]


class OpenWatch:
    """inotify's IN_OPEN on the slave: while no reader holds the port, the meter's thread sleeps
    until one opens it (an idle meter costs nothing), instead of looking every CLOSED_POLL.
    Where inotify is missing, :meth:`create` gives None and the meter looks every CLOSED_POLL."""

    IN_OPEN = 0x20

    def __init__(self, libc: Any, fd: int) -> None:
        self.libc = libc
        self.fd = fd

    @classmethod
    def create(cls, path: str) -> OpenWatch | None:
        try:
            import ctypes

            libc = ctypes.CDLL(None, use_errno=True)
            fd = int(libc.inotify_init1(os.O_NONBLOCK | os.O_CLOEXEC))
        except (OSError, AttributeError):
            return None
        if fd < 0:
            return None
        watch = cls(libc, fd)
        if not watch.watch(path):
            watch.close()
            return None
        return watch

    def watch(self, path: str) -> bool:
        return int(self.libc.inotify_add_watch(self.fd, path.encode(), self.IN_OPEN)) >= 0

    def drain(self) -> None:
        with contextlib.suppress(OSError):
            while os.read(self.fd, 4096):
                pass

    def close(self) -> None:
        with contextlib.suppress(OSError):
            os.close(self.fd)


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


#: the input flags under which the meter's bytes are not what the reader reads
_MAPPING_IFLAGS = termios.ISTRIP | termios.IGNCR | termios.ICRNL | termios.INLCR


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


# struct termios2 (asm-generic, x86-64 and arm64): four flag words, c_line, 19 c_cc, ispeed, ospeed
_TERMIOS2 = struct.Struct("IIIIB19sII")
TCGETS2 = 0x80000000 | (_TERMIOS2.size << 16) | (ord("T") << 8) | 0x2A
CBAUD = 0o010017
BOTHER = 0o010000
OPEN_POLL = 0.001  #: seconds between looks at the settings while packet mode is off
#: wall-clock seconds the simulator waits after a reader's tcsetattr before it sets EXTPROC and
#: IGNBRK again: glibc reads the settings back right after its TCSETS, and a change landing in
#: between would make it report EINVAL for a call that worked
SETTLE = 0.05


@dataclass(frozen=True)
class PortState:
    """The reader's port settings as the simulator reads them from the master."""

    iflag: int
    oflag: int
    cflag: int
    lflag: int
    baud: int

    @property
    def extproc(self) -> bool:
        return bool(self.lflag & EXTPROC)

    @property
    def stop(self) -> int:
        return 2 if self.cflag & termios.CSTOPB else 1

    def reader_view(self) -> tuple[int, ...]:
        """What the reader set (without the bits the simulator itself keeps set)."""
        return (self.iflag & ~termios.IGNBRK, self.oflag, self.cflag, self.lflag & ~EXTPROC, self.baud)

    def attrs(self) -> list[object]:
        return [self.iflag, self.oflag, self.cflag, self.lflag]


def read_termios2(master: int) -> bytearray:
    """The slave's ``struct termios2`` as bytes (OSError where TCGETS2 is not there)."""
    buf = bytearray(_TERMIOS2.size)
    fcntl.ioctl(master, TCGETS2, buf)
    return buf


def port_state(termios2: bytearray) -> PortState:
    iflag, oflag, cflag, lflag, _line, _cc, _ispeed, ospeed = _TERMIOS2.unpack(termios2)
    return PortState(iflag, oflag, cflag, lflag, ospeed or _SPEEDS.get(cflag & CBAUD, 0))


def read_port_state(master: int) -> PortState:
    """The slave's settings, speed included however it was set (TCGETS2 reads the numeric
    speed of ``BOTHER``; plain TCGETS where TCGETS2 is not there)."""
    try:
        return port_state(read_termios2(master))
    except OSError:
        attrs = termios.tcgetattr(master)
        iflag, oflag, cflag, lflag = (int(x) for x in attrs[:4])
        baud = _SPEEDS.get(int(attrs[5]), 0)
    return PortState(iflag, oflag, cflag, lflag, baud)


@functools.cache
def fresh_attrs() -> list[Any]:
    """The settings of a newly created port, as the kernel gives a new pty (cooked, 38400 Bd,
    8 bits), with the simulator's EXTPROC and IGNBRK."""
    master, slave = os.openpty()
    try:
        attrs = termios.tcgetattr(slave)
    finally:
        os.close(slave)
        os.close(master)
    attrs[0] = int(attrs[0]) | termios.IGNBRK
    attrs[3] = int(attrs[3]) | EXTPROC
    attrs[4] = attrs[5] = termios.B38400
    return attrs


def open_packet_pty(link: str | Path | None = None) -> tuple[int, str, Path | None, int | None]:
    """A pty whose master reports the slave's settings changes (TIOCPKT + EXTPROC), the slave
    fresh and closed, and optionally a link to it that dies with this process.

    Returns the master, the slave's path, the link and the O_PATH handle the link points at."""
    master, slave = os.openpty()
    path = os.ttyname(slave)
    termios.tcsetattr(slave, termios.TCSANOW, fresh_attrs())
    os.close(slave)
    fcntl.ioctl(master, termios.TIOCPKT, b"\x01\x00\x00\x00")
    os.set_blocking(master, False)
    with contextlib.suppress(OSError):  # the setup's own settings-change packets: not the reader's
        while os.read(master, 4096):
            pass
    link_path: Path | None = None
    handle: int | None = None
    if link is not None:
        link_path = Path(link)
        if link_path.exists() and not link_path.is_symlink():
            os.close(master)
            raise ConfigError(f"--link {link_path}: exists and is not a symlink; not replacing it")
        # An O_PATH handle does not open the tty (the reader's close is still seen); opening
        # /proc/<pid>/fd/<handle> opens the pty, and fails once this process is gone.
        handle = os.open(path, os.O_PATH)
        with contextlib.suppress(FileNotFoundError):
            link_path.unlink()
        link_path.symlink_to(f"/proc/{os.getpid()}/fd/{handle}")
    return master, path, link_path, handle


def slave_speed(master: int) -> int:
    return read_port_state(master).baud


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
        self.master, self.path, self.link_path, self._handle = open_packet_pty(link)
        self.reader_open = False
        self.state: PortState | None = None  #: the settings last seen
        self.port_reports: list[str] = []
        self._own_packet = False  #: a settings-change packet of the simulator's own is due
        self._wrote = False  #: the reader has written something since it opened the port
        self._rearm_at: float | None = None  #: when to set EXTPROC and IGNBRK again (monotonic)
        self._looked_at = 0.0  #: virtual time of the last look at the pty that found nothing new
        self._watch = OpenWatch.create(self.path)
        self._own_poll = select.poll()  #: the master alone: is anybody holding the slave?
        self._own_poll.register(self.master, select.POLLIN)
        self._idle = False  #: this turn waits on the inotify watch, not the master
        self._quiet_until = 0.0  #: monotonic: after a reader left, no look at the master before
        self._pulled_until: float | None = None  #: monotonic: a fault pulled the probe off until
        self.generation = 0  #: counts the masters this meter opened (a new one may reuse the number)
        self._termios2: bytearray | None = None  #: the settings as last read, as bytes
        #: characters the link says reach the reader next, paced out without asking it again
        #: (see _plan_ahead): (monotonic due time, bytes to write, virtual time), and how many
        #: of them are written
        self._plan: list[tuple[float, bytes, float]] = []
        self._planned = 0
        self._iflag = 0  #: the input flags the plan's bytes get (0: none that change them)
        self._pace_until = math.inf  #: virtual time the plan ends at (a fault's)
        self._early = 0.0  #: real seconds: see EARLY (0 unless pacing)
        self._ahead = PACE_AHEAD  #: characters asked of the link at a time
        #: the pacing thread (pacer.c; None: the plan is paced in this loop), this master's
        #: slot in it, and the slot's count of written characters when the plan began (every
        #: character of the plan is handed to it as the plan grows)
        self._pacer = pacer.shared()
        self._slot: int | None = None
        self._base = 0
        self._char_early = 0.0  #: real seconds: how early the pacer may write a character
        self.scheduled = False  #: see step
        super().__init__()
        self.thread_name = f"me162-pty-{self.path}"

    @property
    def device(self) -> str:
        return str(self.link_path or self.path)

    def _release(self) -> None:
        if self._slot is not None:
            with contextlib.suppress(OSError):  # (a write error of the pacer's: the port goes anyway)
                self._end_plan()
            assert self._pacer is not None
            self._pacer.close(self._slot)  # before the descriptor's number can be handed out again
            self._slot = None
        with contextlib.suppress(OSError):
            os.close(self.master)
        if self._handle is not None:
            with contextlib.suppress(OSError):
                os.close(self._handle)
            self._handle = None
        if self.link_path is not None:
            with contextlib.suppress(FileNotFoundError):
                self.link_path.unlink()

    def close(self) -> None:
        self._release()
        if self._watch is not None:
            self._watch.close()
        self.served.close()

    # --- the loop: one turn in two steps, which a loop over many meters interleaves ---------------

    def run(self) -> None:
        serve_ptys([self], self._stop, self.wake_fd, self.ready)

    def step(self) -> tuple[float, int | None]:
        """Do what is due now; return how long the loop may wait at most, and the descriptor
        whose readiness ends the wait for this meter (its master, the inotify watch of an idle
        meter, or None).  :attr:`scheduled` says whether the wait ends at something the meter
        has scheduled (a character, a reaction time) rather than at a look for its own sake."""
        self.scheduled = True
        s = self.served
        now = time.monotonic()
        if self._pulled_until is not None:
            if now < self._pulled_until:
                self.scheduled = False
                return self._pulled_until - now, None
            self._plug_back()
        if self.reader_open:
            self._look("poll")
        out = s.due()
        if s.link.line_drops and s.link.line_drops[0][0] <= s.now():
            _, seconds = s.link.line_drops.pop(0)
            self._pull_off(seconds)
            return 0.0, None
        if out and self.reader_open:
            self._write(out)
        self._idle = False
        if now < self._quiet_until:  # a reader just left: look again in a moment
            self.scheduled = False
            return min(s.wake_in(), self._quiet_until - now), None
        if (
            not self.reader_open
            and self._rearm_at is None
            and self._watch is not None
            and self._nobody_holds()
        ):
            # sleep until a reader opens the port (inotify) or the meter has something due
            self._idle = True
            nxt = s.link.next_event()
            return (math.inf if nxt is None else max(0.0, s.clock.real(nxt - s.now()))), self._watch.fd
        wait = s.wake_in()
        self.scheduled = wait < s.MAX_SLEEP  # (else nothing is: a look every MAX_SLEEP)
        if self.reader_open and self.state is not None and not self.state.extproc:
            wait = min(wait, OPEN_POLL)
        if self._rearm_at is not None:
            wait = max(0.0, min(wait, self._rearm_at - now))
        elif self.reader_open and (paced := self._plan_ahead()) is not None:
            self.scheduled = self._pacer is None  # (the pacing thread keeps the time, not the loop)
            return paced, self.master
        return wait, self.master

    # --- pacing a readout: one write a character, the link asked once -------------------------

    def _plan_ahead(self) -> float | None:
        """Ask the link which characters reach the reader next if it does nothing, and pace
        them out (:meth:`_pace`, asking for more as they go) instead of turning the link for
        each; how long until the loop must turn this meter again (None: nothing to pace).
        Only while packet mode is armed: then every act of the reader (a write, a tcsetattr,
        a close) wakes the meter, which drops the plan (:meth:`_end_plan`) before it takes the
        act, so the plan holds exactly as long as its premise does.

        With the pacing thread (:mod:`~me162.simulator.pacer`) the characters are handed to
        it, :data:`NATIVE_AHEAD` at a time, and the loop turns the meter only to hand over
        more; without it the loop writes each character itself."""
        state = self.state
        if state is None or not state.extproc or not state.iflag & termios.IGNBRK:
            return None
        s = self.served
        link = s.link
        self._plan = []
        self._planned = 0
        self._iflag = state.iflag if state.iflag & _MAPPING_IFLAGS else 0
        # a fault that pulls the probe off ends the plan: it takes a turn of its own
        self._pace_until = link.line_drops[0][0] if link.line_drops else math.inf
        char = link.reader_settings.char_time
        self._char_early = s.clock.real(min(char * EARLY, EARLY_MAX))
        if self._pacer is not None:
            real = s.clock.real(char)
            # enough characters queued for NATIVE_LEAD of real time, however fast the line
            self._ahead = min(NATIVE_MAX, max(NATIVE_AHEAD, math.ceil(NATIVE_LEAD / max(real, 1e-9))))
        else:
            self._ahead = PACE_AHEAD
        if self._packet_waiting():
            return None  # an act (the simulator's own re-arming, say) to take first: a plan would be dropped
        coming = link.coming(self._pace_until, self._ahead)
        if not coming:  # (most looks while the reader's bytes are on their way: nothing)
            return None
        if self._pacer is not None:
            self._early = s.clock.real(char) * (self._ahead // 8)  # the loop's turns need no precision
            if self._slot is None:
                self._slot = self._pacer.open(self.master)
            self._base = self._pacer.written(self._slot)
        else:
            self._early = self._char_early
        self._extend(coming)
        first = self._next_turn() if self._pacer is not None else self._plan[0][0]
        return max(0.0, first - time.monotonic())

    def _extend(self, coming: list[tuple[float, int]] | None = None) -> bool:
        """Add to the plan the characters the link says come after its last (``coming``, if
        asked already), and hand them to the pacing thread; False if none come."""
        plan = self._plan
        s = self.served
        if coming is None:
            coming = s.link.coming(self._pace_until, self._ahead, plan[-1][2] if plan else -math.inf)
        if not coming:
            return False
        times = [t for t, _ in coming]
        due = s.clock.at_many(times)
        if self._iflag:
            iflag = self._iflag
            chars = [apply_input_flags(_BYTES[b], iflag) for _, b in coming]
        else:
            chars = [_BYTES[b] for _, b in coming]
        plan.extend(zip(due, chars, times, strict=True))
        if self._pacer is not None:
            assert self._slot is not None
            self._pacer.add(self._slot, due, chars, self._char_early)
        return True

    def _next_turn(self) -> float:
        """With the pacing thread: when the loop hands it more (a quarter of what it asks for
        left), or looks after the plan's last character."""
        plan = self._plan
        k = len(plan) - self._ahead // 4
        # (a thread behind its plan — held by the reader's act, or short of a CPU — gets a
        # moment more, not a busy loop)
        soonest = time.monotonic() + self._early
        return max(plan[k][0], soonest) if k > self._planned else max(plan[-1][0] + self._early, soonest)

    def _pace(self) -> float | None:
        """Write the planned characters whose time has come, or comes within :data:`EARLY`
        (the hub turns a meter that early only when it is awake for another one) — or, with
        the pacing thread, take note of what it wrote and hand it more; when the meter is
        next due (monotonic; None: the plan is done, the link takes over again)."""
        plan = self._plan
        if self._pacer is not None:
            assert self._slot is not None
            self._handed(self._pacer.written(self._slot) - self._base)
            if len(plan) - self._planned <= self._ahead // 4:
                self._extend()
            if self._planned < len(plan):
                return self._next_turn()
            self._end_plan()
            return None
        first = i = self._planned
        soon = time.monotonic() + self._early
        n = len(plan)
        while i < n and plan[i][0] <= soon:
            i += 1
        if i > first:
            self._planned = i
            self.served.link.reader_handed(plan[i - 1][2])
            self._send(plan[first][1] if i == first + 1 else b"".join(p[1] for p in plan[first:i]))
        if n - i < PACE_AHEAD // 4 and self._extend():
            n = len(plan)
        if i < n:
            return plan[i][0]
        self._end_plan()
        return None

    def _handed(self, written: int) -> None:
        """The pacing thread has written the plan's first ``written`` characters."""
        if written > self._planned:
            self._planned = written
            self.served.link.reader_handed(self._plan[written - 1][2])
        assert self._pacer is not None and self._slot is not None
        dropped, error = self._pacer.dropped(self._slot)
        if dropped:
            log.warning("%s: reader is not reading; %d byte(s) dropped", self.path, dropped)
        if error:
            raise OSError(error, os.strerror(error))

    def _end_plan(self) -> None:
        """Stop pacing (the pacing thread writes nothing more of it): the link catches up with
        what was written (so that what the reader does next is dated after it) and is asked
        again from here on."""
        if self._pacer is not None and self._slot is not None and self._plan:
            self._handed(self._pacer.cancel(self._slot) - self._base)
        if self._planned:
            self.served.link.advance(self._plan[self._planned - 1][2])
        self._plan = []
        self._planned = 0
        self._early = 0.0

    def _master_flags(self) -> int:
        """The master's poll flags now (POLLIN: a packet waits; POLLHUP: nobody holds the slave)."""
        events = self._own_poll.poll(0)
        return events[0][1] if events else 0

    def _packet_waiting(self) -> bool:
        return bool(self._master_flags() & select.POLLIN)

    def _nobody_holds(self) -> bool:
        flags = self._master_flags()
        return bool(flags & select.POLLHUP) and not flags & select.POLLIN

    def handle(self, flags: int, late: float) -> None:
        """After the wait: take what the reader did (``flags``: the master's poll flags, or for
        an idle meter whether its watch fired)."""
        if self._plan:  # the reader acted while a readout was paced out (serve_ptys paces)
            self._end_plan()
        s = self.served
        if self._pulled_until is not None:
            return
        if self._idle:
            if flags and self._watch is not None:
                self._watch.drain()
            s.done()
            self._looked_at = s.now()
            return
        if flags:  # what the reader did while the thread waited (a CPU, other meters) happened earlier
            s.woke(self._looked_at, late)
        if flags & (select.POLLHUP | select.POLLERR | select.POLLNVAL):
            # Nobody holds the slave: the reader closed the port (or never opened it).
            # What the reader wrote just before closing (a B0) is still to be read, and a
            # reader opening the port right now may already have written its request:
            # process every pending packet, losing nothing, before calling the port closed.
            if flags & select.POLLIN:
                if not self.reader_open:
                    self._opened()  # a reader that opened, set the port and left at once
                self._take_pending()
            self._closed()
            self._quiet_until = time.monotonic() + CLOSED_POLL
        elif flags & select.POLLIN:
            if not self.reader_open:
                self._opened()
            self._take_pending()
        s.done()
        self._looked_at = s.now()  # everything the reader did so far is taken

    def _pull_off(self, seconds: float) -> None:
        """A fault: the probe is pulled off (the device goes away), back after ``seconds``."""
        s = self.served
        s.note(Wire.NOTE, f"fault: the probe is pulled off for {seconds} s ({self.device} goes away)")
        self._release()
        if self.reader_open:
            self.reader_open = False
            s.note(Wire.CLOSE, "the probe was pulled off")
        self._pulled_until = time.monotonic() + s.clock.real(seconds)

    def _plug_back(self) -> None:
        self._pulled_until = None
        self.master, self.path, self.link_path, self._handle = open_packet_pty(self.link_path)
        self.generation += 1
        self._own_poll = select.poll()
        self._own_poll.register(self.master, select.POLLIN)
        if self._watch is not None and not self._watch.watch(self.path):
            self._watch.close()
            self._watch = None
        self.state = None
        self.served.note(Wire.NOTE, f"fault: the probe is back on {self.device}")

    def _write(self, data: bytes) -> None:
        """Hand bytes to the reader, doing to them what its input flags would."""
        state = self._look("before write")
        if state is not None and state.extproc:
            # Packet mode turns the line discipline's own input processing off: do it here.
            data = apply_input_flags(data, state.iflag)
        self._send(data)

    def _send(self, data: bytes) -> None:
        try:
            os.write(self.master, data)
        except BlockingIOError:
            log.warning("%s: reader is not reading; %d byte(s) dropped", self.path, len(data))
        except OSError as e:
            if e.errno != errno.EIO:
                raise

    def _take_pending(self) -> None:
        for _ in range(256):
            if not self._take():
                return

    def _read_packet(self) -> bytes:
        try:
            return os.read(self.master, 4096)
        except BlockingIOError:
            return b""
        except OSError as e:
            if e.errno == errno.EIO:
                return b""
            raise

    def _take(self) -> bool:
        """Read one packet: a settings change, or what the reader wrote; False if none."""
        packet = self._read_packet()
        if not packet:
            return False
        if packet[0] == TIOCPKT_DATA:
            if len(packet) > 1:
                if self.state is None or not self.state.extproc:
                    # With EXTPROC off no packet reports a settings change: one the reader made
                    # before this write (a library that sets the speed after clearing c_lflag,
                    # then writes) is seen only by looking. Taken first, as the kernel hands
                    # over a reported change before data already buffered.
                    self._look("before read")
                self._wrote = True
                self.served.reader_wrote(packet[1:])
            self._look("after read")
        elif packet[0] & TIOCPKT_IOCTL:
            if not self.reader_open:
                self._opened()
            self._look("packet")
            # The kernel hands over a settings change before data already buffered, so bytes
            # read right after it may have been written before or after the change: the
            # simulator takes them as written after it (as read), and says it cannot know.
            held = bytearray()
            while True:
                more = self._read_packet()
                if not more:
                    break
                if more[0] != TIOCPKT_DATA:
                    self._look("packet")
                    continue
                held += more[1:]
            if held:
                self.served.note(
                    Wire.ORDER_UNKNOWN,
                    f"{len(held)} byte(s) ({bytes(held[:8]).hex(' ')}) were read together with a settings "
                    "change: whether the reader wrote them before or after it is not known",
                )
                self._wrote = True
                self.served.reader_wrote(bytes(held))
        return True

    def _opened(self) -> None:
        self.reader_open = True
        self._wrote = False
        self.state = None
        self.served.note(Wire.OPEN, f"reader opened {self.device}")
        self._look("open")

    def _closed(self) -> None:
        if not self.reader_open:
            return
        self.reader_open = False
        self._reset()
        if not self._wrote and self.state is not None:
            self.served.note(
                Wire.PORT,
                "reader closed the port without writing: if its tcsetattr failed with EINVAL, glibc "
                "refused 7E1 settings that changed nothing on the pty; run it with "
                "LD_PRELOAD=$(me162-sim --pty-fix) (docs/serial-port.md)",
            )
        self.served.note(Wire.CLOSE, f"reader closed {self.device}")
        self.state = None
        self._own_packet = False
        self._rearm_at = None

    def _reset(self) -> None:
        """Give the slave the settings of a newly created port, so that nothing this reader left
        (a speed, EXTPROC cleared) reaches the next one; first of all on a close, since a
        reader may open the port again at once.  Not once a new reader holds the slave."""
        poller = select.poll()
        poller.register(self.master, select.POLLHUP)
        if not any(flags & select.POLLHUP for _, flags in poller.poll(0)):
            return  # someone opened the port again already: its settings are its own
        try:
            termios.tcsetattr(self.master, termios.TCSANOW, fresh_attrs())
        except termios.error as e:  # pragma: no cover - defensive
            log.warning("could not reset the port: %s", e)
        with contextlib.suppress(OSError):
            while self._read_packet():  # our own reset's packet
                pass

    def _look(self, how: str) -> PortState | None:
        """Read the reader's settings; act on a change.  ``how`` says what prompted the look."""
        before = self.state
        try:
            raw = read_termios2(self.master)
        except OSError:
            raw = None
        if (
            raw is not None
            and raw == self._termios2
            and before is not None
            and how != "packet"
            and before.extproc
            and before.iflag & termios.IGNBRK
        ):
            return before  # the same bytes as last time, armed: nothing to do (looked at every byte)
        try:
            state = port_state(raw) if raw is not None else read_port_state(self.master)
        except (OSError, termios.error):
            return self.state
        self._termios2 = raw
        same = before is not None and state.reader_view() == before.reader_view()
        armed = state.extproc and bool(state.iflag & termios.IGNBRK)
        if same and armed:
            self.state = state
            if how == "packet":
                if self._own_packet:
                    self._own_packet = False
                else:  # the reader's tcsetattr kept IGNBRK and changed nothing: glibc fails it
                    self.served.note(
                        Wire.PORT,
                        f"reader re-applied its settings unchanged ({state.baud} Bd): on a pty, Debian's and "
                        "Fedora's glibc fail such a 7E1 tcsetattr with EINVAL unless the reader runs with "
                        "LD_PRELOAD=$(me162-sim --pty-fix) (see docs/serial-port.md)",
                    )
            return state
        if not armed:
            if self._rearm_at is None:
                self._rearm_at = time.monotonic() + SETTLE
            elif time.monotonic() >= self._rearm_at:
                self._rearm_at = None
                state = self._rearm(state)
        self.state = state
        if not same:
            self._settings_changed(state, how)
        return state

    def _rearm(self, state: PortState) -> PortState:
        """Set EXTPROC (packet mode reports changes again) and IGNBRK (the reader's next
        tcsetattr changes something, so glibc does not fail it) on the slave."""
        attrs = termios.tcgetattr(self.master)
        lost_extproc = not int(attrs[3]) & EXTPROC
        attrs[0] = int(attrs[0]) | termios.IGNBRK
        attrs[3] = int(attrs[3]) | EXTPROC
        try:
            termios.tcsetattr(self.master, termios.TCSANOW, attrs)
        except termios.error as e:  # pragma: no cover - defensive
            log.warning("could not set packet mode again: %s", e)
            return state
        self._own_packet = True
        if lost_extproc:
            log.debug("%s: the reader cleared EXTPROC (c_lflag); packet mode set again", self.path)
        return read_port_state(self.master)

    def _settings_changed(self, state: PortState, how: str) -> None:
        s = self.served
        current = s.link.reader_settings
        settings = LineSettings(state.baud, current.bits, current.parity, state.stop)
        if state.baud and settings != current:
            s.reader_configured(settings)
            log.debug("%s: reader set %s (seen by %s)", s.name, settings.describe(), how)
        problems = describe_port_flags(state.attrs())
        report = "raw mode" if not problems else "not raw: " + "; ".join(problems)
        if not self.port_reports or self.port_reports[-1] != report:
            self.port_reports.append(report)
            s.note(Wire.PORT, f"reader set {state.baud} Bd, {report}")


def serve_ptys(meters: list[PtyMeter], stop: threading.Event, wake: int, ready: threading.Event) -> None:
    """Serve meters on their ptys in the calling thread until ``stop`` (and a byte on ``wake``).

    One thread for any number of meters.  Each meter says when it next has something due and
    which descriptor would wake it sooner (its master, or the inotify watch while idle).  The
    descriptors sit in one epoll set and the due times in a heap: the thread sleeps in
    ``select`` on the epoll descriptor alone (to the microsecond: epoll's own wait counts
    whole milliseconds) until the earliest due time, then turns only the meters that are due
    or were woken, so a turn costs what those meters cost, however many meters there are."""
    lateness = Lateness()
    for m in meters:
        m._looked_at = m.served.now()
    ep = select.epoll()
    ep.register(wake, select.EPOLLIN)
    owner: dict[int, int] = {}  #: descriptor -> the meter it wakes
    watched: list[tuple[int, int] | None] = [None] * len(meters)  #: (descriptor, generation)
    due = [0.0] * len(meters)
    heap: list[tuple[float, int]] = []

    def plan(i: int, now: float) -> None:
        wait, fd = meters[i].step()
        key = None if fd is None else (fd, meters[i].generation)
        if key != watched[i]:
            old = watched[i]
            if old is not None and owner.get(old[0]) == i:  # (not if another meter's new one has the number)
                del owner[old[0]]
                with contextlib.suppress(OSError, ValueError):
                    ep.unregister(old[0])  # (a descriptor closed since has left the set by itself)
            if fd is not None:
                try:
                    ep.register(fd, select.EPOLLIN)
                except FileExistsError:
                    ep.modify(fd, select.EPOLLIN)
                owner[fd] = i
            watched[i] = key
        due[i] = now + wait
        if not math.isinf(due[i]):
            heapq.heappush(heap, (due[i], i))

    def turn_one(i: int, flags: int) -> None:
        m = meters[i]
        if m._plan and not flags:  # pacing a readout: one write (or a word to the pacer), nothing else
            at = m._pace()
            if at is not None:
                due[i] = at
                heapq.heappush(heap, (at, i))
                return
        if m._pulled_until is None:
            # what the reader did happened when the loop first saw it, however long the
            # meters before this one took: dated then, not when this one's turn came
            seen = seen_at.pop(i, None)
            late = 0.0 if seen is None else time.monotonic() - seen
            m.handle(int(bool(flags)) if m._idle else flags, late)
        plan(i, time.monotonic())

    turned: dict[int, int] = {}  #: how often each meter was turned in this wake-up
    seen_at: dict[int, float] = {}  #: meter -> when the loop saw its reader act (monotonic)
    turn: dict[int, int] = {}  #: the meters to turn in this wake-up, and their poll flags
    queue: list[int] = []  #: the order they are turned in

    def take_turn(i: int) -> None:
        """Turn meter ``i`` (with its poll flags, if its reader acted), then look again."""
        turned[i] = turned.get(i, 0) + 1
        turn_one(i, turn.pop(i, 0))
        look_again()

    def look_again() -> None:
        """A reader that acted while the meters before were turned: seen (and so dated) now,
        turned in this wake-up rather than dated at the next, and never turned as merely due
        (its link would move past the act unread)."""
        new = []
        for fd, mask in ep.poll(0):
            w = owner.get(fd)
            if w is None or w in turn:
                continue
            if turned.get(w, 0) < TURNS_A_WAKE_UP:
                turn[w] = mask
                seen_at[w] = time.monotonic()
                new.append(w)
            elif mask & select.POLLIN:  # (turned often enough: the next wake-up's)
                seen_at.setdefault(w, time.monotonic())
        queue.extend(sorted(new))

    start = time.monotonic()
    for i in range(len(meters)):
        plan(i, start)
    ready.set()
    try:
        while not stop.is_set():
            while heap and heap[0][0] != due[heap[0][1]]:  # superseded by a later plan
                heapq.heappop(heap)
            timeout = (heap[0][0] - time.monotonic()) if heap else None
            try:
                if timeout is not None and timeout > LONG_WAIT and meters[heap[0][1]].scheduled:
                    # A CPU idle this long takes a fraction of a millisecond to wake: wake
                    # WARM_UP before the due time and stay awake (looking) until it.
                    lateness.mark()
                    select.select([ep.fileno()], [], [], timeout - WARM_UP)
                    until = heap[0][0]
                    while not (events := ep.poll(0)) and time.monotonic() < until:
                        lateness.mark_awake()
                elif timeout is None or timeout > 0:
                    lateness.mark()
                    select.select([ep.fileno()], [], [], timeout)
                    events = ep.poll(0)
                else:
                    lateness.mark_awake()
                    events = ep.poll(0)
            except (OSError, ValueError):
                return
            # (only a meter woken by the reader needs to know when that happened)
            woke_at = time.monotonic() - (lateness.since_mark() if events else 0.0)
            now = time.monotonic()
            turn.clear()
            for fd, mask in events:
                if fd == wake:
                    with contextlib.suppress(OSError):
                        os.read(wake, 64)
                elif (woken := owner.get(fd)) is not None:
                    turn[woken] = mask
                    seen_at.setdefault(woken, woke_at)  # (or earlier, in the last wake-up)
            # the meters due now, and those pacing a readout whose next character is due
            # within their EARLY: one wake-up for all of them
            while heap and heap[0][0] <= now + meters[heap[0][1]]._early:
                t, i = heapq.heappop(heap)
                if t == due[i]:
                    turn.setdefault(i, 0)
            ahead: list[tuple[float, int]] = []  #: due again in this wake-up: the next one's
            queue[:] = sorted(turn)
            k = 0
            while k < len(queue):
                i = queue[k]
                k += 1
                # a meter whose time came while the others were turned goes first: a readout
                # due to start is not held up by a hundred readers' acts (a meter turned
                # TURNS_A_WAKE_UP times waits for the next wake-up: no loop without end)
                while heap and heap[0][0] <= time.monotonic():
                    t, j = heapq.heappop(heap)
                    if t != due[j]:
                        continue
                    if turned.get(j, 0) >= TURNS_A_WAKE_UP:
                        ahead.append((t, j))
                        continue
                    take_turn(j)
                if i in turn:
                    take_turn(i)
            for t, j in ahead:
                heapq.heappush(heap, (t, j))
            turned.clear()
    finally:
        ep.close()
        lateness.close()


class PtyHub(Background):
    """Many virtual meters, each on its own pty, served by one thread (``me162-sim --count N``).
    A thread per meter would have them wait for each other's turn at the interpreter; one
    thread takes each meter's next due time in turn and sleeps until the earliest."""

    def __init__(self, meters: list[PtyMeter]) -> None:
        super().__init__()
        self.meters = meters
        self.thread_name = f"me162-pty-hub-{len(meters)}"

    def run(self) -> None:
        serve_ptys(self.meters, self._stop, self.wake_fd, self.ready)

    def close(self) -> None:
        for m in self.meters:
            m.close()
