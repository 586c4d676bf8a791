"""The conformance catalogue, as data: one module per group, each case a row.

A row names its setup (which meter, which faults, how the reader is asked to read), its
grader in :data:`me162.conformance.grading.GRADERS` with the grader's keyword arguments, and
the claims a reader must make for the case to apply (``needs``).  Ids never change meaning:
``conformance/case-ids.json`` keeps the fingerprint of every id ever published, and a test
fails if an id comes to mean something else.

Groups: LINE (speeds, timing, the port), FRAME (BCC, framing, garbage), SESSION (sign-on,
identification, option select), PROG (programming mode), DATA (values and odd formats),
ROBUST (faults, silence, lost ports), REPLAY (real captures, named after them).
"""

from __future__ import annotations

import hashlib
import json
from collections.abc import Mapping
from dataclasses import asdict, dataclass, field
from pathlib import Path
from types import MappingProxyType
from typing import TYPE_CHECKING, Any

from me162.conformance.groups import GROUPS as GROUPS  # re-exported
from me162.conformance.suite import Outcome, Setup, Verdict

if TYPE_CHECKING:
    from me162.conformance.declaration import Declaration

#: ids of the first release's numbered REPLAY cases, renamed after their captures (a new capture
#: renumbered every later one); asking for an old id says what it is called now
RENAMED = {
    "REPLAY-01": "REPLAY-ME162_1", "REPLAY-02": "REPLAY-ME162_1-R1", "REPLAY-03": "REPLAY-ME162_2",
    "REPLAY-04": "REPLAY-ME162_2-R1", "REPLAY-05": "REPLAY-ME162_3", "REPLAY-06": "REPLAY-ME162_3-R1",
    "REPLAY-07": "REPLAY-ME162_4", "REPLAY-08": "REPLAY-ME162_4-R1", "REPLAY-09": "REPLAY-ME162_5",
    "REPLAY-10": "REPLAY-ME162_6", "REPLAY-11": "REPLAY-ME162_7", "REPLAY-12": "REPLAY-ME162_8",
    "REPLAY-13": "REPLAY-ME162_9", "REPLAY-14": "REPLAY-MT174_2",
}  # fmt: skip
READ_REGS = ("1.8.0", "2.8.0")
NEEDS = ("mode:A|B|C|D", "programming", "registers:R,R...", "partial_blocks", "password", "address",
         "software_parity", "transport:T", "fixed_speed")  # fmt: skip


@dataclass(frozen=True)
class Case:
    """One conformance case: what is set up, how it is judged, and what it needs of a reader."""

    id: str
    title: str
    purpose: str
    reference: str
    setup: Setup = field(default_factory=Setup)
    grade: str = "read_correctly"  #: a grader's name in grading.GRADERS
    args: Mapping[str, Any] = field(default_factory=dict)  #: the grader's keyword arguments
    needs: tuple[str, ...] = ()  #: claims the reader must make (see :func:`why_not`)

    def __post_init__(self) -> None:
        object.__setattr__(self, "args", MappingProxyType(dict(self.args)))

    @property
    def group(self) -> str:
        return self.id.split("-")[0]

    def applies(self, decl: Declaration) -> str | None:
        """Why the case does not apply to this reader, or None when it does."""
        for need in self.needs:
            why = why_not(decl, need)
            if why:
                return why
        return None

    def judge(self, outcome: Outcome) -> tuple[Verdict, str]:
        from me162.conformance.grading import GRADERS

        return GRADERS[self.grade](outcome, **self.args)

    def fingerprint(self) -> str:
        """What the id means: the setup, the grader and its arguments, the needs (not the
        wording of the title, purpose or reference, which may be improved)."""
        meaning = {
            "setup": asdict(self.setup),
            "grade": self.grade,
            "args": {k: list(v) if isinstance(v, tuple) else v for k, v in sorted(self.args.items())},
            "needs": list(self.needs),
        }
        text = json.dumps(meaning, sort_keys=True, default=list)
        return hashlib.sha256(text.encode()).hexdigest()[:16]


def why_not(decl: Declaration, need: str) -> str | None:
    """Why the declaration does not meet one need, or None."""
    kind, _, value = need.partition(":")
    if kind == "mode":
        return None if value in decl.modes else f"the reader does not claim mode {value}"
    if kind == "transport":
        return None if value in decl.transports else f"the reader does not claim the {value} transport"
    if kind == "programming":
        return None if decl.programming else "the reader does not claim programming mode"
    if kind == "registers":
        if not decl.programming:
            return "the reader does not claim programming mode"
        missing = [r for r in value.split(",") if r not in decl.registers]
        return f"the reader does not claim R1 of {', '.join(missing)}" if missing else None
    if kind in ("partial_blocks", "password", "address", "software_parity", "fixed_speed"):
        what = kind.replace("_", " ")
        return None if getattr(decl, kind) else f"the reader does not claim {what}"
    raise ValueError(f"unknown need {need!r}")


def catalogue() -> list[Case]:
    """Every case, in group order."""
    from me162.conformance.cases import data, frame, line, prog, replay, robust, session

    return [
        *line.CASES,
        *frame.CASES,
        *session.CASES,
        *prog.CASES,
        *data.CASES,
        *robust.CASES,
        *replay.cases(),
    ]


# --- ids that never change meaning ---------------------------------------------------------------

REGISTRY = Path(__file__).resolve().parent.parent / "case-ids.json"


def registry() -> dict[str, str]:
    """Every id ever published, with the fingerprint of what it means."""
    return dict(json.loads(REGISTRY.read_text(encoding="utf-8"))["ids"])


def registry_problems(cases: list[Case]) -> list[str]:
    """Ids whose meaning changed, published ids that are gone, and new ids not yet published."""
    published = registry()
    current = {c.id: c.fingerprint() for c in cases}
    problems = [
        f"{i} changed meaning (fingerprint {published[i]} -> {fp}): give the new meaning a new id"
        for i, fp in current.items()
        if i in published and published[i] != fp
    ]
    problems += [
        f"{i} was published and is gone: keep it, its meaning may not be given away"
        for i in published
        if i not in current
    ]
    problems += [f"{i} is new: publish it (python tools/gen_docs.py)" for i in current if i not in published]
    return problems


def publish(cases: list[Case]) -> None:
    """Add new ids to the registry (never changing a published one)."""
    published = registry() if REGISTRY.exists() else {}
    for c in cases:
        published.setdefault(c.id, c.fingerprint())
    doc = {
        "about": "Every conformance case id ever published, with the fingerprint of its meaning (setup, grader, "
        "arguments, needs). An id never changes meaning: a test fails if one does.",
        "ids": dict(sorted(published.items(), key=lambda kv: (GROUPS.index(kv[0].split("-")[0]), kv[0]))),
    }
    REGISTRY.write_text(json.dumps(doc, indent=1) + "\n", encoding="utf-8")


def markdown_table(cases: list[Case]) -> str:
    """The case table of docs/conformance.md."""

    def cell(text: str) -> str:
        return text.replace("|", "/").replace("\n", " ")

    rows = ["| case | title | purpose | judged by | needs | reference |", "|---|---|---|---|---|---|"]
    for c in cases:
        needs = ", ".join(c.needs) or "-"
        rows.append(
            f"| {c.id} | {cell(c.title)} | {cell(c.purpose)} | `{c.grade}` | {cell(needs)} | {cell(c.reference)} |"
        )
    return "\n".join(rows)
