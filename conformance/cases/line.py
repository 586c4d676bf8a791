"""LINE: speeds, timing and the port: 300 Bd 7E1 sign-on, the switch after the ACK, raw mode,
the offered speed and no other, software parity, RFC 2217."""

from __future__ import annotations

from me162.conformance.cases import Case
from me162.conformance.suite import Setup

CASES = [
    Case(
        "LINE-01",
        "Sign-on at 300 Bd 7E1",
        "The first request goes out at 300 Bd, 7E1, and the meter can read it.",
        "IEC 62056-21 5.2, 6.3.1",
        grade="sign_on_at_300",
    ),
    Case(
        "LINE-02",
        "Switch after the ACK has left the wire",
        "The reader changes speed only after the last stop bit of its ACK; switching earlier garbles the ACK.",
        "IEC 62056-21 Fig 14; pwitab issues 14, 33; vzlogger PR 111",
        grade="switch_after_ack",
    ),
    Case(
        "LINE-03",
        "Switch before the meter answers",
        "The reader is at the new speed before the meter's first byte (t_r after the ACK).",
        "IEC 62056-21 6.4.3, Fig 14",
        grade="switched_before_answer",
    ),
    Case(
        "LINE-04",
        "ACK at 300 Bd",
        "The option select itself goes out at 300 Bd, never at the new speed.",
        "IEC 62056-21 6.3.3; vzlogger PR 109",
        grade="ack_at_300",
    ),
    Case(
        "LINE-05",
        "Raw port",
        "The reader puts the port in raw mode (no canonical mode, no CR/LF translation, no flow control).",
        "PRIOR_ART 3.6, 4 (EXTPROC hides cooked mode)",
        grade="raw_port",
    ),
    Case(
        "LINE-06",
        "Readout at 9600 Bd",
        "A full ME162 readout at the offered 9600 Bd is reported exactly.",
        "IEC 62056-21 6.4.3 a); ME162 captures",
        grade="offered_speed",
        args={"baud": 9600},
    ),
    Case(
        "LINE-07",
        "Readout at an offered 4800 Bd",
        "A meter offering 4800 Bd (Z=4) is read at 4800 Bd, not at the reader's favourite speed.",
        "IEC 62056-21 6.3.14 item 13c; 6.4.3.2 (switch only to the offered Z)",
        Setup(ident="/ISK4ME162-0033"),
        grade="offered_speed",
        args={"baud": 4800},
    ),
    Case(
        "LINE-08",
        "20 ms reaction time meter",
        "A meter with a lowercase third letter (20 ms) is read right.",
        "IEC 62056-21 6.3.14 item 12; MT174 captures (ISk)",
        Setup(profile="mt174"),
    ),
    Case(
        "LINE-09",
        "Software parity on an 8N1 link",
        "Over a converter that delivers 7E1 as 8N1 (parity in bit 7) the reader adds, checks and strips the parity itself.",
        "pwitab issue 16; LGZ_ZMD_PARITY_1 capture",
        Setup(transport="tcp-parity"),
        needs=("software_parity",),
    ),
    Case(
        "LINE-10",
        "RFC 2217",
        "Over RFC 2217 the reader's speed and format changes reach the line.",
        "RFC 2217; PRIOR_ART 4",
        Setup(transport="rfc2217"),
        needs=("transport:rfc2217",),
    ),
    Case(
        "LINE-11",
        "Back to 300 Bd for the next sign-on",
        "Two readings in a row: each one starts at 300 Bd again.",
        "IEC 62056-21 6.4.3 (back to the start state)",
        Setup(runs=2),
        grade="two_readings",
    ),
    Case(
        "LINE-12",
        "Late switch by the meter",
        "The meter's first 3 readout bytes still come at 300 Bd: the reader must not report a half-garbled readout.",
        "IEC 62056-21 Fig 14; PRIOR_ART 2.1",
        Setup(scenarios=("late-switch",)),
        grade="fail_cleanly_or_read",
    ),
    Case(
        "LINE-13",
        "A meter offering more than the reader claims",
        "A meter offering 19200 Bd (Z=6) is read at 19200 Bd by a reader that claims it, and at 300 Bd (Z=0) by one "
        "whose max_baud is lower: never at a speed the meter did not offer.",
        "IEC 62056-21 6.3.3, 6.4.3.2 (Z is the offered speed or 0); the declaration's max_baud",
        Setup(ident="/ISK6ME162-0033"),
        grade="within_max_baud",
        args={"offered": 19200},
    ),
    Case(
        "LINE-14",
        "A wrong parity bit",
        "Over an 8N1 link one character of the readout arrives with a wrong parity bit and its BCC still right: "
        "the reader that checks parity in software refuses the readout (or reads again).",
        "IEC 62056-21 5.3 (7E1); pwitab issue 16",
        Setup(transport="tcp-parity", scenarios=("parity-error-in-readout",)),
        grade="parity_refused",
        needs=("software_parity",),
    ),
]
