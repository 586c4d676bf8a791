"""Chaos soak of the reference reader: faulted sessions against virtual ME162s on virtual time,
truth from the meter's own record of what it sent.  Prints sessions, successes, clean failures,
wrong values accepted, hangs and tracebacks, overall and per fault kind (numbers, not a test:
the bounded version that must show zeros is tests/test_soak.py)."""

from __future__ import annotations

import argparse
import json
import logging
import time

from me162.reader.soak import OUTCOMES, soak


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__)
    p.add_argument("--sessions", type=int, default=5000)
    args = p.parse_args()
    logging.disable(logging.WARNING)
    start = time.perf_counter()
    tally = soak(args.sessions)
    seconds = time.perf_counter() - start
    print("fault kind".ljust(16) + "".join(o.rjust(22) for o in OUTCOMES))
    for fault, counts in sorted(tally.by_fault.items()):
        print(fault.ljust(16) + "".join(str(counts[o]).rjust(22) for o in OUTCOMES))
    print("all".ljust(16) + "".join(str(tally.total[o]).rjust(22) for o in OUTCOMES))
    doc = {"benchmark": "soak", "seconds": round(seconds, 1), **tally.to_json()}
    doc.pop("by_fault")
    print(json.dumps(doc))


if __name__ == "__main__":
    main()
