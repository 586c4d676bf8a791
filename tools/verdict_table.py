"""Maintainer tool: a Markdown verdict table from results bundles (results.json), per group
and per case, for the README and docs/conformance-results.md.

    python tools/verdict_table.py BUNDLE [BUNDLE...]               # print it
    python tools/verdict_table.py --into FILE BUNDLE [BUNDLE...]   # replace FILE's generated part

With --into, the text between the lines ``<!-- verdicts -->`` and ``<!-- /verdicts -->`` of
FILE is replaced (``make conformance-peers`` does this for docs/conformance-results.md).
"""

from __future__ import annotations

import contextlib
import io
import json
import sys
from pathlib import Path

GROUPS = ("LINE", "FRAME", "SESSION", "PROG", "DATA", "ROBUST", "REPLAY")
SHORT = {"PASS": "PASS", "FAIL": "FAIL", "INCONCLUSIVE": "INC", "NOT-APPLICABLE": "n/a"}


BEGIN, END = "<!-- verdicts -->", "<!-- /verdicts -->"


def main() -> None:
    args = sys.argv[1:]
    if args[:1] == ["--into"]:
        target = Path(args[1])
        text = target.read_text()
        if BEGIN not in text or END not in text:
            sys.exit(f"verdict_table: {target} has no {BEGIN} ... {END} part to replace")
        out = io.StringIO()
        with contextlib.redirect_stdout(out):
            table(args[2:])
        head, rest = text.split(BEGIN, 1)
        target.write_text(f"{head}{BEGIN}\n{out.getvalue()}{END}{rest.split(END, 1)[1]}")
        return
    table(args)


def table(bundles: list[str]) -> None:
    docs = [json.loads((Path(b) / "results.json").read_text()) for b in bundles]
    print("| group | " + " | ".join(d["reader"] for d in docs) + " |")
    print("|---|" + "---|" * len(docs))
    for g in (*GROUPS, "all"):
        cells = []
        for d in docs:
            rs = [r for r in d["results"] if g == "all" or r["group"] == g]
            counts = {v: sum(1 for r in rs if r["verdict"] == v) for v in SHORT}
            cells.append(f"{counts['PASS']} pass, {counts['FAIL']} fail" + (f", {counts['NOT-APPLICABLE']} n/a" if counts["NOT-APPLICABLE"] else "")
                         + (f", {counts['INCONCLUSIVE']} inconclusive" if counts["INCONCLUSIVE"] else ""))  # fmt: skip
        print(f"| {g} | " + " | ".join(cells) + " |")
    pace = ["real time" if d.get("real_time") else f"{d['speed']:g}x" for d in docs]
    print(
        "| time | " + " | ".join(f"{d['seconds']} s at {p}" for d, p in zip(docs, pace, strict=True)) + " |"
    )
    print()
    print("| case | " + " | ".join(d["reader"] for d in docs) + " |")
    print("|---|" + "---|" * len(docs))
    by_case = [{r["case"]: r for r in d["results"]} for d in docs]
    for case in by_case[0]:
        cells = []
        for m in by_case:
            r = m.get(case)
            cells.append(
                ""
                if r is None
                else (
                    SHORT[r["verdict"]]
                    + ("" if r["verdict"] == "PASS" else f": {r['reason'][:90]}").replace("|", "/")
                )
            )
        print(f"| {case} | " + " | ".join(cells) + " |")


if __name__ == "__main__":
    main()
