"""``me162-read``: the reference reader's command line.

    me162-read [PORT] [--registers 1.8.0,2.8.0] [--json] [--loop SECONDS] ...
    me162-read decode [FILE|-] [--hex] [--json] [--no-bcc-check]

PORT is any pyserial URL: /dev/ttyUSB0, socket://host:port, rfc2217://host:port, or
me162://?profile=me162 (the built-in virtual ME162, used when no PORT is given).

Exit codes of a reading: 0 success; 2 usage; 3 no identification; 4 identification but no
data, or no answer after the ACK; 5 BCC error; 6 data at an unexpected speed; 7 protocol
error; 8 programming mode failed or a register could not be read; 9 the port cannot be opened.
Exit codes of decode: 0 decoded; 2 BCC mismatch; 3 not a readout; 4 the input cannot be read.
"""

from __future__ import annotations

import argparse
import json
import logging
import sys
import time
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from me162.reader import decode
from me162.reader.driver import PortError, PortOptions, progress_printer, read_once
from me162.reader.session import Failure, ReaderConfig, ReaderError, SessionResult

DEFAULT_PORT = "me162://?profile=me162"
EXIT_BY_FAILURE = {
    Failure.NO_IDENTIFICATION: 3,
    Failure.NO_DATA: 4,
    Failure.TIMEOUT_AFTER_ACK: 4,
    Failure.BCC: 5,
    Failure.UNEXPECTED_SPEED: 6,
    Failure.PROTOCOL: 7,
    Failure.PROGRAMMING: 8,
    Failure.PASSWORD: 8,
}
EXIT_REGISTER = 8
EXIT_PORT = 9


def build_read_parser() -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(
        prog="me162-read",
        description="Read an IEC 62056-21 meter (Iskra ME162 and others) through an optical probe. "
        "Without PORT, reads the built-in virtual ME162. 'me162-read decode --help' decodes raw bytes.",
    )
    p.add_argument(
        "port", nargs="?", default=DEFAULT_PORT, help=f"pyserial port or URL (default {DEFAULT_PORT})"
    )
    p.add_argument("--address", default="", help="device address for the request /?ADDRESS!")
    p.add_argument(
        "--baud", default="max", help="'max' (default), a cap such as 4800, or 300 to never switch"
    )
    p.add_argument(
        "--change-delay",
        type=float,
        default=0.0,
        metavar="S",
        help="extra wait before switching speed (slow USB adapters)",
    )
    p.add_argument(
        "--registers",
        default="",
        help="read only these registers in programming mode, e.g. 1.8.0,2.8.0,0.9.1",
    )
    p.add_argument("--password", help="P1 password for programming mode (never logged)")
    p.add_argument("--partial-blocks", action="store_true", help="read registers with R3 (partial blocks)")
    p.add_argument(
        "--mode", default="auto", choices=["auto", "A", "B", "C", "D"], help="force a protocol mode"
    )
    p.add_argument("--push-baud", type=int, default=2400, help="mode D: the speed the meter pushes at")
    p.add_argument(
        "--parity-in-software",
        action="store_true",
        help="the link is 8N1: add/check/strip the 7E1 parity bit",
    )
    p.add_argument(
        "--wake-up", action="store_true", help="send the NUL wake-up sequence first (battery meters)"
    )
    p.add_argument(
        "--break-first", action="store_true", help="send B0 at 9600 Bd first, ending a session left open"
    )
    p.add_argument("--no-bcc-check", action="store_true", help="accept a readout whose BCC is wrong")
    p.add_argument("--retries", type=int, default=2, help="whole-session retries with backoff (default 2)")
    p.add_argument(
        "--speed", type=float, default=1.0, help="time scale of a virtual meter run faster than real time"
    )
    p.add_argument("--json", action="store_true", help="print JSON")
    p.add_argument(
        "--loop", type=float, metavar="SECONDS", help="read every SECONDS, one JSON line per reading"
    )
    p.add_argument("--count", type=int, help="with --loop: stop after this many readings")
    p.add_argument("--record", type=Path, metavar="FILE", help="write the session as a capture (format v1)")
    p.add_argument("-v", "--verbose", action="store_true", help="show the wire traffic with timestamps")
    return p


def config_from(args: argparse.Namespace) -> ReaderConfig:
    regs = tuple(r.strip() for r in args.registers.split(",") if r.strip())
    if args.baud != "max" and not args.baud.isdigit():
        raise ValueError(f"--baud must be 'max' or a number, not {args.baud!r}")
    return ReaderConfig(
        address=args.address,
        baud=args.baud,
        change_delay=args.change_delay,
        registers=regs,
        password=args.password,
        partial_blocks=args.partial_blocks,
        wake_up=args.wake_up,
        break_first=args.break_first,
        mode=args.mode,
        push_baud=args.push_baud,
        verify_bcc=not args.no_bcc_check,
    )


def result_json(res: SessionResult, port: str) -> dict[str, Any]:
    doc: dict[str, Any]
    if res.readout is not None:
        doc = res.readout.to_json()
    else:
        doc = {
            "identification": None if res.identification is None else res.identification.to_json(),
            "bcc": {"present": False, "valid": None},
            "data_sets": [],
        }
    if res.registers:
        doc["registers"] = res.registers
    doc["session"] = {
        "port": port,
        "mode": res.mode,
        "speeds": res.speeds,
        "timings": res.timings,
        "retries": res.retries,
        "notes": res.notes,
    }
    return doc


def print_table(res: SessionResult) -> None:
    if res.readout is not None:
        print(decode.format_table(res.readout))
    elif res.identification is not None:
        i = res.identification
        print(f"Identification  {i.raw}   manufacturer {i.manufacturer}, mode {i.mode}, {i.baud} Bd")
    if res.registers:
        print()
        width = max(len(r) for r in res.registers)
        for reg, v in res.registers.items():
            shown = f"ERROR {v['error']}" if v["error"] else f"{v['value']} {v['unit'] or ''}".rstrip()
            print(f"{reg.ljust(width)}  {shown}")
    speeds = " -> ".join(str(s) for s in [300, *res.speeds])
    print(
        f"\nsession: mode {res.mode}, {speeds} Bd, {res.retries} retries"
        + "".join(f"\nnote: {n}" for n in res.notes)
    )


def run_read(argv: list[str]) -> int:
    args = build_read_parser().parse_args(argv)
    logging.basicConfig(
        level=logging.DEBUG if args.verbose else logging.WARNING, format="%(message)s", stream=sys.stderr
    )
    if not args.verbose:
        logging.getLogger("me162.wire").setLevel(logging.WARNING)
    try:
        config = config_from(args)
    except ValueError as e:
        print(f"me162-read: {e}", file=sys.stderr)
        return 2
    if args.speed <= 0:
        print("me162-read: --speed must be positive", file=sys.stderr)
        return 2
    opts = PortOptions(args.port, args.parity_in_software, args.speed)
    show = progress_printer() if sys.stderr.isatty() and not args.json and args.loop is None else None
    if args.loop is None:
        return read_and_report(opts, config, args, show)
    n = 0
    while args.count is None or n < args.count:
        started = time.monotonic()
        code = read_and_report(opts, config, args, None, loop=True)
        n += 1
        if args.count is not None and n >= args.count:
            return code
        time.sleep(max(0.0, args.loop - (time.monotonic() - started)))
    return 0


def read_and_report(
    opts: PortOptions, config: ReaderConfig, args: argparse.Namespace, show: Any, *, loop: bool = False
) -> int:
    stamp = datetime.now(UTC).isoformat(timespec="seconds")
    try:
        record = args.record
        if record is not None and loop:
            record = record.with_name(
                f"{record.name.removesuffix('.capture.jsonl')}-{stamp.replace(':', '')}.capture.jsonl"
            )
        res = read_once(
            opts, ReaderConfig(**vars(config)), retries=args.retries, progress=show, record=record
        )
    except ReaderError as e:
        return fail(e.failure.summary, str(e), EXIT_BY_FAILURE[e.failure], loop, stamp)
    except PortError as e:
        return fail("port", str(e), EXIT_PORT, loop, stamp)
    except OSError as e:
        return fail("record", f"cannot write the capture: {e}", EXIT_PORT, loop, stamp)
    if show is not None:
        sys.stderr.write("\r" + " " * 60 + "\r")
    bad = [r for r, v in res.registers.items() if v["error"]]
    if loop:
        doc = result_json(res, opts.url)
        doc["time"] = stamp
        print(json.dumps(doc), flush=True)
    elif args.json:
        print(json.dumps(result_json(res, opts.url), indent=2))
    else:
        print_table(res)
    if bad:
        print(
            f"me162-read: the meter could not read {', '.join(bad)} (hint: not every meter has every register)",
            file=sys.stderr,
        )
        return EXIT_REGISTER
    return 0


def fail(kind: str, message: str, code: int, loop: bool, stamp: str) -> int:
    if loop:
        print(json.dumps({"time": stamp, "error": kind, "message": message}), flush=True)
    print(f"me162-read: {message}", file=sys.stderr)
    return code


def build_decode_parser() -> argparse.ArgumentParser:
    d = argparse.ArgumentParser(
        prog="me162-read decode",
        description="Decode raw bytes as they came off the wire: optionally the echoed request, "
        "then the identification line, then the data message.",
    )
    decode.add_arguments(d)
    return d


def main(argv: list[str] | None = None) -> int:
    argv = sys.argv[1:] if argv is None else argv
    if argv[:1] == ["decode"]:
        return decode.run(build_decode_parser().parse_args(argv[1:]))
    return run_read(argv)


if __name__ == "__main__":
    sys.exit(main())
