"""Run the suite: every applicable case on a fresh virtual meter, verdicts collected.  Cases
that set up the same meter and ask the same reading share one run, which each grades."""

from __future__ import annotations

import logging
import multiprocessing
import os
import shutil
import subprocess
import sys
import time
from collections.abc import Callable, Iterable
from concurrent.futures import ProcessPoolExecutor, as_completed
from dataclasses import replace
from pathlib import Path

from me162.conformance.cases import GROUPS, RENAMED, Case, catalogue
from me162.conformance.declaration import Declaration
from me162.conformance.grading import ran
from me162.conformance.suite import Result, Verdict, cannot_start, clip, could_not_start, execute
from me162.protocol.errors import ConfigError, Me162Error
from me162.simulator.record import Slip

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
        return f"prepare {' '.join(argv)} exited {p.returncode}: {clip((p.stderr.strip().splitlines() or [''])[-1])}"
    return None


#: Runs again, each at a quarter of the time scale before (never below real time), of a case in
#: which the reader did something just outside a window (see WireRecord.slipped) while the slip
#: keeps shrinking as a machine's hold does.
RETIMES = 2


def by_design(before: Slip | None, now: Slip) -> bool:
    """Whether a reader off again at a quarter of the time scale is off by design: by at least
    half as much protocol time as before (a hold by the machine would have shrunk to a
    quarter)."""
    return before is not None and before.by is not None and now.by is not None and now.by >= before.by / 2


def run_case(case: Case, decl: Declaration, *, speed: float, seed: int, bundle: Path | None) -> Result:
    why = case.applies(decl)
    if why:
        return Result(case.id, Verdict.NOT_APPLICABLE, why)
    return run_cases([case], decl, speed=speed, seed=seed, bundle=bundle)[0]


def same_run(case: Case) -> str:
    """What makes two cases' runs the same: their setup (the meter, its faults, what the reader
    is asked); cases that agree on it share one run and each grades it."""
    return repr(case.setup)


def run_cases(
    cases: list[Case], decl: Declaration, *, speed: float, seed: int, bundle: Path | None
) -> list[Result]:
    """Run applicable cases that share a setup (:func:`same_run`) once, and grade the run for each."""
    first = cases[0]
    record = None
    if bundle is not None:
        record = bundle / "captures" / first.id
    start = time.monotonic()
    retimed = ""
    try:
        # At 20x the option select must come within 75 ms of real time and the switch within
        # 15 ms: a reader that missed one by a hair may have been held back by a busy machine
        # (or its bytes by a busy kernel).  Such a case runs again slower, where the same hair
        # is a wide margin.  A hold is real time, so the slip in protocol time shrinks with the
        # scale; a reader off by design is as far off at every scale, and its verdict is that
        # of the slower run.
        patience = 1.0
        before: Slip | None = None
        for attempt in range(RETIMES + 1):
            if record is not None:
                shutil.rmtree(record, ignore_errors=True)
            outcome = execute(first.setup, decl, speed=speed, seed=seed, record=record, patience=patience)
            slip = outcome.slipped()
            if slip is None or outcome.speed <= 1.0 or attempt == RETIMES or by_design(before, slip):
                break
            slower = max(1.0, outcome.speed / 4)
            patience *= outcome.speed / slower
            retimed = f"run again at {slower:.3g}x: at {outcome.speed:.3g}x {slip.what}"
            log.info("%s: %s", first.id, retimed)
            speed, before = slower, slip
    except (Me162Error, OSError) as e:
        return [
            Result(
                c.id,
                Verdict.INCONCLUSIVE,
                f"the suite could not run this case: {e}",
                time.monotonic() - start,
            )
            for c in cases
        ]
    except Exception as e:  # a broken reader must not break the suite
        log.exception("case %s", first.id)
        why = f"grading failed: {type(e).__name__}: {e}"
        return [Result(c.id, Verdict.INCONCLUSIVE, why, time.monotonic() - start) for c in cases]
    if record is not None and bundle is not None:
        for c in cases[1:]:  # one capture, filed under every case that graded it
            shutil.rmtree(bundle / "captures" / c.id, ignore_errors=True)
            if record.exists():
                shutil.copytree(record, bundle / "captures" / c.id)
    seconds = time.monotonic() - start
    # a reader the meter heard from did start: a missing file later (its port pulled off) is
    # the case's business, not a missing dependency
    heard = any(e.dir == "r2m" and e.kind == "data" for e in outcome.events)
    crashed = next(
        (why for r in outcome.runs if (why := r.crashed or (not heard and could_not_start(r)) or "")), ""
    )
    stuck = next((ran(outcome, r) for r in outcome.runs if r.timed_out or r.flooded), None)
    results = []
    for case in cases:
        try:
            if crashed:
                verdict, reason = Verdict.INCONCLUSIVE, crashed
            elif stuck is not None:  # a hang or a flood fails whatever the case looks at
                verdict, reason = stuck
            else:
                verdict, reason = case.judge(outcome)
        except Exception as e:  # a broken reader must not break the suite
            log.exception("case %s", case.id)
            results.append(
                Result(case.id, Verdict.INCONCLUSIVE, f"grading failed: {type(e).__name__}: {e}", seconds)
            )
            continue
        results.append(
            Result(case.id, verdict, reason, seconds, outcome, tuple(outcome.runs), retimed=retimed)
        )
    return results


def _worker_logging(level: int) -> None:
    logging.basicConfig(level=level, format="%(message)s", stream=sys.stderr)


RUN_OUTPUT_KEPT = 8000  #: characters of a reader's stdout and stderr a worker sends back


def _in_worker(
    case_ids: list[str], decl: Declaration, speed: float, seed: int, bundle: Path | None
) -> list[Result]:
    """Run cases that share a setup in a worker process (each run's virtual meter has a process
    to itself, so that no meter waits for another's share of the interpreter)."""
    by_id = {c.id: c for c in catalogue()}
    results = run_cases([by_id[i] for i in case_ids], decl, speed=speed, seed=seed, bundle=bundle)
    # The outcome (the meter, the line's record) stays here; the runs go back, their output
    # cut to what a report shows.
    return [
        replace(
            r,
            outcome=None,
            runs=tuple(
                replace(run, stdout=run.stdout[-RUN_OUTPUT_KEPT:], stderr=run.stderr[-RUN_OUTPUT_KEPT:])
                for run in r.runs
            ),
        )
        for r in results
    ]


def cost(case: Case) -> float:
    """A rough guess of how long a case takes, to start the long ones first."""
    s = case.setup
    guess = float(s.runs)
    if s.chaos or s.scenarios:
        guess *= 2.5  # faults bring retries
    if s.registers:
        guess *= 1.5
    if s.profile == "ebz_dd3" or s.abandon_session:
        guess *= 2
    return guess


def idle_cpus(window: float = 0.25) -> float:
    """How many CPUs were idle over the last ``window`` seconds (from /proc/stat)."""

    def sample() -> tuple[int, int]:
        with open("/proc/stat", encoding="ascii") as f:
            fields = [int(x) for x in f.readline().split()[1:]]
        return sum(fields), fields[3] + fields[4]  # all, idle + iowait

    try:
        total0, idle0 = sample()
        time.sleep(window)
        total1, idle1 = sample()
    except (OSError, ValueError, IndexError):
        return float(os.cpu_count() or 1)
    cpus = os.cpu_count() or 1
    return cpus * (idle1 - idle0) / max(1, total1 - total0)


def auto_jobs() -> int:
    """Cases at once by default: two per idle CPU (a case mostly waits for its time-scaled
    meter), at least one.  On a machine that is busy with something else the suite runs fewer
    cases at once rather than starve them: a starved virtual meter answers late, and verdicts
    must not depend on the load."""
    usable = min(idle_cpus(), len(os.sched_getaffinity(0)))
    return max(1, round(2 * usable))


def run_suite(
    decl: Declaration,
    cases: list[Case] | None = None,
    *,
    speed: float = 20.0,
    seed: int = 0,
    bundle: Path | None = None,
    progress: Callable[[Case, Result], None] | None = None,
    jobs: int = 1,
) -> list[Result]:
    """Run the cases (``jobs`` runs at once, each in a process of its own; cases with the same
    setup share a run) and return their results in catalogue order; ``progress`` is called in
    that order too.  A reader that cannot start is
    found by the first case, said once, and nothing more is run."""
    cases = catalogue() if cases is None else cases
    failed = prepare(decl) or cannot_start(decl.argv(port="PORT", speed=speed))
    done: dict[str, Result] = {}
    shown = 0

    def finish(case: Case, result: Result) -> None:
        nonlocal shown
        done[case.id] = result
        while progress is not None and shown < len(cases) and cases[shown].id in done:
            progress(cases[shown], done[cases[shown].id])
            shown += 1

    def could_not_start_all(reason: str, rest: list[Case]) -> None:
        for c in rest:
            finish(c, Result(c.id, Verdict.INCONCLUSIVE, reason))

    todo: list[Case] = []
    for case in cases:
        why = case.applies(decl)
        if why:
            finish(case, Result(case.id, Verdict.NOT_APPLICABLE, why))
        elif failed:
            finish(case, Result(case.id, Verdict.INCONCLUSIVE, failed))
        else:
            todo.append(case)
    # Cases with the same setup share one run (each grades it).
    shared: dict[str, list[Case]] = {}
    for case in todo:
        shared.setdefault(same_run(case), []).append(case)
    runs = list(shared.values())
    # A reader whose dependency is missing fails its first case: said once, nothing more is run.
    for i, group in enumerate(runs if jobs <= 1 else runs[:1]):
        results = run_cases(group, decl, speed=speed, seed=seed, bundle=bundle)
        for case, result in zip(group, results, strict=True):
            finish(case, result)
        if results[0].verdict is Verdict.INCONCLUSIVE and results[0].reason.startswith(
            "the reader could not start"
        ):
            could_not_start_all(results[0].reason, [c for g in runs[i + 1 :] for c in g])
            return [done[c.id] for c in cases]
    if jobs > 1 and len(runs) > 1:
        rest = sorted(runs[1:], key=lambda g: cost(g[0]), reverse=True)  # the longest first
        # The workers log as this process does (a fresh forkserver child has no logging set up,
        # and Python's last-resort handler would print every fault's warning).
        level = logging.getLogger().getEffectiveLevel()
        context = multiprocessing.get_context("forkserver")
        with ProcessPoolExecutor(
            jobs, mp_context=context, initializer=_worker_logging, initargs=(level,)
        ) as pool:
            futures = {pool.submit(_in_worker, [c.id for c in g], decl, speed, seed, bundle): g for g in rest}
            for future in as_completed(futures):
                for case, result in zip(futures[future], future.result(), strict=True):
                    finish(case, result)
    return [done[c.id] for c in cases]
    if jobs > 1 and len(todo) > 1:
        rest = sorted(todo[1:], key=cost, reverse=True)  # the longest first: no long case left for last
        # The workers log as this process does (a fresh forkserver child has no logging set up,
        # and Python's last-resort handler would print every fault's warning).
        level = logging.getLogger().getEffectiveLevel()
        context = multiprocessing.get_context("forkserver")
        with ProcessPoolExecutor(
            jobs, mp_context=context, initializer=_worker_logging, initargs=(level,)
        ) as pool:
            futures = {pool.submit(_in_worker, c.id, decl, speed, seed, bundle): c for c in rest}
            for future in as_completed(futures):
                finish(futures[future], future.result())
    return [done[c.id] for c in cases]
