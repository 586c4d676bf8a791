"""``me162-read decode`` as a user runs it: a subprocess, exit codes, one-line errors."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import pytest

CAPTURES = Path(__file__).resolve().parent.parent / "fixtures" / "captures"


def run(*args: str, stdin: bytes = b"") -> subprocess.CompletedProcess[bytes]:
    return subprocess.run(
        [sys.executable, "-m", "me162.reader.cli", "decode", *args],
        input=stdin,
        capture_output=True,
        timeout=60,
        check=False,
    )


def test_json_schema_of_a_real_me162_readout() -> None:
    p = run("--json", str(CAPTURES / "ME162_1.readout.bin"))
    assert p.returncode == 0, p.stderr
    doc = json.loads(p.stdout)
    assert doc["identification"] == {
        "raw": "/ISK5ME162-0033",
        "manufacturer": "ISK",
        "baud_char": "5",
        "mode": "C",
        "baud": 9600,
        "reaction_time_ms": 200,
        "enhanced": [],
        "ident": "ME162-0033",
    }
    assert doc["bcc"] == {"present": True, "valid": True}
    first = doc["data_sets"][0]
    assert first["line"] == 1 and first["address"] == "C.1.0" and first["raw"] == "C.1.0(28342193)"
    assert first["values"] == [{"value": "28342193", "unit": None}]


def test_table_from_stdin() -> None:
    p = run("-", stdin=(CAPTURES / "ME162_1.readout.bin").read_bytes())
    assert p.returncode == 0
    assert b"/ISK5ME162-0033" in p.stdout and b"0033402.264" in p.stdout


def test_hex_input_with_the_parity_bit_in_bit_7() -> None:
    from me162.protocol.line import add_parity

    raw = add_parity((CAPTURES / "ME162_1.readout.bin").read_bytes())
    p = run("--hex", "--json", "-", stdin=raw.hex(" ").encode())
    assert p.returncode == 0, p.stderr
    doc = json.loads(p.stdout)
    assert doc["parity_stripped"] and doc["bcc"]["valid"] and len(doc["data_sets"]) == 9


def test_bcc_mismatch_exits_2_with_the_clear_error() -> None:
    p = run(str(CAPTURES / "ME162_14.readout.bin"))
    assert p.returncode == 2
    assert (
        p.stderr.decode()
        .strip()
        .endswith(
            "BCC mismatch: computed 0x4C, received 0x4B after ETX at byte 214 (use --no-bcc-check to decode anyway)"
        )
    )
    assert b"Traceback" not in p.stderr
    q = run("--no-bcc-check", "--json", str(CAPTURES / "ME162_14.readout.bin"))
    assert q.returncode == 0 and json.loads(q.stdout)["bcc"] == {"present": True, "valid": False}


@pytest.mark.parametrize(
    ("stdin", "code"),
    [
        (b"hello world", 3),
        (b"\x02C.1.0(1)\r\n", 3),
        (b"/ISK5ME162", 3),
        (b"", 4),
        (bytes(range(256)), 3),
    ],
)
def test_garbage_gives_one_line_and_nonzero(stdin: bytes, code: int) -> None:
    p = run("-", stdin=stdin)
    assert p.returncode == code
    assert len(p.stderr.decode().strip().splitlines()) == 1 and b"Traceback" not in p.stderr


def test_bad_hex_and_missing_file() -> None:
    assert run("--hex", "-", stdin=b"zz").returncode == 4
    p = run("/nonexistent/file")
    assert p.returncode == 4 and b"cannot read input" in p.stderr
