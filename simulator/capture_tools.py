"""``me162-sim capture show`` and ``capture export --pcapng``."""

from __future__ import annotations

import struct
from datetime import UTC, datetime
from pathlib import Path

from me162.protocol.capture import Capture, Event, WireMessage, identification, messages
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


def _start_epoch(capture: Capture) -> float | None:
    start = capture.header.get("start")
    if not isinstance(start, str) or not start:
        return None
    try:
        when = datetime.fromisoformat(start.replace("Z", "+00:00"))
    except ValueError:
        return None
    if when.tzinfo is None:
        when = when.replace(tzinfo=UTC)
    return when.timestamp()


def _event_comment(e: Event) -> str | None:
    f = e.fields
    if e.type == "fault":
        return f"FAULT {f.get('name', '')}: {f.get('detail', '')}"
    if e.type == "note":
        return f"note: {f.get('text', '')}"
    if e.type == "mismatch":
        return f"MISMATCH {f.get('detail', '')}"
    if e.type == "error":
        return f"error: {f.get('message', '')}"
    if e.type == "settings":
        inferred = " (inferred)" if f.get("inferred") else ""
        return f"{f.get('side')} speed {f.get('baud')} Bd{inferred}"
    if e.type in ("open", "close", "break"):
        return f"{f.get('side', '')} {e.type}" + (f": {f['detail']}" if f.get("detail") else "")
    return None


def to_pcapng(capture: Capture) -> bytes:
    """pcapng with one USER0 interface (LINKTYPE_USER0, which the dissector from
    ``me162-sim capture dissector`` decodes): one packet per message, put together by the framer
    however the recorder wrote the bytes, stamped with the capture's start plus its time, the
    direction in the flags, and its speed, meaning and BCC verdict in a comment.  Faults,
    notes, speed changes and the like become comments on the packet that follows them (on the
    last packet, if none follows)."""
    epoch = _start_epoch(capture)
    shb_opts = _option(4, b"me162 capture export")
    if epoch is None:
        shb_opts += _option(1, b"the capture has no start time: timestamps count from 1970-01-01T00:00:00Z")
        epoch = 0.0
    shb = _block(0x0A0D0D0A, struct.pack("<IHHq", 0x1A2B3C4D, 1, 0, -1) + shb_opts + _option(0, b""))
    idb_opts = _option(2, b"me162 optical link (IEC 62056-21)") + _option(0, b"")
    idb = _block(1, struct.pack("<HHI", LINKTYPE_USER0, 0, 0) + idb_opts)
    line = capture.header.get("line") or {}
    frame = f"{line.get('bits', 7)}{line.get('parity', 'E')}{line.get('stop', 1)}"
    packets: list[tuple[WireMessage, list[str]]] = []
    pending: list[str] = []
    for item in messages(capture):
        if isinstance(item, WireMessage):
            packets.append((item, pending))
            pending = []
        elif (text := _event_comment(item)) is not None:
            note = f"{item.t:.6f} s {text}"
            if packets and abs(packets[-1][0].t - item.t) < 1e-6:
                packets[-1][1].append(note)  # it happened to that very message (a fault on it)
            else:
                pending.append(note)
    if pending and packets:
        packets[-1][1].extend(pending)
    out = [shb, idb]
    for wm, notes in packets:
        ts = round((epoch + wm.t) * 1_000_000)
        data = wm.message.data
        speed = "speed unknown" if wm.baud is None else f"{wm.baud} Bd {frame}"
        stripped = ", parity bit stripped" if wm.parity_stripped else ""
        comment = f"{'reader -> meter' if wm.dir == 'r2m' else 'meter -> reader'} {speed}{stripped}: "
        comment += wm.message.describe()
        flags = 0b10 if wm.dir == "r2m" else 0b01  # outbound from the reader's side / inbound
        opts = _option(2, struct.pack("<I", flags)) + _option(1, comment.encode())
        opts += b"".join(_option(1, n.encode()) for n in notes) + _option(0, b"")
        body = struct.pack("<IIIII", 0, ts >> 32, ts & 0xFFFFFFFF, len(data), len(data))
        out.append(_block(6, body + data + b"\0" * ((-len(data)) % 4) + opts))
    return b"".join(out)


def export_pcapng(capture: Capture, path: Path) -> None:
    path.write_bytes(to_pcapng(capture))
