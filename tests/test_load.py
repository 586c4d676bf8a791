"""Verdicts do not depend on how busy the machine is.

The virtual line learns what a reader did when its thread runs; on a busy machine that is
milliseconds late, which at 20x is a tenth of a second of protocol time.  The transports date
what they observe back by the time their thread waited for a CPU (me162.simulator.lateness),
no case runs so fast that its tightest window is under 10 ms of real time, and a case in which
the reader slipped just outside a window runs again slower (WireRecord.slipped,
tests/test_slipped.py).  Here the REPLAY group, which once failed one run in three on a loaded
machine, and the LINE and PROG groups, at four cases at once, are graded with CPU-burning
processes beside them and must give the verdicts of a quiet run.
"""

from __future__ import annotations

import os
import subprocess
import sys
import threading
import time
from collections.abc import Iterator
from contextlib import contextmanager

import pytest

from me162.conformance.cases import catalogue
from me162.conformance.declaration import load_declaration
from me162.conformance.run import run_suite, select
from me162.simulator.lateness import Lateness

pytestmark = pytest.mark.timeout(600)
BURN = "import time\nend = time.monotonic() + 300\nwhile time.monotonic() < end: pass\n"


@contextmanager
def burners(n: int, cpu: int | None = None) -> Iterator[None]:
    procs = [subprocess.Popen([sys.executable, "-c", BURN]) for _ in range(n)]
    try:
        if cpu is not None:
            for p in procs:
                os.sched_setaffinity(p.pid, {cpu})
        time.sleep(0.2)
        yield
    finally:
        for p in procs:
            p.kill()
            p.wait()


def test_a_thread_waiting_for_a_cpu_knows_how_long_it_waited() -> None:
    """A thread that shares one CPU with two burners and wants it all the time (it spins, as a
    meter thread does while it models a busy line) waits about two thirds of the time; the part
    of since_mark() that is not its own CPU time says so.  (A thread that sleeps between looks
    is woken ahead of the burners and may wait next to nothing: no test of this.)"""
    cpu = min(os.sched_getaffinity(0))
    waited: list[float] = []

    def spin_and_look() -> None:
        os.sched_setaffinity(0, {cpu})  # this thread only: share one CPU with the burners
        lateness = Lateness()
        for _ in range(20):
            lateness.mark()
            ran_before = time.thread_time()
            end = time.monotonic() + 0.005
            while time.monotonic() < end:
                pass
            waited.append(lateness.since_mark() - (time.thread_time() - ran_before))
        lateness.close()

    with burners(2, cpu):
        t = threading.Thread(target=spin_and_look)
        t.start()
        t.join()
    assert all(w >= -0.001 for w in waited), waited
    assert sum(waited) > 0.02, waited  # of 100 ms, about 67 spent waiting for the CPU


def verdicts(group: str) -> dict[str, str]:
    decl = load_declaration("me162-read")
    return {
        r.case_id: r.verdict.value for r in run_suite(decl, select(catalogue(), groups=[group]), speed=20)
    }


def test_the_replay_group_gives_the_same_verdicts_with_cpu_burners_beside_it() -> None:
    quiet = verdicts("REPLAY")
    with burners(2):
        loaded = verdicts("REPLAY")
    assert loaded == quiet
    assert set(quiet.values()) <= {"PASS", "NOT-APPLICABLE"}


def test_cases_run_at_once_give_the_verdicts_of_cases_run_one_by_one_even_on_a_busy_machine() -> None:
    decl = load_declaration("me162-read")
    cases = select(catalogue(), groups=["LINE", "PROG"])

    def verdicts_with(jobs: int) -> dict[str, str]:
        return {r.case_id: r.verdict.value for r in run_suite(decl, cases, speed=20, jobs=jobs)}

    one_by_one = verdicts_with(1)
    assert verdicts_with(4) == one_by_one
    with burners(2):
        assert verdicts_with(4) == one_by_one
    assert set(one_by_one.values()) <= {"PASS", "NOT-APPLICABLE"}
