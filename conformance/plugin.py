"""pytest plugin: ``pytest --me162-reader=reader.toml`` runs the conformance suite as tests,
and fixtures give a reader project virtual meters for its own tests.

Fixtures: ``me162_meter`` (a virtual ME162 on a pty, frozen registers, 20x speed; its
``.path`` is the device), ``me162_meter_factory`` (any profile, scenarios, speed).
"""

from __future__ import annotations

from collections.abc import Callable, Iterator
from datetime import datetime
from pathlib import Path
from typing import Any

import pytest

from me162.simulator.pty_transport import PtyMeter
from me162.simulator.session import MeterOptions


def pytest_addoption(parser: pytest.Parser) -> None:
    group = parser.getgroup("me162", "IEC 62056-21 reader conformance (me162)")
    group.addoption("--me162-reader", metavar="TOML", help="grade the reader this declaration describes")
    group.addoption("--me162-group", action="append", help="only this group of cases (repeatable)")
    group.addoption("--me162-case", action="append", help="only this case (repeatable)")
    group.addoption(
        "--me162-speed", type=float, default=20.0, help="time scale of the virtual meters (default 20)"
    )
    group.addoption("--me162-bundle", metavar="DIR", help="also write the results bundle here")


class ConformanceItem(pytest.Item):
    def __init__(self, *, case: Any, decl: Any, **kwargs: Any) -> None:
        super().__init__(**kwargs)
        self.case = case
        self.decl = decl
        self.result: Any = None

    def runtest(self) -> None:
        from me162.conformance.run import run_case
        from me162.conformance.suite import Verdict

        cfg = self.config
        bundle = cfg.getoption("--me162-bundle")
        self.result = run_case(
            self.case,
            self.decl,
            speed=cfg.getoption("--me162-speed"),
            seed=0,
            bundle=Path(bundle) if bundle else None,
        )
        self.config.stash.setdefault(_RESULTS, []).append((self.case, self.result))
        if self.result.verdict is Verdict.NOT_APPLICABLE:
            pytest.skip(f"NOT-APPLICABLE: {self.result.reason}")
        if self.result.verdict is Verdict.INCONCLUSIVE:
            pytest.xfail(f"INCONCLUSIVE: {self.result.reason}")
        if self.result.verdict is Verdict.FAIL:
            raise ConformanceFailure(self.result.reason)

    def repr_failure(self, excinfo: pytest.ExceptionInfo[BaseException], style: Any = None) -> str:
        if isinstance(excinfo.value, ConformanceFailure):
            return f"{self.case.id} {self.case.title}: FAIL: {excinfo.value}\n  purpose: {self.case.purpose}\n  reference: {self.case.reference}"
        return str(super().repr_failure(excinfo))

    def reportinfo(self) -> tuple[Path, int, str]:
        return self.decl.path, 0, f"{self.case.id} {self.case.title}"


class ConformanceFailure(AssertionError):
    pass


_RESULTS = pytest.StashKey[list[Any]]()


class ConformanceCollector(pytest.Collector):
    def __init__(self, *, decl: Any, **kwargs: Any) -> None:
        super().__init__(**kwargs)
        self.decl = decl

    def collect(self) -> list[pytest.Item]:
        from me162.conformance.cases import catalogue
        from me162.conformance.run import select

        cases = select(
            catalogue(),
            groups=self.config.getoption("--me162-group"),
            ids=self.config.getoption("--me162-case"),
        )
        return [ConformanceItem.from_parent(self, name=c.id, case=c, decl=self.decl) for c in cases]


def pytest_collection_modifyitems(
    session: pytest.Session, config: pytest.Config, items: list[pytest.Item]
) -> None:
    path = config.getoption("--me162-reader")
    if not path:
        return
    from me162.conformance.declaration import load_declaration
    from me162.conformance.run import prepare

    decl = load_declaration(path)
    failed = prepare(decl)
    if failed:
        raise pytest.UsageError(f"me162: {failed}")
    collector = ConformanceCollector.from_parent(session, name=f"me162-conformance[{decl.name}]", decl=decl)
    items.extend(collector.collect())


def pytest_sessionfinish(session: pytest.Session, exitstatus: int) -> None:
    bundle = session.config.getoption("--me162-bundle", default=None)
    results = session.config.stash.get(_RESULTS, [])
    if bundle and results:
        from me162.conformance.declaration import load_declaration
        from me162.conformance.report import write_bundle

        decl = load_declaration(session.config.getoption("--me162-reader"))
        cases = [c for c, _ in results]
        write_bundle(Path(bundle), decl, cases, [r for _, r in results], speed=session.config.getoption("--me162-speed"), seed=0,
                     seconds=sum(r.seconds for _, r in results))  # fmt: skip


@pytest.fixture
def me162_meter_factory() -> Iterator[Callable[..., PtyMeter]]:
    """Make virtual meters on ptys: ``factory(profile="me162", scenarios=[...], speed=20)``."""
    made: list[PtyMeter] = []

    def make(profile: str = "me162", *, speed: float = 20.0, scenarios: list[str | Path] | None = None, frozen: bool = True,
             **kw: Any) -> PtyMeter:  # fmt: skip
        options = MeterOptions(profile, speed=speed, clock_start=datetime(2026, 6, 21, 12), moving=not frozen,
                               scenarios=[Path(s) for s in scenarios or []], **kw)  # fmt: skip
        meter = PtyMeter(options).start()
        made.append(meter)
        return meter

    yield make
    for m in made:
        m.stop()


@pytest.fixture
def me162_meter(me162_meter_factory: Callable[..., PtyMeter]) -> PtyMeter:
    """A virtual ME162 on a pty (frozen registers, 20x speed); open ``me162_meter.path``."""
    return me162_meter_factory()
