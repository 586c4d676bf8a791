"""The me162 pytest plugin (entry point ``me162``): the conformance suite as pytest tests, and
virtual meters as fixtures for a reader project's own tests.  docs/pytest-plugin.md is the guide.

The virtual meters run 20 times faster than real time unless told otherwise
(``--me162-speed 1``, or ``me162_speed = 1`` in the pytest ini): a reader that takes a time
scale must be given ``meter.speed``; one that cannot must be run at 1.

Conformance: ``pytest --me162-reader=reader.toml`` (a file, or a declaration shipped with me162
such as ``me162-read``) adds one test per case, named by its id:
``pytest "reader.toml::FRAME-07"`` runs one.  Under pytest-xdist the cases spread over the
workers; the results bundle (``--me162-bundle``) is written once, by the controller.

Fixtures: ``me162_meter`` (a virtual ME162 on a pty), ``me162_tcp_meter`` (raw TCP),
``me162_tcp_parity_meter`` (raw TCP, 7E1 carried as 8N1 with the parity in bit 7),
``me162_rfc2217_meter`` (RFC 2217), and ``me162_meter_factory`` for any profile, scenario,
replay, seed or transport.  Each yields a :class:`VirtualMeter`: its ``port`` to open, its
``speed``, and its ``record`` of what happened on the line (what the meter received, what it
sent, when the reader switched speed).
"""

from __future__ import annotations

import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from datetime import datetime
from pathlib import Path
from typing import TYPE_CHECKING, Any

import pytest

if TYPE_CHECKING:
    from me162.conformance.cases import Case
    from me162.conformance.declaration import Declaration
    from me162.simulator.pty_transport import PtyMeter
    from me162.simulator.record import WireRecord
    from me162.simulator.tcp_transport import TcpMeter

DEFAULT_SPEED = 20.0
CLOCK = datetime(2026, 6, 21, 12)  #: the virtual meters' clock at start (frozen registers)
_DECLARATION = pytest.StashKey[Path]()


def pytest_addoption(parser: pytest.Parser) -> None:
    group = parser.getgroup("me162", "IEC 62056-21 reader conformance and virtual meters (me162)")
    group.addoption(
        "--me162-reader",
        metavar="TOML",
        help="grade the reader this declaration describes (a file, or a shipped one: me162-read, pwitab, c-reader)",
    )
    group.addoption("--me162-group", action="append", help="only this group of cases (repeatable)")
    group.addoption("--me162-case", action="append", help="only this case (repeatable)")
    group.addoption(
        "--me162-speed",
        type=float,
        default=None,
        help=f"time scale of every virtual meter (default {DEFAULT_SPEED:g}; 1 = real time)",
    )
    group.addoption("--me162-seed", type=int, default=0, help="seed of the conformance meters (default 0)")
    group.addoption("--me162-bundle", metavar="DIR", help="also write the conformance results bundle here")
    parser.addini("me162_speed", f"time scale of every virtual meter (default {DEFAULT_SPEED:g})", default="")


def speed_of(config: pytest.Config) -> float:
    """The time scale the command line or the ini asks for."""
    given = config.getoption("--me162-speed")
    if given is None:
        ini = str(config.getini("me162_speed") or "").strip()
        given = float(ini) if ini else DEFAULT_SPEED
    if not given > 0:
        raise pytest.UsageError(f"me162: the speed must be positive, not {given}")
    return float(given)


# --- conformance as tests --------------------------------------------------------------------------


def pytest_configure(config: pytest.Config) -> None:
    reader = config.getoption("--me162-reader")
    if not reader:
        if config.getoption("--me162-bundle") and not hasattr(config, "workerinput"):
            # declarations given as paths are collected by xdist's workers, not here: the
            # bundle learns which from the reports
            config.pluginmanager.register(_Bundle(config, None), "me162-bundle")
        return
    from me162.conformance.declaration import find_declaration
    from me162.protocol.errors import ConfigError

    try:
        path = find_declaration(reader).resolve()
    except ConfigError as e:
        raise pytest.UsageError(f"me162: {e}") from None
    config.stash[_DECLARATION] = path
    config.pluginmanager.register(_Bundle(config, path), "me162-bundle")
    if not any(str(Path(a.split("::")[0]).resolve()) == str(path) for a in config.args):
        config.args.append(str(path))  # collected as a file: its cases get addressable ids


def pytest_collect_file(file_path: Path, parent: pytest.Collector) -> pytest.Collector | None:
    if file_path.suffix != ".toml":
        return None
    wanted = parent.config.stash.get(_DECLARATION, None)
    given = {str(Path(a.split("::")[0]).resolve()) for a in parent.config.args}
    if file_path.resolve() != wanted and str(file_path.resolve()) not in given:
        return None
    try:
        import tomllib

        if not isinstance(tomllib.loads(file_path.read_text(encoding="utf-8")).get("reader"), dict):
            return None
    except (OSError, ValueError):
        return None
    try:  # outside the rootdir (a shipped declaration) its node id would be empty
        file_path.resolve().relative_to(parent.config.rootpath.resolve())
    except ValueError:
        return DeclarationFile.from_parent(parent, path=file_path, nodeid=file_path.name)
    return DeclarationFile.from_parent(parent, path=file_path)


class DeclarationFile(pytest.File):
    """A reader declaration: one test per applicable case."""

    def collect(self) -> Iterator[pytest.Item]:
        from me162.conformance.cases import catalogue
        from me162.conformance.declaration import load_declaration
        from me162.conformance.run import prepare, select
        from me162.protocol.errors import ConfigError

        try:
            decl = load_declaration(self.path)
            cases = select(
                catalogue(),
                groups=self.config.getoption("--me162-group"),
                ids=self.config.getoption("--me162-case"),
            )
        except ConfigError as e:
            raise pytest.UsageError(f"me162: {e}") from None
        failed = prepare(decl)
        if failed:
            raise pytest.UsageError(f"me162: {failed}")
        if not self.config.pluginmanager.has_plugin("me162-bundle"):  # a declaration given as a path
            self.config.pluginmanager.register(_Bundle(self.config, self.path), "me162-bundle")
        for case in cases:
            yield ConformanceItem.from_parent(self, name=case.id, case=case, decl=decl)


class ConformanceFailure(AssertionError):
    """A case judged FAIL."""


class ConformanceItem(pytest.Item):
    def __init__(self, *, case: Case, decl: Declaration, **kwargs: Any) -> None:
        super().__init__(**kwargs)
        self.case = case
        self.decl = decl
        self.add_marker(pytest.mark.timeout(decl.timeout * 4 + 60))

    def runtest(self) -> None:
        from me162.conformance.run import run_case
        from me162.conformance.suite import Verdict

        cfg = self.config
        bundle = cfg.getoption("--me162-bundle")
        result = run_case(
            self.case,
            self.decl,
            speed=speed_of(cfg),
            seed=cfg.getoption("--me162-seed"),
            bundle=Path(bundle) if bundle else None,
        )
        # In the JUnit XML as properties of the test case; the bundle is written from them (also
        # on the xdist controller, which only sees the workers' reports).
        self.user_properties += [
            ("me162_case", result.case_id),
            ("me162_verdict", result.verdict.value),
            ("me162_reason", result.reason),
            ("me162_seconds", f"{result.seconds:.3f}"),
            ("me162_declaration", str(self.decl.path)),
        ]
        if result.verdict is Verdict.NOT_APPLICABLE:
            pytest.skip(f"NOT-APPLICABLE: {result.reason}")
        if result.verdict is Verdict.INCONCLUSIVE:
            pytest.xfail(f"INCONCLUSIVE: {result.reason}")
        if result.verdict is Verdict.FAIL:
            raise ConformanceFailure(result.reason)

    def repr_failure(self, excinfo: pytest.ExceptionInfo[BaseException], style: Any = None) -> str:
        if isinstance(excinfo.value, ConformanceFailure):
            c = self.case
            return (
                f"{c.id} {c.title}: FAIL: {excinfo.value}\n  purpose: {c.purpose}\n  reference: {c.reference}"
            )
        return str(super().repr_failure(excinfo))

    def reportinfo(self) -> tuple[Path, int, str]:
        return self.path, 0, f"{self.case.id} {self.case.title}"


class _Bundle:
    """Collects every case's result as its report comes in (on the xdist controller too, from the
    workers' reports) and writes the results bundle once, at the end."""

    def __init__(self, config: pytest.Config, declaration: Path | None) -> None:
        self.config = config
        self.declaration = declaration
        self.results: list[dict[str, Any]] = []

    def pytest_runtest_logreport(self, report: pytest.TestReport) -> None:
        if report.when != "call" and not (report.when == "setup" and report.skipped):
            return
        props = {
            str(k).removeprefix("me162_"): str(v)
            for k, v in report.user_properties
            if str(k).startswith("me162_")
        }
        if "case" in props:
            if self.declaration is None and props.get("declaration"):
                self.declaration = Path(props["declaration"])
            self.results.append({**props, "seconds": float(props["seconds"])})

    def pytest_sessionfinish(self, session: pytest.Session, exitstatus: int) -> None:
        bundle = self.config.getoption("--me162-bundle")
        if hasattr(self.config, "workerinput") or not (bundle and self.results) or self.declaration is None:
            return
        from me162.conformance.cases import catalogue
        from me162.conformance.declaration import load_declaration
        from me162.conformance.report import write_bundle
        from me162.conformance.suite import Result, Verdict

        by_id = {c.id: c for c in catalogue()}
        done = [
            Result(r["case"], Verdict(r["verdict"]), r["reason"], r["seconds"])
            for r in sorted(self.results, key=lambda r: list(by_id).index(r["case"]))
            if r["case"] in by_id
        ]
        write_bundle(Path(bundle), load_declaration(self.declaration), [by_id[r.case_id] for r in done], done,
                     speed=speed_of(self.config), seed=self.config.getoption("--me162-seed"),
                     seconds=sum(r.seconds for r in done))  # fmt: skip


# --- virtual meters as fixtures --------------------------------------------------------------------


@dataclass
class VirtualMeter:
    """A virtual meter a test's reader talks to."""

    port: str  #: the device path (pty) or URL (socket://, rfc2217://) to open
    speed: float  #: its time scale: give it to a reader that scales its timing
    server: PtyMeter | TcpMeter

    @property
    def path(self) -> str:
        """The device path or URL (the same as :attr:`port`)."""
        return self.port

    @property
    def env(self) -> dict[str, str]:
        """An environment to start a reader process with: this one, plus the pty fix for
        readers on glibc in ``LD_PRELOAD`` (docs/serial-port.md), as ``me162-check`` runs them."""
        from me162.simulator import ptyfix

        return ptyfix.reader_env()

    @property
    def record(self) -> WireRecord:
        """What happened on the line so far: ``record.received()``, ``record.sent()``,
        ``record.reader_speeds()``, ``record.commands("R1")``, ``record.ended_with_b0()``...

        When a reader still holds the port, this waits (up to 2 s) for it to let go, so that
        the last bytes it wrote (its B0) are on the record."""
        from me162.simulator.record import WireRecord

        deadline = time.monotonic() + 2.0
        while self.server.reader_open and time.monotonic() < deadline:
            time.sleep(0.01)
        served = self.server.served
        served.link.advance(served.now())
        snapshot = WireRecord()
        snapshot.events = list(served.link.events)
        return snapshot

    @property
    def meter(self) -> Any:
        """The meter itself (its profile, its register model, ``answers`` it sent)."""
        return self.server.served.meter


Factory = Callable[..., VirtualMeter]


@pytest.fixture
def me162_meter_factory(request: pytest.FixtureRequest) -> Iterator[Factory]:
    """Make virtual meters; every one is stopped when the test ends.

    ``factory(profile="me162", *, transport="pty", speed=None, scenarios=(), frozen=True,
    seed=0, replay=None, loop=False, chaos=None, link=None)``: transport is ``pty``, ``tcp``,
    ``tcp-parity`` or ``rfc2217``; scenarios are built-in names or files; replay is a built-in
    capture name or file; chaos is (seed, rate); speed defaults to the session's
    (``--me162-speed``).
    """
    from me162 import fixtures as data
    from me162.simulator.pty_transport import PtyMeter
    from me162.simulator.session import MeterOptions
    from me162.simulator.tcp_transport import TcpMeter

    made: list[PtyMeter | TcpMeter] = []
    default_speed = speed_of(request.config)

    def make(profile: str = "me162", *, transport: str = "pty", speed: float | None = None,
             scenarios: tuple[str | Path, ...] | list[str | Path] = (), frozen: bool = True, seed: int = 0,
             replay: str | Path | None = None, loop: bool = False, chaos: tuple[int, float] | None = None,
             link: str | Path | None = None) -> VirtualMeter:  # fmt: skip
        if transport not in ("pty", "tcp", "tcp-parity", "rfc2217"):
            raise ValueError(f"transport must be pty, tcp, tcp-parity or rfc2217, not {transport!r}")
        options = MeterOptions(
            profile,
            seed=seed,
            speed=default_speed if speed is None else speed,
            clock_start=CLOCK,
            moving=not frozen,
            parity_bit=transport == "tcp-parity",
            scenarios=[data.scenario(s) for s in scenarios],
            chaos=chaos,
            replay=None
            if replay is None
            else (Path(replay) if Path(replay).is_file() else data.capture(str(replay))),
            loop=loop,
        )
        server: PtyMeter | TcpMeter
        if transport == "pty":
            server = PtyMeter(options, link=link).start()
            port = server.device
        else:
            server = TcpMeter(options, 0, rfc2217=transport == "rfc2217").start()
            port = server.url
        made.append(server)
        return VirtualMeter(port, options.speed, server)

    yield make
    for m in made:
        m.stop()


@pytest.fixture
def me162_meter(me162_meter_factory: Factory) -> VirtualMeter:
    """A virtual ME162 on a pty: open ``me162_meter.port`` at 300 Bd 7E1."""
    return me162_meter_factory()


@pytest.fixture
def me162_tcp_meter(me162_meter_factory: Factory) -> VirtualMeter:
    """A virtual ME162 behind a raw TCP converter (``socket://127.0.0.1:PORT``): the
    converter follows the meter's speed, the reader does not switch."""
    return me162_meter_factory(transport="tcp")


@pytest.fixture
def me162_tcp_parity_meter(me162_meter_factory: Factory) -> VirtualMeter:
    """Like ``me162_tcp_meter``, 7E1 carried as 8N1 with the parity in bit 7: the reader adds,
    checks and strips the parity itself."""
    return me162_meter_factory(transport="tcp-parity")


@pytest.fixture
def me162_rfc2217_meter(me162_meter_factory: Factory) -> VirtualMeter:
    """A virtual ME162 over RFC 2217 (``rfc2217://127.0.0.1:PORT``): speed and format changes
    reach the line."""
    return me162_meter_factory(transport="rfc2217")
