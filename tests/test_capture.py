"""Capture format v1: round trips, validation errors naming the line, crash safety."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest

from me162.protocol.capture import (
    Capture,
    CaptureWriter,
    loads,
    new_header,
    read_capture,
    write_capture,
)
from me162.protocol.errors import CaptureError

HEADER = json.dumps(new_header(origin="emulated"))


def test_write_and_read_back(tmp_path: Path) -> None:
    p = tmp_path / "s.capture.jsonl"
    with CaptureWriter(p, new_header(origin="real", meter={"ident": "/ISK5ME162-0033"})) as w:
        w.data(0.0, "r2m", b"/?!\r\n")
        w.data(0.5, "m2r", b"/ISK5ME162-0033\r\n", baud=300)
        w.event(0.6, "settings", side="reader", baud=9600)
        w.note(0.7, "hello")
    c = read_capture(p)
    assert c.header["meter"]["ident"] == "/ISK5ME162-0033" and not c.truncated
    assert [e.type for e in c.events] == ["data", "data", "settings", "note"]
    assert c.stream("m2r") == b"/ISK5ME162-0033\r\n"
    q = tmp_path / "copy.capture.jsonl"
    write_capture(q, c)
    assert read_capture(q).events == c.events


@pytest.mark.parametrize(
    ("text", "message"),
    [
        ("", "empty capture"),
        ('{"format":"other"}\n', ":1: not a me162 capture"),
        (
            HEADER.replace('"version": 1', '"version": 7') + "\n",
            ":1: capture format version 7 is not supported",
        ),
        (HEADER + '\n{"t":0,"type":"data","dir":"up","hex":"00"}\n', ":2: data events need 'dir'"),
        (HEADER + '\n{"t":0,"type":"data","dir":"r2m","hex":"zz"}\n', ":2: 'hex' is not hex"),
        (HEADER + '\n{"t":-1,"type":"note"}\n', ":2: 't' must be a number"),
        (HEADER + '\n{"t":0,"type":"dance"}\n', ":2: unknown event type 'dance'"),
        (HEADER + '\n{"t":2,"type":"note"}\n{"t":1,"type":"note"}\n', ":3: time goes backwards"),
        (HEADER + '\n{"t":0,"type":"note"\n{"t":1,"type":"note"}\n', ":2: not valid JSON"),
        (
            HEADER + '\n{"t":0,"type":"settings","side":"reader"}\n',
            ":2: settings events need an integer 'baud'",
        ),
    ],
)
def test_malformed_captures_name_the_line(text: str, message: str) -> None:
    with pytest.raises(CaptureError) as e:
        loads(text, "x.jsonl")
    assert message in str(e.value) and str(e.value).startswith("x.jsonl")


def test_a_cut_last_line_is_tolerated_and_reported() -> None:
    c = loads(HEADER + '\n{"t":0,"type":"note","text":"a"}\n{"t":1,"type":"da', "x")
    assert c.truncated and len(c.events) == 1


def test_absurd_size_and_missing_file(tmp_path: Path) -> None:
    with pytest.raises(CaptureError, match="cannot read capture"):
        read_capture(tmp_path / "missing.jsonl")
    big = tmp_path / "big.jsonl"
    with big.open("wb") as f:
        f.truncate(300 * 1024 * 1024)  # sparse: no disk used
    with pytest.raises(CaptureError, match="absurdly large"):
        read_capture(big)


def test_comments_are_allowed() -> None:
    c = loads("# recorded at the meter\n" + HEADER + "\n# a note\n" + '{"t":0,"type":"note","text":"x"}\n')
    assert isinstance(c, Capture) and len(c.events) == 1


def test_a_recorder_killed_mid_session_leaves_a_readable_capture(tmp_path: Path) -> None:
    p = tmp_path / "killed.capture.jsonl"
    code = (
        "import os, sys\n"
        "from me162.protocol.capture import CaptureWriter, new_header\n"
        f"w = CaptureWriter({str(p)!r}, new_header(origin='emulated'))\n"
        "for i in range(100):\n"
        "    w.data(i * 0.1, 'm2r', bytes([i]))\n"
        'w._f.write(\'{"t": 99, "type": "da\')\n'
        "w._f.flush()\n"
        "os._exit(9)\n"
    )
    proc = subprocess.run([sys.executable, "-c", code], check=False, timeout=60)
    assert proc.returncode == 9
    c = read_capture(p)
    assert c.truncated and len(c.events) == 100 and os.path.getsize(p) > 0
