"""Recording sessions as captures: the virtual meter's --record and the reader's --record."""

from __future__ import annotations

import time
from datetime import datetime
from pathlib import Path

import pytest

from me162.protocol.capture import read_capture
from me162.reader.driver import PortOptions, read_once, redact
from me162.reader.session import ReaderConfig
from me162.simulator.pty_transport import PtyMeter
from me162.simulator.session import MeterOptions

pytestmark = pytest.mark.timeout(60)
SPEED = 20.0


def test_the_simulator_records_every_session(tmp_path: Path) -> None:
    opts = MeterOptions(speed=SPEED, clock_start=datetime(2026, 6, 21, 12), moving=False, record=tmp_path)
    with PtyMeter(opts) as pm:
        for _ in range(2):
            read_once(PortOptions(pm.path, time_scale=SPEED), ReaderConfig())
            time.sleep(0.1)
    files = sorted(tmp_path.glob("*.capture.jsonl"))
    assert len(files) == 2
    c = read_capture(files[0])
    assert c.header["origin"] == "emulated" and c.header["meter"]["ident"] == "/ISK5ME162-0033"
    assert c.stream("r2m").startswith(b"/?!\r\n\x06050\r\n")
    assert c.stream("m2r").startswith(b"/ISK5ME162-0033\r\n\x02C.1.0(")
    assert [e.fields["baud"] for e in c.events if e.type == "settings"] == [9600]
    assert c.events[0].type == "open" and c.events[-1].type == "close"
    times = [e.t for e in c.events]
    assert times == sorted(times)


def test_a_server_that_keeps_no_events_records_the_same_sessions(tmp_path: Path) -> None:
    """me162-sim may serve for days: it drops each event once logged and recorded
    (``keep_events=False``), so nothing piles up in memory, and its captures are those of a
    meter that keeps every event."""
    kinds: dict[bool, list[list[tuple[str, object, object]]]] = {}
    for keep in (True, False):
        folder = tmp_path / str(keep)
        opts = MeterOptions(
            speed=SPEED, clock_start=datetime(2026, 6, 21, 12), moving=False, record=folder, keep_events=keep
        )
        with PtyMeter(opts) as pm:
            for _ in range(3):
                read_once(PortOptions(pm.path, time_scale=SPEED), ReaderConfig())
                time.sleep(0.1)
            link = pm.served.link
            kept = (len(link.events), len(link.meter.events))
        assert (kept == (0, 0)) != keep, kept
        captures = [read_capture(f) for f in sorted(folder.glob("*.capture.jsonl"))]
        kinds[keep] = [
            [(e.type, e.fields.get("dir"), e.fields.get("hex")) for e in c.events] for c in captures
        ]
    assert len(kinds[True]) == 3 and any(x[2] for x in kinds[True][0])  # (bytes, not only kinds)
    assert kinds[False] == kinds[True]


def test_the_reader_records_and_never_writes_the_password(tmp_path: Path) -> None:
    out = tmp_path / "read.capture.jsonl"
    res = read_once(
        PortOptions("me162://?profile=mt174&frozen=1", time_scale=20),
        ReaderConfig(registers=("1.8.0",), password="00000000"),
        record=out,
    )
    assert res.registers["1.8.0"]["value"] == "0692930.505"
    c = read_capture(out)
    assert b"00000000" not in c.stream("r2m")  # (the meter's P0 operand happens to be 00000000 too)
    p1 = [e for e in c.data_events("r2m") if e.data.startswith(b"\x01P1")]
    assert p1 and p1[0].data == b"\x01P1\x02(********)\x03a" and p1[0].fields["redacted"] is True
    assert c.stream("m2r").startswith(b"/ISk5MT174-0002\r\n")


def test_redact_leaves_other_commands_alone() -> None:
    assert redact(b"\x01R1\x021.8.0()\x03Z") == b"\x01R1\x021.8.0()\x03Z"
    assert redact(b"\x01P1\x02(secret)\x03x") == b"\x01P1\x02(******)\x03x"
