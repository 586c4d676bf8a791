"""Every verdict rule of the conformance suite, by name: :data:`GRADERS`.

A case names its grader and gives it keyword arguments (``grade="data_set", args={...}``).  A
grader looks at what the reader reported (its exit code and JSON) and at what happened on the
wire, judged where it counts: what the meter *received* (:meth:`Outcome.received`, messages as
the meter's receiver framed them, so a reader that writes 7E1 as 8-bit bytes is judged on what
reached the meter), what the meter did and sent, and when the reader changed its speed.  Every
rule reads typed fields; none parses a formatted string.
"""

from __future__ import annotations

import itertools
from collections.abc import Callable
from dataclasses import replace
from typing import Any

from me162.conformance.suite import CLOCK_VALUE, Outcome, Run, Verdict, clip
from me162.protocol.datablock import Obis
from me162.protocol.frames import addresses_match
from me162.protocol.framing import Kind
from me162.protocol.line import MODE_C_BAUDS, T_T_MIN, LineSettings, mode_c_char
from me162.simulator.events import Did, Sent, WireEvent

V = tuple[Verdict, str]
Grader = Callable[..., V]
EPS = 1e-6

#: the graders, by the name a case gives
GRADERS: dict[str, Grader] = {}


def grader(fn: Grader) -> Grader:
    GRADERS[fn.__name__] = fn
    return fn


# --- what went wrong with the run itself --------------------------------------------------------


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
    # IEC 62056-61: the letters of value groups C and D stand for numbers (C.1.0 is 96.1.0, F.F
    # is 97.97): either spelling of the same address is the same data set
    reported = {(_spelt_as(a, expected) or a): v for a, v in reported.items()}
    for addr, value in expected.items():
        if addr not in reported:
            renamed = [a for a, v in reported.items() if v == value and a not in expected]
            if renamed:
                return (
                    f"{addr} is missing from what it reported; it reported {renamed[0]} with {addr}'s value"
                )
            got = ", ".join(f"{a}({v})" for a, v in list(reported.items())[:2]) or "nothing"
            return (
                f"{addr} is missing from what it reported ({len(reported)} of {len(expected)} data sets: "
                f"{got}{', ...' if len(reported) > 2 else ''})"
            )
        if reported[addr] != value and value != CLOCK_VALUE:
            return f"{addr}: reported {reported[addr]!r}, the meter sent {value!r}"
    extra = set(reported) - set(expected)
    if extra:
        return f"reported data sets the meter did not send: {', '.join(sorted(extra)[:3])}"
    return None


def _spelt_as(addr: str, expected: dict[str, str]) -> str | None:
    """The expected address that ``addr`` spells with numbers for letters, if any."""
    if addr in expected:
        return addr
    key = Obis.parse(addr)
    return None if key is None else next((a for a in expected if Obis.parse(a) == key), None)


def wire_time(e: WireEvent) -> float:
    """How long a data event's bytes take on the wire at their speed."""
    return LineSettings(e.baud or 300).transfer_time(len(e.data))


# --- values ------------------------------------------------------------------------------------


@grader
def read_correctly(o: Outcome, run: Run | None = None, *, expected: dict[str, str] | None = None) -> V:
    """Exit 0 and exactly the meter's data sets reported."""
    r = run or o.run
    bad = ran(o, r)
    if bad:
        return bad
    if r.exit_code != 0:
        last = clip((r.stderr.strip().splitlines() or [""])[-1])
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


@grader
def registers_correctly(o: Outcome, *, errors: tuple[str, ...] = ()) -> V:
    """The registers asked for, each with the meter's value (or as an error where it answered
    with an error message)."""
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
        if r.exit_code != 0:  # it failed and said why: that is the reason, not the missing JSON
            last = clip((r.stderr.strip().splitlines() or ["no 'registers' in the JSON output"])[-1])
            return Verdict.FAIL, f"exit {r.exit_code}: {last}"
        return Verdict.FAIL, "exit 0: no 'registers' in the JSON output"
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


@grader
def data_set(o: Outcome, *, address: str, label: str) -> V:
    """One data set of an odd but real format, reported exactly as the meter sent it."""
    bad = ran(o)
    if bad:
        return bad
    if o.run.exit_code != 0:
        return Verdict.FAIL, f"exit {o.run.exit_code}: could not read a readout with {label}"
    if o.declaration.output != "json":
        return Verdict.INCONCLUSIVE, "the reader reports nothing parseable: the value cannot be checked"
    reported = o.reported_readout() or {}
    want = o.expected_readout.get(address)
    # the same address spelt with numbers for letters (IEC 62056-61) is the same data set
    got = next((v for a, v in reported.items() if (_spelt_as(a, o.expected_readout) or a) == address), None)
    if got != want:
        return Verdict.FAIL, f"{label}: {address} reported as {got!r}, the meter sent {want!r}"
    return Verdict.PASS, f"{label}: {address}({want}) kept exactly"


@grader
def two_readings(o: Outcome) -> V:
    """Every reading of the case right."""
    for i, run in enumerate(o.runs, 1):
        verdict, reason = read_correctly(o, run)
        if verdict is not Verdict.PASS:
            return verdict, f"reading {i}: {reason}"
    return Verdict.PASS, f"{len(o.runs)} readings in a row, all right"


@grader
def replay(o: Outcome, *, name: str) -> V:
    """The replay of a real capture read right (what the replay saw the reader do otherwise)."""
    verdict, reason = read_correctly(o)
    if verdict is Verdict.PASS:
        return Verdict.PASS, f"reported the {name} capture's values"
    mismatches = o.meter_did(Did.MISMATCH)
    if mismatches:
        return verdict, f"{reason}; the replay saw: {clip(mismatches[0].detail, 120)}"
    return verdict, reason


# --- faults: refuse, read again, or fail cleanly -------------------------------------------------


@grader
def refused_or_reread(o: Outcome, *, what: str) -> V:
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
    later = [e for e in o.sent(Sent.READOUT, Sent.REPLAY) if e.t > fault.t + EPS]
    if not later:
        return (
            Verdict.FAIL,
            f"accepted a readout with {what} (the simulator spoiled it at t={fault.t:.3f}: {fault.fault})",
        )
    verdict, reason = read_correctly(o)
    return verdict, (
        f"read again after a readout with {what}; " + reason
    ) if verdict is Verdict.PASS else reason


@grader
def fail_cleanly_or_read(o: Outcome) -> V:
    """Under a fault: read right, or fail with a non-zero exit and no wrong value, traceback or
    death by a signal."""
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
        last = clip((o.run.stderr.strip().splitlines() or [""])[-1], 120)
        return Verdict.FAIL, f"crashed with a traceback ({last}), not a clean failure"
    return Verdict.PASS, f"failed cleanly (exit {o.run.exit_code}, {o.run.seconds:.1f} s)"


#: protocol seconds a reader may listen to a meter that never stops sending without acting (a
#: new request, a break) or letting go of the port.  The reference reader needs about 45: its
#: identification's byte budget, then up to 30 s waiting for the line to go quiet.
ENDLESS_TALK_LIMIT = 60.0


@grader
def let_go_of_endless_talk(o: Outcome) -> V:
    """A meter that never stops sending: read right or fail cleanly, and never listen longer
    than :data:`ENDLESS_TALK_LIMIT` without acting.  A reader whose deadline every byte pushes
    on ends only when the meter happens to pause (on a busy machine it may, by chance)."""
    verdict, reason = fail_cleanly_or_read(o)
    if verdict is not Verdict.PASS:
        return verdict, reason
    acts = sorted(e.t for e in o.events if (e.kind == "data" and e.dir == "r2m") or e.kind == "close")
    longest = max((b - a for a, b in itertools.pairwise(acts)), default=0.0)
    if longest > ENDLESS_TALK_LIMIT:
        return (
            Verdict.FAIL,
            f"listened {longest:.0f} s to a meter that never stops sending before it acted or let go "
            f"(at most {ENDLESS_TALK_LIMIT:g} s): each byte seems to extend its deadline",
        )
    return verdict, reason


@grader
def every_run_clean(o: Outcome) -> V:
    """Several readings under random faults: at least one fault fired, and every reading is
    right or fails cleanly."""
    if not o.faults():
        return Verdict.INCONCLUSIVE, "no fault fired"
    reads = 0
    for i, run in enumerate(o.runs, 1):
        verdict, reason = fail_cleanly_or_read(replace(o, runs=[run]))
        if verdict is not Verdict.PASS:
            return verdict, f"reading {i}: {reason}"
        reads += run.exit_code == 0
    return (
        Verdict.PASS,
        f"{len(o.faults())} fault(s) in {len(o.runs)} readings: {reads} read right, the rest failed cleanly",
    )


@grader
def fail_cleanly_or_registers(o: Outcome) -> V:
    """Under a fault in programming mode: the registers right, or a clean failure."""
    if o.run.exit_code == 0 and not ran(o):
        return registers_correctly(o)
    return fail_cleanly_or_read(o)


@grader
def once_fired(o: Outcome, *, then: str, **args: Any) -> V:
    """``then``'s verdict when the scenario's fault fired; inconclusive when it never did."""
    if not o.faults():
        return Verdict.INCONCLUSIVE, "the fault never fired"
    return GRADERS[then](o, **args)


@grader
def bounded_retries(o: Outcome, *, limit: int = 8) -> V:
    """A silent meter: a bounded number of sign-ons the meter heard, then a non-zero exit."""
    bad = ran(o)
    if bad:
        return bad
    n = len(o.received(Kind.REQUEST))
    if n > limit * o.setup.runs:
        return Verdict.FAIL, f"the meter heard {n} sign-ons in one reading: retries are not bounded"
    if o.run.exit_code == 0:
        return Verdict.FAIL, "exit 0 although the meter never answered"
    return Verdict.PASS, f"gave up after {n} sign-on(s) with exit {o.run.exit_code}"


@grader
def every_third_refused(o: Outcome) -> V:
    """Three readings; the third readout spoiled: the first two right, the third not reported."""
    if not o.faults():
        return two_readings(o)
    return refused_or_reread(o, what="a wrong BCC in the third session")


# --- the line: speeds, timing, the port -----------------------------------------------------------


@grader
def sign_on_at_300(o: Outcome) -> V:
    """The meter read a request, and the first one the reader wrote went out at 300 Bd."""
    bad = ran(o)
    if bad:
        return bad
    wrote = o.wrote()
    if not wrote:
        return Verdict.FAIL, "the reader wrote nothing"
    if wrote[0].baud != 300:
        return Verdict.FAIL, f"the reader's first bytes went out at {wrote[0].baud} Bd, not 300 Bd"
    if not o.received(Kind.REQUEST):
        return (
            Verdict.FAIL,
            f"the meter read no request /?...! in what the reader wrote ({wrote[0].data[:12]!r} at "
            f"{wrote[0].baud} Bd): wrong speed or character format",
        )
    return Verdict.PASS, "the meter read a request sent at 300 Bd 7E1"


def first_ack(o: Outcome) -> WireEvent | None:
    acks = o.received(Kind.OPTION_SELECT)
    return acks[0] if acks else None


def switch_after(o: Outcome, t: float) -> WireEvent | None:
    """The reader's first switch away from 300 Bd after ``t``."""
    return next((s for s in o.switches() if s.t > t and (s.baud or 300) != 300), None)


@grader
def switch_after_ack(o: Outcome) -> V:
    """The reader switched speed only once its ACK had left the wire: the meter read the ACK
    whole, and the switch came after the ACK's last stop bit."""
    written = [e for e in o.wrote() if e.data[:1] in (b"\x06", b"\x86")]
    ack = first_ack(o)
    if ack is None:
        if written:
            switch = switch_after(o, written[0].t - 0.5)
            when = (
                ""
                if switch is None
                else f"; it switched to {switch.baud} Bd {1000 * (switch.t - written[0].t):.0f} ms after starting it"
            )
            return Verdict.FAIL, "the meter could not read the reader's option select" + when
        return Verdict.INCONCLUSIVE, "the reader sent no option select"
    switch = switch_after(o, ack.t - 0.5)
    if switch is None:
        return Verdict.INCONCLUSIVE, "the reader never switched speed"
    if switch.t + EPS < ack.t:
        return (
            Verdict.FAIL,
            f"switched to {switch.baud} Bd {1000 * (ack.t - switch.t):.0f} ms before its ACK had left the wire"
            + o.order_unknown_near(ack.t),
        )
    return Verdict.PASS, f"switched {1000 * (switch.t - ack.t):.0f} ms after the ACK's last stop bit"


@grader
def switched_before_answer(o: Outcome) -> V:
    """The reader was at the new speed before the meter's answer started."""
    ack = first_ack(o)
    if ack is None:
        return Verdict.INCONCLUSIVE, "the meter read no option select"
    switch = switch_after(o, ack.t - 0.5)
    answer = next((e for e in o.sent() if e.t > ack.t), None)
    if switch is None or answer is None:
        return Verdict.INCONCLUSIVE, "no speed switch or no answer to compare"
    if switch.t > answer.t + EPS:
        return (
            Verdict.FAIL,
            f"switched {1000 * (switch.t - answer.t):.0f} ms after the meter had started answering at {answer.baud} Bd",
        )
    return Verdict.PASS, f"switched {1000 * (answer.t - switch.t):.0f} ms before the answer started"


@grader
def ack_at_300(o: Outcome) -> V:
    """The option select went out at 300 Bd: the meter, still at 300 Bd, read it (or the reader
    wrote it at 300 Bd and garbled it by switching during it, which is LINE-02's fault)."""
    ack = first_ack(o)
    if ack is not None:
        return Verdict.PASS, "the meter read the option select at 300 Bd"
    written = [e for e in o.wrote() if e.data[:1] in (b"\x06", b"\x86")]
    if not written:
        return Verdict.INCONCLUSIVE, "the reader sent no option select"
    if written[0].baud == 300:
        return Verdict.PASS, "the option select started at 300 Bd (the switch during it garbled it: LINE-02)"
    return (
        Verdict.FAIL,
        f"the option select went out at {written[0].baud} Bd and the meter could not read it; it must go at "
        "300 Bd (vzlogger PR 109)" + o.order_unknown_near(written[0].t),
    )


@grader
def raw_port(o: Outcome) -> V:
    """The reader's port in raw mode, as the pty saw it."""
    reports = o.port_reports()
    if not reports:
        return Verdict.INCONCLUSIVE, "no port settings seen (not a pty)"
    bad = [r for r in reports if r.startswith("reader set") and "not raw" in r]
    if bad:
        return Verdict.FAIL, clip(bad[0])
    return Verdict.PASS, "the port was in raw mode"


@grader
def offered_speed(o: Outcome, *, baud: int) -> V:
    """Read right, at the speed the meter offered."""
    verdict, reason = read_correctly(o)
    if verdict is not Verdict.PASS:
        return verdict, reason
    readouts = o.sent(Sent.READOUT)
    if readouts and readouts[0].baud != baud:
        return Verdict.FAIL, f"the meter offered {baud} Bd; the readout came at {readouts[0].baud} Bd"
    return Verdict.PASS, f"read at {baud} Bd as offered"


@grader
def within_max_baud(o: Outcome, *, offered: int) -> V:
    """A meter offering more than the reader claims: read right, at the offered speed when the
    reader claims it, else at 300 Bd (Z=0): never at a speed the meter did not offer, never
    faster than the claim."""
    claim = o.declaration.max_baud
    want = offered if claim >= offered else 300
    ack = first_ack(o)
    if ack is not None and ack.message is not None:
        z = chr(ack.message.data[2])
        asked = MODE_C_BAUDS.get(z)
        if asked != want:
            return (
                Verdict.FAIL,
                f"asked for Z={z} ({asked} Bd); the meter offered {offered} Bd and the reader claims "
                f"{claim} Bd, so Z={mode_c_char(want)} ({want} Bd) was right",
            )
    verdict, reason = read_correctly(o)
    if verdict is not Verdict.PASS:
        return verdict, reason
    readouts = o.sent(Sent.READOUT)
    if not readouts:
        return Verdict.INCONCLUSIVE, "the meter sent no readout"
    got = readouts[0].baud or 300
    if got != want:
        why = "its claim" if claim >= offered else f"the meter's offer or its claimed max_baud {claim}"
        return Verdict.FAIL, f"read at {got} Bd; {want} Bd was right ({why})"
    return Verdict.PASS, f"read at {got} Bd (meter offers {offered}, reader claims {claim})"


@grader
def parity_refused(o: Outcome) -> V:
    """A character of the readout had a wrong parity bit (its BCC still right): the reader must
    not report that readout."""
    return refused_or_reread(o, what="a character with a wrong parity bit")


# --- the session: sign-on, identification, option select ----------------------------------------


@grader
def ident_parsed(o: Outcome) -> V:
    """Read right, and the identification's fields parsed by the standard."""
    verdict, reason = read_correctly(o)
    if verdict is not Verdict.PASS or o.declaration.output != "json":
        return verdict, reason
    ident = o.meter.profile.identification
    want = ident.to_json()
    doc = o.run.json or {}
    got = doc.get("identification")
    if not isinstance(got, dict):
        return Verdict.FAIL, "no identification in what it reported"
    for key in ("raw", "manufacturer", "baud_char", "mode", "baud", "ident", "enhanced"):
        if key in got and got[key] != want[key]:
            return (
                Verdict.FAIL,
                f"identification {key}: reported {got[key]!r}, the standard reads {want[key]!r}",
            )
        if key not in got and key in ("manufacturer", "ident"):
            return Verdict.FAIL, f"identification: no {key!r} in what it reported"
    return Verdict.PASS, f"identification {ident.raw} parsed right"


@grader
def option_for(o: Outcome, *, y: str) -> V:
    """The meter read an option select ACK 0 Z Y (Y=0 readout, Y=1 programming), then read right."""
    ack = first_ack(o)
    if ack is None or ack.message is None:
        return Verdict.FAIL, "the meter read no option select from the reader"
    v, z, yy = (chr(c) for c in ack.message.data[1:4])
    if v != "0" or yy != y:
        return Verdict.FAIL, f"sent ACK {v}{z}{yy}; expected V=0 and Y={y}"
    return read_correctly(o) if y == "0" else registers_correctly(o)


@grader
def reaction_window(o: Outcome) -> V:
    """The ACK came no sooner than the meter's minimum reaction time after the identification
    (200 ms, or 20 ms for a lowercase third letter) and before the meter gave up (t_t)."""
    idents = o.sent(Sent.IDENTIFICATION)
    ack = first_ack(o)
    if not idents or ack is None or ack.message is None:
        return Verdict.INCONCLUSIVE, "no identification or no option select"
    ident = o.meter.profile.identification
    end = idents[0].t + wire_time(idents[0])
    start = ack.t - LineSettings(300).transfer_time(len(ack.message.data))
    gap = start - end
    floor = ident.reaction_time_ms / 1000
    if gap < floor - 0.002:
        return (
            Verdict.FAIL,
            f"the ACK started {1000 * gap:.0f} ms after the identification ended; {ident.raw} promises "
            f"only {ident.reaction_time_ms} ms (third letter {'lower' if ident.fast_reaction else 'upper'}case)",
        )
    if gap > T_T_MIN:
        return (
            Verdict.FAIL,
            f"the ACK came {gap:.2f} s after the identification: past t_t, the meter had given up",
        )
    return (
        Verdict.PASS,
        f"ACK {1000 * gap:.0f} ms after the identification (at least {ident.reaction_time_ms} ms)",
    )


@grader
def addressed_request(o: Outcome) -> V:
    """Read right, and the meter read a request for its address (not the general /?!)."""
    verdict, reason = read_correctly(o)
    if verdict is not Verdict.PASS:
        return verdict, reason
    address = o.setup.address or ""
    requests = [e.message.data[2:-3].decode("latin-1") for e in o.received(Kind.REQUEST) if e.message]
    if not any(r and addresses_match(r, address) for r in requests):
        return Verdict.FAIL, f"read, but with the request(s) {requests!r}: not addressed to {address}"
    return Verdict.PASS, f"the meter read /?{requests[0]}! and answered"


@grader
def survives_abandoned_session(o: Outcome) -> V:
    verdict, reason = read_correctly(o)
    if verdict is Verdict.PASS:
        b0 = any(m.message is not None and m.message.is_break for m in o.received(Kind.COMMAND))
        return Verdict.PASS, "read the meter " + (
            "after ending the old session with B0" if b0 else "after waiting out the old session"
        )
    return verdict, reason + " (the meter was still in a programming session left without B0)"


# --- programming mode ----------------------------------------------------------------------------


@grader
def b0_at_the_end(o: Outcome) -> V:
    """The meter read a B0 last: programming mode ended at the session speed."""
    bad = ran(o)
    if bad:
        return bad
    if not o.commands():
        return Verdict.FAIL, "the meter read no command from the reader"
    if not o.ended_with_b0():
        wrote_b0 = any(e.data.endswith((b"\x01B0\x03q", b"\x81B0\x03q")) for e in o.wrote())
        if wrote_b0:
            return Verdict.FAIL, "the reader wrote B0 but the meter could not read it (sent at another speed)"
        return (
            Verdict.FAIL,
            "the reader left programming mode without B0: the ME162 stays deaf for up to a minute",
        )
    return Verdict.PASS, "ended programming mode with B0 at the session speed"


@grader
def copes_with_nak(o: Outcome, *, nth: int = 1) -> V:
    """The meter NAKed an R1 (the ``nth`` one it read): the reader sent that R1 again and
    reported the right values."""
    verdict, reason = registers_correctly(o)
    if verdict is not Verdict.PASS:
        return verdict, reason
    r1 = o.commands("R1")
    if len(r1) <= nth:
        return Verdict.FAIL, f"the meter NAKed R1 number {nth} and the reader did not send it again"
    first, again = r1[nth - 1].message, r1[nth].message
    assert first is not None and again is not None
    if first.data != again.data:
        return (
            Verdict.FAIL,
            f"after the NAK of {first.text!r} the reader sent {again.text!r}, not the same R1",
        )
    return Verdict.PASS, f"sent {first.text.replace(chr(2), ' ')!r} again after the NAK; values right"


@grader
def nak_for_a_bad_bcc(o: Outcome) -> V:
    """An R1 answer with a wrong BCC: the reader asked for it again with NAK (IEC 62056-21
    Annex A) and reported the repeat."""
    verdict, reason = registers_correctly(o)
    if verdict is not Verdict.PASS:
        return verdict, reason
    fault = next(iter(o.faults()), None)
    if fault is None:
        return Verdict.INCONCLUSIVE, "the fault never fired"
    naks = [e for e in o.received(Kind.NAK) if e.t > fault.t]
    if not naks:
        r1 = [e for e in o.commands("R1") if e.t > fault.t]
        how = "sent the R1 again" if r1 else "did not ask again"
        return (
            Verdict.FAIL,
            f"the answer at t={fault.t:.3f} had a wrong BCC and the reader {how} instead of NAK",
        )
    return Verdict.PASS, "NAKed the answer with the wrong BCC and reported the repeat"


@grader
def gives_up_with_b0(o: Outcome, *, limit: int = 12) -> V:
    """An R1 that never succeeds: bounded tries, no value reported, B0 at the end."""
    bad = ran(o)
    if bad:
        return bad
    r1 = o.commands("R1")
    if len(r1) > limit:
        return Verdict.FAIL, f"the meter read {len(r1)} R1 commands: retries are not bounded"
    regs = o.reported_registers() or {}
    if any(isinstance(v, dict) and v.get("value") for v in regs.values()):
        return Verdict.FAIL, "reported a value the meter never sent"
    if o.run.exit_code == 0:
        return Verdict.FAIL, "exit 0 although no register could be read"
    if not o.ended_with_b0():
        return Verdict.FAIL, f"gave up after {len(r1)} R1 but without B0"
    return Verdict.PASS, f"gave up after {len(r1)} R1 and sent B0"


@grader
def wrong_password(o: Outcome) -> V:
    """The meter refused the password (it sent B0): the reader says so with a non-zero exit."""
    bad = ran(o)
    if bad:
        return bad
    if not o.meter_did(Did.PASSWORD):
        return Verdict.FAIL, "the meter never read a P1 with the password"
    if o.run.exit_code == 0:
        return Verdict.FAIL, "exit 0 although the meter refused the password (it sent B0)"
    return Verdict.PASS, f"reported the refused password (exit {o.run.exit_code})"


@grader
def p0_bcc(o: Outcome) -> V:
    """The P0 came with a wrong BCC: the reader must not go on as if it were right; it asks for
    it again (NAK) and reads the registers, or fails cleanly."""
    bad = ran(o)
    if bad:
        return bad
    fault = next(iter(o.faults()), None)
    if fault is None:
        return Verdict.INCONCLUSIVE, "the fault never fired"
    after = [e for e in o.received() if e.t > fault.t and e.message is not None]
    first = after[0].message if after else None
    if first is not None and first.kind is Kind.COMMAND and not first.is_break:
        return Verdict.FAIL, f"went on with {first.name} after a P0 whose BCC was wrong"
    return fail_cleanly_or_registers(o)
