"""A soak of the reference reader's session against chaos-faulted virtual meters, on virtual
time (no pty, no thread, no sleep): thousands of faulted sessions a minute.

Each session runs a fresh :class:`~me162.simulator.meter.Meter` with moving registers behind a
link whose transmissions a seeded fault injector spoils at a given rate.  The truth is the
meter's own record of what it sent (``Meter.answers`` and ``Meter.readouts``, taken before any
fault): a reading is *wrong* when the session ended without an error but reported a value the
meter never sent for that register.  A session that raises anything but
:class:`~me162.reader.session.ReaderError` is a *traceback*; one that runs past its virtual
time or step limit is a *hang*.

    python -m me162.reader.soak --sessions 5000
"""

from __future__ import annotations

import argparse
import json
import logging
import sys
import traceback
from collections import Counter, defaultdict
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any

from me162.protocol.datablock import parse_data_block
from me162.reader.session import (
    Event,
    ReaderConfig,
    ReaderError,
    ReaderSession,
    Send,
    SessionResult,
    SetSpeed,
    Wait,
)

OUTCOMES = ("success", "clean failure", "wrong value accepted", "hang", "traceback")
REGISTERS = ("1.8.0", "2.8.0", "1.8.1", "2.8.2")
CLOCK = datetime(2026, 6, 21, 12, 0, 0)


class SessionHang(Exception):
    """The session ran past its virtual time or step limit."""


def run_on_link(
    session: ReaderSession,
    link: Any,
    *,
    start: float | None = None,
    limit: float = 600.0,
    steps: int = 200_000,
) -> SessionResult | None:
    """Run a reader session against a :class:`~me162.simulator.link.Link` on virtual time.

    Returns the session's outcome, or raises the session's
    :class:`~me162.reader.session.ReaderError`; :class:`SessionHang` past ``limit`` virtual
    seconds or ``steps`` actions."""
    now = link.now if start is None else start
    deadline = now + limit
    action: Send | SetSpeed | Wait | None = session.start(now)
    for _ in range(steps):
        if action is None:
            return session.outcome
        data = b""
        if isinstance(action, Send):
            link.reader_write(action.data, now)
        elif isinstance(action, SetSpeed):
            now = max(now, action.not_before)
            link.reader_configure(link.reader_settings.with_baud(action.baud), now)
        elif isinstance(action, Wait):
            link.advance(now)
            data = link.reader_take(now)
            while not data and now < action.until:
                nxt = link.next_event()
                now = action.until if nxt is None else min(action.until, max(nxt, now + 1e-6))
                link.advance(now)
                data = link.reader_take(now)
        if now > deadline:
            raise SessionHang(f"the session ran past {limit:g} virtual seconds")
        action = session.feed(Event(data, now))
    raise SessionHang(f"the session took more than {steps} steps")


@dataclass
class Tally:
    """Sessions by outcome, overall and per fault kind."""

    total: Counter[str] = field(default_factory=Counter)
    by_fault: dict[str, Counter[str]] = field(default_factory=lambda: defaultdict(Counter))
    examples: dict[str, list[str]] = field(default_factory=lambda: defaultdict(list))

    def add(self, outcome: str, faults: set[str], what: str) -> None:
        self.total[outcome] += 1
        for f in faults or {"(none fired)"}:
            self.by_fault[f][outcome] += 1
        if outcome not in ("success", "clean failure") and len(self.examples[outcome]) < 5:
            self.examples[outcome].append(what)

    @property
    def sessions(self) -> int:
        return sum(self.total.values())

    def to_json(self) -> dict[str, Any]:
        return {
            "sessions": self.sessions,
            **{o: self.total[o] for o in OUTCOMES},
            "by_fault": {f: {o: c[o] for o in OUTCOMES} for f, c in sorted(self.by_fault.items())},
            "examples": dict(self.examples),
        }


def _wrong(res: SessionResult, meter: Any, programming: bool) -> str | None:
    """What the session reported that the meter never sent, or None."""
    if programming:
        sent: dict[str, set[str]] = defaultdict(set)
        for _, address, text in meter.answers:
            sent[address].add(text)
        for reg, v in res.registers.items():
            if v["error"] is not None:
                continue
            spec = meter.lookup(reg)
            if spec is None or v["raw"] not in sent[spec.address]:
                return f"{reg} reported {v['raw']!r}; the meter sent {sorted(sent.get(reg, ()))}"
        missing = [r for r in REGISTERS if r not in res.registers]
        return f"registers missing: {missing}" if missing else None
    if res.readout is None:
        return "no readout"
    got = [(ds.address, [v.to_text() for v in ds.values]) for _, ds in res.readout.data.data_sets]
    for block in meter.readouts:
        if got == [
            (ds.address, [v.to_text() for v in ds.values]) for _, ds in parse_data_block(block).data_sets
        ]:
            return None
    return f"a readout the meter never sent: {got[:3]}..."


def one_session(seed: int, rate: float, programming: bool) -> tuple[str, set[str], str]:
    """Run one faulted session; (outcome, fault kinds that fired, a description)."""
    from me162.simulator.events import Wire
    from me162.simulator.faults import attach
    from me162.simulator.link import Link
    from me162.simulator.meter import Meter
    from me162.simulator.profile import load_profile

    meter = Meter(load_profile("me162"), seed=seed, clock_start=CLOCK, moving=True)
    link = Link(meter)
    attach(link, [], chaos=(seed, rate))
    config = ReaderConfig(registers=REGISTERS if programming else ())
    what = f"seed {seed}, rate {rate}, {'programming' if programming else 'readout'}"
    outcome = "success"
    try:
        res = run_on_link(ReaderSession(config), link)
        assert res is not None
        wrong = _wrong(res, meter, programming)
        if wrong:
            outcome, what = "wrong value accepted", f"{what}: {wrong}"
    except ReaderError:
        outcome = "clean failure"
    except SessionHang as e:
        outcome, what = "hang", f"{what}: {e}"
    except Exception as e:
        outcome = "traceback"
        what = f"{what}: {type(e).__name__}: {e} | {traceback.format_exc(limit=-2).splitlines()[-3:]}"
    faults = {e.fault for e in link.events if e.kind is Wire.FAULT}
    return outcome, faults, what


def soak(sessions: int, *, seeds: int = 4, rates: tuple[float, ...] = (0.1, 0.2, 0.3, 0.4, 0.5)) -> Tally:
    """``sessions`` faulted sessions spread over seeds, rates and both modes."""
    tally = Tally()
    combos = [(s, r, p) for s in range(1, seeds + 1) for r in rates for p in (False, True)]
    for i in range(sessions):
        base, rate, programming = combos[i % len(combos)]
        seed = base * 100_000 + i
        outcome, faults, what = one_session(seed, rate, programming)
        tally.add(outcome, faults, what)
    return tally


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(prog="python -m me162.reader.soak", description=__doc__.splitlines()[0])
    p.add_argument("--sessions", type=int, default=5000)
    p.add_argument("--seeds", type=int, default=4)
    args = p.parse_args(argv)
    logging.disable(logging.WARNING)
    tally = soak(args.sessions, seeds=args.seeds)
    print(json.dumps(tally.to_json(), indent=2))
    bad = tally.total["wrong value accepted"] + tally.total["hang"] + tally.total["traceback"]
    return 1 if bad else 0


if __name__ == "__main__":
    sys.exit(main())
