"""The serial-port matrix: real programs that set their port the ways real readers do — C with
c_lflag = 0, cfmakeraw, TCSETS2/BOTHER and re-applied settings; pyserial with properties set
after open; node-serialport — each reads the virtual ME162 at 9600 Bd on a pty; 20 sessions in
a row in shuffled order on one simulator (with readers that open and close at once or are
killed mid-session between them) all succeed; an early switch is caught in every style.

The C reader is compiled with the system compiler and the Node.js reader uses the serialport
package that `make test-deps` installs; in CI a missing part fails these tests, never skips them.
"""

from __future__ import annotations

import errno
import os
import random
import shutil
import signal
import subprocess
import sys
import time
from collections.abc import Iterator
from pathlib import Path

import pytest

from me162.simulator import ptyfix
from me162.simulator.pty_transport import PtyMeter
from me162.simulator.session import MeterOptions

pytestmark = pytest.mark.timeout(240)
READERS = Path(__file__).resolve().parent / "readers"
NODE_DIR = READERS / "node"
SPEED = 2.0  # slow enough that a loaded machine still switches within the 200 ms windows
READOUT_START = "C.1.0(28342193)\r\n0.0.0(28342193)\r\n1.8.0(0033402.264*kWh)"


@pytest.fixture(scope="module")
def c_reader(tmp_path_factory: pytest.TempPathFactory) -> Path:
    cc = shutil.which("cc") or shutil.which("gcc")
    assert cc, "no C compiler: `make test-deps` installs gcc"
    out = tmp_path_factory.mktemp("c") / "styles"
    subprocess.run([cc, "-Wall", "-O2", "-o", str(out), str(READERS / "c" / "styles.c")], check=True)
    return out


@pytest.fixture(scope="module")
def node() -> str:
    exe = shutil.which("node")
    assert exe, "no Node.js: `make test-deps` installs it"
    assert (NODE_DIR / "node_modules" / "serialport").is_dir(), (
        "the serialport npm package is missing: run `make test-deps`"
    )
    return exe


@pytest.fixture
def meter() -> Iterator[PtyMeter]:
    with PtyMeter(MeterOptions(speed=SPEED, moving=False)) as pm:
        yield pm


def commands(c_reader: Path, node: str, port: str) -> dict[str, list[str]]:
    py = [sys.executable, str(READERS / "pyserial_styles.py"), port, str(SPEED)]
    c = [str(c_reader), port, str(SPEED)]
    return {
        "c-lflag0": [*c, "lflag0"],
        "c-cfmakeraw": [*c, "cfmakeraw"],
        "c-bother": [*c, "bother"],
        "c-reapply": [*c, "reapply"],
        "pyserial-constructor": [*py, "constructor"],
        "pyserial-after-open": [*py, "after-open"],
        "node-serialport": [node, str(NODE_DIR / "reader.js"), port, str(SPEED)],
    }


def run(argv: list[str], env: dict[str, str] | None = None) -> subprocess.CompletedProcess[str]:
    p = subprocess.run(argv, capture_output=True, timeout=60, check=False, env=env)
    # latin-1 and no newline translation: the readout's CR LF stay as the meter sent them
    return subprocess.CompletedProcess(
        argv, p.returncode, p.stdout.decode("latin-1"), p.stderr.decode("latin-1")
    )


def after_session(meter: PtyMeter) -> None:
    """Let the reader's close reach the simulator (a real probe is not re-plugged in 0 s)."""
    deadline = time.monotonic() + 5
    while meter.reader_open and time.monotonic() < deadline:
        time.sleep(0.01)
    time.sleep(0.05)


@pytest.mark.parametrize(
    "style",
    ["c-lflag0", "c-cfmakeraw", "c-bother", "c-reapply", "pyserial-constructor", "pyserial-after-open",
     "node-serialport"],
)  # fmt: skip
def test_each_style_reads_the_virtual_me162_at_9600(
    style: str, c_reader: Path, node: str, meter: PtyMeter
) -> None:
    p = run(commands(c_reader, node, meter.path)[style])
    assert p.returncode == 0, p.stderr
    assert p.stdout.startswith(READOUT_START)
    settings = [e for e in meter.served.link.events if e.kind == "settings"]
    assert [e.baud for e in settings][-1:] == [9600], "the simulator did not see the switch"


def test_twenty_sessions_in_shuffled_order_all_succeed(c_reader: Path, node: str, meter: PtyMeter) -> None:
    cmds = commands(c_reader, node, meter.path)
    styles = [*sorted(cmds)] * 3
    random.Random(162).shuffle(styles)
    styles = styles[:20]
    # Between them: readers that leave the port in a state the next one must not inherit.
    py = [sys.executable, str(READERS / "pyserial_styles.py"), meter.path, str(SPEED)]
    for i, style in enumerate(styles):
        if i % 5 == 1:  # opened, set to 300 7E1 and closed at once
            assert run([*py, "open-close"]).returncode == 0
            after_session(meter)
        if i % 5 == 3:  # killed with SIGKILL after the identification, c_lflag cleared
            with subprocess.Popen([str(c_reader), meter.path, str(SPEED), "lflag0", "--stall"]) as victim:
                deadline = time.monotonic() + 5
                while time.monotonic() < deadline and not any(
                    e.kind == "data" and e.detail == "identification"
                    for e in list(meter.served.link.events)[-6:]
                ):
                    time.sleep(0.01)
                time.sleep(0.05)
                victim.send_signal(signal.SIGKILL)
            after_session(meter)
            time.sleep(10.0 / SPEED)  # the fallback readout of the killed session passes
        p = run(cmds[style])
        assert p.returncode == 0, f"session {i + 1} ({style}): {p.stderr}"
        assert p.stdout.startswith(READOUT_START), f"session {i + 1} ({style})"
        after_session(meter)


@pytest.mark.parametrize(
    "style", ["c-lflag0", "c-cfmakeraw", "c-bother", "pyserial-constructor", "node-serialport"]
)
def test_an_early_switch_is_caught_in_every_style(
    style: str, c_reader: Path, node: str, meter: PtyMeter
) -> None:
    p = run([*commands(c_reader, node, meter.path)[style], "--early"])
    events = list(meter.served.link.events)
    ack = next(e for e in events if e.kind == "data" and e.dir == "r2m" and e.data.startswith(b"\x06"))
    switch = next(e for e in events if e.kind == "settings" and e.baud == 9600)
    ack_end = ack.t + 6 * 10 / 300
    assert switch.t < ack_end - 0.1, (switch.t, ack.t)  # seen as switched long before the ACK left
    assert p.returncode != 0 or not p.stdout.startswith(READOUT_START)


def test_settings_re_applied_at_once_meet_glibcs_einval_and_poison_nothing(
    c_reader: Path, node: str, meter: PtyMeter
) -> None:
    # pyserial re-applying unchanged 7E1 settings right after the open: glibc fails the
    # tcsetattr (the simulator cannot change what glibc sees in time) ...
    py = [sys.executable, str(READERS / "pyserial_styles.py"), meter.path, str(SPEED)]
    immediate = run([*py, "immediate"])
    after_session(meter)
    if immediate.returncode != 0:
        assert "Invalid argument" in immediate.stderr
        notes = [e.detail for e in meter.served.link.events if e.kind == "port"]
        assert any("EINVAL" in n for n in notes), notes
    # ... and the next reader finds a fresh port.
    p = run(commands(c_reader, node, meter.path)["pyserial-constructor"])
    assert p.returncode == 0, p.stderr


def test_with_the_pty_fix_settings_re_applied_at_once_read_every_time(meter: PtyMeter) -> None:
    # The same reader as above, as me162-check runs readers (LD_PRELOAD=$(me162-sim --pty-fix)):
    # re-applied 7E1 settings succeed on the pty as they do on a real serial port.
    env = ptyfix.reader_env()
    assert "ptyfix-" in env.get("LD_PRELOAD", ""), "the pty fix was not built: is cc installed?"
    py = [sys.executable, str(READERS / "pyserial_styles.py"), meter.path, str(SPEED)]
    for i in range(3):
        p = run([*py, "immediate"], env=env)
        assert p.returncode == 0, f"session {i + 1}: {p.stderr}"
        assert p.stdout.startswith(READOUT_START), f"session {i + 1}: {p.stdout!r}"
        after_session(meter)
    notes = [e.detail for e in meter.served.link.events if e.kind == "port"]
    assert not any("EINVAL" in n for n in notes), notes


PTYFIX_PROBE = r"""
#define _GNU_SOURCE
#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <termios.h>
#include <unistd.h>
int main(void) {
    int m = posix_openpt(O_RDWR | O_NOCTTY);
    grantpt(m); unlockpt(m);
    int fd = open(ptsname(m), O_RDWR | O_NOCTTY);
    struct termios t;
    tcgetattr(fd, &t);
    cfmakeraw(&t);
    t.c_cflag = (t.c_cflag & ~CSIZE) | CS7 | PARENB;
    cfsetspeed(&t, B300);
    int first = tcsetattr(fd, TCSANOW, &t);
    int second = tcsetattr(fd, TCSANOW, &t);
    int second_errno = second ? errno : 0;
    errno = 0;
    int bad = tcsetattr(fd, 99, &t);          /* an invalid action: EINVAL whatever the fix */
    int bad_errno = errno;
    int pipefd[2]; pipe(pipefd);
    errno = 0;
    int notty = tcsetattr(pipefd[0], TCSANOW, &t);  /* not a terminal: ENOTTY whatever the fix */
    printf("%d %d %d %d %d %d %d\n", first, second, second_errno, bad, bad_errno, notty, errno);
    return 0;
}
"""


def test_the_pty_fix_turns_only_glibcs_pty_einval_into_success(tmp_path: Path) -> None:
    cc = shutil.which("cc") or shutil.which("gcc")
    assert cc, "no C compiler: `make test-deps` installs gcc"
    (tmp_path / "probe.c").write_text(PTYFIX_PROBE)
    subprocess.run(
        [cc, "-Wall", "-Werror", "-o", str(tmp_path / "probe"), str(tmp_path / "probe.c")], check=True
    )
    plain = subprocess.run([str(tmp_path / "probe")], capture_output=True, text=True, check=True)
    first, second, second_errno, *_ = map(int, plain.stdout.split())
    assert first == 0
    # Without the fix: Debian's glibc (this project's CI) fails the repeated call.
    assert (second, second_errno) == (-1, errno.EINVAL), plain.stdout
    fixed = subprocess.run(
        [str(tmp_path / "probe")], capture_output=True, text=True, check=True, env=ptyfix.reader_env()
    )
    assert list(map(int, fixed.stdout.split())) == [0, 0, 0, -1, errno.EINVAL, -1, errno.ENOTTY], fixed.stdout


def test_a_link_never_leads_into_another_terminal_after_kill_9(tmp_path: Path) -> None:
    link = tmp_path / "ttyME162"
    sim = subprocess.Popen(
        [sys.executable, "-m", "me162.simulator.cli", "--pty", "--link", str(link)],
        stdout=subprocess.PIPE,
        stderr=subprocess.DEVNULL,
        text=True,
    )
    assert sim.stdout is not None
    assert sim.stdout.readline().strip() == str(link)
    target = os.readlink(link)
    assert target.startswith(f"/proc/{sim.pid}/fd/")
    fd = os.open(link, os.O_RDWR | os.O_NOCTTY)  # it opens the pty while the simulator lives
    assert os.ttyname(fd).startswith("/dev/pts/")
    os.close(fd)
    sim.send_signal(signal.SIGKILL)
    sim.wait(timeout=10)
    assert link.is_symlink() and not link.exists()  # the link dangles: it leads nowhere
    with pytest.raises(FileNotFoundError):
        os.open(link, os.O_RDWR | os.O_NOCTTY)
