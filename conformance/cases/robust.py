"""ROBUST: silence, late and wrong answers, lost ports, random faults: the reader reads right
or fails cleanly within its timeout; it never hangs, crashes or reports a wrong value."""

from __future__ import annotations

from me162.conformance.cases import READ_REGS, Case
from me162.conformance.suite import Setup

CASES = [
    Case(
        "ROBUST-01",
        "Silent meter",
        "No answer at all: the reader gives up after bounded retries with a non-zero exit, within its timeout.",
        "ME162_2 capture (unanswered sign-ons); PRIOR_ART 2.1",
        Setup(scenarios=("silent-meter",)),
        grade="once_fired",
        args={"then": "bounded_retries"},
    ),
    Case(
        "ROBUST-02",
        "Readout 2.5 s late",
        "Beyond the 1500 ms limit: read it or fail cleanly; never hang or report garbage.",
        "IEC 62056-21 Annex A NOTE 4",
        Setup(scenarios=("delay-readout-beyond-limit",)),
        grade="fail_cleanly_or_read",
    ),
    Case(
        "ROBUST-03",
        "Answer at another speed",
        "The meter answers at 4800 Bd after offering 9600 Bd: a clean failure, not garbage values.",
        "PRIOR_ART 3.3; pwitab issue 33",
        Setup(scenarios=("speed-other-than-offered",)),
        grade="fail_cleanly_or_read",
    ),
    Case(
        "ROBUST-04",
        "The meter does not switch",
        "The readout comes at 300 Bd while the reader listens at 9600 Bd.",
        "PROTOCOL.md 9.3; pwitab issue 33",
        Setup(scenarios=("no-switch",)),
        grade="fail_cleanly_or_read",
    ),
    Case(
        "ROBUST-05",
        "Meter reset mid-readout",
        "Half a readout, then the meter restarts: fail cleanly or read again.",
        "IEC 62056-21 Annex A",
        Setup(scenarios=("reset-mid-readout",)),
        grade="fail_cleanly_or_read",
    ),
    Case(
        "ROBUST-06",
        "Probe pulled off",
        "The port goes away during the readout: the reader ends with an error, it does not hang.",
        "PRIOR_ART 2 (USB probes unplugged)",
        Setup(scenarios=("probe-pulled-off",)),
        grade="fail_cleanly_or_read",
    ),
    Case(
        "ROBUST-07",
        "Random faults, seed 4",
        "Three readings under seeded random faults (rate 0.3): each reads right or fails cleanly; never a hang "
        "or a wrong value.",
        "issue 4 (chaos); the seed makes faults hit three readouts",
        Setup(chaos=(4, 0.3), runs=3),
        grade="every_run_clean",
    ),
    Case(
        "ROBUST-08",
        "Random faults, seed 10",
        "Three readings under seeded random faults (rate 0.3): each reads right or fails cleanly; never a hang "
        "or a wrong value.",
        "issue 4 (chaos); the seed drops a byte of one readout and silences another",
        Setup(chaos=(10, 0.3), runs=3),
        grade="every_run_clean",
    ),
    Case(
        "ROBUST-09",
        "Random faults, seed 8",
        "Three readings under seeded random faults (rate 0.5): each reads right or fails cleanly; never a hang "
        "or a wrong value.",
        "issue 4 (chaos); the seed fires nine faults, one reading fails",
        Setup(chaos=(8, 0.5), runs=3),
        grade="every_run_clean",
    ),
    Case(
        "ROBUST-10",
        "Every third readout spoiled",
        "Three readings in a row, the third one with a wrong BCC: that one must not be reported.",
        "PRIOR_ART 2 (intermittent faults)",
        Setup(scenarios=("corrupt-every-third-session",), runs=3),
        grade="every_third_refused",
    ),
    Case(
        "ROBUST-11",
        "Light leaking into the probe",
        "After 10 s every message starts with junk: readings still work or fail cleanly.",
        "PRIOR_ART 2.7",
        Setup(scenarios=("noise-after-t10",), runs=2),
        grade="fail_cleanly_or_read",
    ),
    Case(
        "ROBUST-12",
        "A late R1 answer after the reader's repeat",
        "The meter answers a repeated R1 twice; the late copy must not be reported as the next register.",
        "ME162 R1 answers carry no address; reference-reader soak (issue 14)",
        Setup(scenarios=("late-r1-after-repeat",), registers=READ_REGS),
        grade="registers_correctly",
        needs=(f"registers:{','.join(READ_REGS)}",),
    ),
    Case(
        "ROBUST-13",
        "A meter that never stops sending",
        "A meter pushes at 9600 Bd every second while the reader signs on at 300 Bd: the reader ends (cleanly) "
        "within its timeout; it never waits for ever.",
        "Reference-reader soak (issue 14): each byte extended the deadline",
        Setup(profile="ebz_dd3"),
        grade="fail_cleanly_or_read",
    ),
    Case(
        "ROBUST-14",
        "SOH where an R1 answer's STX belongs",
        "A spoiled first byte of an R1 answer (its BCC still right): repeat and read the register, never crash.",
        "Reference-reader soak (issue 14)",
        Setup(scenarios=("soh-first-byte-r1",), registers=READ_REGS),
        grade="registers_correctly",
        needs=("programming",),
    ),
    Case(
        "ROBUST-15",
        "A spoiled mode D push",
        "A byte at the start of a push is spoiled: fail cleanly or read a good push.",
        "Reference-reader soak (issue 14)",
        Setup(profile="ebz_dd3", scenarios=("corrupt-push",)),
        grade="fail_cleanly_or_read",
        needs=("mode:D",),
    ),
    Case(
        "ROBUST-16",
        "The 300 Bd fallback readout after a lost identification",
        "The identification is cut and the meter sends its readout at 300 Bd unasked: the reader waits for "
        "the line to go quiet and reads again.",
        "PROTOCOL.md 6 (fallback readout); reference-reader soak (issue 14)",
        Setup(scenarios=("cut-identification",)),
    ),
    Case(
        "ROBUST-17",
        "A meter that never stops sending, heard for a minute at most",
        "A meter pushes at 9600 Bd every second while the reader signs on at 300 Bd: the reader acts again "
        "or lets go of the port within 60 s; one that lets every byte extend its deadline is held until the "
        "meter happens to pause.",
        "Reference-reader soak (issue 14): each byte extended the deadline",
        Setup(profile="ebz_dd3"),
        grade="let_go_of_endless_talk",
    ),
]
