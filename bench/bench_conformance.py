"""Benchmark: the whole conformance catalogue against the reference reader, one case at a time
and with the default number at once (-j auto), and once more with two CPU-burning processes
beside it; the wall times (median of the rounds, with the spread) and whether the verdicts of
the three ways agree.

    python bench/bench_conformance.py [--rounds N] [--speed N] [--json]

Target (issue 15): at most 15 s for the catalogue at 20x on 2 cores with -j auto, and verdicts
identical one by one, at once, and beside the burners.
"""

from __future__ import annotations

import argparse
import json
import os
import statistics
import subprocess
import sys
import time

from me162.conformance.declaration import load_declaration
from me162.conformance.run import auto_jobs, run_suite

BURN = "import time\nend = time.monotonic() + 600\nwhile time.monotonic() < end: pass\n"


def once(jobs: int, speed: float) -> tuple[float, dict[str, str], dict[str, str]]:
    start = time.monotonic()
    results = run_suite(load_declaration("me162-read"), speed=speed, jobs=jobs)
    return (
        time.monotonic() - start,
        {r.case_id: r.verdict.value for r in results},
        {r.case_id: r.reason for r in results},
    )


def spread(values: list[float]) -> dict[str, float]:
    return {
        "median": round(statistics.median(values), 1),
        "min": round(min(values), 1),
        "max": round(max(values), 1),
    }


def main() -> int:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--rounds", type=int, default=3)
    p.add_argument("--speed", type=float, default=20.0)
    p.add_argument("--json", action="store_true")
    args = p.parse_args()
    # -j auto is decided as me162-check decides it: from the CPUs idle at the start (two burners
    # beside it leave fewer, so it runs fewer cases at once)
    times: dict[str, list[float]] = {"-j 1": [], "-j auto": [], "-j auto, 2 burners": []}
    chosen: dict[str, set[int]] = {name: set() for name in times}
    verdicts: dict[str, dict[str, str]] = {}
    odd: list[str] = []
    for rnd in range(args.rounds):
        for name, spent in times.items():
            burners = []
            if "burners" in name:
                burners = [subprocess.Popen([sys.executable, "-c", BURN]) for _ in range(2)]
                time.sleep(1.0)  # the burners are running when the CPUs are counted
            jobs = 1 if name == "-j 1" else auto_jobs()
            chosen[name].add(jobs)
            try:
                seconds, v, reasons = once(jobs, args.speed)
            finally:
                for b in burners:
                    b.kill()
                    b.wait()
            spent.append(seconds)
            verdicts.setdefault(name, v)
            reference = next(iter(verdicts.values()))
            odd += [
                f"{name}, round {rnd + 1}: {c} {v[c]}: {reasons[c]}" for c in v if v[c] != reference.get(c)
            ]
            if v != verdicts[name]:
                verdicts[name + " (a later round)"] = v
    first = next(iter(verdicts.values()))
    differ = sorted({c for v in verdicts.values() for c in v if v[c] != first[c]})
    summary = {
        "bench": "conformance",
        "cases": len(first),
        "cpus": len(os.sched_getaffinity(0)),
        "speed": args.speed,
        "seconds": {k: spread(v) for k, v in times.items()},
        "verdicts": {k: sum(1 for x in first.values() if x == k) for k in sorted(set(first.values()))},
        "cases whose verdict differs between runs": differ,
    }
    if args.json:
        print(json.dumps(summary))
        return 0
    print(
        f"{summary['cases']} cases at {args.speed:g}x on {summary['cpus']} CPUs, median of {args.rounds} (min-max):"
    )
    for k, v in summary["seconds"].items():
        print(f"  {k:28} {v['median']:6.1f} s ({v['min']}-{v['max']})")
    print(f"  verdicts: {summary['verdicts']}; differing between the ways and rounds: {differ or 'none'}")
    print(f"  cases at once: {', '.join(f'{k}: {sorted(v)}' for k, v in chosen.items())}")
    for line in odd:
        print(f"    {line}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
