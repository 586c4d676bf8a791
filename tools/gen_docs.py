"""Maintainer tool: regenerate the case list in docs/conformance.md and the scenario list in
docs/scenarios.md from the code and fixtures (tests check that the docs list every one).

    python tools/gen_docs.py
"""

from __future__ import annotations

import re
from pathlib import Path

from me162.conformance.cases import catalogue
from me162.simulator.faults import load_scenario

ROOT = Path(__file__).resolve().parent.parent
START, END = "<!-- cases:start -->", "<!-- cases:end -->"
SSTART, SEND = "<!-- scenarios:start -->", "<!-- scenarios:end -->"


def replace_between(path: Path, start: str, end: str, body: str) -> None:
    text = path.read_text()
    new = re.sub(
        re.escape(start) + ".*?" + re.escape(end), lambda _: f"{start}\n{body}\n{end}", text, flags=re.S
    )
    path.write_text(new)


def cell(text: str) -> str:
    return text.replace("|", "/").replace("\n", " ")


def main() -> None:
    rows = ["| case | title | purpose | reference |", "|---|---|---|---|"]
    rows += [f"| {c.id} | {cell(c.title)} | {cell(c.purpose)} | {cell(c.reference)} |" for c in catalogue()]
    replace_between(ROOT / "docs" / "conformance.md", START, END, "\n".join(rows))
    srows = ["| scenario | purpose | faults | reference |", "|---|---|---|---|"]
    for p in sorted((ROOT / "fixtures" / "scenarios").glob("*.yaml")):
        s = load_scenario(p)
        srows.append(
            f"| `{s.name}` | {cell(s.purpose)} | {cell('; '.join(f.describe() for f in s.faults))} | {cell(s.reference)} |"
        )
    replace_between(ROOT / "docs" / "scenarios.md", SSTART, SEND, "\n".join(srows))


if __name__ == "__main__":
    main()
