"""Benchmark: real ME162 readouts decoded per second (frame, BCC, identification, data sets).

python bench/bench_decode.py [--seconds S]
"""

from __future__ import annotations

import argparse
import json
import time
from pathlib import Path

from me162.protocol import decode_readout

READOUT = Path(__file__).resolve().parent.parent / "fixtures" / "captures" / "ME162_1.readout.bin"


def measure(seconds: float) -> dict[str, float]:
    raw = READOUT.read_bytes()
    n = 0
    start = time.perf_counter()
    deadline = start + seconds
    while time.perf_counter() < deadline:
        for _ in range(50):
            decode_readout(raw)
        n += 50
    elapsed = time.perf_counter() - start
    return {
        "readouts": n,
        "seconds": round(elapsed, 3),
        "readouts_per_second": round(n / elapsed, 1),
        "bytes_per_readout": len(raw),
    }


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__)
    p.add_argument("--seconds", type=float, default=3.0)
    args = p.parse_args()
    print(json.dumps({"bench": "decode", **measure(args.seconds)}))


if __name__ == "__main__":
    main()
