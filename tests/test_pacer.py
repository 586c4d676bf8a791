"""The pacing thread (simulator/pacer.c) on real ptys: what it writes, in what order, what a
cancel leaves, how it reports a reader that does not read; and the meters on a pty served with
it and without it (ME162_PACER=python) give the same bytes."""

from __future__ import annotations

import contextlib
import errno
import os
import termios
import time
import tty
from collections.abc import Iterator
from datetime import datetime
from pathlib import Path

import pytest
import serial

from me162.protocol import OptionSelect
from me162.simulator import pacer
from me162.simulator.pty_transport import PtyMeter
from me162.simulator.session import MeterOptions
from tests.ptyhelp import write_taken

pytestmark = pytest.mark.timeout(60)


@pytest.fixture
def the_pacer() -> pacer.Pacer:
    p = pacer.shared()
    assert p is not None, "the pacer was not built: is cc installed?"
    return p


@pytest.fixture
def pty() -> Iterator[tuple[int, int]]:
    master, slave = os.openpty()
    tty.setraw(slave)
    os.set_blocking(master, False)
    os.set_blocking(slave, False)
    yield master, slave
    for fd in (master, slave):
        with contextlib.suppress(OSError):
            os.close(fd)


@pytest.fixture
def slot(the_pacer: pacer.Pacer, pty: tuple[int, int]) -> Iterator[int]:
    """A slot for the pty's master, closed before the master is."""
    opened = the_pacer.open(pty[0])
    yield opened
    the_pacer.close(opened)


def wait_written(p: pacer.Pacer, slot: int, n: int) -> None:
    deadline = time.monotonic() + 10
    while p.written(slot) < n:
        assert time.monotonic() < deadline, f"{p.written(slot)} of {n} written"
        time.sleep(0.001)


def read_all(fd: int) -> bytes:
    out = b""
    while True:
        try:
            chunk = os.read(fd, 4096)
        except BlockingIOError:
            return out
        if not chunk:
            return out
        out += chunk


def test_the_pacer_writes_each_character_in_order_and_counts_the_dropped_ones(
    the_pacer: pacer.Pacer, pty: tuple[int, int], slot: int
) -> None:
    slave = pty[1]
    now = time.monotonic()
    # 0 bytes: a character the reader's input flags drop (IGNCR) still counts as handed
    chars = [b"/", b"I", b"", b"\xff\xff", b"\xff\x00K", b"\n"]
    the_pacer.add(slot, [now + 0.001 * k for k in range(len(chars))], chars, 0.0)
    wait_written(the_pacer, slot, len(chars))
    assert read_all(slave) == b"".join(chars)
    assert the_pacer.dropped(slot) == (0, 0)
    # what comes later in time comes later on the wire, however it was added
    now = time.monotonic()
    the_pacer.add(slot, [now + 0.002, now + 0.003], [b"A", b"B"], 0.0)
    the_pacer.add(slot, [now + 0.004], [b"C"], 0.0)
    wait_written(the_pacer, slot, len(chars) + 3)
    assert read_all(slave) == b"ABC"


def test_a_cancel_leaves_nothing_to_be_written(
    the_pacer: pacer.Pacer, pty: tuple[int, int], slot: int
) -> None:
    slave = pty[1]
    now = time.monotonic()
    the_pacer.add(slot, [now, now + 3600, now + 3601], [b"x", b"y", b"z"], 0.0)
    wait_written(the_pacer, slot, 1)
    assert the_pacer.cancel(slot) == 1
    # a character due at once, added after the cancel, is the next to be written
    the_pacer.add(slot, [time.monotonic()], [b"!"], 0.0)
    wait_written(the_pacer, slot, 2)
    assert read_all(slave) == b"x!"
    assert the_pacer.cancel(slot) == 2


def test_once_the_reader_acts_nothing_more_is_written_until_a_cancel(
    the_pacer: pacer.Pacer, pty: tuple[int, int], slot: int
) -> None:
    """The characters were planned on the premise that the reader does nothing; once it has
    (here: written), the thread writes none of them, however late the meter's loop is to
    cancel them."""
    master, slave = pty
    now = time.monotonic()
    the_pacer.add(slot, [now + 0.005 * k for k in range(200)], [b"r"] * 200, 0.0)
    wait_written(the_pacer, slot, 3)
    os.write(slave, b"\x06")  # the reader acts
    # (the count waits for a sweep under way: any sweep after it sees the act)
    written = the_pacer.written(slot)
    time.sleep(0.1)  # twenty more characters come due
    assert the_pacer.written(slot) == written
    assert read_all(slave) == b"r" * written
    assert os.read(master, 16) == b"\x06"  # (what the loop takes before it cancels)
    assert the_pacer.cancel(slot) == written
    the_pacer.add(slot, [time.monotonic()], [b"!"], 0.0)
    wait_written(the_pacer, slot, written + 1)
    assert read_all(slave) == b"!"


def test_a_reader_that_does_not_read_loses_characters_and_is_told(
    the_pacer: pacer.Pacer, pty: tuple[int, int], slot: int
) -> None:
    slave = pty[1]
    n = 150_000  # more than a pty holds (its slave's buffer and the kernel's 64 KiB beyond)
    now = time.monotonic()
    the_pacer.add(slot, [now] * n, [b"a"] * n, 0.0)
    wait_written(the_pacer, slot, n)
    dropped, error = the_pacer.dropped(slot)
    assert error == 0
    assert 0 < dropped < n
    assert len(read_all(slave)) == n - dropped
    assert the_pacer.dropped(slot) == (0, 0)  # (told once)


def test_a_write_error_is_reported_not_swallowed(the_pacer: pacer.Pacer) -> None:
    r, w = os.pipe()
    slot = the_pacer.open(r)  # the read end of a pipe: nothing to read, and no writing (EBADF)
    try:
        the_pacer.add(slot, [time.monotonic()], [b"a"], 0.0)
        wait_written(the_pacer, slot, 1)
        assert the_pacer.dropped(slot) == (0, errno.EBADF)
    finally:
        the_pacer.close(slot)
        os.close(r)
        os.close(w)


def test_a_character_of_four_bytes_is_refused(the_pacer: pacer.Pacer, slot: int) -> None:
    with pytest.raises(ValueError, match="at most 3 bytes"):
        the_pacer.add(slot, [time.monotonic()], [b"abcd"], 0.0)


# --- a meter paced by the thread and by its own loop -------------------------------------------


@pytest.mark.parametrize("how", ["native", "python"])
def test_a_meter_paced_either_way_gives_the_real_meters_bytes(
    how: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    """The same session, read through a port that maps CR to LF (ICRNL: the bytes the pacer
    writes are what the reader's input flags make of them), with the pacing thread and with
    the meter's loop writing each character."""
    real = (
        Path(__file__).resolve().parent.parent / "fixtures" / "captures" / "ME162_1.readout.bin"
    ).read_bytes()
    monkeypatch.setenv("ME162_PACER", how)
    speed = 20.0
    with PtyMeter(MeterOptions(speed=speed, clock_start=datetime(2026, 6, 21, 12), moving=False)) as pm:
        assert (pm._pacer is not None) == (how == "native")
        port = serial.Serial(pm.path, 300, bytesize=7, parity="E", timeout=2)
        fd = port.fileno()

        def set_port(baud: int) -> None:  # (pyserial's own speed change clears ICRNL)
            attrs = termios.tcgetattr(fd)
            attrs[0] |= termios.ICRNL
            attrs[4] = attrs[5] = baud
            termios.tcsetattr(fd, termios.TCSANOW, attrs)

        set_port(termios.B300)
        port.write(b"/?!\r\n")
        ident = port.read_until(b"\n")
        write_taken(pm.served.link, port, OptionSelect("0", "5", "0").to_bytes())
        time.sleep(6 * 10 / 300 / speed + 0.002)
        set_port(termios.B9600)
        data = port.read_until(b"\x03")
        data += port.read(1)
        port.close()
    assert ident + data == real.replace(b"\r", b"\n")


def test_a_meter_pacing_in_its_own_loop_is_turned_at_its_first_characters_time(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    """Paced by its own loop (no pacer thread), a meter asks to be turned when the plan's first
    character is due, not when the pacer thread would want more (a quarter before the end):
    the first characters then went out a dozen at once, a dozen characters late."""
    from me162.simulator.pty_transport import read_port_state

    monkeypatch.setenv("ME162_PACER", "python")
    pm = PtyMeter(MeterOptions(speed=20.0, clock_start=datetime(2026, 6, 21, 12), moving=False))
    port = serial.Serial(pm.path, 300, bytesize=7, parity="E", timeout=0)
    try:
        pm.state = pm._rearm(read_port_state(pm.master))  # (armed, as the loop leaves it:
        pm.reader_open = True
        pm._take_pending()  # the settings-change packets, its own re-arming's included, taken)
        pm.served.reader_wrote(b"/?!\r\n")
        deadline = time.monotonic() + 10
        while not pm.served.due():  # until the identification has begun
            assert time.monotonic() < deadline
            time.sleep(0.001)
        before = time.monotonic()
        wait = pm._plan_ahead()
        assert wait is not None and len(pm._plan) > 4
        assert wait <= pm._plan[0][0] - before
    finally:
        port.close()
        pm.close()


def test_a_readout_is_handed_to_the_pacer_once(monkeypatch: pytest.MonkeyPatch) -> None:
    """The reader's speed change clears packet mode; the simulator sets it again, and that
    tcsetattr of its own comes back as a packet.  A plan made before the packet is taken was
    dropped when it came and made again: every readout was asked of the link and handed to
    the pacer twice, at the busiest moment of a hundred meters signing on."""
    speed = 1.0  # (real time: the reader has 0.2 s to switch before the readout, however busy the machine)
    with PtyMeter(MeterOptions(speed=speed, clock_start=datetime(2026, 6, 21, 12), moving=False)) as pm:
        assert pm._pacer is not None, "the pacer was not built: is cc installed?"
        handed: list[int] = []
        add = pm._pacer.add

        def counted(slot: int, due: list[float], chars: list[bytes], early: float) -> None:
            handed.append(len(due))
            add(slot, due, chars, early)

        monkeypatch.setattr(pm._pacer, "add", counted)
        port = serial.Serial(pm.path, 300, bytesize=7, parity="E", timeout=5)
        port.write(b"/?!\r\n")
        ident = port.read_until(b"\n")
        write_taken(pm.served.link, port, OptionSelect("0", "5", "0").to_bytes())
        time.sleep(6 * 10 / 300 / speed + 0.002)
        port.baudrate = 9600
        data = port.read_until(b"\x03") + port.read(1)
        port.close()
    assert ident.startswith(b"/ISK5ME162") and data.endswith(b"!\r\n\x03" + data[-1:])
    assert sum(handed) == len(ident) + len(data), handed
