"""The reference reader end to end: the me162-read CLI and driver against the virtual meter on
a pty, raw TCP, RFC 2217 and the in-process URL, at an accelerated time scale."""

from __future__ import annotations

import json
import subprocess
import sys
import threading
import time
from dataclasses import replace
from datetime import datetime
from pathlib import Path

import pytest

from me162.reader.driver import PortOptions, read_once
from me162.reader.session import Failure, ReaderConfig, ReaderError
from me162.simulator.events import Did
from me162.simulator.pty_transport import PtyMeter
from me162.simulator.session import MeterOptions
from me162.simulator.tcp_transport import TcpMeter

pytestmark = pytest.mark.timeout(90)

SPEED = 20.0
CLOCK = datetime(2026, 6, 21, 12)


def options(profile: str = "me162", **kw: object) -> MeterOptions:
    return MeterOptions(profile, speed=SPEED, clock_start=CLOCK, moving=False, **kw)  # type: ignore[arg-type]


def cli(*args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", "me162.reader.cli", *args],
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
    )


def test_cli_reads_the_virtual_me162_on_a_pty_as_json() -> None:
    with PtyMeter(options()) as pm:
        p = cli(pm.path, "--speed", str(SPEED), "--json")
    assert p.returncode == 0, p.stderr
    doc = json.loads(p.stdout)
    assert doc["identification"]["raw"] == "/ISK5ME162-0033"
    assert doc["bcc"] == {"present": True, "valid": True}
    assert doc["data_sets"][2]["values"] == [{"value": "0033402.264", "unit": "kWh"}]
    assert (
        doc["session"]["mode"] == "C"
        and doc["session"]["speeds"] == [300, 9600]
        and doc["session"]["virtual"] is False
    )


def test_cli_programming_mode_on_a_pty() -> None:
    with PtyMeter(options()) as pm:
        p = cli(pm.path, "--speed", str(SPEED), "--registers", "1.8.0,2.8.0,0.9.2", "--json")
        assert p.returncode == 0, p.stderr
        regs = json.loads(p.stdout)["registers"]
        assert regs["1.8.0"]["value"] == "0033402.264" and regs["0.9.2"]["value"] == "26.06.21"
        deadline = time.monotonic() + 2
        while time.monotonic() < deadline:  # the B0 may still be on the (virtual) wire
            breaks = [e for e in pm.served.link.events if e.did is Did.BREAK]
            if breaks:
                break
            time.sleep(0.02)
        assert breaks  # the reader signed off with B0


def test_cli_register_error_exit_code_and_table() -> None:
    p = cli("me162://?profile=me162&frozen=1", "--speed", "20", "--registers", "1.8.0,16.7.0")
    assert p.returncode == 8
    assert "16.7.0  ERROR ERROR" in p.stdout and "could not read 16.7.0" in p.stderr


def test_raw_tcp_with_software_parity() -> None:
    with TcpMeter(options(parity_bit=True), 0) as tm:
        res = read_once(PortOptions(tm.url, parity_in_software=True, time_scale=SPEED), ReaderConfig())
    assert res.readout is not None and res.readout.bcc_valid


def test_rfc2217_mode_c_and_programming() -> None:
    with TcpMeter(options(), 0, rfc2217=True) as tm:
        res = read_once(PortOptions(tm.url, time_scale=SPEED), ReaderConfig())
        assert res.readout is not None and res.speeds == [300, 9600]
        time.sleep(0.2)
        res = read_once(PortOptions(tm.url, time_scale=SPEED), ReaderConfig(registers=("2.8.0",)))
        assert res.registers["2.8.0"]["value"] == "0000013.465"


@pytest.mark.parametrize(
    ("profile", "config", "mode"),
    [
        ("mode_a", ReaderConfig(), "A"),
        ("mode_b", ReaderConfig(), "B"),
        ("mt174", ReaderConfig(), "C"),
        ("ebz_dd3", ReaderConfig(mode="D", push_baud=9600), "D"),
    ],
)
def test_modes_a_b_c_d_on_a_pty(profile: str, config: ReaderConfig, mode: str) -> None:
    # The MT174 answers 20-100 ms after the ACK (lowercase k): at 20x that leaves the reader
    # 1-5 ms of real time to switch, less than a busy machine's scheduling delay; at 2x, 10-50 ms.
    speed = 2.0 if profile == "mt174" else SPEED
    with PtyMeter(replace(options(profile), speed=speed)) as pm:
        res = read_once(PortOptions(pm.path, time_scale=speed), config)
    assert res.mode == mode and res.readout is not None and res.readout.data.data_sets


def test_no_meter_behind_the_port() -> None:
    with TcpMeter(options(), 0) as tm:
        tm.served.link.interceptors.append(lambda tx: [])
        with pytest.raises(ReaderError) as e:
            read_once(PortOptions(tm.url, time_scale=SPEED), ReaderConfig(), retries=1)
    assert e.value.failure is Failure.NO_IDENTIFICATION


def test_port_that_does_not_exist() -> None:
    p = cli("/dev/does-not-exist", "--retries", "0")
    assert p.returncode == 9 and "cannot open /dev/does-not-exist" in p.stderr and "Traceback" not in p.stderr


def test_loop_survives_a_port_that_goes_away_and_comes_back(tmp_path: Path) -> None:
    link = tmp_path / "probe"
    meter = PtyMeter(options(), link=link).start()
    proc = subprocess.Popen(
        [
            sys.executable,
            "-m",
            "me162.reader.cli",
            str(link),
            "--speed",
            str(SPEED),
            "--loop",
            "0.3",
            "--count",
            "6",
            "--retries",
            "0",
        ],
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
    )
    assert proc.stdout is not None
    lines = [json.loads(proc.stdout.readline())]
    meter.stop()  # the USB probe is unplugged
    lines.append(json.loads(proc.stdout.readline()))
    meter = PtyMeter(options(), link=link).start()  # and plugged in again
    try:
        rest, _ = proc.communicate(timeout=60)
    finally:
        meter.stop()
    lines += [json.loads(x) for x in rest.splitlines()]
    assert len(lines) == 6
    assert "data_sets" in lines[0]
    assert lines[1]["error"] == "port"
    assert "data_sets" in lines[-1]


def test_progress_is_not_printed_when_not_a_terminal() -> None:
    p = cli("me162://?profile=me162", "--speed", "20", "--baud", "300")
    assert p.returncode == 0 and "receiving readout" not in p.stderr


def test_verbose_shows_the_wire_traffic() -> None:
    p = cli("me162://?profile=me162", "--speed", "20", "--verbose")
    assert p.returncode == 0
    assert ">>   300 2f 3f 21 0d 0a" in p.stderr and "-- speed 9600" in p.stderr


def test_threads_not_left_behind() -> None:
    before = threading.active_count()
    with PtyMeter(options()) as pm:
        read_once(PortOptions(pm.path, time_scale=SPEED), ReaderConfig())
    assert threading.active_count() <= before
