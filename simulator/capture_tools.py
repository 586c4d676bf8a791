"""``me162-sim capture show`` and ``capture export --pcapng``."""

from __future__ import annotations

import struct
from pathlib import Path

from me162.protocol.bcc import xor7
from me162.protocol.capture import Capture

LINKTYPE_USER0 = 147


def describe(data: bytes) -> str:
    """A one-line reading of one message (or of bytes that are none)."""
    if not data:
        return "(empty)"
    if data.startswith(b"/?") and data.endswith(b"!\r\n"):
        return f"request {data[:-2].decode('latin-1')}"
    if data.startswith(b"/") and data.endswith(b"\r\n"):
        return f"identification {data[:-2].decode('latin-1')}"
    if data[:1] == b"\x06" and len(data) == 6 and data.endswith(b"\r\n"):
        return f"option select V={chr(data[1])} Z={chr(data[2])} Y={chr(data[3])}"
    if data == b"\x06":
        return "ACK"
    if data == b"\x15":
        return "NAK"
    if data.startswith((b"\x01", b"\x02")):
        ends = [i for i, b in enumerate(data) if b in (3, 4)]
        if not ends or ends[0] + 1 >= len(data):
            return f"message without ETX/BCC ({len(data)} bytes)"
        end = ends[0]
        body = data[1 : end + 1]
        verdict = (
            "BCC ok"
            if (data[end + 1] & 0x7F) == xor7(body)
            else f"BCC WRONG (0x{data[end + 1]:02X}, computed 0x{xor7(body):02X})"
        )
        text = data[1:end].decode("latin-1").replace("\r\n", "⏎").replace("\x02", " STX ")
        kind = "command" if data[0] == 1 else ("partial block" if data[end] == 4 else "data")
        short = text if len(text) <= 60 else text[:57] + "..."
        return f"{kind} {short!r} ({len(data)} bytes, {verdict})"
    if any(b == 0 or b > 0x7E for b in data):
        return f"garbage? {len(data)} bytes: {data[:16].hex(' ')}"
    return f"{len(data)} bytes: {data[:40]!r}"


def show(capture: Capture) -> str:
    h = capture.header
    meter = h.get("meter", {})
    lines = [
        f"capture {capture.path}",
        f"  origin {h.get('origin')}, meter {meter.get('make', '?')} {meter.get('model', '?')} {meter.get('ident', '')}".rstrip(),
        f"  timing {h.get('timing')}, start {h.get('start')}, line {h.get('line')}",
    ]
    prov = h.get("provenance", {})
    if prov.get("source"):
        lines.append(f"  source {prov['source']}")
    if capture.truncated:
        lines.append("  (the last line was cut: the recorder stopped while writing it)")
    lines.append("")
    for e in capture.events:
        t = f"{e.t:10.3f}"
        if e.type == "data":
            arrow = "reader -> meter" if e.dir == "r2m" else "meter -> reader"
            baud = e.fields.get("baud", "")
            lines.append(f"{t}  {arrow}  {baud!s:>5}  {describe(e.data)}")
        elif e.type == "settings":
            inferred = " (inferred)" if e.fields.get("inferred") else ""
            lines.append(f"{t}  {e.fields.get('side')} speed {e.fields.get('baud')}{inferred}")
        elif e.type == "note":
            lines.append(f"{t}  note: {e.fields.get('text', '')}")
        elif e.type == "fault":
            lines.append(f"{t}  FAULT {e.fields.get('name', '')}: {e.fields.get('detail', '')}")
        elif e.type == "mismatch":
            lines.append(f"{t}  MISMATCH {e.fields.get('detail', '')}")
        else:
            rest = ", ".join(f"{k}={v}" for k, v in e.fields.items())
            lines.append(f"{t}  {e.type} {rest}")
    return "\n".join(lines)


def _block(block_type: int, body: bytes) -> bytes:
    pad = (-len(body)) % 4
    total = 12 + len(body) + pad
    return struct.pack("<II", block_type, total) + body + b"\0" * pad + struct.pack("<I", total)


def _option(code: int, value: bytes) -> bytes:
    return struct.pack("<HH", code, len(value)) + value + b"\0" * ((-len(value)) % 4)


def to_pcapng(capture: Capture) -> bytes:
    """pcapng with one USER0 interface; direction in the EPB flags, speed in a comment."""
    shb = _block(0x0A0D0D0A, struct.pack("<IHHq", 0x1A2B3C4D, 1, 0, -1) + _option(0, b""))
    idb_opts = _option(2, b"me162 optical link (IEC 62056-21)") + _option(0, b"")
    idb = _block(1, struct.pack("<HHI", LINKTYPE_USER0, 0, 65535) + idb_opts)
    out = [shb, idb]
    baud = {"r2m": 300, "m2r": 300}
    for e in capture.events:
        if e.type == "settings":
            continue
        if e.type != "data":
            continue
        d = e.dir or "m2r"
        b = int(e.fields.get("baud") or baud.get(d, 300))
        ts = round(e.t * 1_000_000)
        data = e.data
        flags = 0b10 if d == "r2m" else 0b01  # outbound from the reader's side / inbound
        comment = f"{d} {b} Bd {capture.header.get('line', {}).get('bits', 7)}{capture.header.get('line', {}).get('parity', 'E')}1"
        if e.fields.get("kind"):
            comment += f" {e.fields['kind']}"
        opts = _option(2, struct.pack("<I", flags)) + _option(1, comment.encode()) + _option(0, b"")
        body = (
            struct.pack("<IIIII", 0, ts >> 32, ts & 0xFFFFFFFF, len(data), len(data))
            + data
            + b"\0" * ((-len(data)) % 4)
            + opts
        )
        out.append(_block(6, body))
    return b"".join(out)


def export_pcapng(capture: Capture, path: Path) -> None:
    path.write_bytes(to_pcapng(capture))
