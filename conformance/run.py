"""Run the suite: every applicable case, each on a fresh virtual meter, verdicts collected."""

from __future__ import annotations

import logging
import shutil
import subprocess
import time
from collections.abc import Callable, Iterable
from pathlib import Path

from me162.conformance.cases import GROUPS, RENAMED, Case, catalogue
from me162.conformance.declaration import Declaration
from me162.conformance.grading import ran
from me162.conformance.suite import Result, Verdict, cannot_start, could_not_start, execute
from me162.protocol.errors import ConfigError, Me162Error

log = logging.getLogger(__name__)


def select(
    cases: Iterable[Case], *, groups: list[str] | None = None, ids: list[str] | None = None
) -> list[Case]:
    chosen = list(cases)
    if groups:
        unknown = {gr.upper() for gr in groups} - set(GROUPS)
        if unknown:
            raise ConfigError(f"unknown group(s) {', '.join(sorted(unknown))}; groups: {', '.join(GROUPS)}")
        chosen = [c for c in chosen if c.group in {gr.upper() for gr in groups}]
    if ids:
        known = {c.id.upper(): c.id for c in chosen}
        wanted = []
        for i in ids:
            if i.upper() in RENAMED:
                raise ConfigError(
                    f"case {i} is now called {RENAMED[i.upper()]} (REPLAY cases are named after their captures)"
                )
            if i.upper() not in known:
                close = [k for k in known if i.upper() in k][:3]
                hint = f"; did you mean {', '.join(close)}?" if close else "; me162-check --list shows them"
                raise ConfigError(f"no case {i}{hint}")
            wanted.append(known[i.upper()])
        chosen = [c for c in chosen if c.id in set(wanted)]
    return chosen


def prepare(decl: Declaration) -> str | None:
    """Run the declaration's prepare command once (e.g. compile a C reader); the reason it
    failed, or None."""
    if not decl.prepare:
        return None
    argv = decl.prepare_argv()
    decl.cache.mkdir(parents=True, exist_ok=True)
    try:
        p = subprocess.run(
            argv, capture_output=True, text=True, timeout=300, check=False, stdin=subprocess.DEVNULL
        )
    except (OSError, subprocess.TimeoutExpired) as e:
        return f"prepare {argv[0]} failed: {e}"
    if p.returncode != 0:
        return f"prepare {' '.join(argv)} exited {p.returncode}: {(p.stderr.strip().splitlines() or [''])[-1][:160]}"
    return None


def run_case(case: Case, decl: Declaration, *, speed: float, seed: int, bundle: Path | None) -> Result:
    why = case.applies(decl)
    if why:
        return Result(case.id, Verdict.NOT_APPLICABLE, why)
    record = None
    if bundle is not None:
        record = bundle / "captures" / case.id
        shutil.rmtree(record, ignore_errors=True)
    start = time.monotonic()
    try:
        outcome = execute(case.setup, decl, speed=speed, seed=seed, record=record)
        crashed = next((why for r in outcome.runs if (why := r.crashed or could_not_start(r) or "")), "")
        stuck = next((ran(outcome, r) for r in outcome.runs if r.timed_out or r.flooded), None)
        if crashed:
            verdict, reason = Verdict.INCONCLUSIVE, crashed
        elif stuck is not None:  # a hang or a flood fails whatever the case looks at
            verdict, reason = stuck
        else:
            verdict, reason = case.judge(outcome)
    except (Me162Error, OSError) as e:
        return Result(
            case.id, Verdict.INCONCLUSIVE, f"the suite could not run this case: {e}", time.monotonic() - start
        )
    except Exception as e:  # a broken reader must not break the suite
        log.exception("case %s", case.id)
        return Result(
            case.id,
            Verdict.INCONCLUSIVE,
            f"grading failed: {type(e).__name__}: {e}",
            time.monotonic() - start,
        )
    return Result(case.id, verdict, reason, time.monotonic() - start, outcome)


def run_suite(
    decl: Declaration,
    cases: list[Case] | None = None,
    *,
    speed: float = 20.0,
    seed: int = 0,
    bundle: Path | None = None,
    progress: Callable[[Case, Result], None] | None = None,
) -> list[Result]:
    cases = catalogue() if cases is None else cases
    failed = prepare(decl) or cannot_start(decl.argv(port="PORT", speed=speed))
    results = []
    for case in cases:
        if failed and not case.applies(decl):
            result = Result(case.id, Verdict.INCONCLUSIVE, failed)
        else:
            result = run_case(case, decl, speed=speed, seed=seed, bundle=bundle)
            if result.verdict is Verdict.INCONCLUSIVE and result.reason.startswith(
                "the reader could not start"
            ):
                failed = result.reason  # the same for every case: say it once, run nothing more
        results.append(result)
        if progress is not None:
            progress(case, result)
    return results
