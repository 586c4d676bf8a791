"""``me162-read``: the reference reader's command line.

    me162-read PORT [--registers 1.8.0,2.8.0] [--json] [--loop SECONDS] ...
    me162-read decode [FILE|-] [--hex] [--json] [--no-bcc-check]

PORT is any pyserial URL: /dev/ttyUSB0, socket://host:port, rfc2217://host:port, or
me162://?profile=me162 (the built-in virtual ME162, asked for by name; its readings say they
are virtual, so simulated kWh never pass for a real meter's).

Exit codes of a reading: 0 success; 2 usage; 3 no identification; 4 identification but no
data, or no answer after the ACK; 5 BCC error; 6 data at an unexpected speed; 7 protocol
error; 8 programming mode failed or a register could not be read; 9 the port cannot be opened;
130 interrupted.  Exit codes of decode: 0 decoded; 2 BCC mismatch; 3 not a readout; 4 the input cannot be read.
"""

from __future__ import annotations

# Start-up is part of the product: `me162-read --help` imports argparse and this module only.
# What a reading needs (the session, the driver, pyserial, the decoder) is imported once the
# options are known to be good.
import argparse
import os
import signal
import sys

from me162.protocol.cliargs import OneLineParser, add_verbosity, log_level, number, whole
from me162.protocol.errors import ConfigError, Me162Error
from me162.protocol.version import __version__

TYPE_CHECKING = False  # typing itself costs a start-up 5 to 15 ms
if TYPE_CHECKING:
    from pathlib import Path
    from typing import Any

    from me162.reader.driver import PortOptions
    from me162.reader.publish import Publisher
    from me162.reader.session import ReaderConfig, SessionResult

VIRTUAL_PORT = "me162://?profile=me162"
#: exit code of each failure class (me162.reader.session.Failure, by name)
EXIT_BY_FAILURE = {
    "NO_IDENTIFICATION": 3,
    "LINE_BUSY": 3,
    "NO_DATA": 4,
    "TIMEOUT_AFTER_ACK": 4,
    "BCC": 5,
    "UNEXPECTED_SPEED": 6,
    "PROTOCOL": 7,
    "PROGRAMMING": 8,
    "PASSWORD": 8,
}
EXIT_USAGE = 2
EXIT_REGISTER = 8
EXIT_PORT = 9
EXIT_INTERRUPTED = 130

EXIT_CODES = """exit codes: 0 success; 2 usage; 3 no identification; 4 identification but no data, or
no answer after the ACK; 5 BCC error; 6 data at an unexpected speed; 7 protocol error;
8 programming mode failed or a register could not be read; 9 the port cannot be opened;
130 interrupted (Ctrl-C or SIGTERM; B0 is sent first in programming mode)"""


def _path(text: str) -> Path:
    from pathlib import Path

    return Path(text)


def _standard_baud(text: str) -> int:
    from me162.protocol.line import STANDARD_BAUDS

    if not (text.isascii() and text.isdigit()) or int(text) not in STANDARD_BAUDS:
        raise argparse.ArgumentTypeError(
            f"must be one of {', '.join(map(str, STANDARD_BAUDS))}, not {text!r}"
        )
    return int(text)


def _baud_cap(text: str) -> str:
    return text if text == "max" else str(_standard_baud(text))


def _address(text: str) -> str:
    from me162.protocol.frames import validate_address

    try:
        return validate_address(text)
    except Me162Error as e:
        raise argparse.ArgumentTypeError(str(e)) from None


def _registers(text: str) -> tuple[str, ...]:
    import re

    regs = tuple(r.strip() for r in text.split(",") if r.strip())
    for r in regs:
        if not re.fullmatch(r"[0-9A-Za-z.:*&_-]{1,32}", r):
            raise argparse.ArgumentTypeError(f"{r!r} is not a register address such as 1.8.0")
    return regs


def build_read_parser() -> argparse.ArgumentParser:
    p = OneLineParser(
        prog="me162-read",
        description="Read an IEC 62056-21 meter (Iskra ME162 and others) through an optical probe. "
        f"PORT is the probe's port or a pyserial URL; the built-in virtual ME162 is {VIRTUAL_PORT} "
        "(its readings say they are virtual). 'me162-read decode --help' decodes raw bytes.",
        epilog=EXIT_CODES,
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    p.add_argument("--version", action="version", version=f"%(prog)s {__version__}")
    p.add_argument(
        "port",
        help="/dev/ttyUSB0, socket://host:port, rfc2217://host:port, or me162:// (the virtual ME162)",
    )
    p.add_argument("--address", default="", type=_address, help="device address for the request /?ADDRESS!")
    p.add_argument(
        "--baud",
        default="max",
        type=_baud_cap,
        help="'max' (default), a cap such as 4800, or 300 to never switch",
    )
    p.add_argument(
        "--change-delay",
        type=number(high=10.0),
        default=0.0,
        metavar="S",
        help="extra wait before switching speed (slow USB adapters)",
    )
    p.add_argument(
        "--registers",
        default=(),
        type=_registers,
        help="read only these registers in programming mode, e.g. 1.8.0,2.8.0,0.9.1",
    )
    p.add_argument("--password", help="P1 password for programming mode (never logged)")
    p.add_argument("--partial-blocks", action="store_true", help="read registers with R3 (partial blocks)")
    p.add_argument(
        "--mode", default="auto", choices=["auto", "A", "B", "C", "D"], help="force a protocol mode"
    )
    p.add_argument(
        "--push-baud", type=_standard_baud, default=2400, help="mode D: the speed the meter pushes at"
    )
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
    p.add_argument(
        "--retries",
        type=whole(low=0, high=20),
        default=2,
        help="whole-session retries with backoff (default 2)",
    )
    p.add_argument(
        "--speed",
        type=number(low=0.0, high=1000.0, low_open=True),
        default=1.0,
        help="time scale of a virtual meter run faster than real time",
    )
    p.add_argument("--json", action="store_true", help="print JSON")
    p.add_argument(
        "--loop",
        type=number(low=0.0, high=86400.0, low_open=True),
        metavar="SECONDS",
        help="read every SECONDS, one JSON line per reading",
    )
    p.add_argument(
        "--count",
        type=whole(low=1, high=10**9),
        help="with --loop: stop after this many readings",
    )
    p.add_argument("--record", type=_path, metavar="FILE", help="write the session as a capture (format v1)")
    add_verbosity(p, verbose_help="show the wire traffic with timestamps")
    m = p.add_argument_group(
        "publishing to MQTT (Home Assistant)",
        "With --mqtt the reader reads every --loop seconds (default 60) and publishes each reading; "
        "the password comes from ME162_MQTT_PASSWORD or --mqtt-password-file, never the command line. "
        "docs/home-assistant.md has the topics and payloads.",
    )
    m.add_argument(
        "--mqtt", metavar="URL", help="broker: mqtt://[user@]host[:1883] or mqtts://[user@]host[:8883]"
    )
    m.add_argument(
        "--mqtt-password-file", type=_path, metavar="FILE", help="the broker password (first line)"
    )
    m.add_argument("--mqtt-ca", type=_path, metavar="FILE", help="mqtts: CA certificate(s) to trust")
    m.add_argument("--mqtt-cert", type=_path, metavar="FILE", help="mqtts: client certificate")
    m.add_argument("--mqtt-key", type=_path, metavar="FILE", help="mqtts: the client certificate's key")
    m.add_argument("--mqtt-prefix", default="me162", metavar="TOPIC", help="topic prefix (default me162)")
    m.add_argument(
        "--meter-id", default="meter", help="this meter's part of the topics: PREFIX/ID/state (default meter)"
    )
    m.add_argument(
        "--discovery",
        choices=["device", "components", "none"],
        default="device",
        help="Home Assistant discovery: device-based (default), one config per entity (older Home "
        "Assistant) or none",
    )
    m.add_argument("--discovery-prefix", default="homeassistant", metavar="TOPIC")
    m.add_argument(
        "--legacy-topic",
        metavar="TOPIC",
        help="also publish the original ME162 project's payload (meter_import, meter_export, ...) here, "
        "e.g. /halixon",
    )
    m.add_argument("--uart-channel", type=whole(low=0, high=255), default=1)
    m.add_argument(
        "--queue",
        type=whole(low=1, high=10**6),
        default=1000,
        help="readings kept while the broker is unreachable (default 1000; the oldest is dropped)",
    )
    return p


def publisher_from(args: argparse.Namespace) -> Publisher | None:
    if not args.mqtt:
        return None
    from me162.reader.publish import Broker, PublishOptions, check_topic_part, read_password
    from me162.reader.publish import Publisher as _Publisher

    broker = Broker.parse(args.mqtt)
    opts = PublishOptions(
        broker,
        password=read_password(dict(os.environ), args.mqtt_password_file),
        ca=args.mqtt_ca,
        cert=args.mqtt_cert,
        key=args.mqtt_key,
        prefix=args.mqtt_prefix.strip("/") or "me162",
        meter_id=check_topic_part(args.meter_id, "--meter-id"),
        discovery=args.discovery,
        discovery_prefix=args.discovery_prefix.strip("/") or "homeassistant",
        legacy_topic=args.legacy_topic,
        uart_channel=args.uart_channel,
        queue_size=args.queue,
    )
    for f in (opts.ca, opts.cert, opts.key):
        if f is not None and not f.is_file():
            raise ConfigError(f"{f}: no such file")
    return _Publisher(opts, virtual=is_virtual(args.port))


def config_from(args: argparse.Namespace) -> ReaderConfig:
    from me162.reader.session import ReaderConfig

    return ReaderConfig(
        address=args.address,
        baud=args.baud,
        change_delay=args.change_delay,
        registers=args.registers,
        password=args.password,
        partial_blocks=args.partial_blocks,
        wake_up=args.wake_up,
        break_first=args.break_first,
        mode=args.mode,
        push_baud=args.push_baud,
        verify_bcc=not args.no_bcc_check,
        session_retries=args.retries,
    )


def is_virtual(port: str) -> bool:
    """Whether PORT is the built-in virtual meter (asked for by name: me162://...)."""
    return port.startswith("me162://")


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
        "virtual": is_virtual(port),
        "mode": res.mode,
        "speeds": res.speeds,
        "timings": res.timings,
        "retries": res.retries,
        "notes": res.notes,
    }
    return doc


def print_table(res: SessionResult, port: str) -> None:
    if is_virtual(port):
        print(f"VIRTUAL METER ({port}): simulated values, not a real meter's\n")
    from me162.reader import decode

    baud = res.speeds[-1] if res.speeds else None
    if res.readout is not None:
        print(decode.format_table(res.readout, mode=res.mode, baud=baud))
    elif res.identification is not None:
        i = res.identification
        print(f"Identification  {i.raw}   manufacturer {i.manufacturer}, mode {res.mode}, {baud} Bd")
    if res.registers:
        print()
        width = max(len(r) for r in res.registers)
        for reg, v in res.registers.items():
            shown = f"ERROR {v['error']}" if v["error"] else f"{v['value']} {v['unit'] or ''}".rstrip()
            print(f"{reg.ljust(width)}  {shown}")
    speeds = " -> ".join(str(s) for s in res.speeds)
    print(
        f"\nsession: mode {res.mode}, {speeds} Bd, {res.retries} retries"
        + "".join(f"\nnote: {n}" for n in res.notes)
    )


class Interrupted(KeyboardInterrupt):
    """SIGINT or SIGTERM: stop now (the driver still sends B0 in programming mode)."""


def _on_signal(signum: int, frame: object) -> None:
    raise Interrupted(signum)


def run_read(argv: list[str]) -> int:
    args = build_read_parser().parse_args(argv)
    if args.count is not None and args.loop is None:
        print("me162-read: --count goes with --loop (see me162-read --help)", file=sys.stderr)
        return EXIT_USAGE
    if args.record is not None and not args.record.parent.is_dir():
        print(
            f"me162-read: --record {args.record}: the folder {args.record.parent} does not exist",
            file=sys.stderr,
        )
        return EXIT_USAGE
    import logging
    import time

    level = log_level(args, default=logging.WARNING)
    logging.basicConfig(level=level, format="%(message)s", stream=sys.stderr)
    if level > logging.DEBUG:
        logging.getLogger("me162.wire").setLevel(logging.WARNING)
    try:
        publisher = publisher_from(args)
    except ConfigError as e:
        print(f"me162-read: {e}", file=sys.stderr)
        return EXIT_USAGE
    if publisher is not None and args.loop is None:
        args.loop = 60.0
    config = config_from(args)
    from me162.reader.driver import PortOptions, progress_printer  # not for --help: pyserial, the driver

    opts = PortOptions(args.port, args.parity_in_software, args.speed)
    show = progress_printer() if sys.stderr.isatty() and not args.json and args.loop is None else None
    if args.loop is None:
        return read_and_report(opts, config, args, show)
    if publisher is not None:
        logging.getLogger("me162.reader.publish").setLevel(logging.INFO)
        publisher.start()
    try:
        n = 0
        while args.count is None or n < args.count:
            started = time.monotonic()
            code = read_and_report(opts, config, args, None, loop=True, publisher=publisher)
            n += 1
            if args.count is not None and n >= args.count:
                return code
            time.sleep(max(0.0, args.loop - (time.monotonic() - started)))
        return 0
    finally:
        if publisher is not None:
            publisher.close()


def read_and_report(
    opts: PortOptions,
    config: ReaderConfig,
    args: argparse.Namespace,
    show: Any,
    *,
    loop: bool = False,
    publisher: Publisher | None = None,
) -> int:
    import json
    from datetime import UTC, datetime

    from me162.reader.driver import PortError, read_once
    from me162.reader.session import ReaderError

    stamp = datetime.now(UTC).isoformat(timespec="seconds")
    try:
        record = args.record
        if record is not None and loop:
            record = record.with_name(
                f"{record.name.removesuffix('.capture.jsonl')}-{stamp.replace(':', '')}.capture.jsonl"
            )
        res = read_once(opts, config, progress=show, record=record)
    except ReaderError as e:
        if publisher is not None:
            publisher.failure(e.failure.summary, e.detail, e.failure.hint)
        return fail(e.failure.summary, str(e), EXIT_BY_FAILURE[e.failure.name], loop, stamp)
    except PortError as e:
        if publisher is not None:
            publisher.failure("port", str(e), "check the probe is plugged in and the port name is right")
        return fail("port", str(e), EXIT_PORT, loop, stamp)
    except OSError as e:
        return fail("record", f"cannot write the capture: {e}", EXIT_PORT, loop, stamp)
    if publisher is not None:
        publisher.reading(res)
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
        print_table(res, opts.url)
    if bad:
        print(
            f"me162-read: the meter could not read {', '.join(bad)} (hint: not every meter has every register)",
            file=sys.stderr,
        )
        return EXIT_REGISTER
    return 0


def fail(kind: str, message: str, code: int, loop: bool, stamp: str) -> int:
    import json

    if loop:
        print(json.dumps({"time": stamp, "error": kind, "message": message}), flush=True)
    print(f"me162-read: {message}", file=sys.stderr)
    return code


def build_decode_parser() -> argparse.ArgumentParser:
    from me162.reader import decode

    d = argparse.ArgumentParser(
        prog="me162-read decode",
        description="Decode raw bytes as they came off the wire: optionally the echoed request, "
        "then the identification line, then the data message.",
    )
    decode.add_arguments(d)
    return d


def main(argv: list[str] | None = None) -> int:
    argv = sys.argv[1:] if argv is None else argv
    signal.signal(signal.SIGTERM, _on_signal)
    try:
        if argv[:1] == ["decode"]:
            from me162.reader import decode

            return decode.run(build_decode_parser().parse_args(argv[1:]))
        return run_read(argv)
    except KeyboardInterrupt as e:
        signum = e.args[0] if isinstance(e, Interrupted) and e.args else signal.SIGINT
        print(f"me162-read: stopped by {signal.Signals(signum).name}", file=sys.stderr)
        return EXIT_INTERRUPTED
    except BrokenPipeError:
        # The reader of our output went away (`me162-read ... | head`): not an error.
        devnull = os.open(os.devnull, os.O_WRONLY)
        os.dup2(devnull, sys.stdout.fileno())
        return 0


if __name__ == "__main__":
    sys.exit(main())
