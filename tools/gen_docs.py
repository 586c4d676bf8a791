"""Maintainer tool: regenerate the case table in docs/conformance.md and the scenario table in
docs/scenarios.md from the catalogue and the fixtures, the scenario schema from the fault
action registry (protocol/schemas/scenario.schema.json), and publish new case ids in
conformance/case-ids.json (tests check all are current; a published id is never changed).

    python tools/gen_docs.py
"""

from __future__ import annotations

import json
import re
from pathlib import Path

from me162 import fixtures
from me162.conformance.cases import catalogue, markdown_table, publish, registry_problems
from me162.simulator.faults import load_scenario, scenario_schema

ROOT = Path(__file__).resolve().parent.parent
START, END = "<!-- cases:start -->", "<!-- cases:end -->"
SSTART, SEND = "<!-- scenarios:start -->", "<!-- scenarios:end -->"


def replace_between(path: Path, start: str, end: str, body: str) -> None:
    text = path.read_text()
    new = re.sub(
        re.escape(start) + ".*?" + re.escape(end), lambda _: f"{start}\n{body}\n{end}", text, flags=re.S
    )
    path.write_text(new)


def scenario_table() -> str:
    def cell(text: str) -> str:
        return text.replace("|", "/").replace("\n", " ")

    rows = ["| scenario | purpose | faults | reference |", "|---|---|---|---|"]
    for name, path in fixtures.scenarios().items():
        s = load_scenario(path)
        rows.append(
            f"| `{name}` | {cell(s.purpose)} | {cell('; '.join(f.describe() for f in s.faults))} | {cell(s.reference)} |"
        )
    return "\n".join(rows)


def main() -> None:
    cases = catalogue()
    changed = [p for p in registry_problems(cases) if "changed meaning" in p or "is gone" in p]
    if changed:
        raise SystemExit("gen_docs: " + "; ".join(changed))
    publish(cases)
    replace_between(ROOT / "docs" / "conformance.md", START, END, markdown_table(cases))
    replace_between(ROOT / "docs" / "scenarios.md", SSTART, SEND, scenario_table())
    schema = json.dumps(scenario_schema(), indent=2) + "\n"
    (ROOT / "protocol" / "schemas" / "scenario.schema.json").write_text(schema)


if __name__ == "__main__":
    main()
