"""Replay of recorded sessions, the corpus of captures, capture show, pcapng export and the tap."""

from __future__ import annotations

import contextlib
import json
import shutil
import struct
import subprocess
import sys
import tempfile
import time
from datetime import datetime
from pathlib import Path

import pytest
import serial

from me162.protocol import decode_readout
from me162.protocol.capture import WireMessage, messages, read_capture, write_capture
from me162.protocol.errors import Me162Error
from me162.reader.driver import PortOptions, read_once
from me162.reader.session import ReaderConfig
from me162.simulator.capture_tools import describe, show, to_pcapng
from me162.simulator.pty_transport import PtyMeter
from me162.simulator.replay import build_script
from me162.simulator.session import MeterOptions
from me162.simulator.tap import Tap
from tests.ptyhelp import write_taken

pytestmark = pytest.mark.timeout(120)
CAPTURES = Path(__file__).resolve().parent.parent / "fixtures" / "captures"
DISSECTOR = Path(__file__).resolve().parent.parent / "simulator" / "iec62056_21.lua"
ALL = sorted(CAPTURES.glob("*.capture.jsonl"))
ME162 = [
    p
    for p in sorted(CAPTURES.glob("ME162_*.capture.jsonl"))
    if json.loads(p.with_name(p.name.replace(".capture.jsonl", ".expected.json")).read_text())["replayable"]
]
SPEED = 20.0
#: This test's client is a loop of its own, not a reader that knows the protocol: it switches a
#: fixed 3 ms after its message has left the wire.  At 8x the recorded pauses before an answer at
#: another speed (0.6 s and more) are 75 ms of real time, a margin no busy machine eats.
CLIENT_SPEED = 8.0


@pytest.mark.parametrize("path", ALL, ids=lambda p: p.name)
def test_every_fixture_round_trips(path: Path, tmp_path: Path) -> None:
    c = read_capture(path)
    assert c.header["provenance"]["source"].startswith("https://")
    assert c.header["timing"] in ("recorded", "logger", "synthesized")
    out = tmp_path / "copy.capture.jsonl"
    write_capture(out, c)
    again = read_capture(out)
    assert again.header == c.header and again.events == c.events


@pytest.mark.parametrize("path", ME162, ids=lambda p: p.name)
def test_replay_on_a_pty_is_byte_identical(path: Path) -> None:
    """A pyserial client that says what the recorded reader said gets what the meter said."""
    capture = read_capture(path)
    script = build_script(capture)
    with PtyMeter(MeterOptions(speed=CLIENT_SPEED, replay=path)) as pm:
        port = serial.Serial(pm.path, 300, bytesize=7, parity="E", timeout=0.02)
        for session in script:
            for step in session.steps:
                if port.baudrate != step.baud:
                    port.baudrate = step.baud
                # Taken by the meter's side (see write_taken), on the wire, then a quarter of the
                # recorded pause before the answer (as the reference reader leads its switch).
                write_taken(pm.served.link, port, step.expect)
                lead = step.answers[0][0] / CLIENT_SPEED / 4 if step.answers else 0.0
                time.sleep(len(step.expect) * 10 / step.baud / CLIENT_SPEED + 0.003 + lead)
                if step.answers and step.answers[0][2] != port.baudrate:
                    port.baudrate = step.answers[0][2]  # the recorded reader switched here
                want = b"".join(a[1] for a in step.answers)
                got = b""
                pause = max((a[0] for a in step.answers), default=0.0) / CLIENT_SPEED
                deadline = time.monotonic() + pause + (3.0 if want else 0.15)
                while len(got) < len(want) and time.monotonic() < deadline:
                    got += port.read(512)
                assert got == want, f"step {step.expect!r}"
        port.close()
        assert pm.served.meter.mismatches == []  # type: ignore[attr-defined]


@pytest.mark.parametrize("path", ME162, ids=lambda p: p.name)
def test_the_reference_reader_reads_every_me162_replay(path: Path) -> None:
    expected = json.loads(path.with_name(path.name.replace(".capture.jsonl", ".expected.json")).read_text())
    with PtyMeter(MeterOptions(speed=SPEED, replay=path)) as pm:
        res = read_once(PortOptions(pm.path, time_scale=SPEED), ReaderConfig(), retries=2)
    assert res.readout is not None and res.identification is not None
    assert res.identification.raw == expected["identification"]
    got = {
        ds.address: (ds.value or "") + (f"*{ds.unit}" if ds.unit else "")
        for _, ds in res.readout.data.data_sets
    }
    assert got == expected["data_sets"]


def test_a_reader_that_deviates_gets_a_mismatch_recorded(tmp_path: Path) -> None:
    path = CAPTURES / "ME162_5.capture.jsonl"  # a readout session only
    with PtyMeter(MeterOptions(speed=SPEED, replay=path, record=tmp_path)) as pm:
        with pytest.raises(Exception):  # noqa: B017 - any failure will do; the replay is what is checked
            read_once(PortOptions(pm.path, time_scale=SPEED), ReaderConfig(registers=("1.8.0",)), retries=0)
        mismatches = list(pm.served.meter.mismatches)  # type: ignore[attr-defined]
    assert mismatches and "\\x06051" in mismatches[0] and "\\x06050" in mismatches[0]
    recorded = read_capture(next(tmp_path.glob("*.capture.jsonl")))
    assert any(e.type == "note" and "mismatch" in e.fields["text"] for e in recorded.events)


def test_show_reads_like_a_timeline() -> None:
    text = show(read_capture(CAPTURES / "ME162_4.capture.jsonl"))
    assert "identification /ISK5ME162-0033" in text
    assert "option select V=0 Z=5 Y=1" in text
    assert "(198 bytes, BCC ok)" in text and "NAK" in text
    assert describe(b"\x02(1)\x03X").endswith("BCC WRONG (0x58, computed 0x33))")


def pcapng_packets(raw: bytes) -> tuple[list[int], list[tuple[int, bytes]]]:
    """Walk the blocks: their types, and each packet's timestamp (µs) and bytes."""
    pos, kinds, packets = 0, [], []
    while pos < len(raw):
        btype, blen = struct.unpack_from("<II", raw, pos)
        assert struct.unpack_from("<I", raw, pos + blen - 4)[0] == blen
        kinds.append(btype)
        if btype == 6:
            hi, lo, caplen = struct.unpack_from("<III", raw, pos + 12)
            packets.append(((hi << 32) | lo, raw[pos + 28 : pos + 28 + caplen]))
        pos += blen
    return kinds, packets


def test_pcapng_export_has_one_packet_per_message() -> None:
    capture = read_capture(CAPTURES / "ME162_1.capture.jsonl")
    kinds, packets = pcapng_packets(to_pcapng(capture))
    assert kinds[:2] == [0x0A0D0D0A, 1]
    assert b"".join(p for _, p in packets) == b"".join(e.data for e in capture.data_events())
    wire = [m for m in messages(capture) if isinstance(m, WireMessage)]
    assert [p for _, p in packets] == [m.message.data for m in wire]


def tshark(*args: str) -> list[list[str]]:
    exe = shutil.which("tshark")
    assert exe, "no tshark: `make test-deps` installs it"
    p = subprocess.run(
        [exe, "-X", f"lua_script:{DISSECTOR}", *args], capture_output=True, text=True, timeout=120, check=True
    )
    return [ln.split("\t") for ln in p.stdout.splitlines()]


def test_tshark_decodes_a_session_of_the_virtual_me162_with_the_dissector(tmp_path: Path) -> None:
    # A session of the virtual ME162 whose readout BCC is spoiled, recorded and exported.
    start = datetime(2026, 6, 21, 12)
    opts = MeterOptions(
        speed=SPEED, clock_start=start, moving=False, record=tmp_path,
        scenarios=[CAPTURES.parent / "scenarios" / "bcc-corrupt-readout.yaml"],
    )  # fmt: skip
    with PtyMeter(opts) as pm, contextlib.suppress(Me162Error):
        read_once(PortOptions(pm.path, time_scale=SPEED), ReaderConfig(), retries=0)
    capture = read_capture(next(tmp_path.glob("*.capture.jsonl")))
    out = tmp_path / "session.pcapng"
    p = subprocess.run(
        [sys.executable, "-m", "me162.simulator.cli", "capture", "export", "--pcapng", str(capture.path), "-o", str(out)],
        capture_output=True, text=True, timeout=60, check=False,
    )  # fmt: skip
    assert p.returncode == 0, p.stderr
    fields = ["frame.time_epoch", "iec62056_21.direction", "iec62056_21.kind", "iec62056_21.bcc.status",
              "iec62056_21.ident.manufacturer", "iec62056_21.ident.identification", "iec62056_21.option.y",
              "frame.comment"]  # fmt: skip
    rows = tshark(
        "-r",
        str(out),
        "-T",
        "fields",
        "-E",
        "occurrence=a",
        "-E",
        "aggregator=|",
        *(a for f in fields for a in ("-e", f)),
    )
    kinds = [r[2] for r in rows]
    assert kinds[:4] == ["request", "identification", "option select", "data"], rows
    assert rows[0][1] == "reader -> meter" and rows[1][1] == "meter -> reader"
    assert rows[1][4:6] == ["ISK", "ME162-0033"] and rows[2][6] == "0"
    assert rows[3][3] == "invalid"  # the spoiled readout, and the fault named on its packet
    assert "FAULT" in rows[3][7] and "BCC WRONG" in rows[3][7], rows[3]
    # real timestamps: the capture's start plus each message's time
    begin = datetime.fromisoformat(capture.header["start"]).timestamp()
    first = next(m for m in messages(capture) if isinstance(m, WireMessage))
    assert abs(float(rows[0][0]) - (begin + first.t)) < 1e-5
    assert begin > 1.7e9  # not 1970


def test_the_dissector_checks_every_bcc_of_the_real_captures() -> None:
    for name in ("ME162_1", "ME162_4"):
        path = CAPTURES / f"{name}.capture.jsonl"
        raw = to_pcapng(read_capture(path))
        out = Path(str(path).replace(".capture.jsonl", ".pcapng"))
        with tempfile.TemporaryDirectory() as d:
            out = Path(d) / f"{name}.pcapng"
            out.write_bytes(raw)
            rows = tshark("-r", str(out), "-T", "fields", "-e", "iec62056_21.kind", "-e", "iec62056_21.bcc.status",
                          "-e", "iec62056_21.command")  # fmt: skip
        framed = [r for r in rows if r[0] in ("data", "command", "partial block")]
        assert framed and all(r[1] == "valid" for r in framed), rows
        if name == "ME162_4":
            assert {"P0", "R1", "B0"} <= {r[2] for r in framed}


def test_the_dissector_installs_with_one_command(tmp_path: Path) -> None:
    p = subprocess.run(
        [sys.executable, "-m", "me162.simulator.cli", "capture", "dissector", "--install", str(tmp_path)],
        capture_output=True, text=True, timeout=60, check=False,
    )  # fmt: skip
    assert p.returncode == 0 and Path(p.stdout.strip()) == tmp_path / "iec62056_21.lua"
    assert (tmp_path / "iec62056_21.lua").read_bytes() == DISSECTOR.read_bytes()


def test_capture_cli_show_and_export(tmp_path: Path) -> None:
    src = CAPTURES / "ME162_5.capture.jsonl"
    p = subprocess.run(
        [sys.executable, "-m", "me162.simulator.cli", "capture", "show", str(src)],
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
    )
    assert p.returncode == 0 and "BCC ok" in p.stdout
    out = tmp_path / "o.pcapng"
    p = subprocess.run(
        [sys.executable, "-m", "me162.simulator.cli", "capture", "export", "--pcapng", str(src), "-o", str(out)],
        capture_output=True, text=True, timeout=60, check=False,
    )  # fmt: skip
    assert p.returncode == 0 and out.read_bytes()[:4] == b"\x0a\x0d\x0d\x0a"
    bad = tmp_path / "bad.capture.jsonl"
    bad.write_text('{"format":"me162-capture","version":2}\n')
    p = subprocess.run(
        [sys.executable, "-m", "me162.simulator.cli", "capture", "show", str(bad)],
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
    )
    assert p.returncode == 2 and "bad.capture.jsonl:1: capture format version 2 is not supported" in p.stderr


def test_tap_records_a_session_through_a_second_pty(tmp_path: Path) -> None:
    """The 'real probe' is a virtual meter on another pty, at real time speed."""
    out = tmp_path / "tap.capture.jsonl"
    with (
        PtyMeter(MeterOptions(clock_start=datetime(2026, 6, 21, 12), moving=False)) as real,
        Tap(real.path, out) as tap,
    ):
        res = read_once(PortOptions(tap.tty), ReaderConfig())
        time.sleep(0.1)
    assert res.readout is not None and res.readout.bcc_valid
    c = read_capture(out)
    assert c.stream("r2m").startswith(b"/?!\r\n\x06050\r\n")
    assert c.stream("m2r").startswith(b"/ISK5ME162-0033\r\n\x02C.1.0(")
    assert [e.fields["baud"] for e in c.events if e.type == "settings"] == [9600]
    readout = [e for e in c.data_events("m2r") if e.fields["baud"] == 9600]
    assert readout and b"".join(e.data for e in readout).endswith(b"!\r\n\x03L")


def test_the_corpus_is_complete_and_each_capture_has_its_sidecar() -> None:
    assert len(ALL) == 42  # every published capture, converted
    for path in ALL:
        sidecar = path.with_name(path.name.replace(".capture.jsonl", ".expected.json"))
        expected = json.loads(sidecar.read_text())
        assert expected["bcc"] in ("valid", "mismatch", "none")
        header = read_capture(path).header
        assert header["origin"] == "real"
        if header["timing"] == "synthesized":
            assert "made up" in header["provenance"]["timing"]


@pytest.mark.parametrize("name", ["KOHLER_TR_1", "ME162_14", "MT171_1"])
def test_published_wrong_bccs_are_marked_as_expected_failures(name: str) -> None:
    expected = json.loads((CAPTURES / f"{name}.expected.json").read_text())
    assert expected["bcc"] == "mismatch" and expected["replayable"] is False


def test_the_mt174_capture_replays_at_its_fixed_9600_bd() -> None:
    """That reader talked to its MT174 at 9600 Bd from the start (a wired interface)."""
    path = CAPTURES / "MT174_2.capture.jsonl"
    expected = json.loads((CAPTURES / "MT174_2.expected.json").read_text())
    assert expected["replayable"]
    with PtyMeter(MeterOptions(speed=SPEED, replay=path)) as pm:
        port = serial.Serial(pm.path, 9600, bytesize=7, parity="E", timeout=2)
        port.write(b"/?!\r\n")
        got = port.read_until(b"\x03") + port.read(1)
        port.close()
        assert got == read_capture(path).stream("m2r")
        assert pm.served.meter.mismatches == []  # type: ignore[attr-defined]
    r = decode_readout(got)
    assert {
        ds.address: (ds.value or "") + (f"*{ds.unit}" if ds.unit else "") for _, ds in r.data.data_sets
    } == expected["data_sets"]


def test_replay_cli_serves_a_capture_until_stopped(tmp_path: Path) -> None:
    import signal

    link = tmp_path / "replayed"
    proc = subprocess.Popen(
        [sys.executable, "-m", "me162.simulator.cli", "replay", str(CAPTURES / "ME162_5.capture.jsonl"), "--pty",
         "--link", str(link), "--speed", str(SPEED)],
        stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True,
    )  # fmt: skip
    try:
        assert proc.stdout is not None and proc.stdout.readline().strip() == str(link)
        res = read_once(PortOptions(str(link), time_scale=SPEED), ReaderConfig(), retries=0)
        assert res.readout is not None and res.readout.data.find("1.8.0") is not None
    finally:
        proc.send_signal(signal.SIGTERM)
        assert proc.wait(timeout=10) == 0


def test_replay_cli_refuses_a_capture_it_cannot_serve(tmp_path: Path) -> None:
    p = subprocess.run(
        [sys.executable, "-m", "me162.simulator.cli", "replay", str(CAPTURES / "ME162_15.capture.jsonl")],
        capture_output=True, text=True, timeout=30, check=False,
    )  # fmt: skip
    assert p.returncode == 2 and "no reader-to-meter messages to replay" in p.stderr


def test_tap_cli_records_a_reading(tmp_path: Path) -> None:
    import signal

    out = tmp_path / "tapped.capture.jsonl"
    link = tmp_path / "ttyTAP"
    with PtyMeter(MeterOptions(clock_start=datetime(2026, 6, 21, 12), moving=False)) as real:
        proc = subprocess.Popen(
            [sys.executable, "-m", "me162.simulator.cli", "tap", "--device", real.path, "--link", str(link), "--record", str(out)],
            stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True,
        )  # fmt: skip
        try:
            assert proc.stdout is not None and proc.stdout.readline().strip() == str(link)
            res = read_once(PortOptions(str(link)), ReaderConfig(), retries=0)
            assert res.readout is not None and res.readout.bcc_valid
        finally:
            proc.send_signal(signal.SIGTERM)
            assert proc.wait(timeout=10) == 0
    c = read_capture(out)
    assert c.header["origin"] == "real" and c.stream("m2r").startswith(b"/ISK5ME162-0033\r\n")
    p = subprocess.run(
        [sys.executable, "-m", "me162.simulator.cli", "tap", "--device", "/dev/does-not-exist"],
        capture_output=True, text=True, timeout=30, check=False,
    )  # fmt: skip
    assert p.returncode == 3 and "cannot open /dev/does-not-exist" in p.stderr


def test_replay_loop_serves_the_recording_again(tmp_path: Path) -> None:
    path = CAPTURES / "ME162_5.capture.jsonl"  # one readout session
    with PtyMeter(MeterOptions(speed=SPEED, replay=path, loop=True)) as pm:
        for _ in range(3):
            res = read_once(PortOptions(pm.path, time_scale=SPEED), ReaderConfig(), retries=0)
            assert res.readout is not None and res.readout.bcc_valid
            time.sleep(0.1)
        assert not pm.served.meter.mismatches  # type: ignore[attr-defined]
    with PtyMeter(MeterOptions(speed=SPEED, replay=path)) as pm:
        read_once(PortOptions(pm.path, time_scale=SPEED), ReaderConfig(), retries=0)
        time.sleep(0.1)
        with pytest.raises(Me162Error):
            read_once(PortOptions(pm.path, time_scale=SPEED), ReaderConfig(), retries=0)
        assert "replay --loop" in pm.served.meter.mismatches[0]  # type: ignore[attr-defined]


def test_a_real_time_reader_on_a_fast_replay_is_told_in_one_line() -> None:
    path = CAPTURES / "ME162_5.capture.jsonl"
    with PtyMeter(MeterOptions(speed=10.0, replay=path)) as pm:
        with pytest.raises(Me162Error):
            read_once(PortOptions(pm.path, time_scale=1.0), ReaderConfig(), retries=0)
        hints = [m for m in pm.served.meter.mismatches if "time scale" in m]  # type: ignore[attr-defined]
    assert len(hints) == 1 and "--speed 10" in hints[0], hints
