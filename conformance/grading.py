"""Verdict rules shared by the cases: what the reader reported, and what it did on the wire."""

from __future__ import annotations

from me162.conformance.suite import CLOCK_VALUE, Outcome, Run, Verdict
from me162.simulator.events import WireEvent

V = tuple[Verdict, str]
EPS = 1e-6


def ran(o: Outcome, run: Run | None = None) -> V | None:
    """A verdict when the run itself went wrong (hang, crash, flood), else None."""
    r = run or o.run
    if r.crashed:
        return Verdict.INCONCLUSIVE, r.crashed
    if r.timed_out:
        return (
            Verdict.FAIL,
            f"the reader did not finish within {o.declaration.timeout:g} s (hangs or retries forever)",
        )
    if r.flooded:
        return Verdict.FAIL, "the reader printed more than 1 MiB: flooding"
    return None


def diff(reported: dict[str, str], expected: dict[str, str]) -> str | None:
    for addr, value in expected.items():
        if addr not in reported:
            return f"{addr} is missing from what it reported"
        if reported[addr] != value and value != CLOCK_VALUE:
            return f"{addr}: reported {reported[addr]!r}, the meter sent {value!r}"
    extra = set(reported) - set(expected)
    if extra:
        return f"reported data sets the meter did not send: {', '.join(sorted(extra)[:3])}"
    return None


def read_correctly(o: Outcome, run: Run | None = None, *, expected: dict[str, str] | None = None) -> V:
    r = run or o.run
    bad = ran(o, r)
    if bad:
        return bad
    if r.exit_code != 0:
        last = (r.stderr.strip().splitlines() or [""])[-1][:160]
        return Verdict.FAIL, f"exit {r.exit_code}: {last}"
    if o.declaration.output == "exit-code":
        return Verdict.PASS, "exit 0 (the reader reports nothing parseable: values not checked)"
    reported = o.reported_readout(r)
    if reported is None:
        return Verdict.FAIL, "exit 0 but stdout is not JSON in the schema of me162-read --json"
    problem = diff(reported, o.expected_readout if expected is None else expected)
    if problem:
        return Verdict.FAIL, problem
    return Verdict.PASS, f"reported all {len(reported)} data sets exactly"


def registers_correctly(o: Outcome, *, errors: tuple[str, ...] = ()) -> V:
    r = o.run
    bad = ran(o, r)
    if bad:
        return bad
    if o.declaration.output == "exit-code":
        if errors:
            return (
                (Verdict.PASS, f"exit {r.exit_code}")
                if r.exit_code != 0
                else (Verdict.FAIL, "exit 0 although a register answered (ERROR)")
            )
        return (Verdict.PASS, "exit 0") if r.exit_code == 0 else (Verdict.FAIL, f"exit {r.exit_code}")
    regs = o.reported_registers(r)
    if regs is None:
        return Verdict.FAIL, f"exit {r.exit_code}: no 'registers' in the JSON output"
    for reg in o.setup.registers:
        got = regs.get(reg)
        if not isinstance(got, dict):
            return Verdict.FAIL, f"register {reg} is missing from what it reported"
        if reg in errors:
            if not got.get("error") or got.get("value") is not None:
                return (
                    Verdict.FAIL,
                    f"register {reg}: the meter answered (ERROR) but the reader reported {got!r}",
                )
            continue
        want = o.expected_registers.get(reg)
        text = (got.get("value") or "") + (f"*{got['unit']}" if got.get("unit") else "")
        if got.get("error"):
            return Verdict.FAIL, f"register {reg}: reported error {got['error']!r}"
        if want is not None and text != want:
            return Verdict.FAIL, f"register {reg}: reported {text!r}, the meter sent {want!r}"
    if errors and r.exit_code == 0:
        return Verdict.FAIL, "exit 0 although a register could not be read"
    return Verdict.PASS, f"reported {len(o.setup.registers)} register(s) correctly"


def readouts_sent(o: Outcome) -> list[WireEvent]:
    return [e for e in o.data("m2r") if e.detail in ("readout", "replay")]


def refused_or_reread(o: Outcome, what: str) -> V:
    """The meter sent one spoiled readout (the fault fires once): the reader must not report
    it; reporting values is right only if it read again and got a clean one."""
    bad = ran(o)
    if bad:
        return bad
    fault = next(iter(o.faults()), None)
    if fault is None:
        return Verdict.INCONCLUSIVE, "the fault never fired (the reader never got that far)"
    if o.run.exit_code != 0:
        return Verdict.PASS, f"refused a readout with {what} (exit {o.run.exit_code})"
    later = [e for e in readouts_sent(o) if e.t > fault.t + EPS]
    if not later:
        return (
            Verdict.FAIL,
            f"accepted a readout with {what} (the simulator spoiled it at t={fault.t:.3f}: {fault.detail[:80]})",
        )
    verdict, reason = read_correctly(o)
    return verdict, (
        f"read again after a readout with {what}; " + reason
    ) if verdict is Verdict.PASS else reason


def fail_cleanly_or_read(o: Outcome) -> V:
    bad = ran(o)
    if bad:
        return bad
    if o.run.exit_code == 0:
        verdict, reason = read_correctly(o)
        if verdict is Verdict.PASS:
            return Verdict.PASS, "read it correctly despite the fault"
        return Verdict.FAIL, f"exit 0 with wrong data: {reason}"
    if (
        o.declaration.output == "json"
        and o.reported_readout()
        and diff(o.reported_readout() or {}, o.expected_readout)
    ):
        return Verdict.FAIL, "failed but printed wrong values anyway"
    code = o.run.exit_code or 0
    if code < 0:
        return Verdict.FAIL, f"killed by signal {-code}: a crash, not a clean failure"
    if "Traceback (most recent call last)" in o.run.stderr:
        last = (o.run.stderr.strip().splitlines() or [""])[-1][:120]
        return Verdict.FAIL, f"crashed with a traceback ({last}), not a clean failure"
    return Verdict.PASS, f"failed cleanly (exit {o.run.exit_code}, {o.run.seconds:.1f} s)"


def requests(o: Outcome) -> list[WireEvent]:
    return [e for e in o.data("r2m") if e.data.startswith(b"/?")]


def bounded_retries(o: Outcome, limit: int = 8) -> V:
    bad = ran(o)
    if bad:
        return bad
    n = len(requests(o))
    if n > limit * o.setup.runs:
        return Verdict.FAIL, f"{n} sign-ons in one reading: retries are not bounded"
    if o.run.exit_code == 0:
        return Verdict.FAIL, "exit 0 although the meter never answered"
    return Verdict.PASS, f"gave up after {n} sign-on(s) with exit {o.run.exit_code}"


def option_selects(o: Outcome) -> list[WireEvent]:
    return [e for e in o.data("r2m") if e.data[:1] == b"\x06" and len(e.data) == 6]


def reader_switches(o: Outcome) -> list[WireEvent]:
    return sorted((e for e in o.events if e.kind == "settings"), key=lambda e: e.t)


def order_unknown(o: Outcome, event: WireEvent) -> str:
    """A caveat when the simulator read ``event``'s bytes together with a settings change, so
    that the pty cannot tell whether they were written before or after it (docs/serial-port.md)."""
    for e in o.events:
        if e.kind == "order-unknown" and abs(e.t - event.t) < 0.01:
            return " (the simulator read these bytes together with a speed change: which came first is not known)"
    return ""


def switch_after_ack(o: Outcome) -> V:
    acks = option_selects(o)
    if not acks:
        return Verdict.INCONCLUSIVE, "the reader sent no option select"
    ack = acks[0]
    switch = next((s for s in reader_switches(o) if s.t > ack.t - 0.5 and (s.baud or 0) != 300), None)
    if switch is None:
        return Verdict.INCONCLUSIVE, "the reader never switched speed"
    end = ack.t + len(ack.data) * 10 / (ack.baud or 300)
    if switch.t + EPS < end:
        return (
            Verdict.FAIL,
            f"switched to {switch.baud} Bd {1000 * (end - switch.t):.0f} ms before its ACK had left the wire"
            + order_unknown(o, ack),
        )
    return Verdict.PASS, f"switched {1000 * (switch.t - end):.0f} ms after the ACK's last stop bit"
