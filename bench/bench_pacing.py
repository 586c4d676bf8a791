"""Benchmark: pacing accuracy of the virtual meter on a pty, and how many meters one process
serves at 9600 Bd with that accuracy kept.

For each readout a pyserial client timestamps every byte as it arrives; the deviation of a
byte is its arrival time minus when its stop bit was due (first byte aligned), in character
times.  Reported: median and 95th percentile of |deviation| for one meter at 300 and 9600 Bd,
then p95 at 9600 Bd for 1, 2, 4, 8, 16 meters served by one process at once.

    python bench/bench_pacing.py [--max-meters N]
"""

from __future__ import annotations

import argparse
import json
import statistics
import threading
import time
from datetime import datetime

import serial

from me162.protocol.frames import OptionSelect
from me162.simulator.pty_transport import PtyMeter
from me162.simulator.session import MeterOptions


def one_readout(path: str, baud: int, out: list[float]) -> None:
    port = serial.Serial(path, 300, bytesize=7, parity="E", timeout=5)
    port.write(b"/?!\r\n")
    port.read_until(b"\r\n")
    z = "5" if baud == 9600 else "0"
    port.write(OptionSelect("0", z, "0").to_bytes())
    time.sleep(0.2 + 0.005)
    if baud != 300:  # setting the speed the pty already has fails with EINVAL (glibc)
        port.baudrate = baud
    stamps: list[float] = []
    data = bytearray()
    while not (len(data) >= 2 and data[-2] == 0x03):
        chunk = port.read(1)
        if not chunk:
            break
        stamps.append(time.monotonic())
        data += chunk
    port.write(b"")
    port.close()
    char = 10 / baud
    devs = [abs((t - stamps[0]) - i * char) / char for i, t in enumerate(stamps)]
    out.extend(devs)


def measure(n: int, baud: int) -> dict[str, float]:
    meters = [
        PtyMeter(MeterOptions(clock_start=datetime(2026, 6, 21, 12)), index=i).start() for i in range(n)
    ]
    results: list[list[float]] = [[] for _ in range(n)]
    threads = [
        threading.Thread(target=one_readout, args=(m.path, baud, results[i])) for i, m in enumerate(meters)
    ]
    for t in threads:
        t.start()
    for t in threads:
        t.join(timeout=60)
    for m in meters:
        m.stop()
    devs = sorted(d for r in results for d in r)
    if not devs:
        return {"meters": n, "baud": baud, "bytes": 0}
    return {
        "meters": n,
        "baud": baud,
        "bytes": len(devs),
        "median_dev_chars": round(statistics.median(devs), 3),
        "p95_dev_chars": round(devs[int(0.95 * (len(devs) - 1))], 3),
        "max_dev_chars": round(devs[-1], 3),
    }


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__)
    p.add_argument("--max-meters", type=int, default=16)
    args = p.parse_args()
    print(json.dumps({"bench": "pacing", **measure(1, 300)}))
    n = 1
    while n <= args.max_meters:
        print(json.dumps({"bench": "pacing", **measure(n, 9600)}))
        n *= 2


if __name__ == "__main__":
    main()
