"""``me162-read decode``: decode raw bytes as they came off the wire."""

from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path

from me162.protocol import BccError, Me162Error, Readout, decode_readout
from me162.protocol.errors import ProtocolError

EXIT_OK = 0
EXIT_BCC = 2
EXIT_PROTOCOL = 3
EXIT_INPUT = 4


def add_arguments(p: argparse.ArgumentParser) -> None:
    p.add_argument("file", nargs="?", default="-", help="file of raw bytes, or - for standard input")
    p.add_argument("--hex", action="store_true", help="the input is hex text (whitespace ignored)")
    p.add_argument("--json", action="store_true", help="print JSON instead of a table")
    p.add_argument("--no-bcc-check", action="store_true", help="report a wrong BCC instead of failing")


def read_input(name: str, as_hex: bool) -> bytes:
    data = sys.stdin.buffer.read() if name == "-" else Path(name).read_bytes()
    if as_hex:
        text = data.decode("ascii", errors="replace")
        digits = "".join(text.split())
        try:
            return bytes.fromhex(digits)
        except ValueError:
            raise ValueError("--hex input is not hex text (only 0-9, a-f and whitespace)") from None
    return data


def format_table(r: Readout, *, mode: str | None = None, baud: int | None = None) -> str:
    """The readout as a table; ``mode`` and ``baud`` are how a session actually read it, when
    that differs from what the identification announces (a mode D push, a capped speed)."""
    out: list[str] = []
    ident = r.identification
    if ident is not None:
        announced = f"mode {ident.mode}, {ident.baud} Bd"
        actual = f"mode {mode}, {baud} Bd" if mode is not None and baud is not None else announced
        how = actual if actual == announced else f"{actual} (the identification announces {announced})"
        out.append(
            f"Identification  {ident.raw}   manufacturer {ident.manufacturer}, {how}, "
            f"reaction time {ident.reaction_time_ms} ms"
            + (f", enhanced {' '.join(ident.enhanced)}" if ident.enhanced else "")
        )
    if r.bcc_present:
        verdict = "valid" if r.bcc_valid else "INVALID"
        out.append(f"BCC             0x{r.bcc_received or 0:02X} ({verdict})")
    else:
        out.append("BCC             none (data block without STX/ETX)")
    rows = [("line", "address", "value", "unit")]
    for line, ds in r.data.data_sets:
        for i, v in enumerate(ds.values or ()):
            rows.append(
                (str(line) if i == 0 else "", (ds.address or "") if i == 0 else "", v.value, v.unit or "")
            )
        if not ds.values:
            rows.append((str(line), ds.address or "", "", ""))
    widths = [max(len(row[i]) for row in rows) for i in range(4)]
    out.append("")
    for n, row in enumerate(rows):
        out.append("  ".join(cell.ljust(widths[i]) for i, cell in enumerate(row)).rstrip())
        if n == 0:
            out.append("  ".join("-" * w for w in widths))
    for w in r.warnings:
        out.append(f"note: {w}")
    return "\n".join(out)


def run(args: argparse.Namespace) -> int:
    try:
        raw = read_input(args.file, args.hex)
    except (OSError, ValueError) as e:
        print(f"me162-read decode: cannot read input: {e}", file=sys.stderr)
        return EXIT_INPUT
    if not raw:
        print("me162-read decode: the input is empty", file=sys.stderr)
        return EXIT_INPUT
    try:
        readout = decode_readout(raw, verify_bcc=not args.no_bcc_check)
    except BccError as e:
        print(f"me162-read decode: {e} (use --no-bcc-check to decode anyway)", file=sys.stderr)
        return EXIT_BCC
    except ProtocolError as e:
        print(f"me162-read decode: {e}", file=sys.stderr)
        return EXIT_PROTOCOL
    except Me162Error as e:  # pragma: no cover - defensive: every error is one line
        print(f"me162-read decode: {e}", file=sys.stderr)
        return EXIT_PROTOCOL
    if args.json:
        print(json.dumps(readout.to_json(), indent=2))
    else:
        print(format_table(readout))
    return EXIT_OK
