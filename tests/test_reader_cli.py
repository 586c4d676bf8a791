"""me162-read's command line: every bad value refused up front with one line and exit 2,
signals, a closed stdout, and a virtual meter that says it is virtual."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest

from me162.simulator.events import Did
from me162.simulator.pty_transport import PtyMeter
from me162.simulator.session import MeterOptions

V = "me162://?profile=me162&frozen=1"


def cli(*args: str, timeout: float = 60) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", "me162.reader.cli", *args],
        capture_output=True,
        text=True,
        timeout=timeout,
        check=False,
    )


BAD = [
    ((), "the following arguments are required: port"),
    ((V, "--address", "a!b"), "may hold only 0-9, A-Z, a-z and space"),
    ((V, "--baud", "²"), "--baud: must be one of 300"),
    ((V, "--baud", "12345"), "--baud: must be one of 300"),
    ((V, "--baud", "0"), "--baud: must be one of 300"),
    ((V, "--speed", "inf"), "--speed: must be more than 0"),
    ((V, "--speed", "nan"), "--speed: must be more than 0"),
    ((V, "--speed", "0"), "--speed: must be more than 0"),
    ((V, "--change-delay", "-5"), "--change-delay: must be at least 0"),
    ((V, "--push-baud", "0"), "--push-baud: must be one of 300"),
    ((V, "--loop", "1", "--count", "0"), "--count: must be between 1"),
    ((V, "--loop", "1", "--count", "-3"), "--count: must be between 1"),
    ((V, "--count", "2"), "--count goes with --loop"),
    ((V, "--loop", "-1"), "--loop: must be more than 0"),
    ((V, "--retries", "x"), "--retries: must be a whole number"),
    ((V, "--registers", "1.8.0,a!b"), "is not a register address"),
    ((V, "--record", "/no/such/folder/s.capture.jsonl"), "the folder /no/such/folder does not exist"),
    ((V, "--mode", "E"), "invalid choice"),
]


@pytest.mark.parametrize(("args", "message"), BAD, ids=[" ".join(a[1:]) or "no port" for a, _ in BAD])
def test_a_bad_value_is_refused_with_one_line_and_exit_2(args: tuple[str, ...], message: str) -> None:
    p = cli(*args, timeout=20)
    assert p.returncode == 2
    assert p.stdout == ""
    lines = p.stderr.strip().splitlines()
    assert len(lines) == 1 and lines[0].startswith("me162-read: ") and message in lines[0], p.stderr


def test_a_reading_of_the_virtual_meter_says_it_is_virtual() -> None:
    p = cli(V, "--speed", "20")
    assert p.returncode == 0, p.stderr
    assert p.stdout.startswith("VIRTUAL METER (me162://")
    doc = json.loads(cli(V, "--speed", "20", "--json").stdout)
    assert doc["session"]["virtual"] is True and doc["session"]["speeds"] == [300, 9600]


def test_mode_d_header_says_how_it_was_read() -> None:
    p = cli("me162://?profile=ebz_dd3", "--speed", "20", "--mode", "D", "--push-baud", "9600")
    assert p.returncode == 0, p.stderr
    assert "mode D, 9600 Bd (the identification announces mode C, 9600 Bd)" in p.stdout
    assert "session: mode D, 300 -> 9600 Bd" in p.stdout


def test_a_closed_stdout_is_not_an_error() -> None:
    with subprocess.Popen(
        [sys.executable, "-m", "me162.reader.cli", V, "--speed", "20", "--json"],
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
    ) as p:
        assert p.stdout is not None and p.stderr is not None
        p.stdout.read(10)
        p.stdout.close()  # like `| head -c 10`
        err = p.stderr.read().decode()
        assert p.wait(timeout=60) == 0
    assert "Traceback" not in err


@pytest.mark.timeout(120)
@pytest.mark.parametrize("sig", [signal.SIGINT, signal.SIGTERM])
def test_a_signal_in_programming_mode_sends_b0_and_exits_130(sig: signal.Signals) -> None:
    # A slow virtual meter (1x) and many registers: the reader is in programming mode when
    # the signal comes; the meter must see a B0, or it would stay deaf for a minute.
    with PtyMeter(MeterOptions(moving=False)) as pm:
        p = subprocess.Popen(
            [sys.executable, "-m", "me162.reader.cli", pm.path, "--registers", ",".join(["1.8.0"] * 30)],
            stdout=subprocess.PIPE,
            stderr=subprocess.PIPE,
            text=True,
        )
        deadline = time.monotonic() + 30
        while time.monotonic() < deadline and not any(
            e.did is Did.COMMAND and e.detail.startswith("R1") for e in list(pm.served.link.events)
        ):
            time.sleep(0.05)
        os.kill(p.pid, sig)
        _, err = p.communicate(timeout=30)
        deadline = time.monotonic() + 10
        while time.monotonic() < deadline and not any(
            e.did is Did.BREAK for e in list(pm.served.link.events)
        ):
            time.sleep(0.05)
        events = list(pm.served.link.events)
    assert p.returncode == 130, err
    assert err.strip().splitlines() == [f"me162-read: stopped by {sig.name}"]
    assert any(e.did is Did.BREAK and e.detail.startswith("B0") for e in events), [
        (round(e.t, 3), e.kind, e.data, e.detail) for e in events[-12:]
    ]


def test_the_help_lists_the_exit_codes() -> None:
    out = cli("--help").stdout
    assert "exit codes: 0 success" in out and "130 interrupted" in out and "me162://" in out


def test_record_into_an_existing_folder_works(tmp_path: Path) -> None:
    p = cli(V, "--speed", "20", "--record", str(tmp_path / "s.capture.jsonl"))
    assert p.returncode == 0, p.stderr
    assert (tmp_path / "s.capture.jsonl").exists()


@pytest.mark.parametrize("tool", ["me162.reader.cli", "me162.simulator.cli", "me162.conformance.cli"])
def test_every_command_says_its_version(tool: str) -> None:
    from me162.protocol.version import __version__

    p = subprocess.run(
        [sys.executable, "-m", tool, "--version"], capture_output=True, text=True, timeout=30, check=False
    )
    assert p.returncode == 0 and p.stdout.strip().endswith(__version__) and __version__ != "0+unknown"


@pytest.mark.parametrize(
    "argv",
    [
        ["me162.conformance.cli", "--list"],
        ["me162.simulator.cli", "capture", "show", "fixtures/captures/ME162_1.capture.jsonl"],
    ],
)
def test_a_closed_stdout_is_not_an_error_for_the_other_commands(argv: list[str]) -> None:
    root = Path(__file__).resolve().parent.parent
    with subprocess.Popen(
        [sys.executable, "-m", *argv], stdout=subprocess.PIPE, stderr=subprocess.PIPE, cwd=root
    ) as p:
        assert p.stdout is not None and p.stderr is not None
        p.stdout.close()  # closed before the command writes anything (`| head -0`)
        err = p.stderr.read().decode()
        assert p.wait(timeout=60) == 0, err
    assert "Traceback" not in err
