"""The conformance cases: numbered groups LINE, FRAME, SESSION, PROG, DATA, ROBUST, REPLAY.

Each case has an id, a purpose, a reference (a clause of IEC 62056-21, a real-meter quirk from
the captures, or a user issue from PRIOR_ART) and a verdict rule that looks at what the reader
reported and at what it did on the wire.
"""

from __future__ import annotations

import json
from dataclasses import dataclass

from me162.conformance import grading as g
from me162.conformance.declaration import Declaration
from me162.conformance.suite import FIXTURES, Applies, Grader, Outcome, Setup, Verdict
from me162.simulator.events import Did

V = tuple[Verdict, str]


@dataclass(frozen=True)
class Case:
    id: str
    title: str
    purpose: str
    reference: str
    setup: Setup
    grade: Grader
    applies: Applies = lambda d: None

    @property
    def group(self) -> str:
        return self.id.split("-")[0]


def needs_mode(mode: str) -> Applies:
    return lambda d: None if mode in d.modes else f"the reader does not claim mode {mode}"


def needs_programming(d: Declaration) -> str | None:
    return None if d.programming else "the reader does not claim programming mode"


def needs(attr: str, what: str) -> Applies:
    def rule(d: Declaration) -> str | None:
        if not d.programming and attr not in {"address", "software_parity"}:
            return "the reader does not claim programming mode"
        return None if getattr(d, attr) else f"the reader does not claim {what}"

    return rule


def needs_transport(t: str) -> Applies:
    return lambda d: None if t in d.transports else f"the reader does not claim the {t} transport"


def needs_registers(*regs: str) -> Applies:
    def rule(d: Declaration) -> str | None:
        if not d.programming:
            return "the reader does not claim programming mode"
        missing = [r for r in regs if r not in d.registers]
        return f"the reader does not claim R1 of {', '.join(missing)}" if missing else None

    return rule


def all_of(*rules: Applies) -> Applies:
    def rule(d: Declaration) -> str | None:
        for r in rules:
            why = r(d)
            if why:
                return why
        return None

    return rule


# --- graders that need more than one rule --------------------------------------------------------


def first_request_at_300(o: Outcome) -> V:
    reqs = g.requests(o)
    if not reqs:
        return Verdict.FAIL, "the reader sent no request (/?...!)"
    first = reqs[0]
    if first.baud != 300:
        return Verdict.FAIL, f"the first request went out at {first.baud} Bd, not 300 Bd"
    if not o.meter_did(Did.REQUEST):
        return Verdict.FAIL, f"the meter could not read the request {first.data!r} (wrong speed or format)"
    return Verdict.PASS, "signed on at 300 Bd 7E1 with /?...!"


def switched_before_answer(o: Outcome) -> V:
    acks = g.option_selects(o)
    switch = next(
        (s for s in g.reader_switches(o) if acks and s.t > acks[0].t - 0.5 and (s.baud or 0) != 300), None
    )
    answer = next((e for e in o.data("m2r") if acks and e.t > acks[0].t), None)
    if not acks or switch is None or answer is None:
        return Verdict.INCONCLUSIVE, "no option select, speed switch or answer to compare"
    if switch.t > answer.t + g.EPS:
        return (
            Verdict.FAIL,
            f"switched {1000 * (switch.t - answer.t):.0f} ms after the meter had started answering at {answer.baud} Bd",
        )
    return Verdict.PASS, f"switched {1000 * (answer.t - switch.t):.0f} ms before the answer started"


def ack_at_300(o: Outcome) -> V:
    acks = g.option_selects(o)
    if not acks:
        return Verdict.INCONCLUSIVE, "the reader sent no option select"
    if acks[0].baud != 300:
        return (
            Verdict.FAIL,
            f"the option select went out at {acks[0].baud} Bd; it must go at 300 Bd (vzlogger PR 109)"
            + g.order_unknown(o, acks[0]),
        )
    return Verdict.PASS, "the option select went out at 300 Bd"


def raw_port(o: Outcome) -> V:
    reports = [e.detail for e in o.events if e.kind == "port"]
    if not reports:
        return Verdict.INCONCLUSIVE, "no port settings seen (not a pty)"
    bad = [r for r in reports if "not raw" in r]
    if bad:
        return Verdict.FAIL, bad[0][:160]
    return Verdict.PASS, "the port was in raw mode"


def option_for(y: str) -> Grader:
    def grade(o: Outcome) -> V:
        acks = g.option_selects(o)
        if not acks:
            return Verdict.FAIL, "the reader sent no option select"
        v, z, yy = (chr(c) for c in acks[0].data[1:4])
        if v != "0" or yy != y:
            return Verdict.FAIL, f"sent ACK {v}{z}{yy}; expected V=0 and Y={y}"
        return g.read_correctly(o) if y == "0" else g.registers_correctly(o)

    return grade


def offered_speed(baud: int) -> Grader:
    def grade(o: Outcome) -> V:
        verdict, reason = g.read_correctly(o)
        if verdict is not Verdict.PASS:
            return verdict, reason
        readouts = g.readouts_sent(o)
        if readouts and readouts[0].baud != baud:
            return Verdict.FAIL, f"the meter offered {baud} Bd; the readout came at {readouts[0].baud} Bd"
        return Verdict.PASS, f"read at {baud} Bd as offered"

    return grade


def reaction_window(o: Outcome) -> V:
    idents = [e for e in o.data("m2r") if e.data.startswith(b"/")]
    acks = g.option_selects(o)
    if not idents or not acks:
        return Verdict.INCONCLUSIVE, "no identification or no option select"
    end = idents[0].t + len(idents[0].data) * 10 / 300
    gap = acks[0].t - end
    floor = 0.02  # the ME162 accepts an ACK 20 ms after its identification (PROTOCOL.md 4)
    if gap < floor - g.EPS:
        return Verdict.FAIL, f"the ACK started {1000 * gap:.0f} ms after the identification ended (< 20 ms)"
    if gap > 1.5:
        return (
            Verdict.FAIL,
            f"the ACK came {gap:.2f} s after the identification: past t_t, the meter had given up",
        )
    return Verdict.PASS, f"ACK {1000 * gap:.0f} ms after the identification"


def ident_parsed(o: Outcome) -> V:
    verdict, reason = g.read_correctly(o)
    if verdict is not Verdict.PASS or o.declaration.output != "json":
        return verdict, reason
    want = o.meter.profile.identification.raw
    got = o.reported_ident()
    if got != want:
        return Verdict.FAIL, f"reported the identification {got!r}; the meter sent {want!r}"
    return Verdict.PASS, f"identification {want} parsed right"


def two_readings(o: Outcome) -> V:
    for i, run in enumerate(o.runs, 1):
        verdict, reason = g.read_correctly(o, run)
        if verdict is not Verdict.PASS:
            return verdict, f"reading {i}: {reason}"
    return Verdict.PASS, f"{len(o.runs)} readings in a row, all right"


def b0_at_the_end(o: Outcome) -> V:
    bad = g.ran(o)
    if bad:
        return bad
    sent = o.data("r2m")
    if not sent or not sent[-1].data.endswith(b"\x01B0\x03q"):
        return (
            Verdict.FAIL,
            "the reader left programming mode without B0: the ME162 stays deaf for up to a minute",
        )
    if not o.meter_did(Did.BREAK):
        return Verdict.FAIL, f"B0 sent at {sent[-1].baud} Bd, which the meter could not read"
    return Verdict.PASS, "ended programming mode with B0 at the session speed"


def copes_with_nak(o: Outcome) -> V:
    verdict, reason = g.registers_correctly(o)
    if verdict is Verdict.PASS:
        r1 = [e for e in o.data("r2m") if e.data.startswith(b"\x01R1")]
        return Verdict.PASS, f"repeated the command after NAK ({len(r1)} R1 sent)"
    return verdict, reason


def gives_up_with_b0(limit: int) -> Grader:
    def grade(o: Outcome) -> V:
        bad = g.ran(o)
        if bad:
            return bad
        r1 = [e for e in o.data("r2m") if e.data.startswith(b"\x01R1")]
        if len(r1) > limit:
            return Verdict.FAIL, f"{len(r1)} R1 commands: retries are not bounded"
        if o.run.exit_code == 0 and o.declaration.output == "exit-code":
            return Verdict.FAIL, "exit 0 although no register could be read"
        regs = o.reported_registers() or {}
        if any(isinstance(v, dict) and v.get("value") for v in regs.values()):
            return Verdict.FAIL, "reported a value the meter never sent"
        if o.run.exit_code == 0 and not regs:
            return Verdict.FAIL, "exit 0 although no register could be read"
        sent = o.data("r2m")
        if not sent or not sent[-1].data.endswith(b"\x01B0\x03q"):
            return Verdict.FAIL, f"gave up after {len(r1)} R1 but without B0"
        return Verdict.PASS, f"gave up after {len(r1)} R1 and sent B0"

    return grade


def wrong_password(o: Outcome) -> V:
    bad = g.ran(o)
    if bad:
        return bad
    if o.run.exit_code == 0:
        return Verdict.FAIL, "exit 0 although the meter refused the password (it sent B0)"
    return Verdict.PASS, f"reported the refused password (exit {o.run.exit_code})"


def survives_abandoned_session(o: Outcome) -> V:
    verdict, reason = g.read_correctly(o)
    if verdict is Verdict.PASS:
        b0 = any(e.data.startswith(b"\x01B0") for e in o.data("r2m"))
        return Verdict.PASS, "read the meter " + (
            "after ending the old session with B0" if b0 else "after waiting out the old session"
        )
    return verdict, reason + " (the meter was still in a programming session left without B0)"


def replay_grade(name: str) -> Grader:
    def grade(o: Outcome) -> V:
        verdict, reason = g.read_correctly(o)
        mismatches = [e.detail for e in o.meter_did(Did.MISMATCH)]
        if verdict is Verdict.PASS:
            return Verdict.PASS, f"reported the {name} capture's values"
        if mismatches:
            return verdict, f"{reason}; the replay saw: {mismatches[0][:120]}"
        return verdict, reason

    return grade


def replay_registers_grade(o: Outcome) -> V:
    return g.registers_correctly(o)


def data_set(addr: str, *, label: str) -> Grader:
    def grade(o: Outcome) -> V:
        bad = g.ran(o)
        if bad:
            return bad
        if o.run.exit_code != 0:
            return Verdict.FAIL, f"exit {o.run.exit_code}: could not read a readout with {label}"
        if o.declaration.output != "json":
            return Verdict.INCONCLUSIVE, "the reader reports nothing parseable: the value cannot be checked"
        reported = o.reported_readout() or {}
        want = o.expected_readout.get(addr)
        got = reported.get(addr)
        if got != want:
            return Verdict.FAIL, f"{label}: {addr} reported as {got!r}, the meter sent {want!r}"
        return Verdict.PASS, f"{label}: {addr}({want}) kept exactly"

    return grade


# --- the catalogue -----------------------------------------------------------------------------------

READ_REGS = ("1.8.0", "2.8.0")
S = Setup


def catalogue() -> list[Case]:
    cases = [
        # LINE: speeds, timing, the port
        Case(
            "LINE-01",
            "Sign-on at 300 Bd 7E1",
            "The first request goes out at 300 Bd, 7E1, and the meter can read it.",
            "IEC 62056-21 5.2, 6.3.1",
            S(),
            first_request_at_300,
        ),
        Case(
            "LINE-02",
            "Switch after the ACK has left the wire",
            "The reader changes speed only after the last stop bit of its ACK; switching earlier garbles the ACK.",
            "IEC 62056-21 Fig 14; pwitab issues 14, 33; vzlogger PR 111",
            S(),
            g.switch_after_ack,
        ),
        Case(
            "LINE-03",
            "Switch before the meter answers",
            "The reader is at the new speed before the meter's first byte (t_r after the ACK).",
            "IEC 62056-21 6.4.3, Fig 14",
            S(),
            switched_before_answer,
        ),
        Case(
            "LINE-04",
            "ACK at 300 Bd",
            "The option select itself goes out at 300 Bd, never at the new speed.",
            "IEC 62056-21 6.3.3; vzlogger PR 109",
            S(),
            ack_at_300,
        ),
        Case(
            "LINE-05",
            "Raw port",
            "The reader puts the port in raw mode (no canonical mode, no CR/LF translation, no flow control).",
            "PRIOR_ART 3.6, 4 (EXTPROC hides cooked mode)",
            S(),
            raw_port,
        ),
        Case(
            "LINE-06",
            "Readout at 9600 Bd",
            "A full ME162 readout at the offered 9600 Bd is reported exactly.",
            "IEC 62056-21 6.4.3 a); ME162 captures",
            S(),
            offered_speed(9600),
        ),
        Case(
            "LINE-07",
            "Readout at an offered 4800 Bd",
            "A meter offering 4800 Bd (Z=4) is read at 4800 Bd, not at the reader's favourite speed.",
            "IEC 62056-21 6.3.14 item 13c; 6.4.3.2 (switch only to the offered Z)",
            S(ident="/ISK4ME162-0033"),
            offered_speed(4800),
        ),
        Case(
            "LINE-08",
            "20 ms reaction time meter",
            "A meter with a lowercase third letter (20 ms) is read right.",
            "IEC 62056-21 6.3.14 item 12; MT174 captures (ISk)",
            S(profile="mt174"),
            g.read_correctly,
        ),
        Case(
            "LINE-09",
            "Software parity on an 8N1 link",
            "Over a converter that delivers 7E1 as 8N1 (parity in bit 7) the reader adds, checks and strips the parity itself.",
            "pwitab issue 16; LGZ_ZMD_PARITY_1 capture",
            S(transport="tcp-parity"),
            g.read_correctly,
            needs("software_parity", "software parity"),
        ),
        Case(
            "LINE-10",
            "RFC 2217",
            "Over RFC 2217 the reader's speed and format changes reach the line.",
            "RFC 2217; PRIOR_ART 4",
            S(transport="rfc2217"),
            g.read_correctly,
            needs_transport("rfc2217"),
        ),
        Case(
            "LINE-11",
            "Back to 300 Bd for the next sign-on",
            "Two readings in a row: each one starts at 300 Bd again.",
            "IEC 62056-21 6.4.3 (back to the start state)",
            S(runs=2),
            two_readings,
        ),
        Case(
            "LINE-12",
            "Late switch by the meter",
            "The meter's first 3 readout bytes still come at 300 Bd: the reader must not report a half-garbled readout.",
            "IEC 62056-21 Fig 14; PRIOR_ART 2.1",
            S(scenarios=("late-switch",)),
            g.fail_cleanly_or_read,
        ),
        # FRAME: BCC, framing, garbage
        Case(
            "FRAME-01",
            "Corrupted readout BCC",
            "A readout whose BCC is wrong is refused (or read again), never reported.",
            "IEC 62056-21 6.2; PRIOR_ART 1 (readers that skip the BCC)",
            S(scenarios=("bcc-corrupt-readout",)),
            lambda o: g.refused_or_reread(o, "a wrong BCC"),
        ),
        Case(
            "FRAME-02",
            "BCC that is a control byte",
            "A wrong BCC of 0x0A (LF) is caught; a reader that reads 'until LF' misses it.",
            "PROTOCOL.md 3 (BCC may be any value)",
            S(scenarios=("bcc-set-control-byte",)),
            lambda o: g.refused_or_reread(o, "a wrong BCC of 0x0A"),
        ),
        Case(
            "FRAME-03",
            "Flipped bit",
            "A bit flipped in byte 17 of the readout is caught by the BCC.",
            "IEC 62056-21 6.2",
            S(scenarios=("flip-byte-17-of-readout",)),
            lambda o: g.refused_or_reread(o, "a flipped bit"),
        ),
        Case(
            "FRAME-04",
            "Lost byte",
            "A byte lost in the middle of the readout is caught.",
            "PRIOR_ART 2.1",
            S(scenarios=("drop-byte-of-readout",)),
            lambda o: g.refused_or_reread(o, "a lost byte"),
        ),
        Case(
            "FRAME-05",
            "Lost STX",
            "A readout whose STX was lost is not reported as if complete.",
            "pwitab issues 14, 33",
            S(scenarios=("drop-first-byte-after-switch",)),
            lambda o: g.refused_or_reread(o, "a lost STX"),
        ),
        Case(
            "FRAME-06",
            "Truncated readout",
            "A readout cut half way ends in a clean failure within the timeout, not a hang and not half the values.",
            "IEC 62056-21 6.4 (t_a < 1500 ms)",
            S(scenarios=("truncate-readout",)),
            g.fail_cleanly_or_read,
        ),
        Case(
            "FRAME-07",
            "Noise before the identification",
            "0x7F junk before the identification is skipped.",
            "PRIOR_ART 2.7",
            S(scenarios=("noise-before-identification",)),
            g.read_correctly,
        ),
        Case(
            "FRAME-08",
            "Echoing probe",
            "The reader skips the echo of its own request.",
            "PROTOCOL.md 8 item 2; j62056, esphome-iec62056",
            S(scenarios=("echo-request",)),
            g.read_correctly,
        ),
        Case(
            "FRAME-09",
            "Partial blocks in R1 answers",
            "R1 answers in partial blocks (EOT) are ACKed block by block and joined.",
            "IEC 62056-21 6.4.7, Figs 21-23",
            S(scenarios=("partial-blocks-r1",), registers=READ_REGS),
            g.registers_correctly,
            all_of(needs("partial_blocks", "partial blocks"), needs_registers(*READ_REGS)),
        ),
        Case(
            "FRAME-10",
            "Duplicated byte in an R1 answer",
            "An R1 answer with a byte twice fails its BCC: the reader asks again (NAK) and reports the right value.",
            "IEC 62056-21 Annex A",
            S(scenarios=("duplicate-byte-of-reply",), registers=READ_REGS),
            g.registers_correctly,
            needs_registers(*READ_REGS),
        ),
        Case(
            "FRAME-11",
            "Wrong BCC in the second R1 answer",
            "The reader NAKs an answer with a wrong BCC and uses the repeat.",
            "IEC 62056-21 Annex A; PROTOCOL.md 8 item 7",
            S(scenarios=("bcc-corrupt-second-r1",), registers=READ_REGS),
            g.registers_correctly,
            needs_registers(*READ_REGS),
        ),
        Case(
            "FRAME-12",
            "Junk inside the identification",
            "A stray byte inside the identification line does not crash the reader.",
            "EBZ_DD3_3 capture",
            S(scenarios=("insert-junk-in-identification",)),
            g.fail_cleanly_or_read,
        ),
        Case(
            "FRAME-13",
            "Flood before the identification",
            "Fifty junk bytes before the identification: read it or fail cleanly.",
            "PRIOR_ART 2.7",
            S(scenarios=("flood-before-identification",)),
            g.fail_cleanly_or_read,
        ),
        # SESSION: sign-on, identification, option select
        Case(
            "SESSION-01",
            "Identification parsed by the standard",
            "/ISK5ME162-0033 is reported whole (pwitab drops the character after Z).",
            "IEC 62056-21 6.3.2; PROTOCOL.md 2.3",
            S(),
            ident_parsed,
        ),
        Case(
            "SESSION-02",
            "Enhanced identification \\2",
            "A meter offering mode E (\\2) is read in mode C.",
            "IEC 62056-21 6.4.5; aquaticus esphome-iec62056",
            S(ident="/ISK5\\2MT372-3107"),
            ident_parsed,
        ),
        Case(
            "SESSION-03",
            "Manufacturer-specific \\@",
            "An identification with \\@ (EMH, Elster) is parsed and read.",
            "IEC 62056-21 item 24; IDENTS capture",
            S(ident="/ELS5\\@V9.30"),
            ident_parsed,
        ),
        Case(
            "SESSION-04",
            "Readout option V=0 Y=0",
            "For a readout the reader sends ACK 0 Z 0.",
            "IEC 62056-21 6.3.3",
            S(),
            option_for("0"),
        ),
        Case(
            "SESSION-05",
            "Programming option V=0 Y=1",
            "For R1 reads the reader sends ACK 0 Z 1.",
            "IEC 62056-21 6.3.3, 5.6",
            S(registers=READ_REGS),
            option_for("1"),
            needs_registers(*READ_REGS),
        ),
        Case(
            "SESSION-06",
            "ACK inside the reaction window",
            "The ACK comes at least 20 ms after the identification and within t_t (1.5 s).",
            "IEC 62056-21 6.4.3.6; PROTOCOL.md 9.4",
            S(),
            reaction_window,
        ),
        Case(
            "SESSION-07",
            "Addressed request",
            "With the meter's address the reader sends /?28342193! and the meter answers.",
            "IEC 62056-21 6.3.1, item 22",
            S(address="28342193"),
            g.read_correctly,
            needs("address", "device addresses"),
        ),
        Case(
            "SESSION-08",
            "Address with leading zeros",
            "A meter whose address has leading zeros answers a request without them.",
            "IEC 62056-21 item 22 (leading zeros ignored)",
            S(address="0028342193"),
            g.read_correctly,
            needs("address", "device addresses"),
        ),
        Case(
            "SESSION-09",
            "Mode A meter",
            "A mode A meter (ident and readout at 300 Bd, no ACK) is read.",
            "IEC 62056-21 6.4.1",
            S(profile="mode_a"),
            g.read_correctly,
            needs_mode("A"),
        ),
        Case(
            "SESSION-10",
            "Mode B meter",
            "A mode B meter (switch without ACK, /LUGCUH50) is read at 2400 Bd.",
            "IEC 62056-21 6.4.2; UH50 capture",
            S(profile="mode_b"),
            g.read_correctly,
            needs_mode("B"),
        ),
        Case(
            "SESSION-11",
            "Identification 1 s late",
            "The identification comes 1.3 s after the request, inside the 1500 ms limit.",
            "IEC 62056-21 6.4 (t_r <= 1500 ms)",
            S(scenarios=("delay-identification-within-limit",), runs=2),
            two_readings,
        ),
        Case(
            "SESSION-12",
            "A session left without B0",
            "The meter is still in a programming session another reader left without B0: the reader ends it (B0) or waits it out.",
            "PROTOCOL.md 6 (ME162 lock-out); ME162_2 capture",
            S(abandon_session=True),
            survives_abandoned_session,
        ),
        Case(
            "SESSION-13",
            "Two readings in a row",
            "A second reading right after the first works: the first left the meter idle.",
            "PROTOCOL.md 6 (new sign-on after a readout)",
            S(runs=2),
            two_readings,
        ),
        Case(
            "SESSION-14",
            "Billing-period meter",
            "An MT174 readout with history values (*01..*03) is read whole.",
            "MT174 captures; PRIOR_ART 2.3",
            S(profile="mt174"),
            g.read_correctly,
        ),
        # PROG: programming mode
        Case(
            "PROG-01",
            "R1 of the declared registers",
            "R1 reads of 1.8.0 and 2.8.0 report the meter's values.",
            "IEC 62056-21 6.3.7, Table 2; ME162 captures",
            S(registers=READ_REGS),
            g.registers_correctly,
            needs_registers(*READ_REGS),
        ),
        Case(
            "PROG-02",
            "B0 at the end",
            "The reader ends programming mode with B0 at the session speed.",
            "IEC 62056-21 6.3.12; PROTOCOL.md 6 (lock-out)",
            S(registers=READ_REGS),
            b0_at_the_end,
            needs_registers(*READ_REGS),
        ),
        Case(
            "PROG-03",
            "NAK of the second R1",
            "The meter NAKs the second R1: the reader repeats it.",
            "ME162_4 capture; IEC 62056-21 Annex A",
            S(scenarios=("nak-second-r1",), registers=READ_REGS),
            copes_with_nak,
            needs_registers(*READ_REGS),
        ),
        Case(
            "PROG-04",
            "NAK of the first R1 (ME162 quirk)",
            "The first R1 is NAKed, as the ME162 does after an ACKed P0: the reader repeats it.",
            "ME162_2 and ME162_4 captures",
            S(scenarios=("nak-after-p0-ack",), registers=READ_REGS),
            copes_with_nak,
            needs_registers(*READ_REGS),
        ),
        Case(
            "PROG-05",
            "NAK for ever",
            "Every R1 is NAKed: the reader gives up after bounded retries, reports no value and sends B0.",
            "IEC 62056-21 Fig 23; pwitab retries without limit",
            S(scenarios=("nak-every-r1",), registers=("1.8.0",)),
            gives_up_with_b0(12),
            needs_registers("1.8.0"),
        ),
        Case(
            "PROG-06",
            "(ERROR) for an unknown register",
            "R1 of 16.7.0, which the ME162 lacks, is reported as an error, not a value.",
            "ME162_15 (ERROR for 1.7.0, 16.7.0); IEC 62056-21 6.3.11",
            S(registers=("1.8.0", "16.7.0")),
            lambda o: g.registers_correctly(o, errors=("16.7.0",)),
            needs_programming,
        ),
        Case(
            "PROG-07",
            "(ERROR) for a register it knows",
            "The meter answers (ERROR) to R1 of 1.8.0: reported as an error.",
            "IEC 62056-21 6.3.11",
            S(scenarios=("error-r1-1.8.0",), registers=("1.8.0", "2.8.0")),
            lambda o: g.registers_correctly(o, errors=("1.8.0",)),
            needs_registers(*READ_REGS),
        ),
        Case(
            "PROG-08",
            "Password P1",
            "On a meter with a password (MT174) the reader sends P1 and reads the registers.",
            "IEC 62056-21 6.3.7 (P1); pwitab issues 13, 25",
            S(profile="mt174", registers=("1.8.0",), password="00000000"),
            g.registers_correctly,
            needs("password", "passwords"),
        ),
        Case(
            "PROG-09",
            "Wrong password",
            "The meter ends the session (B0) after a wrong P1: the reader says so.",
            "IEC 62056-21 Annex A (invalid password -> break)",
            S(profile="mt174", registers=("1.8.0",), password="12345678"),
            wrong_password,
            needs("password", "passwords"),
        ),
        Case(
            "PROG-10",
            "P0 late",
            "The P0 comes 1.2 s after the ACK: the reader waits for it.",
            "PROTOCOL.md 4 (P0 about 0.39 s; up to 1500 ms)",
            S(scenarios=("delay-p0-after-ack",), registers=READ_REGS),
            g.registers_correctly,
            needs_registers(*READ_REGS),
        ),
        Case(
            "PROG-11",
            "P0 cut short",
            "A P0 cut after 4 bytes ends in a clean failure, not a hang.",
            "IEC 62056-21 Annex A (operand error)",
            S(scenarios=("truncate-p0",), registers=READ_REGS),
            lambda o: g.fail_cleanly_or_read(o) if o.run.exit_code != 0 else g.registers_correctly(o),
            needs_registers(*READ_REGS),
        ),
        Case(
            "PROG-12",
            "R1 never answered",
            "The meter never answers R1: bounded retries, no value, B0.",
            "IEC 62056-21 Annex A NOTE 4",
            S(scenarios=("silent-r1",), registers=("1.8.0",)),
            gives_up_with_b0(12),
            needs_registers("1.8.0"),
        ),
        Case(
            "PROG-13",
            "Time and date registers",
            "R1 of 0.9.1 and 0.9.2 report the meter clock (hh:mm:ss, YY.MM.DD).",
            "ME162_3 capture",
            S(registers=("0.9.1", "0.9.2")),
            g.registers_correctly,
            needs_registers("0.9.1", "0.9.2"),
        ),
        Case(
            "PROG-14",
            "Programming over RFC 2217",
            "R1 reads work over RFC 2217 at the switched speed.",
            "RFC 2217; IEC 62056-21 6.4.3 b)",
            S(registers=READ_REGS, transport="rfc2217"),
            g.registers_correctly,
            all_of(needs_registers(*READ_REGS), needs_transport("rfc2217")),
        ),
        # DATA: values and odd but real formats
        Case(
            "DATA-01",
            "The ME162 readout exactly",
            "All nine ME162 data sets, with units, as the meter sent them.",
            "ME162 captures",
            S(),
            g.read_correctly,
        ),
        Case(
            "DATA-02",
            "Full OBIS codes with billing periods",
            "1-0:1.8.0*01.. history values are kept apart from the current value.",
            "MT174 captures; PRIOR_ART 2.6",
            S(profile="mt174"),
            data_set("1-0:1.8.0*02", label="a billing-period value"),
        ),
        Case(
            "DATA-03",
            "Empty value",
            "An empty value () is reported as empty, not dropped.",
            "MT174 capture (0-0:C.51.4*255())",
            S(profile="odd_formats"),
            data_set("0-0:C.51.4*255", label="an empty value"),
        ),
        Case(
            "DATA-04",
            "Blank-padded value",
            "0.0(          18438636) keeps its padding or its number.",
            "L+G E350 capture",
            S(profile="odd_formats"),
            data_set("0.0", label="a blank-padded value"),
        ),
        Case(
            "DATA-05",
            "Value of blanks only",
            "C.1.1(        ) is kept.",
            "L+G E350 capture",
            S(profile="odd_formats"),
            data_set("C.1.1", label="a value of blanks"),
        ),
        Case(
            "DATA-06",
            "Unit inside the value",
            "1.8.1(024562 kWh) (unit after a space) is kept.",
            "MT171 capture; PRIOR_ART 2.7",
            S(profile="odd_formats"),
            data_set("1.8.1", label="a unit inside the value"),
        ),
        Case(
            "DATA-07",
            "Decimal comma",
            "1.8.2(000007,4*kW) is kept.",
            "Kamstrup (pwitab / piggymeter issue 4)",
            S(profile="odd_formats"),
            data_set("1.8.2", label="a decimal comma"),
        ),
        Case(
            "DATA-08",
            "Several values for one address",
            "1.6.2*14(26.60)(1609051415): both values.",
            "IEC 62056-21 6.5 Fig 27; L+G maximum demand",
            S(profile="odd_formats"),
            data_set("1.6.2*14", label="two values"),
        ),
        Case(
            "DATA-09",
            "Several data sets on one line",
            "0.9.1(..)0.9.2(..) on one line: both data sets.",
            "IEC 62056-21 6.5; Annex C",
            S(profile="odd_formats"),
            data_set("0.9.2", label="a second data set on a line"),
        ),
        Case(
            "DATA-10",
            "Manual reset &F",
            "1.8.0&12 is kept apart from 1.8.0*12.",
            "IEC 62056-61 (&F manual reset)",
            S(profile="odd_formats"),
            data_set("1.8.0&12", label="a manual-reset history value"),
        ),
        Case(
            "DATA-11",
            "Negative and hex values",
            "-000073.69*W and A2 are kept.",
            "EasyMeter Q3D capture",
            S(profile="odd_formats"),
            data_set("1-0:21.7.255*255", label="a negative value"),
        ),
        Case(
            "DATA-12",
            "All odd formats at once",
            "The whole odd-format readout is reported exactly.",
            "Captures of L+G, Iskra, Kamstrup, EasyMeter",
            S(profile="odd_formats"),
            g.read_correctly,
        ),
        # ROBUST: no answer, late answer, lost port
        Case(
            "ROBUST-01",
            "Silent meter",
            "No answer at all: the reader gives up after bounded retries with a non-zero exit, within its timeout.",
            "ME162_2 capture (unanswered sign-ons); PRIOR_ART 2.1",
            S(scenarios=("silent-meter",)),
            lambda o: g.bounded_retries(o) if o.faults() else (Verdict.INCONCLUSIVE, "the fault never fired"),
        ),
        Case(
            "ROBUST-02",
            "Readout 2.5 s late",
            "Beyond the 1500 ms limit: read it or fail cleanly; never hang or report garbage.",
            "IEC 62056-21 Annex A NOTE 4",
            S(scenarios=("delay-readout-beyond-limit",)),
            g.fail_cleanly_or_read,
        ),
        Case(
            "ROBUST-03",
            "Answer at another speed",
            "The meter answers at 4800 Bd after offering 9600 Bd: a clean failure, not garbage values.",
            "PRIOR_ART 3.3; pwitab issue 33",
            S(scenarios=("speed-other-than-offered",)),
            g.fail_cleanly_or_read,
        ),
        Case(
            "ROBUST-04",
            "The meter does not switch",
            "The readout comes at 300 Bd while the reader listens at 9600 Bd.",
            "PROTOCOL.md 9.3; pwitab issue 33",
            S(scenarios=("no-switch",)),
            g.fail_cleanly_or_read,
        ),
        Case(
            "ROBUST-05",
            "Meter reset mid-readout",
            "Half a readout, then the meter restarts: fail cleanly or read again.",
            "IEC 62056-21 Annex A",
            S(scenarios=("reset-mid-readout",)),
            g.fail_cleanly_or_read,
        ),
        Case(
            "ROBUST-06",
            "Probe pulled off",
            "The port goes away during the readout: the reader ends with an error, it does not hang.",
            "PRIOR_ART 2 (USB probes unplugged)",
            S(scenarios=("probe-pulled-off",)),
            g.fail_cleanly_or_read,
        ),
        Case(
            "ROBUST-07",
            "Random faults, seed 1",
            "Seeded random faults (rate 0.3): never hang, never report wrong values.",
            "issue 4 (chaos)",
            S(chaos=(1, 0.3)),
            g.fail_cleanly_or_read,
        ),
        Case(
            "ROBUST-08",
            "Random faults, seed 2",
            "Seeded random faults (rate 0.3): never hang, never report wrong values.",
            "issue 4 (chaos)",
            S(chaos=(2, 0.3)),
            g.fail_cleanly_or_read,
        ),
        Case(
            "ROBUST-09",
            "Random faults, seed 3",
            "Seeded random faults (rate 0.5): never hang, never report wrong values.",
            "issue 4 (chaos)",
            S(chaos=(3, 0.5)),
            g.fail_cleanly_or_read,
        ),
        Case(
            "ROBUST-10",
            "Every third readout spoiled",
            "Three readings in a row, the third one with a wrong BCC: that one must not be reported.",
            "PRIOR_ART 2 (intermittent faults)",
            S(scenarios=("corrupt-every-third-session",), runs=3),
            lambda o: (
                two_readings(o)
                if not o.faults()
                else g.refused_or_reread(o, "a wrong BCC in the third session")
            ),
        ),
        Case(
            "ROBUST-11",
            "Light leaking into the probe",
            "After 10 s every message starts with junk: readings still work or fail cleanly.",
            "PRIOR_ART 2.7",
            S(scenarios=("noise-after-t10",), runs=2),
            g.fail_cleanly_or_read,
        ),
        Case(
            "ROBUST-12",
            "A late R1 answer after the reader's repeat",
            "The meter answers a repeated R1 twice; the late copy must not be reported as the next register.",
            "ME162 R1 answers carry no address; reference-reader soak (issue 14)",
            S(scenarios=("late-r1-after-repeat",), registers=READ_REGS),
            g.registers_correctly,
            needs_registers(*READ_REGS),
        ),
        Case(
            "ROBUST-13",
            "A meter that never stops sending",
            "A meter pushes at 9600 Bd every second while the reader signs on at 300 Bd: the reader ends (cleanly) "
            "within its timeout; it never waits for ever.",
            "Reference-reader soak (issue 14): each byte extended the deadline",
            S(profile="ebz_dd3"),
            g.fail_cleanly_or_read,
        ),
        Case(
            "ROBUST-14",
            "SOH where an R1 answer's STX belongs",
            "A spoiled first byte of an R1 answer (its BCC still right): repeat and read the register, never crash.",
            "Reference-reader soak (issue 14)",
            S(scenarios=("soh-first-byte-r1",), registers=READ_REGS),
            g.registers_correctly,
            needs_programming,
        ),
        Case(
            "ROBUST-15",
            "A spoiled mode D push",
            "A byte at the start of a push is spoiled: fail cleanly or read a good push.",
            "Reference-reader soak (issue 14)",
            S(profile="ebz_dd3", scenarios=("corrupt-push",)),
            g.fail_cleanly_or_read,
            needs_mode("D"),
        ),
        Case(
            "ROBUST-16",
            "The 300 Bd fallback readout after a lost identification",
            "The identification is cut and the meter sends its readout at 300 Bd unasked: the reader waits for "
            "the line to go quiet and reads again.",
            "PROTOCOL.md 6 (fallback readout); reference-reader soak (issue 14)",
            S(scenarios=("cut-identification",)),
            g.read_correctly,
        ),
    ]
    cases += replay_cases()
    return cases


def replay_cases() -> list[Case]:
    out = []
    n = 0
    for path in sorted((FIXTURES / "captures").glob("*.capture.jsonl")):
        name = path.name.removesuffix(".capture.jsonl")
        expected = json.loads(path.with_name(f"{name}.expected.json").read_text())
        if not expected.get("replayable"):
            continue
        fixed = "MT174" in name
        n += 1
        applies: Applies = (
            (lambda d: None if d.fixed_speed else "the reader does not claim a fixed 9600 Bd interface")
            if fixed
            else (lambda d: None)
        )
        out.append(
            Case(
                f"REPLAY-{n:02d}",
                f"Real session {name}",
                f"Read the replay of the real {name} capture and report its values.",
                f"fixtures/captures/{name}.capture.jsonl ({expected.get('identification')})",
                S(replay=name),
                replay_grade(name),
                applies,
            )
        )
        regs = {r: v for r, v in expected.get("registers", {}).items() if r in ("1.8.0", "2.8.0")}
        if regs:
            n += 1
            out.append(
                Case(
                    f"REPLAY-{n:02d}",
                    f"Real session {name}, R1 reads",
                    f"Read 1.8.0 and 2.8.0 by R1 from the replay of {name}.",
                    f"fixtures/captures/{name}.capture.jsonl",
                    S(replay=name, registers=tuple(regs)),
                    replay_registers_grade,
                    needs_registers(*regs),
                )
            )
    return out
