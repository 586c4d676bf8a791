"""Benchmark: how exactly the virtual meter paces its bytes on a pty, beside a yardstick, and
what idle meters cost.

A client in another process (one thread, one epoll set over every port, so its timestamps
do not wait for a GIL, and a wake-up costs it what is ready, not a look at all 100 ports as a
select does: on two cores the client's own load would be measured) signs on to each meter at
300 Bd, sends ACK 0 5 0, switches to 9600 Bd and timestamps every byte of the readout as it
arrives.  The meters are served as ``me162-sim --count N`` serves them (``settle`` first).  A byte's error is its arrival minus
when it was due: the readout's first byte plus i character times (10 bits at 9600 Bd).
Reported: p50 and p99 of |error| in milliseconds and in character times, for 1 meter and for
N meters served by one process at once, paced by the pacer thread (simulator/pacer.c) and,
beside it, by the meters' own loop (ME162_PACER=python); and the same against the schedule that fits each
port's bytes best (``fit_``: the median offset instead of the first byte's), since the first
byte of a readout reaches a client that has slept for a while later than the rest (its wake-up
from idle), which shifts every other byte's error by as much.

The yardstick: one thread in one process writing each byte of the same readout to plain ptys
exactly when due (sleeping in select until then), read by the same client: what a pty and a
Python thread can do at best on this machine.  Its readouts all start at once, so the bytes of
every port are due together and the client wakes once a character time; the virtual meters'
readouts start one after another as their readers' sign-ons are taken (over ~0.2 s for 100),
so their bytes are due at every phase of a character time and the client wakes for each few
of them.  The staggered yardstick gives each port the start the meter run beside it measured
(the same load on the client), and writes every byte due within an eighth of a character at
one wake-up, as the pacer does.

Idle: the CPU share of a process serving N meters that no reader has opened.

    python bench/bench_pacing.py [--meters 1,10,100] [--idle 100]
"""

from __future__ import annotations

import argparse
import json
import os
import resource
import select
import statistics
import subprocess
import sys
import termios
import threading
import time
from datetime import datetime

CHAR = 10 / 9600


# --- the client (a process of its own) ----------------------------------------------------------


def client(paths: list[str], sign_on: bool) -> list[list[float]]:
    """Read one readout from each port; the arrival times of its bytes, per port."""
    import serial

    ports = [serial.Serial(p, 300 if sign_on else 9600, bytesize=7, parity="E", timeout=0) for p in paths]
    fds = [int(p.fileno()) for p in ports]
    state = ["ident" if sign_on else "data"] * len(ports)
    buf = [bytearray() for _ in ports]
    stamps: list[list[float]] = [[] for _ in ports]
    switch_at = [0.0] * len(ports)
    if sign_on:
        for p in ports:
            p.write(b"/?!\r\n")
    index = {fd: i for i, fd in enumerate(fds)}
    ep = select.epoll()
    for fd in fds:
        ep.register(fd, select.EPOLLIN)
    deadline = time.monotonic() + 120
    while any(s != "done" for s in state) and time.monotonic() < deadline:
        now = time.monotonic()
        for i, p in enumerate(ports):
            if state[i] == "ack" and now >= switch_at[i]:
                p.baudrate = 9600
                state[i] = "data"
        waits = [switch_at[i] - now for i in range(len(ports)) if state[i] == "ack"]
        wait = max(0.0, min(waits, default=0.05))
        # epoll counts whole milliseconds: sleep in select on its descriptor (to the microsecond)
        select.select([ep.fileno()], [], [], wait)
        ready = ep.poll(0)
        t = time.monotonic()
        for fd, _ in sorted(ready):
            i = index[fd]
            p = ports[i]
            chunk = os.read(fd, 4096)
            if state[i] == "ident":
                buf[i] += chunk
                if buf[i].endswith(b"\r\n"):
                    p.write(b"\x06050\r\n")
                    switch_at[i] = time.monotonic() + 6 * 10 / 300 + 0.005
                    state[i] = "ack"
                    buf[i].clear()
            elif state[i] == "data":
                stamps[i].extend([t] * len(chunk))
                buf[i] += chunk
                if len(buf[i]) >= 2 and buf[i][-2] == 0x03:
                    state[i] = "done"
    ep.close()
    for p in ports:
        p.close()
    return stamps


def client_main() -> None:
    paths = sys.argv[2].split(",")
    print(json.dumps(client(paths, sys.argv[3] == "sign-on")))


def run_client(paths: list[str], sign_on: bool) -> subprocess.Popen[str]:
    return subprocess.Popen(
        [sys.executable, __file__, "--client", ",".join(paths), "sign-on" if sign_on else "plain"],
        stdout=subprocess.PIPE,
        text=True,
    )


def errors(stamps: list[list[float]], *, fit: bool = False) -> list[float]:
    """|arrival - due| of every byte.  Due: the port's first byte plus i character times; with
    ``fit``, the schedule of one character time a byte that fits the port's bytes best (the
    median offset), so that one late first byte does not shift every other error."""
    out = []
    for s in stamps:
        offsets = [(t - s[0]) - i * CHAR for i, t in enumerate(s)]
        anchor = statistics.median(offsets) if fit and offsets else 0.0
        out += [abs(x - anchor) for x in offsets]
    return sorted(out)


def summary(label: str, n: int, stamps: list[list[float]]) -> dict[str, object]:
    errs = errors(stamps)
    if not errs:
        return {"bench": "pacing", "what": label, "meters": n, "bytes": 0}
    fit = errors(stamps, fit=True)

    def pct(e: list[float], q: float) -> float:
        return e[int(q * (len(e) - 1))]

    return {
        "bench": "pacing",
        "what": label,
        "meters": n,
        "bytes": len(errs),
        "p50_ms": round(statistics.median(errs) * 1000, 3),
        "p99_ms": round(pct(errs, 0.99) * 1000, 3),
        "p99_chars": round(pct(errs, 0.99) / CHAR, 2),
        "fit_p50_ms": round(statistics.median(fit) * 1000, 3),
        "fit_p99_ms": round(pct(fit, 0.99) * 1000, 3),
    }


# --- me162 and the yardstick --------------------------------------------------------------------


#: each port's first byte, relative to the earliest, in the last me162 run (for the staggered
#: yardstick beside it)
last_starts: list[float] = []


def me162(n: int, *, hub: bool = True, pacer: str = "native") -> dict[str, object]:
    """n meters served as ``me162-sim --count n`` serves them: one thread for all (PtyHub), or
    with ``hub=False`` a thread each (PtyMeter.start, as the conformance suite runs one);
    ``pacer="python"``: paced by the meters' loop, not the pacer thread (ME162_PACER)."""
    import gc

    from me162.simulator.cli import settle
    from me162.simulator.pty_transport import PtyHub, PtyMeter
    from me162.simulator.session import MeterOptions

    os.environ["ME162_PACER"] = pacer
    try:
        meters = [PtyMeter(MeterOptions(clock_start=datetime(2026, 6, 21, 12)), index=i) for i in range(n)]
    finally:
        del os.environ["ME162_PACER"]
    if pacer == "native" and meters[0]._pacer is None:
        raise SystemExit("the pacer thread could not be built (is cc installed?)")
    settle()  # as me162-sim does before it serves
    servers = [PtyHub(meters).start()] if hub else [m.start() for m in meters]
    try:
        proc = run_client([m.path for m in meters], True)
        out, _ = proc.communicate(timeout=180)
    finally:
        for server in servers:
            server.stop()
        gc.unfreeze()
    label = "me162" if hub else "me162, a thread per meter"
    stamps = json.loads(out)
    if all(stamps):
        first = min(st[0] for st in stamps)
        last_starts[:] = [st[0] - first for st in stamps]
    return summary(label if pacer == "native" else f"{label}, paced in Python", n, stamps)


def readout() -> bytes:
    """The virtual ME162's readout message, as it sends it."""
    from me162.protocol import DataMessage
    from me162.simulator.meter import Meter
    from me162.simulator.profile import load_profile

    m = Meter(load_profile("me162"), clock_start=datetime(2026, 6, 21, 12))
    return bytes(DataMessage(m.readout_block()).to_bytes())


def yardstick(n: int, starts: list[float] | None = None) -> dict[str, object]:
    """One thread writes each byte to plain ptys when it is due; with ``starts``, port k's
    readout begins ``starts[k]`` seconds after the first, and every byte due within an eighth
    of a character is written at one wake-up (as the pacer does)."""
    data = readout()
    pairs = [os.openpty() for _ in range(n)]
    paths = [os.ttyname(s) for _, s in pairs]
    for _, s in pairs:
        attrs = termios.tcgetattr(s)
        attrs[3] &= ~(termios.ICANON | termios.ECHO)
        termios.tcsetattr(s, termios.TCSANOW, attrs)
    proc = run_client(paths, False)
    time.sleep(1.0)  # the client has opened every port
    start = time.monotonic() + 0.05
    offsets = starts or [0.0] * n
    early = CHAR / 8 if starts else 0.0
    # (due, port, byte) of every byte, in time order
    plan = sorted((start + offsets[k] + (i + 1) * CHAR, k, b) for k in range(n) for i, b in enumerate(data))

    def write() -> None:
        i = 0
        while i < len(plan):
            while (left := plan[i][0] - early - time.monotonic()) > 0:
                select.select([], [], [], left)
            soon = time.monotonic() + early
            while i < len(plan) and plan[i][0] <= soon:
                _, k, b = plan[i]
                os.write(pairs[k][0], bytes([b]))
                i += 1

    t = threading.Thread(target=write)
    t.start()
    t.join()
    out, _ = proc.communicate(timeout=180)
    for m, s in pairs:
        os.close(m)
        os.close(s)
    return summary("yardstick, staggered as me162's" if starts else "yardstick", n, json.loads(out))


def idle(n: int) -> dict[str, object]:
    from me162.simulator.pty_transport import PtyHub, PtyMeter
    from me162.simulator.session import MeterOptions

    hub = PtyHub([PtyMeter(MeterOptions(), index=i) for i in range(n)]).start()
    time.sleep(1.0)
    r0, t0 = resource.getrusage(resource.RUSAGE_SELF), time.monotonic()
    time.sleep(5.0)
    r1, t1 = resource.getrusage(resource.RUSAGE_SELF), time.monotonic()
    hub.stop()
    cpu = (r1.ru_utime + r1.ru_stime) - (r0.ru_utime + r0.ru_stime)
    return {
        "bench": "pacing",
        "what": "idle meters",
        "meters": n,
        "cpu_percent_of_a_core": round(cpu / (t1 - t0) * 100, 2),
    }


def main() -> None:
    if sys.argv[1:2] == ["--client"]:
        client_main()
        return
    p = argparse.ArgumentParser(description=__doc__)
    p.add_argument("--meters", default="1,10,100")
    p.add_argument("--idle", type=int, default=100)
    args = p.parse_args()
    for n in (int(x) for x in args.meters.split(",")):
        print(json.dumps(me162(n)), flush=True)
        starts = list(last_starts)
        print(json.dumps(me162(n, pacer="python")), flush=True)
        if n > 1:
            print(json.dumps(me162(n, hub=False)), flush=True)
        print(json.dumps(yardstick(n)), flush=True)
        if n > 1:
            print(json.dumps(yardstick(n, starts)), flush=True)
    print(json.dumps(idle(args.idle)), flush=True)


if __name__ == "__main__":
    main()
