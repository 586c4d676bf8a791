"""``me162-sim capture show`` and ``capture export --pcapng``."""

from __future__ import annotations

import struct
from pathlib import Path

from me162.protocol.capture import Capture, WireMessage, identification, messages
from me162.protocol.errors import Me162Error
from me162.protocol.frames import Identification
from me162.protocol.framing import split

LINKTYPE_USER0 = 147


def describe(data: bytes) -> str:
    """A one-line reading of some bytes: each message in them, with its meaning and BCC verdict."""
    if not data:
        return "(empty)"
    return " + ".join(m.describe() for m in split(data))


def _meter_line(capture: Capture) -> str:
    h = capture.header
    meter = h.get("meter", {})
    ident = identification(capture)
    make = meter.get("make") or ""
    model = meter.get("model") or ""
    if not make and ident:
        try:
            make = Identification.from_line(ident).maker or f"manufacturer {ident[1:4]}"
        except Me162Error:
            make = ""
    seen = "" if meter.get("ident") or not ident else " (identification as seen on the wire)"
    parts = [p for p in (make, model, ident or "") if p]
    return f"  origin {h.get('origin')}, meter {' '.join(parts) or 'unknown'}{seen}"


def show(capture: Capture) -> str:
    """A readable timeline: one line per message, put together from however many data events
    the recorder wrote it in, with its decoded meaning and BCC verdict."""
    h = capture.header
    lines = [
        f"capture {capture.path}",
        _meter_line(capture),
        f"  timing {h.get('timing')}, start {h.get('start')}, line {h.get('line')}",
    ]
    prov = h.get("provenance", {})
    if prov.get("source"):
        lines.append(f"  source {prov['source']}")
    if capture.truncated:
        lines.append("  (the last line was cut: the recorder stopped while writing it)")
    lines.append("")
    for item in messages(capture):
        t = f"{item.t:10.3f}"
        if isinstance(item, WireMessage):
            arrow = "reader -> meter" if item.dir == "r2m" else "meter -> reader"
            baud = "" if item.baud is None else item.baud
            extra = f"  [{item.chunks} pieces]" if item.chunks > 1 else ""
            lines.append(f"{t}  {arrow}  {baud!s:>5}  {item.message.describe()}{extra}")
            continue
        e = item
        if e.type == "settings":
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
