"""Maintainer tool: turn published meter captures into me162 fixtures.

    python tools/import_captures.py SOURCE_DIR

SOURCE_DIR holds the verbatim captures (a header of ``# key: value`` lines, then
``# === BODY FOLLOWS ...`` and the published text).  This tool is run by hand when the corpus
changes; its output under fixtures/ is committed, and nothing at build, test or run time reads
SOURCE_DIR.  Each output keeps the source URL and commit from the capture's header.

Output in fixtures/captures/: <NAME>.capture.jsonl (capture format v1) and <NAME>.expected.json
for each ME162 session log, and <NAME>.readout.bin, the wire bytes of a readout (identification
line + data message), with readouts.json giving the provenance of each .bin.
"""

from __future__ import annotations

import json
import re
import sys
from pathlib import Path

BODY_MARK = "# === BODY FOLLOWS (verbatim, byte-exact after this line) ==="
NAMES = {"SOH": 0x01, "STX": 0x02, "ETX": 0x03, "EOT": 0x04, "ACK": 0x06, "NAK": 0x15}
SIMPLE = {"r": 0x0D, "n": 0x0A, "b": 0x08, "t": 0x09, "\\": 0x5C}
TOKEN = re.compile(r"\\(SOH|STX|ETX|EOT|ACK|NAK)(?: |$)|\\([0-7]{3})|\\([rnbt\\])|(.)", re.S)
LOG_LINE = re.compile(r"^(\d\d):(\d\d):(\d\d)\.(\d\d\d) -> (>>|<<) (.*)$")
HELLO = re.compile(r"^(\d\d):(\d\d):(\d\d)\.(\d\d\d) -> on_hello: (\S+)")


def unescape(text: str) -> bytes:
    out = bytearray()
    for m in TOKEN.finditer(text):
        name, octal, simple, char = m.groups()
        if name:
            out.append(NAMES[name])
        elif octal:
            out.append(int(octal, 8))
        elif simple:
            out.append(SIMPLE[simple])
        else:
            out.extend(char.encode("latin-1"))
    return bytes(out)


def split(path: Path) -> tuple[dict[str, str], str]:
    with path.open(encoding="latin-1", newline="") as f:
        text = f.read()
    head, body = text.split(BODY_MARK, 1)
    body = body[1:] if body.startswith("\n") else body[2:]  # the mark line's own line end
    header: dict[str, str] = {}
    for line in head.splitlines():
        m = re.match(r"^# (\w+): (.*)$", line)
        if m:
            header[m[1]] = m[2]
    return header, body


def seconds(m: re.Match[str]) -> float:
    h, mi, s, ms = (int(m[i]) for i in range(1, 5))
    return h * 3600 + mi * 60 + s + ms / 1000


def import_log(path: Path, out_dir: Path) -> None:
    header, body = split(path)
    events: list[dict[str, object]] = []
    t0: float | None = None
    for line in body.splitlines():
        hello = HELLO.match(line)
        m = LOG_LINE.match(line)
        if hello:
            t = seconds(hello)
            t0 = t if t0 is None else t0
            raw = b"/" + hello[5].encode() + b"\r\n"
            events.append(
                {
                    "t": round(t - t0, 3),
                    "dir": "m2r",
                    "hex": raw.hex(),
                    "note": "identification "
                    "reconstructed from the logger's 'on_hello' line ('/' and CR LF added)",
                }
            )
        elif m:
            t = seconds(m)
            t0 = t if t0 is None else t0
            raw = unescape(m[6])
            events.append({"t": round(t - t0, 3), "dir": "r2m" if m[5] == ">>" else "m2r", "hex": raw.hex()})
        elif line.strip() == "...":
            events.append({"t": None, "dir": None, "hex": "", "note": "author elided part of the log"})
    name = path.stem
    write_log_capture(out_dir, name, header, events)
    ident = next((bytes.fromhex(str(e["hex"])) for e in events if str(e["hex"]).startswith("2f49")), None)
    readout = next(
        (
            bytes.fromhex(str(e["hex"]))
            for e in events
            if e["dir"] == "m2r" and str(e["hex"]).startswith("02") and "21" in str(e["hex"])
        ),
        None,
    )
    if ident and readout:
        (out_dir / f"{name}.readout.bin").write_bytes(ident + readout)


def write_readout(
    out: Path, name: str, data: bytes, header: dict[str, str], how: str, bcc: str
) -> dict[str, str]:
    (out / f"{name}.readout.bin").write_bytes(data)
    return {
        "file": f"{name}.readout.bin",
        "source": header.get("source", ""),
        "meter": header.get("meter", ""),
        "conversion": how,
        "bcc": bcc,
    }


def import_others(src: Path, out: Path) -> list[dict[str, str]]:
    """Readouts of other meters, each converted by hand-checked rules for its published form."""
    made = []
    # MT174_2: a Python bytes repr on a comment line; complete and its BCC verifies.
    h, body = split(src / "MT174_2.txt")
    lit = re.search(r"b'(.*)'", body.splitlines()[0])
    assert lit
    data = lit[1].encode("latin-1").decode("unicode_escape").encode("latin-1")
    made.append(write_readout(out, "MT174_2", data, h, "python bytes literal evaluated", "valid"))
    # MT171_1: data block without STX but with ETX + BCC; STX restored (it is outside the BCC range).
    h, body = split(src / "MT171_1.txt")
    lits = re.findall(r'ir_buffer = "(.*)"', body)
    ident = lits[0].encode().decode("unicode_escape").encode("latin-1")
    block = lits[1].encode().decode("unicode_escape").encode("latin-1")
    made.append(
        write_readout(
            out,
            "MT171_1",
            ident + b"\x02" + block,
            h,
            "python string literals evaluated; STX restored before the block",
            "mismatch",
        )
    )
    # ME162_14: <2>/<3>/<\r><\n> markers in C++ comments; values zeroed by the author, BCC kept.
    h, body = split(src / "ME162_14.txt")
    lines = [ln.split("// ", 1)[1] for ln in body.splitlines() if "// " in ln and "<" in ln]
    text = "".join(lines).replace("<\\r><\\n>", "\r\n").replace("<2>", "\x02").replace("<3>", "\x03")
    made.append(
        write_readout(
            out,
            "ME162_14",
            text.encode("latin-1"),
            h,
            "marker notation decoded (<2> STX, <3> ETX, <\\r><\\n> CR LF)",
            "mismatch",
        )
    )
    # KOHLER_TR_1: simulator string with LF line ends, '<3>' for ETX; wire has CR LF; ident from the header.
    h, body = split(src / "KOHLER_TR_1.txt")
    block = body.split("readoutStr = '''\n", 1)[1].split("'''", 1)[0]
    text = block.replace("\n", "\r\n").replace("<3>", "\x03")
    made.append(
        write_readout(
            out,
            "KOHLER_TR_1",
            b"\x02" + text.encode("latin-1"),
            h,
            "LF line ends made CR LF, <3> decoded as ETX, STX added",
            "mismatch",
        )
    )
    # Mode D pushes (raw CR LF text): first telegram only.
    for name in ("EBZ_DD3_1", "EASYMETER_Q3DA_1", "HAGER_EHZ_1"):
        h, body = split(src / f"{name}.txt")
        raw = body.encode("latin-1")
        start = raw.find(b"/")
        end = raw.find(b"!\r\n", start) + 3
        made.append(write_readout(out, name, raw[start:end], h, "first telegram, bytes as published", "none"))
    # LGZ_ZMD_PARITY_1: one byte per line as Python repr, parity bit in bit 7.
    h, body = split(src / "LGZ_ZMD_PARITY_1.txt")
    frag = b"".join(
        re.sub(r"^b'(.*)'$", r"\1", ln.strip()).encode().decode("unicode_escape").encode("latin-1")
        for ln in body.splitlines()
        if ln.startswith("b'")
    )
    made.append(
        write_readout(out, "LGZ_ZMD_PARITY_1", frag, h, "one python byte literal per line joined", "none")
    )
    return made


def capture_events(events: list[dict[str, object]]) -> list[dict[str, object]]:
    """Capture events for a log, with the speeds the protocol implies.

    The logs do not say at which speed each message travelled; the protocol does: everything
    is at 300 Bd until an option select with Z=5, after which both sides talk at 9600 Bd until
    the readout ends or a new request starts.  Those settings events are marked inferred.
    """
    baud = 300
    last_t = 0.0
    out: list[dict[str, object]] = []
    for e in events:
        if e["dir"] is None:  # the author's "..." elision
            out.append({"t": last_t, "type": "note", "text": "the author elided part of the log here"})
            continue
        t = float(str(e["t"]))
        last_t = t
        raw = bytes.fromhex(str(e["hex"]))
        if e["dir"] == "r2m" and raw.startswith(b"/?") and baud != 300:
            out.append({"t": t, "type": "settings", "side": "reader", "baud": 300, "inferred": True})
            baud = 300
        obj: dict[str, object] = {"t": t, "type": "data", "dir": e["dir"], "hex": e["hex"], "baud": baud}
        if e.get("note"):
            obj["note"] = e["note"]
        out.append(obj)
        if e["dir"] == "r2m" and raw[:1] == b"\x06" and len(raw) == 6 and raw[2:3] == b"5":
            out.append({"t": t, "type": "settings", "side": "reader", "baud": 9600, "inferred": True})
            baud = 9600
        if e["dir"] == "m2r" and raw.startswith(b"\x02") and b"!\r\n" in raw:
            out.append({"t": t, "type": "settings", "side": "reader", "baud": 300, "inferred": True})
            baud = 300  # after a readout both sides are back at 300 Bd
    return out


def write_log_capture(
    out_dir: Path, name: str, header: dict[str, str], events: list[dict[str, object]]
) -> None:
    src = header.get("source", "")
    commit = re.search(r"/blob/([0-9a-f]{7,40})/", src)
    head = {
        "format": "me162-capture",
        "version": 1,
        "origin": "real",
        "meter": {
            "make": "Iskra",
            "model": "ME162",
            "ident": "/ISK5ME162-0033",
            "notes": header.get("meter", ""),
        },
        "link": {
            "recorder": "ESP8266 reader's serial log (pe32me162ir_pub)",
            "probe": "IR phototransistor/LED",
        },
        "line": {"baud": 300, "bits": 7, "parity": "E", "stop": 1},
        "start": None,
        "timing": "logger",
        "redactions": [
            "the author replaced the serial number with 28342193 (in C.1.0 and 0.0.0, so the BCC still verifies)"
        ],
        "provenance": {
            "source": src.split(" ")[0],
            "commit": commit[1] if commit else None,
            "licence": "as published in the source repository",
            "exchange": header.get("exchange", ""),
            "conversion": "logger escapes decoded; identification rebuilt from 'on_hello' ('/' and CR LF added); "
            "speeds inferred from the protocol (settings events marked inferred); timestamps are the logger's "
            "(ms, taken when the reader logged a message, not when its bytes crossed the wire)",
        },
    }
    lines = [json.dumps(head, separators=(",", ":"))]
    lines += [json.dumps(e, separators=(",", ":")) for e in capture_events(events)]
    (out_dir / f"{name}.capture.jsonl").write_text("\n".join(lines) + "\n")
    first_readout = next(
        (
            bytes.fromhex(str(e["hex"]))
            for e in events
            if e["dir"] == "m2r" and str(e["hex"]).startswith("02") and "210d0a03" in str(e["hex"])
        ),
        b"",
    )
    regs: dict[str, str] = {}
    pending: str | None = None
    for e in events:
        raw = bytes.fromhex(str(e["hex"])) if e["hex"] else b""
        if e["dir"] == "r2m" and raw.startswith(b"\x01R1\x02"):
            pending = raw[4 : raw.index(b"(")].decode()
        elif e["dir"] == "m2r" and raw.startswith(b"\x02(") and pending and pending not in regs:
            regs[pending] = raw[2 : raw.index(b")")].decode()
            pending = None
    data_sets = {}
    if first_readout:
        for line in first_readout[1:].split(b"\r\n"):
            if b"(" in line:
                addr, rest = line.decode().split("(", 1)
                data_sets[addr] = rest.rstrip(")")
    expected = {
        "identification": "/ISK5ME162-0033",
        "bcc": "valid",
        "data_sets": data_sets,
        "registers": regs,
        "replayable": True,
        "notes": "values of the first readout and the first R1 answer of each register in the log",
    }
    (out_dir / f"{name}.expected.json").write_text(json.dumps(expected, indent=1) + "\n")


def main() -> None:
    src = Path(sys.argv[1])
    out = Path(__file__).resolve().parent.parent / "fixtures" / "captures"
    out.mkdir(parents=True, exist_ok=True)
    index = []
    for n in range(1, 10):
        import_log(src / f"ME162_{n}.txt", out)
        h, _ = split(src / f"ME162_{n}.txt")
        index.append(
            {
                "file": f"ME162_{n}.readout.bin",
                "source": h.get("source", ""),
                "meter": h.get("meter", ""),
                "conversion": "logger escapes decoded; identification line rebuilt from 'on_hello'",
                "bcc": "valid",
            }
        )
    index += import_others(src, out)
    (out / "readouts.json").write_text(json.dumps(index, indent=1) + "\n")


if __name__ == "__main__":
    main()
