"""The virtual meter on a real pty, real TCP sockets (raw and RFC 2217) and the in-process
pyserial URL, read by a pyserial client at an accelerated time scale."""

from __future__ import annotations

import gc
import os
import signal
import subprocess
import sys
import termios
import time
import tty
from collections.abc import Callable, Iterator
from datetime import datetime
from pathlib import Path

import pytest
import serial

import me162.simulator  # noqa: F401  (registers me162://)
from me162.protocol import OptionSelect
from me162.protocol.frames import Command
from me162.protocol.line import add_parity, strip_parity
from me162.simulator.events import Did
from me162.simulator.link import Link
from me162.simulator.pty_transport import PtyMeter
from me162.simulator.session import MeterOptions
from me162.simulator.tcp_transport import TcpMeter
from tests.ptyhelp import write_taken

pytestmark = pytest.mark.timeout(60)

SPEED = 20.0
IDENT = b"/ISK5ME162-0033\r\n"
REAL = (Path(__file__).resolve().parent.parent / "fixtures" / "captures" / "ME162_1.readout.bin").read_bytes()


def options(**kw: object) -> MeterOptions:
    return MeterOptions(speed=SPEED, clock_start=datetime(2026, 6, 21, 12), moving=False, **kw)  # type: ignore[arg-type]


def ack_and_switch(link: Link, port: serial.SerialBase, option: str = "050", baud: int = 9600) -> None:
    write_taken(link, port, OptionSelect(*option).to_bytes())
    time.sleep(6 * 10 / 300 / SPEED + 0.002)  # the ACK's transmission time, then switch
    port.baudrate = baud


def read_frame(port: serial.SerialBase) -> bytes:
    data = port.read_until(b"\x03")
    return data + port.read(1)


@pytest.fixture
def pty_meter() -> Iterator[PtyMeter]:
    with PtyMeter(options()) as pm:
        yield pm


def test_pty_readout_is_byte_identical(pty_meter: PtyMeter) -> None:
    port = serial.Serial(pty_meter.path, 300, bytesize=7, parity="E", timeout=2)
    port.write(b"/?!\r\n")
    ident = port.read_until(b"\r\n")
    ack_and_switch(pty_meter.served.link, port)
    assert ident + read_frame(port) == REAL
    port.close()


def test_a_full_collection_while_a_meter_serves_does_not_hold_it_up() -> None:
    """A full cyclic collection stops every thread of the process while it walks every object
    it tracks.  What the process held when the meter started is left out of the walks (see
    me162.simulator.background), so one in the middle of a session, in a process as full as
    a long test run's, is over long before the readout starts; walking it all would take that
    process (reader and meter) past the readout's start at 40x."""
    # as many objects as a test process holds after a few hundred tests
    held: list[list[object]] = [[i] for i in range(400_000)]
    for x in held:
        x.append(x)  # (in cycles: only the cyclic collector frees them)
    fast = MeterOptions(speed=40.0, clock_start=datetime(2026, 6, 21, 12), moving=False)
    with PtyMeter(fast) as pm:
        port = serial.Serial(pm.path, 300, bytesize=7, parity="E", timeout=2)
        port.write(b"/?!\r\n")
        ident = port.read_until(b"\r\n")
        write_taken(pm.served.link, port, OptionSelect("0", "5", "0").to_bytes())
        gc.collect()  # as one the allocations of another thread would start, here
        time.sleep(6 * 10 / 300 / 40.0 + 0.002)
        port.baudrate = 9600
        assert ident + read_frame(port) == REAL
        port.close()
    del held


def test_pty_pacing_takes_the_wire_time(pty_meter: PtyMeter) -> None:
    port = serial.Serial(pty_meter.path, 300, bytesize=7, parity="E", timeout=2)
    t0 = time.monotonic()
    port.write(b"/?!\r\n")
    port.read_until(b"\r\n")
    elapsed = (time.monotonic() - t0) * SPEED
    # request 5 chars + reaction >= 0.22 s + ident 17 chars, at 300 Bd
    assert elapsed >= (5 + 17) * 10 / 300 + 0.22 - 0.05
    port.close()


def test_pty_programming_mode(pty_meter: PtyMeter) -> None:
    port = serial.Serial(pty_meter.path, 300, bytesize=7, parity="E", timeout=2)
    port.write(b"/?!\r\n")
    port.read_until(b"\r\n")
    ack_and_switch(pty_meter.served.link, port, "051")
    assert read_frame(port) == b"\x01P0\x02()\x03`"
    port.write(Command.read("1.8.0").to_bytes())
    assert read_frame(port) == b"\x02(0033402.264*kWh)\x03T"
    port.write(Command.break_().to_bytes())
    time.sleep(0.05)
    port.close()


def test_pty_switching_too_early_gets_garbage(pty_meter: PtyMeter) -> None:
    port = serial.Serial(pty_meter.path, 300, bytesize=7, parity="E", timeout=1)
    port.write(b"/?!\r\n")
    port.read_until(b"\r\n")
    port.write(OptionSelect("0", "5", "0").to_bytes())
    port.flush()  # returns at once on a pty, as on many USB adapters
    port.baudrate = 9600
    data = port.read(400)
    assert data and not data.startswith(b"\x02C.1.0")
    assert any(e.did is Did.FALLBACK for e in pty_meter.served.link.events)
    port.close()


def test_pty_a_switch_in_the_middle_of_a_readout_garbles_the_rest() -> None:
    """While a readout streams the simulator writes the bytes the link said were coming
    without asking it again; a reader that switches speed in the middle makes it stop at
    once, and what is still on the line reaches it garbled, as from a real meter."""
    with PtyMeter(MeterOptions(speed=4.0, clock_start=datetime(2026, 6, 21, 12), moving=False)) as pm:
        port = serial.Serial(pm.path, 300, bytesize=7, parity="E", timeout=0.5)
        port.write(b"/?!\r\n")
        assert port.read_until(b"\r\n") == IDENT
        port.write(OptionSelect("0", "5", "0").to_bytes())
        time.sleep(6 * 10 / 300 / 4.0 + 0.002)
        port.baudrate = 9600
        head = port.read(20)
        port.baudrate = 300  # 20 of 198 bytes in: the rest is 9600 Bd seen at 300 Bd
        rest = port.read(400)
        port.close()
    readout = REAL[len(IDENT) :]
    assert head == readout[:20]
    assert len(head + rest) < len(readout) - 40 and not rest.endswith(readout[-8:]), rest


def test_pty_reports_an_unraw_port_and_translates_cr(pty_meter: PtyMeter) -> None:
    fd = os.open(pty_meter.path, os.O_RDWR | os.O_NOCTTY)
    tty.setraw(fd)  # raw (a new port is cooked), then two flags back on
    attrs = termios.tcgetattr(fd)
    attrs[0] |= termios.ICRNL
    attrs[3] |= termios.ICANON
    attrs[4] = attrs[5] = termios.B300
    termios.tcsetattr(fd, termios.TCSANOW, attrs)
    os.write(fd, b"/?!\r\n")
    time.sleep(1.5 / SPEED * 10)
    os.set_blocking(fd, False)
    got = b""
    deadline = time.monotonic() + 2
    while b"\n\n" not in got and time.monotonic() < deadline:
        try:
            got += os.read(fd, 100)
        except BlockingIOError:
            time.sleep(0.01)
    os.close(fd)
    assert got.startswith(b"/ISK5ME162-0033\n\n")  # CR became LF, as the reader's ICRNL says
    reports = [e.detail for e in pty_meter.served.link.events if e.kind == "port"]
    assert any("canonical mode" in r and "ICRNL" in r for r in reports)


def test_a_speed_set_after_c_lflag_was_cleared_counts_for_the_bytes_written_after_it() -> None:
    """node-serialport's binding clears c_lflag (EXTPROC with it) at one speed, sets 300 Bd and
    writes the request at once. With EXTPROC off no packet reports the 300 Bd: a meter that
    took the request before looking had it sent at the first speed and never answered (1 run
    in 4 of tests/test_serial_styles.py beside CPU burners). The meter is turned by hand here,
    where that race put its turns."""
    import select

    pm = PtyMeter(MeterOptions(speed=SPEED, moving=False))
    fd = os.open(pm.path, os.O_RDWR | os.O_NOCTTY)
    try:
        attrs = termios.tcgetattr(fd)
        attrs[0] = attrs[1] = attrs[3] = 0  # c_lflag cleared: EXTPROC with it
        attrs[2] = termios.CS7 | termios.PARENB | termios.CREAD | termios.CLOCAL
        attrs[4] = attrs[5] = termios.B38400
        termios.tcsetattr(fd, termios.TCSANOW, attrs)
        pm.handle(select.POLLIN, 0.0)  # the packet of that change: the meter sees 38400 Bd
        assert pm.state is not None and pm.state.baud == 38400 and not pm.state.extproc
        attrs[4] = attrs[5] = termios.B300
        termios.tcsetattr(fd, termios.TCSANOW, attrs)  # (no packet: EXTPROC is off)
        os.write(fd, b"/?!\r\n")
        pm.handle(select.POLLIN, 0.0)
        (request,) = [e for e in pm.served.link.events if e.kind == "data" and e.dir == "r2m"]
        assert request.baud == 300
    finally:
        os.close(fd)
        pm.close()


def test_pty_reopen_with_the_same_settings_works(pty_meter: PtyMeter) -> None:
    for _ in range(3):
        port = serial.Serial(pty_meter.path, 300, bytesize=7, parity="E", timeout=2)
        port.write(b"/?!\r\n")
        assert port.read_until(b"\r\n") == IDENT
        port.close()
        time.sleep(10.0 / SPEED + 0.1)  # let the fallback readout (t_t + 6.6 s at 300 Bd) pass


def test_pty_link_symlink(tmp_path: Path) -> None:
    link = tmp_path / "ttyME162"
    with PtyMeter(options(), link=link) as pm:
        assert link.is_symlink() and os.path.realpath(link) == pm.path
        port = serial.Serial(str(link), 300, bytesize=7, parity="E", timeout=2)
        port.write(b"/?!\r\n")
        assert port.read_until(b"\r\n") == IDENT
        port.close()
    assert not link.exists()


def test_rfc2217_carries_speed_and_format() -> None:
    with TcpMeter(options(), 0, rfc2217=True) as tm:
        port = serial.serial_for_url(tm.url, baudrate=300, bytesize=7, parity="E", timeout=2)
        port.write(b"/?!\r\n")
        ident = port.read_until(b"\r\n")
        ack_and_switch(tm.served.link, port)
        assert ident + read_frame(port) == REAL
        port.close()
        time.sleep(0.2)
        port = serial.serial_for_url(tm.url, baudrate=300, bytesize=8, parity="N", timeout=1)
        port.write(b"/?!\r\n")  # 8N1 without the parity bit: the meter sees parity errors
        assert port.read_until(b"\r\n") == b""
        port.close()


def test_raw_tcp_with_the_parity_bit() -> None:
    with TcpMeter(options(parity_bit=True), 0) as tm:
        port = serial.serial_for_url(tm.url, timeout=2)
        port.write(add_parity(b"/?!\r\n"))
        ident = port.read_until(add_parity(b"\r\n"))
        assert strip_parity(ident) == IDENT and ident != IDENT
        port.write(add_parity(OptionSelect("0", "5", "0").to_bytes()))
        data = port.read_until(add_parity(b"\x03")) + port.read(1)
        assert strip_parity(ident + data) == REAL
        port.close()


def test_url_handler_in_process() -> None:
    url = "me162://?profile=me162&speed=50&clock=2026-06-21T12:00:00&frozen=1"
    port = serial.serial_for_url(url, baudrate=300, bytesize=7, parity="E", timeout=2)
    port.write(b"/?!\r\n")
    ident = port.read_until(b"\r\n")
    port.write(OptionSelect("0", "5", "0").to_bytes())
    port.flush()  # waits for the wire here, like a real UART
    port.baudrate = 9600
    assert ident + read_frame(port) == REAL
    port.close()


def test_url_handler_rejects_bad_options() -> None:
    with pytest.raises(serial.SerialException, match="unknown option"):
        serial.serial_for_url("me162://?colour=red")
    with pytest.raises(serial.SerialException, match="no profile called"):
        serial.serial_for_url("me162://?profile=nope")


def test_url_handler_mode_d_and_wrong_format() -> None:
    port = serial.serial_for_url(
        "me162://?profile=ebz_dd3&speed=20", baudrate=9600, bytesize=7, parity="E", timeout=1
    )
    telegram = port.read_until(b"!\r\n")
    assert b"/EBZ5DD3BZ06ETA_107\r\n\r\n" in telegram
    port.baudrate = 2400
    port.reset_input_buffer()
    assert b"/EBZ5" not in port.read(300)
    port.close()


def test_sim_cli_serves_several_meters_until_stopped(tmp_path: Path) -> None:
    link = tmp_path / "meter"
    proc = subprocess.Popen(
        [
            sys.executable,
            "-m",
            "me162.simulator.cli",
            "--pty",
            "--count",
            "2",
            "--link",
            str(link),
            "--speed",
            str(SPEED),
        ],
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
    )
    try:
        assert proc.stdout is not None
        paths = [proc.stdout.readline().strip() for _ in range(2)]
        assert paths == [str(tmp_path / "meter0"), str(tmp_path / "meter1")]
        for p in paths:
            port = serial.Serial(p, 300, bytesize=7, parity="E", timeout=2)
            port.write(b"/?!\r\n")
            assert port.read_until(b"\r\n") == IDENT
            port.close()
    finally:
        proc.send_signal(signal.SIGTERM)
        assert proc.wait(timeout=10) == 0


def test_sim_cli_bad_profile_is_one_line() -> None:
    p = subprocess.run(
        [sys.executable, "-m", "me162.simulator.cli", "--profile", "nope"],
        capture_output=True,
        text=True,
        timeout=30,
        check=False,
    )
    assert p.returncode == 2 and p.stderr.strip().count("\n") == 0 and "no profile called" in p.stderr


@pytest.mark.parametrize("flag", ["--tcp", "--rfc2217"])
def test_sim_cli_on_tcp_and_rfc2217(flag: str) -> None:
    from me162.reader.driver import PortOptions, read_once
    from me162.reader.session import ReaderConfig

    proc = subprocess.Popen(
        [sys.executable, "-m", "me162.simulator.cli", flag, "0", "--speed", str(SPEED), "--frozen"],
        stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True,
    )  # fmt: skip
    try:
        assert proc.stdout is not None
        url = proc.stdout.readline().strip()
        assert url.startswith("socket://127.0.0.1:" if flag == "--tcp" else "rfc2217://127.0.0.1:")
        res = read_once(PortOptions(url, time_scale=SPEED), ReaderConfig())
        assert res.readout is not None and res.readout.bcc_valid
    finally:
        proc.send_signal(signal.SIGTERM)
        assert proc.wait(timeout=10) == 0


def test_one_thread_serves_many_meters_and_a_pulled_probe_stalls_none_of_the_others() -> None:
    import threading

    from me162.reader.driver import PortOptions, read_once
    from me162.reader.session import ReaderConfig
    from me162.simulator.pty_transport import PtyHub

    scenario = Path(__file__).resolve().parent.parent / "fixtures" / "scenarios" / "probe-pulled-off.yaml"
    meters = [
        PtyMeter(MeterOptions(speed=SPEED, clock_start=datetime(2026, 6, 21, 12), moving=False), index=i)
        for i in range(4)
    ]
    meters.append(PtyMeter(MeterOptions(speed=SPEED, moving=False, scenarios=[scenario]), index=4))
    results: dict[int, object] = {}

    def read(i: int, m: PtyMeter) -> None:
        try:
            res = read_once(PortOptions(m.path, time_scale=SPEED), ReaderConfig(), retries=0)
            results[i] = res.readout is not None and res.readout.bcc_valid
        except Exception as e:  # the pulled probe's reader fails: that is its business
            results[i] = e

    with PtyHub(meters) as hub:
        assert hub.thread_name.startswith("me162-pty-hub")
        threads = [threading.Thread(target=read, args=(i, m)) for i, m in enumerate(meters)]
        for t in threads:
            t.start()
        for t in threads:
            t.join(timeout=60)
    assert [results[i] for i in range(4)] == [True] * 4, results
    assert any(e.kind == "note" and "pulled off" in e.detail for e in meters[4].served.link.events)


def test_a_readers_act_is_dated_when_the_hub_saw_it_not_when_its_meters_turn_came() -> None:
    """Two readers write while the hub is busy with a third meter; it then turns the first of
    the two for 0.3 s (as a hundred meters' turns can take).  The second reader's request is
    dated when the hub saw it: dated when its own turn came, it would be 0.3 s late, and a
    reader's switch dated that late falls after the readout has begun (garbled bytes for a
    correct reader)."""
    import threading

    from me162.simulator.events import Dir, Wire
    from me162.simulator.pty_transport import PtyHub

    meters = [
        PtyMeter(MeterOptions(clock_start=datetime(2026, 6, 21, 12), moving=False), index=i) for i in range(3)
    ]
    slow, quick, gate = meters
    held, release = threading.Event(), threading.Event()

    def hold(m: PtyMeter, then: Callable[[], None]) -> None:
        handle = m.handle
        done = threading.Event()

        def once_it_has_the_request(flags: int, late: float) -> None:
            handle(flags, late)
            if m._wrote and not done.is_set():
                done.set()
                then()

        m.handle = once_it_has_the_request  # type: ignore[method-assign]

    def wait_for_release() -> None:
        held.set()
        release.wait(5)

    hold(gate, wait_for_release)
    hold(slow, lambda: time.sleep(0.3))
    with PtyHub(meters):
        ports = [serial.Serial(m.path, 300, bytesize=7, parity="E", timeout=2) for m in meters]
        time.sleep(0.1)  # (the hub has taken the opens)
        ports[2].write(b"/?!\r\n")
        assert held.wait(5)  # the hub is in the gate's turn
        ports[1].write(b"/?!\r\n")
        ports[0].write(b"/?!\r\n")
        written_at = quick.served.now()
        release.set()
        assert ports[1].read_until(b"\r\n") == IDENT
        for p in ports:
            p.close()
    (request,) = [e for e in quick.served.link.events if e.kind is Wire.DATA and e.dir is Dir.R2M]
    assert request.t - written_at < 0.2, f"dated {request.t - written_at:.3f} s after it was written"
