"""Benchmark: how long the command lines take to start, with their .pyc files in place, beside
``python -c pass`` (the floor every Python program pays) in the same run.

Each command runs ``--runs`` times (default 20), interleaved; the median and the spread
(min-max) in milliseconds are printed.  Targets: ``me162-read --help`` <= 50 ms and
``import me162.reader.cli`` <= 25 ms (the import alone, as ``python -X importtime`` counts it).

    python bench/bench_startup.py [--runs N] [--json]
"""

from __future__ import annotations

import argparse
import json
import os
import re
import statistics
import subprocess
import sys
import time
from pathlib import Path

BIN = Path(sys.executable).parent
COMMANDS = {
    "python -c pass": [sys.executable, "-c", "pass"],
    "me162-read --help": [str(BIN / "me162-read"), "--help"],
    "me162-sim --help": [str(BIN / "me162-sim"), "--help"],
    "me162-check --help": [str(BIN / "me162-check"), "--help"],
    "me162-check --list": [str(BIN / "me162-check"), "--list"],
}
IMPORTS = ["me162.reader.cli", "me162.simulator.cli", "me162.conformance.cli"]


def environment() -> dict[str, str]:
    env = dict(os.environ)
    env.pop("PYTHONDONTWRITEBYTECODE", None)  # the .pyc files are part of what is measured
    return env


def wall_ms(argv: list[str], env: dict[str, str]) -> float:
    start = time.perf_counter()
    subprocess.run(argv, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL, env=env, check=False)
    return (time.perf_counter() - start) * 1000


def import_ms(module: str, env: dict[str, str]) -> float:
    p = subprocess.run(
        [sys.executable, "-X", "importtime", "-c", f"import {module}"],
        capture_output=True,
        text=True,
        env=env,
        check=True,
    )
    last = [ln for ln in p.stderr.splitlines() if ln.rstrip().endswith(f"| {module}")][-1]
    m = re.match(r"import time:\s+\d+ \|\s+(\d+)", last)
    assert m is not None
    return int(m[1]) / 1000


def main() -> int:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--runs", type=int, default=20)
    p.add_argument("--json", action="store_true")
    args = p.parse_args()
    env = environment()
    for argv in COMMANDS.values():  # once, to write the .pyc files
        wall_ms(argv, env)
    samples: dict[str, list[float]] = {name: [] for name in [*COMMANDS, *(f"import {m}" for m in IMPORTS)]}
    for _ in range(args.runs):
        for name, argv in COMMANDS.items():
            samples[name].append(wall_ms(argv, env))
        for m in IMPORTS:
            samples[f"import {m}"].append(import_ms(m, env))
    summary = {
        name: {"median": round(statistics.median(v), 1), "min": round(min(v), 1), "max": round(max(v), 1)}
        for name, v in samples.items()
    }
    if args.json:
        print(json.dumps({"bench": "startup", "runs": args.runs, "ms": summary}))
        return 0
    print(f"start-up in ms, median of {args.runs} (min-max), .pyc in place")
    for name, r in summary.items():
        print(f"  {name:34} {r['median']:7.1f} ({r['min']:.1f}-{r['max']:.1f})")
    return 0


if __name__ == "__main__":
    sys.exit(main())
