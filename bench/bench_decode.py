"""Benchmark: readouts decoded per second, me162 beside its peers on the same input in the
same run: pwitab's ``iec62056-21`` (PyPI), smartmeter-obis (npm, Node.js) and a yardstick of
a plain regular expression with an XOR BCC in Python.

Two inputs: a real ME162 readout (215 bytes, 9 data sets) and a real 578-line readout (16.6 KB,
a Kohler meter with 15 months of history; its published BCC is wrong, so it is set right here
so that every decoder does the whole job).  "Decoded" means: the identification parsed, the
BCC checked (smartmeter-obis does not check it) and every data set's address, value and unit
taken out as a list of triples, the same output for every decoder.

The decoders run interleaved, round after round (default 3 rounds of 1 s each); the median
rate of each and the spread (min-max) are printed, and the ratios the targets are about.

    python bench/bench_decode.py [--rounds N] [--seconds S] [--json]
"""

from __future__ import annotations

import argparse
import json
import re
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

from me162.protocol import decode_readout
from me162.protocol.bcc import xor7

ROOT = Path(__file__).resolve().parent.parent
CAPTURES = ROOT / "fixtures" / "captures"
NODE_PEERS = Path(__file__).resolve().parent / "peers" / "node"

Triples = list[tuple[str | None, str, str | None]]


def inputs() -> dict[str, bytes]:
    short = (CAPTURES / "ME162_1.readout.bin").read_bytes()
    long = (CAPTURES / "KOHLER_TR_1.readout.bin").read_bytes()
    stx = long.index(b"\x02")
    long = long[:-1] + bytes([xor7(long[stx + 1 : -1])])  # the published BCC is wrong
    return {"ME162 (215 B, 9 sets)": short, "Kohler (16.6 KB, 578 lines)": long}


def me162(raw: bytes) -> Triples:
    readout = decode_readout(raw)
    return [(ds.address, ds.values[0].value, ds.values[0].unit) for _, ds in readout.data.data_sets]


_SET = re.compile(rb"([^()\r\n]*)\(([^()]*)\)(?:\([^()]*\))*")


def regex_yardstick(raw: bytes) -> Triples:
    """What a quick script does: find STX and ETX, XOR the bytes, one regex for the sets."""
    stx = raw.index(b"\x02")
    etx = raw.index(b"\x03", stx)
    bcc = 0
    for c in raw[stx + 1 : etx + 1]:
        bcc ^= c
    if (bcc & 0x7F) != raw[etx + 1] & 0x7F:
        raise ValueError("BCC")
    ident = raw[:stx].strip().decode("latin-1")
    assert ident is not None
    out: Triples = []
    for address, inner in _SET.findall(raw, stx + 1, etx):
        value, star, unit = inner.decode("latin-1").partition("*")
        out.append((address.decode("latin-1") or None, value, unit if star else None))
    return out


def pwitab() -> Callable[[bytes], Triples] | None:
    try:
        from iec62056_21.messages import IdentificationMessage, ReadoutDataMessage
    except ImportError:
        return None

    def decode(raw: bytes) -> Triples:
        cut = raw.index(b"\r\n") + 2 if raw.startswith(b"/") else 0
        if cut:
            IdentificationMessage.from_bytes(raw[:cut])
        msg = ReadoutDataMessage.from_bytes(raw[cut:])
        return [
            (ds.address, ds.value, ds.unit) for line in msg.data_block.data_lines for ds in line.data_sets
        ]

    return decode


def rate(fn: Callable[[bytes], Triples], raw: bytes, seconds: float) -> float:
    fn(raw)
    n = 0
    start = time.perf_counter()
    deadline = start + seconds
    batch = 50 if len(raw) < 2000 else 2
    while time.perf_counter() < deadline:
        for _ in range(batch):
            fn(raw)
        n += batch
    return n / (time.perf_counter() - start)


def node_rate(raw: bytes, seconds: float) -> float | None:
    node = shutil.which("node")
    if node is None or not (NODE_PEERS / "node_modules" / "smartmeter-obis").exists():
        return None
    with tempfile.NamedTemporaryFile(suffix=".bin") as f:
        f.write(raw)
        f.flush()
        p = subprocess.run(
            [node, str(NODE_PEERS / "decode.js"), f.name, str(seconds)],
            capture_output=True,
            text=True,
            check=False,
        )
    if p.returncode != 0:
        print(f"smartmeter-obis failed: {p.stderr.strip()[:200]}", file=sys.stderr)
        return None
    return float(json.loads(p.stdout)["per_second"])


def main() -> int:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--rounds", type=int, default=3)
    p.add_argument("--seconds", type=float, default=1.0)
    p.add_argument("--json", action="store_true", help="one JSON line instead of the table")
    args = p.parse_args()
    pw = pwitab()
    decoders: dict[str, Callable[[bytes], float | None]] = {
        "me162": lambda raw: rate(me162, raw, args.seconds),
        "pwitab iec62056-21": (lambda raw: rate(pw, raw, args.seconds)) if pw else (lambda raw: None),
        "smartmeter-obis (Node.js)": lambda raw: node_rate(raw, args.seconds),
        "regex + XOR yardstick": lambda raw: rate(regex_yardstick, raw, args.seconds),
    }
    for name, raw in inputs().items():  # the decoders must agree with me162 on the values
        want = me162(raw)
        assert regex_yardstick(raw) == want, f"the yardstick disagrees on {name}"
        if pw and "ME162" in name:  # pwitab splits a set of two values into two sets
            assert [(a, v) for a, v, _ in pw(raw)] == [(a, v) for a, v, _ in want], "pwitab disagrees"
    results: dict[str, dict[str, list[float]]] = {}
    for name, raw in inputs().items():
        runs: dict[str, list[float]] = {d: [] for d in decoders}
        for _ in range(args.rounds):
            for d, fn in decoders.items():
                r = fn(raw)
                if r is not None:
                    runs[d].append(r)
        results[name] = runs
    summary: dict[str, dict[str, Any]] = {}
    for name, runs in results.items():
        med = {d: statistics.median(v) for d, v in runs.items() if v}
        summary[name] = {
            d: {"median": round(m), "min": round(min(runs[d])), "max": round(max(runs[d]))}
            for d, m in med.items()
        }
        ours = med["me162"]
        ratios = {
            "vs pwitab (target >= 2)": ours / med["pwitab iec62056-21"]
            if "pwitab iec62056-21" in med
            else None,
            "vs smartmeter-obis (target >= 1)": ours / med["smartmeter-obis (Node.js)"]
            if "smartmeter-obis (Node.js)" in med
            else None,
            "vs regex yardstick (target >= 0.5)": ours / med["regex + XOR yardstick"],
        }
        summary[name]["ratios"] = {k: None if v is None else round(v, 2) for k, v in ratios.items()}
    if args.json:
        print(json.dumps({"bench": "decode", "rounds": args.rounds, "results": summary}))
        return 0
    for name, rows in summary.items():
        print(f"\n{name}: readouts decoded per second, median of {args.rounds} (min-max)")
        for d, r in rows.items():
            if d == "ratios":
                continue
            print(f"  {d:28} {r['median']:>9,} ({r['min']:,}-{r['max']:,})")
        for k, v in rows["ratios"].items():
            print(f"  me162 {k:34} {'n/a' if v is None else v}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
