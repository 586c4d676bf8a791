"""REPLAY: the replays of real captures (fixtures/captures), each case named after its capture
so that adding a capture never renames another's case: ``REPLAY-ME162_1`` reads the readout,
``REPLAY-ME162_1-R1`` reads 1.8.0 and 2.8.0 by R1 where the capture has them."""

from __future__ import annotations

import json

from me162.conformance.cases import Case
from me162.conformance.suite import Setup
from me162.fixtures import captures


def cases() -> list[Case]:
    out = []
    for path in captures():
        name = path.name.removesuffix(".capture.jsonl")
        expected = json.loads(path.with_name(f"{name}.expected.json").read_text())
        if not expected.get("replayable"):
            continue
        fixed = ("fixed_speed",) if "MT174" in name else ()
        out.append(
            Case(
                f"REPLAY-{name}",
                f"Real session {name}",
                f"Read the replay of the real {name} capture and report its values.",
                f"fixtures/captures/{name}.capture.jsonl ({expected.get('identification')})",
                Setup(replay=name),
                grade="replay",
                args={"name": name},
                needs=fixed,
            )
        )
        regs = tuple(r for r in expected.get("registers", {}) if r in ("1.8.0", "2.8.0"))
        if regs:
            out.append(
                Case(
                    f"REPLAY-{name}-R1",
                    f"Real session {name}, R1 reads",
                    f"Read {' and '.join(regs)} by R1 from the replay of {name}.",
                    f"fixtures/captures/{name}.capture.jsonl",
                    Setup(replay=name, registers=regs),
                    grade="registers_correctly",
                    needs=(f"registers:{','.join(regs)}",),
                )
            )
    return out
