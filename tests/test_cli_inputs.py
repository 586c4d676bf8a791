"""Bad input to every command line: refused up front with one line on stderr, a non-zero exit
code that --help lists, no traceback, and nothing left behind in the folder it ran in."""

from __future__ import annotations

import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest

pytestmark = pytest.mark.timeout(120)

READ, SIM, CHECK = "me162.reader.cli", "me162.simulator.cli", "me162.conformance.cli"
DECL = '[reader]\nname = "x"\ncommand = ["true", "{port}"]\n'

#: (id, module, arguments, files to write first, exit code, a fragment of the one line)
CASES = [
    ("sim-tcp-port-too-big", SIM, ["--tcp", "70000"], {}, 2, "--tcp: must be between 0 and 65535, not 70000"),
    ("sim-rfc2217-port-text", SIM, ["--rfc2217", "x"], {}, 2, "--rfc2217: must be a whole number"),
    ("sim-speed-nan", SIM, ["--speed", "nan"], {}, 2, "--speed: must be more than 0"),
    ("sim-speed-zero", SIM, ["--speed", "0"], {}, 2, "--speed: must be more than 0"),
    ("sim-count-zero", SIM, ["--count", "0"], {}, 2, "--count: must be between 1 and 1000"),
    ("sim-rate", SIM, ["--chaos", "1", "--rate", "2"], {}, 2, "--rate: must be at least 0 and at most 1"),
    ("sim-record-on-a-file", SIM, ["--record", "f.txt"], {"f.txt": "x"}, 2, "--record f.txt: not a folder"),
    ("sim-unknown-scenario", SIM, ["--scenario", "no-such"], {}, 2, "no-such"),
    ("sim-unknown-option", SIM, ["--frobnicate"], {}, 2, "unrecognized arguments: --frobnicate"),
    ("replay-speed", SIM, ["replay", "c.jsonl", "--speed", "-1"], {}, 2, "--speed: must be more than 0"),
    (
        "replay-record-on-a-file",
        SIM,
        ["replay", "c.jsonl", "--record", "f.txt"],
        {"f.txt": "x"},
        2,
        "not a folder",
    ),
    (
        "capture-not-json",
        SIM,
        ["capture", "show", "c.jsonl"],
        {"c.jsonl": "nope\n"},
        2,
        "c.jsonl:1: not valid JSON",
    ),
    (
        "capture-t-huge",
        SIM,
        ["capture", "export", "--pcapng", "c.jsonl"],
        {"c.jsonl": '{"format":"me162-capture","version":1}\n{"t":1e308,"type":"note","text":"x"}\n'},
        2,
        "c.jsonl:2: 't' must be a number of seconds from 0 to 1e+09",
    ),
    (
        "capture-t-nan",
        SIM,
        ["capture", "show", "c.jsonl"],
        {"c.jsonl": '{"format":"me162-capture","version":1}\n{"t":NaN,"type":"note","text":"x"}\n'},
        2,
        "not nan",
    ),
    (
        "capture-missing",
        SIM,
        ["capture", "show", "nothere.jsonl"],
        {},
        2,
        "cannot read capture nothere.jsonl",
    ),
    (
        "check-max-baud",
        CHECK,
        ["--reader", "d.toml"],
        {"d.toml": DECL + '[claims]\nmax_baud = "fast"\n'},
        2,
        "d.toml:5: claims.max_baud: must be one of 300, 600, 1200, 2400, 4800, 9600, 19200, not 'fast'",
    ),
    (
        "check-registers",
        CHECK,
        ["--reader", "d.toml"],
        {"d.toml": DECL + "[claims]\nregisters = 5\n"},
        2,
        "d.toml:5: claims.registers: must be array, not int 5",
    ),
    ("check-binary", CHECK, ["--reader", "d.toml"], {"d.toml": b"\x00\xff\x01"}, 2, "not a text file"),
    (
        "check-brace",
        CHECK,
        ["--reader", "d.toml"],
        {"d.toml": '[reader]\nname = "x"\ncommand = ["true", "{speed"]\n'},
        2,
        "expected '}'",
    ),
    (
        "check-timeout-bool",
        CHECK,
        ["--reader", "d.toml"],
        {"d.toml": DECL + "timeout = true\n"},
        2,
        "d.toml:4: reader.timeout: must be number, not bool True",
    ),
    (
        "check-bundle-on-a-file",
        CHECK,
        ["--reader", "me162-read", "--bundle", "f.txt"],
        {"f.txt": "x"},
        2,
        "--bundle f.txt: not a folder",
    ),
    (
        "check-speed",
        CHECK,
        ["--reader", "me162-read", "--speed", "inf"],
        {},
        2,
        "--speed: must be more than 0",
    ),
    ("check-jobs", CHECK, ["--reader", "me162-read", "-j", "many"], {}, 2, "--jobs must be 'auto'"),
    ("check-unknown-case", CHECK, ["--reader", "me162-read", "--case", "NOPE-1"], {}, 2, "NOPE-1"),
    ("check-no-reader", CHECK, [], {}, 2, "--reader DECLARATION is required"),
    ("check-quiet-and-verbose", CHECK, ["-q", "-v", "--list"], {}, 2, "not allowed with argument"),
    ("read-baud", READ, ["--baud", "12345", "/dev/null"], {}, 2, "--baud: must be one of"),
    ("read-retries", READ, ["--retries", "-1", "/dev/null"], {}, 2, "--retries: must be between 0 and 20"),
    ("read-no-port", READ, ["/no/such/port"], {}, 9, "cannot open /no/such/port"),
    ("read-log-level", READ, ["--log-level", "loud", "/dev/null"], {}, 2, "--log-level: invalid choice"),
]


@pytest.mark.parametrize(("module", "args", "files", "code", "fragment"), [c[1:] for c in CASES],
                         ids=[c[0] for c in CASES])  # fmt: skip
def test_bad_input_is_refused_with_one_line(
    module: str, args: list[str], files: dict[str, str | bytes], code: int, fragment: str, tmp_path: Path
) -> None:
    for name, content in files.items():
        (tmp_path / name).write_bytes(content if isinstance(content, bytes) else content.encode())
    before = sorted(p.name for p in tmp_path.iterdir())
    p = subprocess.run(
        [sys.executable, "-m", module, *args],
        capture_output=True, text=True, timeout=60, check=False, cwd=tmp_path, stdin=subprocess.DEVNULL,
    )  # fmt: skip
    lines = p.stderr.strip().splitlines()
    assert p.returncode == code, p.stderr
    assert len(lines) == 1 and "Traceback" not in p.stderr, p.stderr
    assert fragment in lines[0], lines[0]
    assert sorted(p.name for p in tmp_path.iterdir()) == before  # nothing left behind


@pytest.mark.parametrize("module", [READ, SIM, CHECK])
def test_every_command_lists_its_exit_codes_and_verbosity_options(module: str) -> None:
    p = subprocess.run(
        [sys.executable, "-m", module, "--help"], capture_output=True, text=True, timeout=60, check=True
    )
    text = " ".join(p.stdout.split())
    assert "xit codes" in text and "130" in text, text
    for option in ("--version", "--quiet", "--verbose", "--log-level"):
        assert option in text, option


def test_ctrl_c_stops_the_simulator_with_130_and_one_line(tmp_path: Path) -> None:
    sim = subprocess.Popen(
        [sys.executable, "-m", SIM, "--pty", "--link", str(tmp_path / "tty")],
        stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True, cwd=tmp_path,
    )  # fmt: skip
    assert sim.stdout is not None and sim.stdout.readline().strip() == str(tmp_path / "tty")
    sim.send_signal(signal.SIGINT)
    _, err = sim.communicate(timeout=30)
    assert sim.returncode == 130, err
    assert "Traceback" not in err and err.strip().splitlines()[-1] == "me162-sim: stopped by SIGINT", err
    assert not (tmp_path / "tty").exists()  # the link goes with it


def test_ctrl_c_stops_the_suite_with_130_and_kills_the_reader(tmp_path: Path) -> None:
    marker = tmp_path / "reader-alive"
    reader = tmp_path / "slow.py"
    reader.write_text(f"import pathlib, time\npathlib.Path({str(marker)!r}).touch()\ntime.sleep(60)\n")
    (tmp_path / "d.toml").write_text(
        f'[reader]\nname = "slow"\ncommand = ["{{python}}", "{reader}", "{{port}}"]\n'
    )
    check = subprocess.Popen(
        [sys.executable, "-m", CHECK, "--reader", "d.toml", "--case", "DATA-01", "-j", "1"],
        stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True, cwd=tmp_path,
    )  # fmt: skip
    deadline = time.monotonic() + 60
    while not marker.exists() and time.monotonic() < deadline:
        time.sleep(0.05)
    assert marker.exists(), "the reader never started"
    check.send_signal(signal.SIGINT)
    _, err = check.communicate(timeout=60)
    assert check.returncode == 130, err
    assert "Traceback" not in err and "stopped by SIGINT" in err.strip().splitlines()[-1], err
    alive = subprocess.run(["pgrep", "-f", str(reader)], capture_output=True, check=False)
    assert alive.returncode == 1, "the reader under test outlived the suite"


@pytest.mark.parametrize(
    "argv", [[CHECK, "--list"], [SIM, "--list-scenarios"], [SIM, "capture", "dissector"]]
)
def test_a_closed_stdout_is_not_an_error(argv: list[str]) -> None:
    p = subprocess.run(
        f"{sys.executable} -m {' '.join(argv)} | head -c 1",
        shell=True,
        check=False,
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert p.returncode == 0 and p.stderr == "", p.stderr
