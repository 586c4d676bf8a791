"""FRAME: the BCC, framing and garbage: spoiled readouts refused, noise and echoes skipped,
partial blocks joined, a bad R1 answer asked for again with NAK."""

from __future__ import annotations

from me162.conformance.cases import READ_REGS, Case
from me162.conformance.suite import Setup

REGS = f"registers:{','.join(READ_REGS)}"

CASES = [
    Case(
        "FRAME-01",
        "Corrupted readout BCC",
        "A readout whose BCC is wrong is refused (or read again), never reported.",
        "IEC 62056-21 6.2; PRIOR_ART 1 (readers that skip the BCC)",
        Setup(scenarios=("bcc-corrupt-readout",)),
        grade="refused_or_reread",
        args={"what": "a wrong BCC"},
    ),
    Case(
        "FRAME-02",
        "BCC that is a control byte",
        "A wrong BCC of 0x0A (LF) is caught; a reader that reads 'until LF' misses it.",
        "PROTOCOL.md 3 (BCC may be any value)",
        Setup(scenarios=("bcc-set-control-byte",)),
        grade="refused_or_reread",
        args={"what": "a wrong BCC of 0x0A"},
    ),
    Case(
        "FRAME-03",
        "Flipped bit",
        "A bit flipped in byte 17 of the readout is caught by the BCC.",
        "IEC 62056-21 6.2",
        Setup(scenarios=("flip-byte-17-of-readout",)),
        grade="refused_or_reread",
        args={"what": "a flipped bit"},
    ),
    Case(
        "FRAME-04",
        "Lost byte",
        "A byte lost in the middle of the readout is caught.",
        "PRIOR_ART 2.1",
        Setup(scenarios=("drop-byte-of-readout",)),
        grade="refused_or_reread",
        args={"what": "a lost byte"},
    ),
    Case(
        "FRAME-05",
        "Lost STX",
        "A readout whose STX was lost is not reported as if complete.",
        "pwitab issues 14, 33",
        Setup(scenarios=("drop-first-byte-after-switch",)),
        grade="refused_or_reread",
        args={"what": "a lost STX"},
    ),
    Case(
        "FRAME-06",
        "Truncated readout",
        "A readout cut half way ends in a clean failure within the timeout, not a hang and not half the values.",
        "IEC 62056-21 6.4 (t_a < 1500 ms)",
        Setup(scenarios=("truncate-readout",)),
        grade="fail_cleanly_or_read",
    ),
    Case(
        "FRAME-07",
        "Noise before the identification",
        "0x7F junk before the identification is skipped.",
        "PRIOR_ART 2.7",
        Setup(scenarios=("noise-before-identification",)),
    ),
    Case(
        "FRAME-08",
        "Echoing probe",
        "The reader skips the echo of its own request.",
        "PROTOCOL.md 8 item 2; j62056, esphome-iec62056",
        Setup(scenarios=("echo-request",)),
    ),
    Case(
        "FRAME-09",
        "Partial blocks in R1 answers",
        "R1 answers in partial blocks (EOT) are ACKed block by block and joined.",
        "IEC 62056-21 6.4.7, Figs 21-23",
        Setup(scenarios=("partial-blocks-r1",), registers=READ_REGS),
        grade="registers_correctly",
        needs=("partial_blocks", REGS),
    ),
    Case(
        "FRAME-10",
        "Duplicated byte in an R1 answer",
        "An R1 answer with a byte twice fails its BCC: the reader asks again (NAK) and reports the right value.",
        "IEC 62056-21 Annex A",
        Setup(scenarios=("duplicate-byte-of-reply",), registers=READ_REGS),
        grade="nak_for_a_bad_bcc",
        needs=(REGS,),
    ),
    Case(
        "FRAME-11",
        "Wrong BCC in the second R1 answer",
        "The reader NAKs an answer with a wrong BCC and uses the repeat.",
        "IEC 62056-21 Annex A; PROTOCOL.md 8 item 7",
        Setup(scenarios=("bcc-corrupt-second-r1",), registers=READ_REGS),
        grade="nak_for_a_bad_bcc",
        needs=(REGS,),
    ),
    Case(
        "FRAME-12",
        "Junk inside the identification",
        "A stray byte inside the identification line does not crash the reader.",
        "EBZ_DD3_3 capture",
        Setup(scenarios=("insert-junk-in-identification",)),
        grade="fail_cleanly_or_read",
    ),
    Case(
        "FRAME-13",
        "Flood before the identification",
        "Fifty junk bytes before the identification: read it or fail cleanly.",
        "PRIOR_ART 2.7",
        Setup(scenarios=("flood-before-identification",)),
        grade="fail_cleanly_or_read",
    ),
]
