"""Running one conformance case: set up the virtual meter, run the reader under test as a
command against it, keep what the reader reported and what the meter saw on the wire."""

from __future__ import annotations

import contextlib
import json
import logging
import os
import resource
import shutil
import signal
import subprocess
import sys
import tempfile
import time
from dataclasses import dataclass, field, replace
from datetime import datetime
from enum import Enum
from pathlib import Path
from typing import Any

from me162 import fixtures
from me162.conformance.declaration import Declaration
from me162.protocol.frames import Identification
from me162.simulator import ptyfix
from me162.simulator.events import WireEvent
from me162.simulator.meter import Meter, MeterLike
from me162.simulator.profile import load_profile
from me162.simulator.pty_transport import PtyMeter
from me162.simulator.record import WireRecord
from me162.simulator.replay import ReplayMeter
from me162.simulator.session import MeterOptions
from me162.simulator.tcp_transport import TcpMeter

log = logging.getLogger(__name__)

CLOCK = datetime(2026, 6, 21, 12, 0, 0)
MIN_REAL_WINDOW = 0.010  #: seconds of real time the tightest window of a case gets at least
OUTPUT_LIMIT = 1024 * 1024  #: a reader printing more than this is flooding
FILE_LIMIT = 64 * 1024 * 1024  #: no file the reader writes may grow beyond this
CLOCK_VALUE = "<the meter clock>"  #: expected value of a time or date register (it moves)


def clip(text: str, limit: int = 160) -> str:
    """A line of a reader's output short enough for a verdict's reason, marked when cut."""
    return text if len(text) <= limit else text[: limit - 1] + "…"


class Verdict(Enum):
    PASS = "PASS"
    FAIL = "FAIL"
    INCONCLUSIVE = "INCONCLUSIVE"
    NOT_APPLICABLE = "NOT-APPLICABLE"


@dataclass(frozen=True)
class Setup:
    """The stimulus: which meter, which faults, how the reader is asked to read."""

    profile: str = "me162"
    ident: str | None = None  #: another identification for the profile
    address: str | None = None  #: the meter's device address (the reader is given it)
    scenarios: tuple[str, ...] = ()  #: built-in scenario names (me162.fixtures.scenarios())
    chaos: tuple[int, float] | None = None
    transport: str = "pty"
    replay: str | None = None  #: a built-in capture to replay instead of a profile
    registers: tuple[str, ...] = ()  #: programming mode: read these
    password: str | None = None
    runs: int = 1  #: run the reader this many times in a row against the same meter
    abandon_session: bool = False  #: the meter starts in programming mode (a session left without B0)
    max_seconds: float = 120.0  #: protocol seconds a case may take


@dataclass
class Run:
    argv: list[str]
    exit_code: int | None
    stdout: str
    stderr: str
    seconds: float
    timed_out: bool = False
    flooded: bool = False
    crashed: str = ""

    @property
    def json(self) -> dict[str, Any] | None:
        try:
            doc = json.loads(self.stdout)
        except (json.JSONDecodeError, ValueError):
            return None
        return doc if isinstance(doc, dict) else None

    @property
    def ok(self) -> bool:
        return self.exit_code == 0 and not self.timed_out


@dataclass
class Outcome(WireRecord):
    """Everything grading looks at: the runs of the reader, and the line's record (the
    queries of :class:`~me162.simulator.record.WireRecord`)."""

    runs: list[Run]
    events: list[WireEvent]
    meter: Any
    declaration: Declaration
    setup: Setup
    expected_readout: dict[str, str] = field(default_factory=dict)
    expected_registers: dict[str, str] = field(default_factory=dict)
    capture_paths: list[Path] = field(default_factory=list)
    speed: float = 1.0  #: the time scale the case ran at

    @property
    def run(self) -> Run:
        return self.runs[-1]

    def reported_readout(self, run: Run | None = None) -> dict[str, str] | None:
        doc = (run or self.run).json
        if doc is None or not isinstance(doc.get("data_sets"), list):
            return None
        out = {}
        for ds in doc["data_sets"]:
            values = ds.get("values") or []
            text = ")(".join(v.get("value", "") + (f"*{v['unit']}" if v.get("unit") else "") for v in values)
            out[ds.get("address") or f"(line {ds.get('line')})"] = text
        return out

    def reported_registers(self, run: Run | None = None) -> dict[str, dict[str, Any]] | None:
        doc = (run or self.run).json
        regs = None if doc is None else doc.get("registers")
        return regs if isinstance(regs, dict) else None

    def reported_ident(self, run: Run | None = None) -> str | None:
        doc = (run or self.run).json
        ident = None if doc is None else doc.get("identification")
        return ident.get("raw") if isinstance(ident, dict) else None


@dataclass
class Result:
    case_id: str
    verdict: Verdict
    reason: str
    seconds: float = 0.0
    outcome: Outcome | None = None
    runs: tuple[Run, ...] = ()  #: the reader's runs (kept when the outcome is not: from a worker)
    retimed: str = ""  #: why the case ran again at a slower time scale, if it did


def build_meter(setup: Setup, seed: int) -> Meter | None:
    if setup.replay is not None:
        return None
    profile = load_profile(setup.profile)
    if setup.ident is not None:
        profile = replace(profile, identification=Identification.from_line(setup.ident))
    if setup.address is not None:
        profile = replace(profile, address=setup.address)
    meter = Meter(profile, seed=seed, clock_start=CLOCK, moving=False)
    if setup.abandon_session:
        meter.abandon_session()  # a reader left it in programming mode
    return meter


def expected_values(setup: Setup, seed: int) -> tuple[dict[str, str], dict[str, str]]:
    """What a correct reader reports: the meter's readout and registers (frozen registers)."""
    if setup.replay is not None:
        doc = json.loads(fixtures.expected(setup.replay).read_text())
        return dict(doc["data_sets"]), dict(doc.get("registers", {}))
    meter = build_meter(replace(setup, abandon_session=False), seed)
    assert meter is not None
    from me162.protocol.datablock import parse_data_block

    block = parse_data_block(meter.readout_block())
    readout = {ds.address or "": ")(".join(v.to_text()[1:-1] for v in ds.values) for _, ds in block.data_sets}
    for addr, spec in meter.profile.registers.items():
        if spec.source in ("time", "date") and addr in readout:
            readout[addr] = CLOCK_VALUE  # the meter's clock moves: any value will do
    regs = {}
    for reg in setup.registers:
        found = meter.lookup(reg)
        if found is not None and found.source not in ("time", "date"):
            regs[reg] = meter.value_text(found)[1:-1]
    return readout, regs


#: what a reader prints when it cannot start at all (a missing module, library or program)
_CANNOT_START = (
    "ModuleNotFoundError",
    "ImportError",
    "error while loading shared libraries",
    "Cannot find module",
    "command not found",
    "No such file or directory: '",
)


def resolve_program(argv: list[str]) -> list[str]:
    """The argument list with its program found: on the PATH, or installed beside this Python."""
    if argv and os.sep not in argv[0] and shutil.which(argv[0]) is None:
        beside = Path(sys.executable).parent / argv[0]
        if beside.exists():
            return [str(beside), *argv[1:]]
    return argv


def cannot_start(argv: list[str]) -> str | None:
    """Why the reader's program cannot be started at all, or None."""
    argv = resolve_program(argv)
    program = argv[0] if argv else ""
    path = Path(program) if os.sep in program else None
    if path is not None and not path.exists():
        return f"the reader cannot start: {program} does not exist"
    if path is None and shutil.which(program) is None:
        return f"the reader cannot start: no program {program!r} on the PATH"
    if path is not None and not os.access(path, os.X_OK):
        return f"the reader cannot start: {program} is not executable"
    return None


def could_not_start(run: Run) -> str | None:
    """A run that ended before reading anything because a dependency is missing."""
    if run.exit_code in (None, 0) or run.timed_out:
        return None
    if run.exit_code == 127 or any(sig in run.stderr for sig in _CANNOT_START):
        line = next(
            (
                ln
                for ln in reversed(run.stderr.strip().splitlines())
                if any(sig in ln for sig in _CANNOT_START)
            ),
            (run.stderr.strip().splitlines() or [f"exit {run.exit_code}"])[-1],
        )
        return f"the reader could not start: {clip(line.strip(), 200)}"
    return None


def run_command(argv: list[str], timeout: float) -> Run:
    """Run the reader: an argument list (never a shell), in its own process group, with a
    timeout; a reader that hangs is killed, one that floods stdout is cut off.

    Its output goes to files, not pipes, and this thread only waits for it to exit: nothing
    else in this process competes with the virtual meter's thread for the interpreter while
    the reader talks to it (a thread reading pipes would, and on a busy machine the meter would
    learn late what the reader did)."""
    start = time.monotonic()
    argv = resolve_program(argv)
    with tempfile.TemporaryFile() as out_file, tempfile.TemporaryFile() as err_file:
        try:
            proc = subprocess.Popen(
                argv,
                env=ptyfix.reader_env(),
                stdout=out_file,
                stderr=err_file,
                stdin=subprocess.DEVNULL,
                start_new_session=True,
            )
        except OSError as e:
            return Run(argv, None, "", "", 0.0, crashed=f"cannot start the reader: {e}")
        with contextlib.suppress(OSError):  # a flooding reader cannot fill the disk
            resource.prlimit(proc.pid, resource.RLIMIT_FSIZE, (FILE_LIMIT, FILE_LIMIT))
        try:
            proc.wait(timeout=timeout)
            timed_out = False
        except subprocess.TimeoutExpired:
            timed_out = True
        finally:  # also on Ctrl-C: the reader runs in a session of its own, no signal reaches it
            with contextlib.suppress(ProcessLookupError):
                os.killpg(proc.pid, signal.SIGKILL)  # the reader and anything it left behind
            proc.wait()
        out_file.seek(0)
        out = out_file.read(OUTPUT_LIMIT + 1)
        err_file.seek(0, os.SEEK_END)
        err_file.seek(max(0, err_file.tell() - 20000))
        err = err_file.read()
    flooded = len(out) > OUTPUT_LIMIT or proc.returncode == -signal.SIGXFSZ
    return Run(
        argv,
        None if timed_out else proc.returncode,
        out[:OUTPUT_LIMIT].decode("utf-8", "replace"),
        err.decode("utf-8", "replace"),
        time.monotonic() - start,
        timed_out,
        flooded,
    )


def settle(server: PtyMeter | TcpMeter, speed: float) -> None:
    """After a reader has exited: wait until the transport has seen it let go of the port (so
    that everything it wrote is on the record), then for 20 ms of protocol time, by which the
    last characters it sent have reached the meter."""
    deadline = time.monotonic() + 2.0
    while server.reader_open and time.monotonic() < deadline:
        time.sleep(0.002)
    time.sleep(0.02 / speed)


def case_speed(meter: MeterLike, speed: float) -> float:
    """The time scale a case runs at: ``speed``, but never so fast that the meter's tightest
    window (from an option select to the answer at the new speed) is shorter than
    :data:`MIN_REAL_WINDOW` of real time.  At 20x a 20 ms window would be 1 ms of real time, and
    the verdict would depend on how busy the machine is rather than on the reader."""
    return min(speed, max(1.0, meter.tightest_window / MIN_REAL_WINDOW))


def execute(
    setup: Setup, decl: Declaration, *, speed: float, seed: int, record: Path | None, patience: float = 1.0
) -> Outcome:
    """Serve the meter, run the reader (``setup.runs`` times, each given ``patience`` times its
    declared timeout), and collect everything."""
    scenarios = [fixtures.scenario(s) for s in setup.scenarios]
    meter: MeterLike | None = build_meter(setup, seed)
    if meter is None:
        meter = ReplayMeter.from_file(fixtures.capture(str(setup.replay)))
    meter_speed = case_speed(meter, speed) if decl.scales_time else 1.0
    options = MeterOptions(
        speed=meter_speed,
        seed=seed,
        clock_start=CLOCK,
        moving=False,
        record=record,
        scenarios=scenarios,
        chaos=setup.chaos,
        replay=fixtures.capture(setup.replay) if setup.replay else None,
        parity_bit=setup.transport == "tcp-parity",
    )
    server: PtyMeter | TcpMeter
    if setup.transport == "pty":
        server = PtyMeter(options, meter=meter)
        port = server.path
    else:
        server = TcpMeter(options, 0, rfc2217=setup.transport == "rfc2217", meter=meter)
        port = server.url
    # A fault that fires only from a meter time on (``after``) is meant for the later runs: each
    # of them starts after that time, however fast the reader and the machine are (run back to
    # back, a quick reader could finish every run before it and never meet the fault).
    injector = server.served.faults
    later = max((f.trigger.after or 0.0 for f in injector.faults), default=0.0) if injector else 0.0
    runs: list[Run] = []
    with server:  # (serving once this returns)
        for i in range(setup.runs):
            if i and later and server.served.now() < later:
                time.sleep(server.served.clock.real(later - server.served.now()) + 0.01)
            argv = decl.argv(
                port=port,
                speed=meter_speed,
                registers=list(setup.registers) or None,
                password=setup.password,
                address=setup.address or "",
                software_parity=setup.transport == "tcp-parity",
            )
            runs.append(run_command(argv, decl.timeout * patience))
            settle(server, meter_speed)
        served = server.served
        served.link.advance(served.now())
    readout, regs = expected_values(setup, seed)
    if isinstance(served.meter, Meter):  # what the meter itself sent is the truth, clock included
        for reg in setup.registers:
            sent = served.meter.last_answer(reg)
            if sent is not None:
                regs[reg] = sent
    return Outcome(
        runs=runs,
        events=list(served.link.events),
        meter=served.meter,
        declaration=decl,
        setup=setup,
        expected_readout=readout,
        expected_registers=regs,
        capture_paths=list(served.recorder.paths) if served.recorder else [],
        speed=meter_speed,
    )
