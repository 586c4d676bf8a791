"""Benchmark: the whole conformance suite against the reference reader (wall time, verdicts).

    python bench/bench_conformance.py [--speed N]

The target: under 60 s on a 2-core machine at the default 20x speed.
"""

from __future__ import annotations

import argparse
import json
import os
import time
from pathlib import Path

from me162.conformance.declaration import load_declaration
from me162.conformance.run import run_suite
from me162.conformance.suite import Verdict

DECL = Path(__file__).resolve().parent.parent / "conformance" / "readers" / "me162-read.toml"


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__)
    p.add_argument("--speed", type=float, default=20.0)
    args = p.parse_args()
    start = time.monotonic()
    results = run_suite(load_declaration(DECL), speed=args.speed)
    elapsed = time.monotonic() - start
    counts = {v.value: sum(1 for r in results if r.verdict is v) for v in Verdict}
    print(json.dumps({"bench": "conformance", "reader": "me162-read", "cases": len(results), "seconds": round(elapsed, 1),
                      "cpus": os.cpu_count(), "speed": args.speed, **counts}))  # fmt: skip


if __name__ == "__main__":
    main()
