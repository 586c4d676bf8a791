"""Benchmark: a real-time 9600 Bd ME162 readout from the virtual meter on a pty.

Reports, for the reference reader and for pwitab's ``iec62056-21`` client (PyPI) read through
the same kind of pty, the wall time of one reading divided by the protocol's floor: the bytes
on the wire times 10 bits over their baud rate, plus the meter's own reaction times (taken
from the virtual meter's record of the session).  1.0 would be a reader that wastes no time.

    python bench/bench_reader.py [--runs N]
"""

from __future__ import annotations

import argparse
import json
import statistics
import time
from collections.abc import Callable
from datetime import datetime
from typing import Any

from me162.reader.driver import PortOptions, read_once
from me162.reader.session import ReaderConfig
from me162.simulator.link import M2R, R2M
from me162.simulator.pty_transport import PtyMeter
from me162.simulator.session import MeterOptions


def floor_of(pm: PtyMeter, since: int) -> float:
    """Wire time of every byte plus the meter's reaction times in this session."""
    events = [e for e in pm.served.link.events[since:] if e.kind == "data"]
    events.sort(key=lambda e: e.t)
    total = 0.0
    last_r2m_end = None
    for e in events:
        duration = len(e.data) * 10 / (e.baud or 300)
        total += duration
        if e.dir == M2R and last_r2m_end is not None:
            total += max(0.0, e.t - last_r2m_end)  # the meter's reaction time
            last_r2m_end = None
        if e.dir == R2M:
            last_r2m_end = e.t + duration
    return total


def run(name: str, read: Callable[[str], Any], runs: int) -> dict[str, Any]:
    ratios, walls, failures = [], [], 0
    for _ in range(runs):
        with PtyMeter(MeterOptions(clock_start=datetime(2026, 6, 21, 12))) as pm:
            time.sleep(0.1)
            mark = len(pm.served.link.events)
            t0 = time.monotonic()
            try:
                ok = read(pm.path)
            except Exception:  # a reader under test may fail in any way
                ok = False
            wall = time.monotonic() - t0
            if not ok:
                failures += 1
                continue
            walls.append(wall)
            ratios.append(wall / floor_of(pm, mark))
    out: dict[str, Any] = {"bench": "reader", "reader": name, "runs": runs, "failures": failures}
    if ratios:
        out.update(
            wall_s=round(statistics.median(walls), 3),
            wall_over_floor=round(statistics.median(ratios), 2),
        )
    return out


def reference(path: str) -> bool:
    res = read_once(PortOptions(path), ReaderConfig(), retries=0)
    return res.readout is not None and bool(res.readout.bcc_valid)


def pwitab(path: str) -> bool:
    from iec62056_21.client import Iec6205621Client

    client = Iec6205621Client.with_serial_transport(port=path)
    client.connect()
    try:
        response = client.standard_readout()
    finally:
        client.disconnect()
    return bool(response.data)


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__)
    p.add_argument("--runs", type=int, default=3)
    args = p.parse_args()
    print(json.dumps(run("me162-read", reference, args.runs)))
    try:
        import iec62056_21  # noqa: F401
    except ImportError:
        print(json.dumps({"bench": "reader", "reader": "iec62056-21", "skipped": "pip install iec62056-21"}))
        return
    print(json.dumps(run("iec62056-21 (pwitab)", pwitab, args.runs)))


if __name__ == "__main__":
    main()
