"""Capture format v1: a session on the optical link as JSON Lines (docs/capture-format.md).

Line 1 is a header object; every further line is one event with ``t``, seconds from the
start.  Raw bytes are hex, never decoded.  ``#`` lines are comments.  The writer flushes every
line, so a session killed mid-way leaves a capture that reads back (the reader tolerates a cut
last line and says so).
"""

from __future__ import annotations

import json
import os
from bisect import bisect_right
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import IO, Any

from me162.protocol.errors import CaptureError
from me162.protocol.framing import AckRule, Framer, Kind, Message
from me162.protocol.line import T_A_MAX, looks_like_parity_bytes, strip_parity

FORMAT = "me162-capture"
VERSION = 1
MAX_BYTES = 256 * 1024 * 1024  #: a capture larger than this is refused as absurd
MAX_LINE = 4 * 1024 * 1024
EVENT_TYPES = {"data", "settings", "open", "close", "break", "fault", "error", "note", "mismatch"}
DIRECTIONS = {"r2m", "m2r"}
SIDES = {"reader", "meter"}


@dataclass
class Event:
    t: float
    type: str
    fields: dict[str, Any] = field(default_factory=dict)

    @property
    def dir(self) -> str | None:
        d = self.fields.get("dir")
        return str(d) if d is not None else None

    @property
    def data(self) -> bytes:
        return bytes.fromhex(self.fields.get("hex", ""))

    def to_json(self) -> dict[str, Any]:
        return {"t": round(self.t, 6), "type": self.type, **self.fields}


@dataclass
class Capture:
    header: dict[str, Any]
    events: list[Event]
    truncated: bool = False
    path: str = ""

    def data_events(self, direction: str | None = None) -> list[Event]:
        return [e for e in self.events if e.type == "data" and (direction is None or e.dir == direction)]

    def stream(self, direction: str) -> bytes:
        return b"".join(e.data for e in self.data_events(direction))


def new_header(
    *,
    origin: str,
    meter: dict[str, Any] | None = None,
    link: dict[str, Any] | None = None,
    line: dict[str, Any] | None = None,
    start: str | None = None,
    timing: str = "recorded",
    provenance: dict[str, Any] | None = None,
    redactions: list[str] | None = None,
) -> dict[str, Any]:
    if origin not in ("real", "emulated"):
        raise CaptureError(f"origin must be 'real' or 'emulated', not {origin!r}")
    return {
        "format": FORMAT,
        "version": VERSION,
        "origin": origin,
        "meter": meter or {},
        "link": link or {},
        "line": line or {"baud": 300, "bits": 7, "parity": "E", "stop": 1},
        "start": start,
        "timing": timing,
        "redactions": redactions or [],
        "provenance": provenance or {},
    }


MAX_T = 1e9  #: about 31 years: later times are errors, and would not fit a pcapng timestamp


def _check_event(obj: Any, where: str) -> Event:
    if not isinstance(obj, dict):
        raise CaptureError(f"{where}: an event must be a JSON object")
    t = obj.get("t")
    if not isinstance(t, int | float) or isinstance(t, bool) or not 0 <= t <= MAX_T:
        raise CaptureError(f"{where}: 't' must be a number of seconds from 0 to {MAX_T:g}, not {t!r}")
    kind = obj.get("type")
    if kind not in EVENT_TYPES:
        raise CaptureError(f"{where}: unknown event type {kind!r} (known: {', '.join(sorted(EVENT_TYPES))})")
    fields = {k: v for k, v in obj.items() if k not in ("t", "type")}
    if kind == "data":
        if fields.get("dir") not in DIRECTIONS:
            raise CaptureError(f"{where}: data events need 'dir' r2m or m2r, not {fields.get('dir')!r}")
        hx = fields.get("hex")
        if not isinstance(hx, str):
            raise CaptureError(f"{where}: data events need 'hex'")
        try:
            bytes.fromhex(hx)
        except ValueError:
            raise CaptureError(f"{where}: 'hex' is not hex text: {hx[:40]!r}") from None
    if kind == "settings":
        if fields.get("side") not in SIDES:
            raise CaptureError(f"{where}: settings events need 'side' reader or meter")
        if not isinstance(fields.get("baud"), int):
            raise CaptureError(f"{where}: settings events need an integer 'baud'")
    return Event(float(t), str(kind), fields)


def iter_capture(lines: Iterator[str], where: str) -> Capture:
    header: dict[str, Any] | None = None
    events: list[Event] = []
    truncated = False
    last_t = 0.0
    pending: tuple[int, str, bool] | None = None
    for n, line in enumerate(lines, 1):
        if pending is not None:  # the previous line was broken, and it was not the last one
            raise CaptureError(f"{where}:{pending[0]}: not valid JSON: {pending[1][:60]!r}")
        if len(line) > MAX_LINE:
            raise CaptureError(f"{where}:{n}: line of {len(line)} characters is absurdly long")
        text = line.strip()
        if not text or text.startswith("#"):
            continue
        try:
            obj = json.loads(text)
        except json.JSONDecodeError:
            pending = (n, text, line.endswith("\n"))
            continue
        if header is None:
            if not isinstance(obj, dict) or obj.get("format") != FORMAT:
                raise CaptureError(
                    f"{where}:{n}: not a me162 capture (the first line must be a header with format {FORMAT!r})"
                )
            if obj.get("version") != VERSION:
                raise CaptureError(
                    f"{where}:{n}: capture format version {obj.get('version')!r} is not supported (this is version {VERSION})"
                )
            from me162.protocol.schema import Located, check  # jsonschema only for files read

            check(Located(obj, {(): n}), "capture-header", where, error=CaptureError)
            header = obj
            continue
        ev = _check_event(obj, f"{where}:{n}")
        if ev.t + 1e-9 < last_t:
            raise CaptureError(f"{where}:{n}: time goes backwards ({ev.t} after {last_t})")
        last_t = ev.t
        events.append(ev)
    if pending is not None:
        if pending[2]:  # a complete but broken line at the end
            raise CaptureError(f"{where}:{pending[0]}: not valid JSON: {pending[1][:60]!r}")
        truncated = True  # a cut last line: the recorder was killed while writing it
    if header is None:
        raise CaptureError(f"{where}: empty capture (no header line)")
    return Capture(header, events, truncated, where)


def read_capture(path: str | Path) -> Capture:
    p = Path(path)
    try:
        size = p.stat().st_size
    except OSError as e:
        raise CaptureError(f"cannot read capture {p}: {e.strerror}") from None
    if size > MAX_BYTES:
        raise CaptureError(f"{p}: {size} bytes is absurdly large for a capture (limit {MAX_BYTES})")
    try:
        with p.open(encoding="utf-8") as f:
            return iter_capture(iter(f), str(p))
    except UnicodeDecodeError:
        raise CaptureError(f"{p}: not UTF-8 text") from None


def loads(text: str, where: str = "<capture>") -> Capture:
    return iter_capture(iter(text.splitlines(keepends=True)), where)


class CaptureWriter:
    """Append events to a capture file, one flushed line each (crash-safe)."""

    def __init__(self, path: str | Path, header: dict[str, Any], *, fsync: bool = False) -> None:
        self.path = Path(path)
        self.fsync = fsync
        self._f: IO[str] = self.path.open("w", encoding="utf-8")
        self._last_t = 0.0
        self._line(header)

    def _line(self, obj: dict[str, Any]) -> None:
        self._f.write(json.dumps(obj, separators=(",", ":")) + "\n")
        self._f.flush()
        if self.fsync:
            os.fsync(self._f.fileno())

    def event(self, t: float, event_type: str, /, **fields: Any) -> None:
        if event_type not in EVENT_TYPES:
            raise CaptureError(f"unknown event type {event_type!r}")
        t = max(t, self._last_t)
        self._last_t = t
        self._line(Event(t, event_type, fields).to_json())

    def data(self, t: float, direction: str, data: bytes, **extra: Any) -> None:
        self.event(t, "data", dir=direction, hex=data.hex(), **extra)

    def note(self, t: float, text: str) -> None:
        self.event(t, "note", text=text)

    def close(self) -> None:
        if not self._f.closed:
            self._f.close()

    def __enter__(self) -> CaptureWriter:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()


def write_capture(path: str | Path, capture: Capture) -> None:
    with CaptureWriter(path, capture.header) as w:
        for e in capture.events:
            w.event(e.t, e.type, **e.fields)


# --- messages, reassembled ------------------------------------------------------------------


@dataclass(frozen=True)
class WireMessage:
    """One message as it crossed the line: when its first byte was seen, which way, at which
    speed, and from how many of the capture's data events it was put together."""

    t: float
    dir: str
    baud: int | None
    message: Message
    chunks: int = 1
    parity_stripped: bool = False


def messages(capture: Capture, *, gap: float = T_A_MAX) -> list[WireMessage | Event]:
    """The capture as a timeline of whole messages, with its other events in between.

    Recorders write bytes as they arrive (one per event, or a few), so the data events of each
    direction are run through the framer: a message is whole at its end, at a pause longer than
    ``gap`` (the standard's inter-character limit), or when the other side starts talking (the
    line is half duplex).  A direction whose bytes all carry the even-parity bit in bit 7 (a
    capture taken at 8N1) is framed with the parity stripped.
    """
    parity = {d: looks_like_parity_bytes(capture.stream(d)) for d in DIRECTIONS}
    framers = {"r2m": Framer(ack=AckRule.AUTO), "m2r": Framer(ack=AckRule.ALONE)}
    chunks: dict[str, list[tuple[int, float, int | None]]] = {"r2m": [], "m2r": []}
    last: dict[str, float] = {"r2m": -1.0, "m2r": -1.0}
    out: list[tuple[float, int, WireMessage | Event]] = []
    seq = 0

    def emit(d: str, msgs: list[Message]) -> None:
        nonlocal seq
        starts = chunks[d]
        offsets = [c[0] for c in starts]
        for m in msgs:
            i = max(0, bisect_right(offsets, m.offset) - 1)
            j = max(i, bisect_right(offsets, m.end - 1) - 1)
            _, t, baud = starts[i]
            out.append((t, seq, WireMessage(t, d, baud, m, j - i + 1, parity[d])))
            seq += 1

    for e in capture.events:
        if e.type != "data":
            out.append((e.t, seq, e))
            seq += 1
            continue
        d = e.dir or "m2r"
        other = "m2r" if d == "r2m" else "r2m"
        if framers[other].pending:
            emit(other, framers[other].flush())
        if framers[d].pending and e.t - last[d] > gap:
            emit(d, framers[d].flush())
        data = e.data
        if parity[d]:
            data = strip_parity(data)
        baud = e.fields.get("baud")
        chunks[d].append(
            (framers[d].offset + len(framers[d].pending), e.t, baud if isinstance(baud, int) else None)
        )
        framers[d].feed(data)
        last[d] = e.t
        emit(d, list(framers[d]))
    for d in ("r2m", "m2r"):
        emit(d, framers[d].flush())
    out.sort(key=lambda item: (item[0], item[1]))
    return [item for _, _, item in out]


def identification(capture: Capture) -> str | None:
    """The identification line the meter sent in this capture: the first one on the wire, or
    else the header's ``meter.ident``."""
    for item in messages(capture):
        if isinstance(item, WireMessage) and item.dir == "m2r" and item.message.kind is Kind.IDENTIFICATION:
            return item.message.data[:-2].decode("latin-1")
    ident = capture.header.get("meter", {}).get("ident")
    return ident if isinstance(ident, str) and ident.startswith("/") else None
