"""SESSION: sign-on, the identification, the option select and the sessions around them."""

from __future__ import annotations

from me162.conformance.cases import READ_REGS, Case
from me162.conformance.suite import Setup

CASES = [
    Case(
        "SESSION-01",
        "Identification parsed by the standard",
        "/ISK5ME162-0033 is parsed field by field (pwitab drops the character after Z).",
        "IEC 62056-21 6.3.2; PROTOCOL.md 2.3",
        grade="ident_parsed",
    ),
    Case(
        "SESSION-02",
        "Enhanced identification \\2",
        "A meter offering mode E (\\2) is read in mode C and its identification parsed with the \\2.",
        "IEC 62056-21 6.4.5; aquaticus esphome-iec62056",
        Setup(ident="/ISK5\\2MT372-3107"),
        grade="ident_parsed",
    ),
    Case(
        "SESSION-03",
        "Manufacturer-specific \\@",
        "An identification with \\@ (EMH, Elster) is parsed and read.",
        "IEC 62056-21 item 24; IDENTS capture",
        Setup(ident="/ELS5\\@V9.30"),
        grade="ident_parsed",
    ),
    Case(
        "SESSION-04",
        "Readout option V=0 Y=0",
        "For a readout the reader sends ACK 0 Z 0.",
        "IEC 62056-21 6.3.3",
        grade="option_for",
        args={"y": "0"},
    ),
    Case(
        "SESSION-05",
        "Programming option V=0 Y=1",
        "For R1 reads the reader sends ACK 0 Z 1.",
        "IEC 62056-21 6.3.3, 5.6",
        Setup(registers=READ_REGS),
        grade="option_for",
        args={"y": "1"},
        needs=(f"registers:{','.join(READ_REGS)}",),
    ),
    Case(
        "SESSION-06",
        "ACK inside the reaction window",
        "The ACK comes no sooner than the meter's minimum reaction time after the identification (200 ms for "
        "/ISK5; 20 ms only for a lowercase third letter) and within t_t (1.5 s).",
        "IEC 62056-21 6.3.14 item 12, 6.4.3.6; PROTOCOL.md 9.4",
        grade="reaction_window",
    ),
    Case(
        "SESSION-07",
        "Addressed request",
        "With the meter's address the reader sends /?28342193! and the meter answers.",
        "IEC 62056-21 6.3.1, item 22",
        Setup(address="28342193"),
        grade="addressed_request",
        needs=("address",),
    ),
    Case(
        "SESSION-08",
        "Address with leading zeros",
        "A meter whose address has leading zeros answers a request without them.",
        "IEC 62056-21 item 22 (leading zeros ignored)",
        Setup(address="0028342193"),
        grade="addressed_request",
        needs=("address",),
    ),
    Case(
        "SESSION-09",
        "Mode A meter",
        "A mode A meter (ident and readout at 300 Bd, no ACK) is read.",
        "IEC 62056-21 6.4.1",
        Setup(profile="mode_a"),
        needs=("mode:A",),
    ),
    Case(
        "SESSION-10",
        "Mode B meter",
        "A mode B meter (switch without ACK, /LUGCUH50) is read at 2400 Bd.",
        "IEC 62056-21 6.4.2; UH50 capture",
        Setup(profile="mode_b"),
        needs=("mode:B",),
    ),
    Case(
        "SESSION-11",
        "Identification 1 s late",
        "The identification comes 1.3 s after the request, inside the 1500 ms limit.",
        "IEC 62056-21 6.4 (t_r <= 1500 ms)",
        Setup(scenarios=("delay-identification-within-limit",), runs=2),
        grade="two_readings",
    ),
    Case(
        "SESSION-12",
        "A session left without B0",
        "The meter is still in a programming session another reader left without B0: the reader ends it (B0) or "
        "waits it out.",
        "PROTOCOL.md 6 (ME162 lock-out); ME162_2 capture",
        Setup(abandon_session=True),
        grade="survives_abandoned_session",
    ),
    Case(
        "SESSION-13",
        "Two readings in a row",
        "A second reading right after the first works: the first left the meter idle.",
        "PROTOCOL.md 6 (new sign-on after a readout)",
        Setup(runs=2),
        grade="two_readings",
    ),
    Case(
        "SESSION-14",
        "Billing-period meter",
        "An MT174 readout with history values (*01..*03) is read whole.",
        "MT174 captures; PRIOR_ART 2.3",
        Setup(profile="mt174"),
    ),
]
