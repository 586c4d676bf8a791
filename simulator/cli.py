"""``me162-sim``: serve virtual meters on ptys or TCP ports until stopped.

    me162-sim --pty [--link PATH] [--profile me162] [--speed N] [--count N] [--verbose]
    me162-sim --tcp PORT [--parity-bit]
    me162-sim --rfc2217 PORT
    me162-sim --pty --scenario fixtures/scenarios/bcc-corrupt-readout.yaml [--chaos SEED --rate P]
    me162-sim --list-profiles
    LD_PRELOAD=$(me162-sim --pty-fix) my-reader /dev/pts/N   # a reader on glibc: see --pty-fix
    me162-sim replay CAPTURE [--pty|--tcp PORT|--rfc2217 PORT] [--speed N] [--loop]
    me162-sim tap --device /dev/ttyUSB0 [--link PATH] [--record FILE]
    me162-sim capture show FILE
    me162-sim capture export --pcapng FILE [-o OUT]
    me162-sim capture dissector [--install [DIR]]

Prints one line per meter with the device path or URL a reader should open, then serves
until interrupted.  Exit codes: 0 stopped by a signal; 2 bad options or profile; 3 a port
could not be opened.
"""

from __future__ import annotations

import argparse
import dataclasses
import logging
import os
import signal
import sys
import threading
from datetime import datetime
from pathlib import Path
from typing import Protocol

from me162.protocol.cliargs import OneLineParser, add_verbosity, log_level, number, tcp_port, whole
from me162.protocol.errors import Me162Error
from me162.protocol.version import __version__

TYPE_CHECKING = False  # the profile and session modules (YAML, the link) load when a meter is made
if TYPE_CHECKING:
    from me162.simulator.session import MeterOptions

EXIT_USAGE = 2
EXIT_PORT = 3


class _Server(Protocol):
    def start(self) -> object: ...
    def stop(self) -> None: ...


SPEED = number(low=0.0, high=1000.0, low_open=True)


def record_dir_problem(path: Path | None) -> str | None:
    """Why --record DIR cannot be used, or None: found before anything starts, so that no
    server thread dies on it later while the process stays up."""
    if path is None:
        return None
    if path.exists() and not path.is_dir():
        return f"--record {path}: not a folder (sessions are recorded as one capture file each into a folder)"
    try:
        path.mkdir(parents=True, exist_ok=True)
    except OSError as e:
        return f"--record {path}: cannot create the folder: {e.strerror}"
    if not os.access(path, os.W_OK):
        return f"--record {path}: the folder is not writable"
    return None


def stop_signals() -> tuple[threading.Event, list[int]]:
    """SIGINT and SIGTERM set the event; the list holds the signals that came, first first."""
    stop = threading.Event()
    stopped_by: list[int] = []

    def on_signal(signum: int, frame: object) -> None:
        stopped_by.append(signum)
        stop.set()

    signal.signal(signal.SIGINT, on_signal)
    signal.signal(signal.SIGTERM, on_signal)
    return stop, stopped_by


def build_parser() -> argparse.ArgumentParser:
    p = OneLineParser(
        prog="me162-sim",
        description="Serve virtual IEC 62056-21 meters (Iskra ME162 and others).",
        epilog="Other commands: 'me162-sim replay CAPTURE' serves a recorded session, 'me162-sim tap --device DEV' "
        "records a real probe through a pty, 'me162-sim capture show|export FILE' looks at captures; each has --help. "
        "Exit codes: 0 stopped by SIGTERM or done; 1 --pty-fix cannot be built; 2 bad options, profile, scenario or "
        "capture; 3 a port could not be opened or a file written; 130 interrupted (Ctrl-C).",
    )
    p.add_argument("--version", action="version", version=f"%(prog)s {__version__}")
    where = p.add_mutually_exclusive_group()
    where.add_argument("--pty", action="store_true", help="serve on a pseudo-terminal (default)")
    where.add_argument(
        "--tcp", type=tcp_port, metavar="PORT", help="serve raw TCP on 127.0.0.1:PORT (0: any free port)"
    )
    where.add_argument("--rfc2217", type=tcp_port, metavar="PORT", help="serve RFC 2217 on 127.0.0.1:PORT")
    p.add_argument(
        "--link",
        type=Path,
        metavar="PATH",
        help="make PATH a symlink to the pty (PATH0, PATH1... with --count)",
    )
    p.add_argument(
        "--profile", default="me162", help="built-in profile name or a profile file (default me162)"
    )
    p.add_argument(
        "--count", type=whole(low=1, high=1000), default=1, help="serve N meters, each its own (default 1)"
    )
    p.add_argument("--speed", type=SPEED, default=1.0, help="run the clock N times faster than real time")
    p.add_argument(
        "--seed",
        type=whole(low=0, high=2**63 - 1),
        default=0,
        help="seed of the register model and reaction times",
    )
    p.add_argument("--clock", help="the meter clock's start, ISO date-time (default: now)")
    p.add_argument("--frozen", action="store_true", help="registers keep the profile's values")
    p.add_argument("--parity-bit", action="store_true", help="carry 7E1 as 8N1 with the parity in bit 7")
    p.add_argument(
        "--record", type=Path, metavar="DIR", help="write every session as a capture (format v1) into DIR"
    )
    p.add_argument(
        "--scenario",
        action="append",
        default=[],
        metavar="NAME|FILE",
        help="apply a fault scenario: a built-in one by name (--list-scenarios) or a file (repeatable)",
    )
    p.add_argument(
        "--chaos",
        type=whole(low=0, high=2**63 - 1),
        metavar="SEED",
        help="random faults from the catalogue, reproducible from SEED",
    )
    p.add_argument(
        "--rate",
        type=number(low=0.0, high=1.0),
        default=0.1,
        help="with --chaos: the chance a transmission is hit (default 0.1)",
    )
    p.add_argument("--list-profiles", action="store_true", help="list the built-in profiles and exit")
    p.add_argument(
        "--pty-fix",
        action="store_true",
        help="build (once, with cc) and print the path of the pty fix for readers on glibc, for "
        "LD_PRELOAD: Debian's and Fedora's glibc fail a 7E1 tcsetattr repeated on a pty with EINVAL, "
        "which a real serial port never does (docs/serial-port.md); exit 1 if it cannot be built",
    )
    p.add_argument(
        "--schema",
        choices=["profile", "scenario", "declaration", "capture-header"],
        help="print the path of a file format's JSON Schema and exit (for editors: "
        "'# yaml-language-server: $schema=PATH' at the top of a profile or scenario)",
    )
    p.add_argument(
        "--list-scenarios",
        action="store_true",
        help="list the built-in fault scenarios with their purpose and exit",
    )
    add_verbosity(p, verbose_help="log the wire traffic with timestamps")
    return p


def build_replay_parser() -> argparse.ArgumentParser:
    p = OneLineParser(
        prog="me162-sim replay",
        description="Serve the meter side of a capture with its recorded timing and speeds.",
        epilog="Exit codes: 0 stopped by SIGTERM; 2 bad options or capture; 3 a port could not be opened; "
        "130 interrupted (Ctrl-C).",
    )
    p.add_argument("capture", type=Path, help="a capture file (format v1)")
    where = p.add_mutually_exclusive_group()
    where.add_argument("--pty", action="store_true", help="serve on a pseudo-terminal (default)")
    where.add_argument("--tcp", type=tcp_port, metavar="PORT")
    where.add_argument("--rfc2217", type=tcp_port, metavar="PORT")
    p.add_argument("--link", type=Path, metavar="PATH", help="make PATH a symlink to the pty")
    p.add_argument("--speed", type=SPEED, default=1.0, help="run the clock N times faster than real time")
    p.add_argument(
        "--loop",
        action="store_true",
        help="serve the recording again and again: a request after the last recorded session starts the first",
    )
    p.add_argument(
        "--record", type=Path, metavar="DIR", help="record what happens (mismatches included) into DIR"
    )
    add_verbosity(p)
    return p


def build_capture_parser() -> argparse.ArgumentParser:
    p = OneLineParser(
        prog="me162-sim capture",
        description="Look at and convert captures.",
        epilog="Exit codes: 0 done; 2 not a capture (the file and line are named); 3 a file cannot be read or written.",
    )
    sub = p.add_subparsers(dest="action", required=True)
    s = sub.add_parser("show", help="print a readable timeline")
    s.add_argument("file", type=Path)
    e = sub.add_parser("export", help="convert to pcapng for Wireshark/tshark")
    e.add_argument("file", type=Path)
    e.add_argument("--pcapng", action="store_true", required=True, help="the output format")
    e.add_argument("-o", "--output", type=Path, help="output file (default: FILE with .pcapng)")
    d = sub.add_parser(
        "dissector",
        help="print the path of the IEC 62056-21 Wireshark dissector (Lua) for exported captures",
        description="Without options: print the path of the dissector shipped with me162, for "
        "`tshark -X lua_script:PATH -r FILE.pcapng`.  With --install: copy it into Wireshark's "
        "personal Lua plugins folder, where Wireshark and tshark load it at every start.",
    )
    d.add_argument(
        "--install",
        nargs="?",
        const=Path.home() / ".local" / "lib" / "wireshark" / "plugins",
        type=Path,
        metavar="DIR",
        help="copy it into DIR (default: ~/.local/lib/wireshark/plugins) and print where it went",
    )
    return p


def capture_main(argv: list[str]) -> int:
    from me162.protocol.capture import read_capture
    from me162.simulator.capture_tools import export_pcapng, show

    args = build_capture_parser().parse_args(argv)
    if args.action == "dissector":
        source = Path(__file__).resolve().parent / "iec62056_21.lua"
        if args.install is None:
            print(source)
            return 0
        try:
            args.install.mkdir(parents=True, exist_ok=True)
            target = args.install / source.name
            target.write_bytes(source.read_bytes())
        except OSError as e:
            print(f"me162-sim capture dissector: cannot install into {args.install}: {e}", file=sys.stderr)
            return EXIT_PORT
        print(target)
        return 0
    try:
        capture = read_capture(args.file)
        if args.action == "show":
            print(show(capture))
        else:
            out = args.output or args.file.with_name(
                args.file.name.removesuffix(".jsonl").removesuffix(".capture") + ".pcapng"
            )
            export_pcapng(capture, out)
            print(out)
    except Me162Error as e:
        print(f"me162-sim capture: {e}", file=sys.stderr)
        return EXIT_USAGE
    except BrokenPipeError:
        raise  # a closed stdout: main() handles it
    except OSError as e:
        print(f"me162-sim capture: {e}", file=sys.stderr)
        return EXIT_PORT
    return 0


def replay_main(argv: list[str]) -> int:
    args = build_replay_parser().parse_args(argv)
    logging.basicConfig(
        level=log_level(args, default=logging.INFO), format="%(asctime)s %(message)s", stream=sys.stderr
    )
    problem = record_dir_problem(args.record)
    if problem:
        print(f"me162-sim replay: {problem}", file=sys.stderr)
        return EXIT_USAGE
    try:
        from me162.protocol.capture import read_capture
        from me162.simulator.replay import build_script

        build_script(read_capture(args.capture))
    except Me162Error as e:
        print(f"me162-sim replay: {e}", file=sys.stderr)
        return EXIT_USAGE
    from me162.simulator.session import MeterOptions

    options = MeterOptions(speed=args.speed, record=args.record, replay=args.capture, loop=args.loop)
    return serve(options, args, count=1)


def tap_main(argv: list[str]) -> int:
    p = OneLineParser(
        prog="me162-sim tap",
        description="Put a pty in front of a real probe and record the session.",
        epilog="Exit codes: 0 stopped by Ctrl-C or SIGTERM; 2 bad options; 3 the probe or the file cannot be opened.",
    )
    p.add_argument("--device", required=True, help="the real probe's port, e.g. /dev/ttyUSB0")
    p.add_argument("--link", type=Path, metavar="PATH", help="make PATH a symlink to the tap's pty")
    p.add_argument("--record", type=Path, default=Path("tap.capture.jsonl"), help="capture file to write")
    args = p.parse_args(argv)
    logging.basicConfig(level=logging.INFO, format="%(asctime)s %(message)s", stream=sys.stderr)
    from me162.simulator.tap import Tap

    try:
        tap = Tap(args.device, args.record, link=args.link)
    except (Me162Error, OSError) as e:
        print(f"me162-sim tap: {e}", file=sys.stderr)
        return EXIT_PORT
    print(tap.tty, flush=True)
    stop, stopped_by = stop_signals()
    tap.start()
    logging.info("tapping %s; recording into %s; stop with Ctrl-C", args.device, args.record)
    stop.wait()
    tap.stop()
    if stopped_by and stopped_by[0] == signal.SIGINT:
        print(f"me162-sim tap: stopped by SIGINT; the session is in {args.record}", file=sys.stderr)
        return 130
    return 0


def main(argv: list[str] | None = None) -> int:
    try:
        return _main(sys.argv[1:] if argv is None else argv)
    except KeyboardInterrupt:
        print("me162-sim: stopped by SIGINT", file=sys.stderr)
        return 130
    except BrokenPipeError:  # `me162-sim capture show FILE | head`: not an error
        os.dup2(os.open(os.devnull, os.O_WRONLY), sys.stdout.fileno())
        return 0


def _main(argv: list[str]) -> int:
    if argv[:1] == ["tap"]:
        return tap_main(argv[1:])
    if argv[:1] == ["replay"]:
        return replay_main(argv[1:])
    if argv[:1] == ["capture"]:
        return capture_main(argv[1:])
    args = build_parser().parse_args(argv)
    logging.basicConfig(
        level=log_level(args, default=logging.INFO), format="%(asctime)s %(message)s", stream=sys.stderr
    )
    if args.list_scenarios:
        from me162 import fixtures
        from me162.simulator.faults import load_scenario

        for name, path in fixtures.scenarios().items():
            print(f"{name:36} {load_scenario(path).purpose}")
        return 0
    if args.schema:
        from me162.protocol.schema import schema_path

        print(schema_path(args.schema))
        return 0
    if args.pty_fix:
        from me162.simulator import ptyfix

        lib = ptyfix.library()
        if lib is None:
            print("me162-sim: the pty fix cannot be built here: no working C compiler (cc)", file=sys.stderr)
            return 1
        print(lib)
        return 0
    if args.list_profiles:
        from me162.simulator.profile import builtin_profiles, load_profile

        for name in builtin_profiles():
            prof = load_profile(name)
            print(f"{name:10} {prof.identification.raw:24} mode {prof.mode}  {prof.description}")
        return 0
    problem = record_dir_problem(args.record)
    if problem:
        print(f"me162-sim: {problem}", file=sys.stderr)
        return EXIT_USAGE
    try:
        clock = datetime.fromisoformat(args.clock) if args.clock else None
        from me162 import fixtures
        from me162.simulator.faults import load_scenario

        args.scenario = [fixtures.scenario(s) for s in args.scenario]
        for path in args.scenario:
            load_scenario(path)  # nothing starts with a half-understood scenario
        chaos = (args.chaos, args.rate) if args.chaos is not None else None
        from me162.simulator.session import MeterOptions

        options = MeterOptions(
            args.profile,
            args.seed,
            args.speed,
            clock,
            not args.frozen,
            args.parity_bit,
            args.record,
            scenarios=list(args.scenario),
            chaos=chaos,
        )
        options.load()
    except (Me162Error, ValueError) as e:
        print(f"me162-sim: {e}", file=sys.stderr)
        return EXIT_USAGE
    return serve(options, args, count=args.count)


def settle() -> None:
    """Before serving: build the frames' construct definitions now, not in the middle of the
    first readout, and leave what exists so far (modules, profiles, the meters) out of the
    cyclic garbage collector's walks.  This process lives to serve meters and all of that
    lives as long as it does; a full collection walking it would hold every meter's next byte
    up for tens of milliseconds at 100 meters (``bench/bench_pacing.py``)."""
    import gc

    import me162.protocol.formats  # noqa: F401

    gc.collect()
    gc.freeze()


def serve(options: MeterOptions, args: argparse.Namespace, *, count: int) -> int:
    # a server that may run for days logs and records its events, and keeps none in memory
    options = dataclasses.replace(options, keep_events=False)
    servers: list[_Server] = []
    try:
        for i in range(count):
            if args.tcp is not None or args.rfc2217 is not None:
                from me162.simulator.tcp_transport import TcpMeter

                base = args.tcp if args.tcp is not None else args.rfc2217
                tm = TcpMeter(options, base + i if base else 0, rfc2217=args.rfc2217 is not None, index=i)
                servers.append(tm)
                print(tm.url, flush=True)
            else:
                from me162.simulator.pty_transport import PtyMeter

                link = args.link
                if link is not None and count > 1:
                    link = link.with_name(f"{link.name}{i}")
                pm = PtyMeter(options, index=i, link=link)
                servers.append(pm)
                print(pm.device, flush=True)
    except OSError as e:
        print(f"me162-sim: cannot open the port: {e}", file=sys.stderr)
        for s in servers:
            s.stop()
        return EXIT_PORT
    except Me162Error as e:
        print(f"me162-sim: {e}", file=sys.stderr)
        for s in servers:
            s.stop()
        return EXIT_USAGE
    if count > 1 and args.tcp is None and args.rfc2217 is None:
        from me162.simulator.pty_transport import PtyHub, PtyMeter

        servers = [PtyHub([m for m in servers if isinstance(m, PtyMeter)])]  # one thread serves them all
    stop, stopped_by = stop_signals()
    settle()
    for s in servers:
        s.start()
    what = f"a replay of {options.replay}" if options.replay else f"{count} {options.profile} meter(s)"
    logging.info("serving %s at %sx speed; stop with Ctrl-C", what, options.speed)
    stop.wait()
    for s in servers:
        s.stop()
    if stopped_by and stopped_by[0] == signal.SIGINT:
        print("me162-sim: stopped by SIGINT", file=sys.stderr)
        return 130
    return 0


if __name__ == "__main__":
    sys.exit(main())
