"""The results bundle: report.md, report.html (a summary per group, then every case with the
exchange of each failing one drawn to the page's width), JUnit XML, the capture of every case,
the declaration, the seed, SHA-256 sums; and the comparison of several bundles side by side.

The pictures are drawn from the captures in the bundle, so a bundle written by the pytest
plugin under xdist (whose workers keep their outcomes) has them too.
"""

from __future__ import annotations

import hashlib
import html
import json
import re
import shutil
from collections.abc import Iterable
from pathlib import Path
from typing import Any
from xml.etree import ElementTree as ET

from me162.conformance.cases import GROUPS, Case
from me162.conformance.declaration import Declaration
from me162.conformance.suite import Result, Verdict
from me162.protocol.capture import Capture, Event, WireMessage, messages, read_capture
from me162.protocol.errors import CaptureError, ConfigError
from me162.protocol.framing import Kind, Message
from me162.protocol.line import LineSettings

COLOURS = {  # by speed; none of them red, which marks what went wrong
    300: "#7aa6da",
    600: "#70c0b1",
    1200: "#b9ca4a",
    2400: "#e6c547",
    4800: "#e7a76a",
    9600: "#a98fd8",
    19200: "#d89fc0",
}
VERDICT_COLOURS = {"PASS": "#cfc", "FAIL": "#fbb", "INCONCLUSIVE": "#ffd", "NOT-APPLICABLE": "#eee"}
CSS = """
body{font-family:system-ui,sans-serif;margin:1.5em auto;max-width:1200px;padding:0 1em;color:#222}
h1{font-size:1.5em}h2{font-size:1.2em;margin-top:1.5em}
table{border-collapse:collapse;width:100%;table-layout:fixed}
td,th{border:1px solid #ccc;padding:4px 6px;vertical-align:top;text-align:left;overflow-wrap:anywhere}
th{background:#f4f4f4}
table.cases col.id{width:13em}table.cases tr[id]>td:first-child{white-space:nowrap;overflow:hidden;text-overflow:ellipsis}table.cases col.verdict{width:9em}table.cases col.what{width:38%}
table.groups{width:auto}table.groups td,table.groups th{text-align:right;min-width:6em}
table.groups td:first-child,table.groups th:first-child{text-align:left}
td.v{font-weight:bold;text-align:center}
tr.exchange>td{border-top:none;padding:0 6px 8px}
small{color:#555}details{margin-top:.5em}summary{cursor:pointer;color:#036}
svg{width:100%;height:auto;background:#fafafa;border:1px solid #ddd;margin:.3em 0}
pre{white-space:pre-wrap;background:#f6f6f6;padding:.5em;max-height:20em;overflow:auto;font-size:.85em}
"""


# --- the exchange, from the captures ---------------------------------------------------------


def case_captures(bundle: Path, case_id: str) -> list[Capture]:
    out = []
    for p in sorted((bundle / "captures" / case_id).glob("*.capture.jsonl")):
        try:
            out.append(read_capture(p))
        except CaptureError:
            continue
    return out


def short_label(m: Message) -> str:
    """A label a box can hold: what the message is, in a few characters."""
    k = m.kind
    if k is Kind.REQUEST:
        return m.data[:-2].decode("latin-1")
    if k is Kind.IDENTIFICATION:
        return m.data[:-2].decode("latin-1")
    if k is Kind.OPTION_SELECT:
        return "ACK " + m.data[1:4].decode("latin-1")
    if k in (Kind.ACK, Kind.NAK):
        return k.value.upper()
    if k is Kind.COMMAND:
        return m.name + ("" if m.bcc_ok else " (bad BCC)")
    if k in (Kind.DATA, Kind.PARTIAL):
        what = "readout" if len(m.data) > 60 else m.text.replace("\r\n", " ")[:24]
        return what + ("" if m.bcc_ok else " (bad BCC)")
    if k is Kind.PLAIN:
        return f"plain block {len(m.data)} B"
    return f"noise {len(m.data)} B"


def fault_label(e: Event) -> str:
    """A fault marker's label: the fault's action and the scenario it comes from."""
    name = str(e.fields.get("name") or "fault")
    where = re.search(r"([^/\\()]+)\.ya?ml:\d+\)$", str(e.fields.get("detail") or ""))
    return f"⚡ {name} ({where.group(1)})" if where else f"⚡ {name}"


def timeline_svg(capture: Capture, window: tuple[float, float] | None = None) -> str:
    """Both directions on a time axis scaled to the page: each message a box as long as it
    took on the wire, coloured by speed, separated from its neighbours and labelled; the
    reader's speed changes and each fault (by name) as markers.  ``window`` limits it to
    (from, to) seconds."""
    items = messages(capture)
    msgs = [m for m in items if isinstance(m, WireMessage)]
    marks = [e for e in items if isinstance(e, Event) and e.type in ("settings", "fault")]

    def duration(m: WireMessage) -> float:
        return LineSettings(m.baud or 300).transfer_time(len(m.message.data))

    def inside(t: float, dur: float = 0.0) -> bool:
        return window is None or (t + dur >= window[0] and t <= window[1])

    msgs = [m for m in msgs if inside(m.t, duration(m))]
    marks = [e for e in marks if inside(e.t)]
    if not msgs:
        return "<p>(nothing crossed the line)</p>"
    t0 = msgs[0].t if window is None else window[0]
    t1 = max(m.t + duration(m) for m in msgs) if window is None else window[1]
    span = max(t1 - t0, 0.001)
    width, left, right, lane = 1160.0, 78.0, 8.0, 44.0
    top = 16.0
    height = top + 2 * lane + 20 + 14 * 3 + 18

    def x(t: float) -> float:
        return left + (t - t0) / span * (width - left - right)

    parts = [
        f'<svg xmlns="http://www.w3.org/2000/svg" viewBox="0 0 {width:.0f} {height:.0f}" '
        f'font-family="monospace" font-size="11" role="img">',
        f'<text x="4" y="{top + lane / 2 + 4}">reader →</text>',
        f'<text x="4" y="{top + lane * 1.5 + 4}">← meter</text>',
    ]
    ends = {"r2m": -1e9, "m2r": -1e9}
    for m in msgs:
        y = top if m.dir == "r2m" else top + lane
        start = max(x(m.t), left, ends[m.dir] + 2)  # never drawn over the one before
        stop = min(x(m.t + duration(m)), width - right)
        w = max(3.0, stop - start)
        ends[m.dir] = start + w
        colour = COLOURS.get(m.baud or 300, "#999")
        stroke = "#c00" if m.message.kind is Kind.NOISE or m.message.bcc_ok is False else "#333"
        tip = html.escape(f"t={m.t:.3f} s, {m.baud or '?'} Bd: {m.message.describe()}")
        parts.append(
            f'<rect x="{start:.1f}" y="{y}" width="{w:.1f}" height="{lane - 10}" rx="2" fill="{colour}" '
            f'stroke="{stroke}"><title>{tip}</title></rect>'
        )
        label = short_label(m.message)
        room = int(w / 6.8)
        if room >= 3:
            text = label if len(label) <= room else label[: room - 1] + "…"
            parts.append(f'<text x="{start + 3:.1f}" y="{y + 21}">{html.escape(text)}</text>')
    row_end = [-1e9, -1e9, -1e9]
    for e in marks:
        fault = e.type == "fault"
        colour = "#c00" if fault else "#060"
        text = fault_label(e) if fault else f"speed {e.fields.get('baud')}"
        mx = x(e.t)
        wide = 6.8 * len(text) + 4
        flip = mx + wide > width - right  # near the right edge: the label goes to the line's left
        lx0 = mx - wide if flip else mx
        row = next((i for i, end in enumerate(row_end) if lx0 > end + 4), 0)  # labels never overlap
        row_end[row] = lx0 + wide
        ly = top + 2 * lane + 12 + 14 * row
        tip = html.escape(str(e.fields.get("detail") or text))
        parts.append(
            f'<line x1="{mx:.1f}" y1="{top - 4}" x2="{mx:.1f}" y2="{ly - 10}" stroke="{colour}" '
            f'stroke-dasharray="3,2"><title>{tip}</title></line>'
        )
        anchor = ' text-anchor="end"' if flip else ""
        parts.append(
            f'<text x="{mx - 2 if flip else mx + 2:.1f}" y="{ly}" fill="{colour}"{anchor}>'
            f"<title>{tip}</title>{html.escape(text)}</text>"
        )
    parts.append(
        f'<text x="{left}" y="{height - 4}">t = {t0:.3f} s</text>'
        f'<text x="{width - right}" y="{height - 4}" text-anchor="end">t = {t1:.3f} s</text></svg>'
    )
    return "".join(parts)


def legend() -> str:
    """What the timelines' colours and marks mean, once above the cases."""
    swatches = "".join(
        f'<span style="background:{c};padding:0 .4em;margin-right:.3em;border:1px solid #333">{baud}</span>'
        for baud, c in COLOURS.items()
    )
    return (
        f'<p class="legend"><small>In the exchanges, each message is a box as long as it took on the wire, '
        f"coloured by its speed in Bd: {swatches}; outlined in red: noise or a wrong BCC. "
        f"Dashed green: the reader changed its speed. Dashed red ⚡: a fault the case injected, with its "
        f"scenario. Hover for the details.</small></p>"
    )


def exchange_pictures(bundle: Path, case_id: str) -> str:
    """Every run of a case: the whole exchange, and a close-up around its first option select."""
    out = []
    captures = case_captures(bundle, case_id)
    for n, cap in enumerate(captures, 1):
        if len(captures) > 1:
            out.append(f"<p>reading {n}:</p>")
        out.append(timeline_svg(cap))
        acks = [
            m
            for m in messages(cap)
            if isinstance(m, WireMessage) and m.dir == "r2m" and m.message.kind is Kind.OPTION_SELECT
        ]
        if acks:
            t = acks[0].t
            out.append(f"<p>around the first option select:</p>{timeline_svg(cap, (t - 0.6, t + 1.4))}")
    return "".join(out) or "<p>(no capture of this case in the bundle)</p>"


# --- the bundle ------------------------------------------------------------------------------


def counts_by_group(results: Iterable[Result], by_id: dict[str, Case]) -> dict[str, dict[Verdict, int]]:
    table: dict[str, dict[Verdict, int]] = {g: dict.fromkeys(Verdict, 0) for g in (*GROUPS, "all")}
    for r in results:
        for g in (by_id[r.case_id].group, "all"):
            table[g][r.verdict] += 1
    return {g: c for g, c in table.items() if sum(c.values())}


def write_bundle(
    bundle: Path,
    decl: Declaration,
    cases: list[Case],
    results: list[Result],
    *,
    speed: float,
    seed: int,
    seconds: float,
) -> None:
    bundle.mkdir(parents=True, exist_ok=True)
    by_id = {c.id: c for c in cases}
    groups = counts_by_group(results, by_id)
    total = groups.get("all", dict.fromkeys(Verdict, 0))
    summary = (
        f"{total[Verdict.PASS]} passed, {total[Verdict.FAIL]} failed, {total[Verdict.INCONCLUSIVE]} inconclusive, "
        f"{total[Verdict.NOT_APPLICABLE]} not applicable"
    )
    # Markdown
    md = [
        f"# me162 conformance report: {decl.name}",
        "",
        f"{summary}; speed {speed:g}x, seed {seed}, {seconds:.1f} s.",
        "",
    ]
    md += ["| group | pass | fail | inconclusive | not applicable |", "|---|---|---|---|---|"]
    for g, n in groups.items():
        md.append(f"| {g} | " + " | ".join(str(n[v]) for v in Verdict) + " |")
    md += ["", "| case | verdict | what it checks | reason |", "|---|---|---|---|"]
    for r in results:
        c = by_id[r.case_id]
        md.append(f"| {r.case_id} | {r.verdict.value} | {c.title} | {r.reason.replace('|', '/')} |")
    md += ["", "## Cases", ""]
    for r in results:
        c = by_id[r.case_id]
        md += [f"### {r.case_id} {c.title}: {r.verdict.value}", "", f"- purpose: {c.purpose}",
               f"- reference: {c.reference}", f"- reason: {r.reason}",
               *([f"- {r.retimed}"] if r.retimed else []), ""]  # fmt: skip
    (bundle / "report.md").write_text("\n".join(md) + "\n", encoding="utf-8")
    # HTML
    group_rows = "".join(
        f"<tr><td>{g}</td>" + "".join(f"<td>{n[v]}</td>" for v in Verdict) + "</tr>"
        for g, n in groups.items()
    )
    rows = []
    for r in results:
        c = by_id[r.case_id]
        colour = VERDICT_COLOURS[r.verdict.value]
        rows.append(
            f'<tr id="{r.case_id}"><td>{r.case_id}</td><td class="v" style="background:{colour}">{r.verdict.value}</td>'
            f"<td><b>{html.escape(c.title)}</b><br>{html.escape(c.purpose)}<br><small>{html.escape(c.reference)}</small></td>"
            f"<td>{html.escape(r.reason)}</td></tr>"
        )
        if r.verdict in (Verdict.FAIL, Verdict.INCONCLUSIVE):
            # The exchange on a row of its own, the table's whole width: a picture squeezed
            # into the reason column is too small to read.
            picture = f"<details open><summary>the exchange of {r.case_id}</summary>{exchange_pictures(bundle, r.case_id)}"
            if r.runs:
                run = r.runs[-1]
                picture += (
                    f"<p>command: <code>{html.escape(' '.join(run.argv))}</code> — exit {run.exit_code}, "
                    f"{run.seconds:.2f} s{' (timed out)' if run.timed_out else ''}</p>"
                    f"<pre>{html.escape(run.stderr[-1500:])}</pre>"
                )
            rows.append(f'<tr class="exchange"><td colspan="4">{picture}</details></td></tr>')
    page = f"""<!doctype html><html lang="en"><head><meta charset="utf-8">
<meta name="viewport" content="width=device-width, initial-scale=1">
<title>me162 conformance: {html.escape(decl.name)}</title><style>{CSS}</style></head><body>
<h1>me162 conformance: {html.escape(decl.name)}</h1><p>{summary}; speed {speed:g}x, seed {seed}, {seconds:.1f} s.</p>
<h2>By group</h2>
<table class="groups"><tr><th>group</th>{"".join(f"<th>{v.value.lower()}</th>" for v in Verdict)}</tr>{group_rows}</table>
<h2>Cases</h2>{legend() if any(r.verdict in (Verdict.FAIL, Verdict.INCONCLUSIVE) for r in results) else ""}
<table class="cases"><colgroup><col class="id"><col class="verdict"><col class="what"><col class="why"></colgroup>
<tr><th>case</th><th>verdict</th><th>what it checks</th><th>reason</th></tr>{"".join(rows)}</table>
</body></html>"""
    (bundle / "report.html").write_text(page, encoding="utf-8")
    write_junit(bundle, decl, results, by_id, seconds)
    # machine-readable results
    results_doc = {
        "reader": decl.name,
        "speed": speed,
        "real_time": not decl.scales_time,  #: the reader takes no time scale: its meters ran at 1x
        "seed": seed,
        "seconds": round(seconds, 1),
        "results": [
            {
                "case": r.case_id,
                "group": by_id[r.case_id].group,
                "title": by_id[r.case_id].title,
                "verdict": r.verdict.value,
                "reason": r.reason,
                "seconds": round(r.seconds, 2),
                **({"retimed": r.retimed} if r.retimed else {}),
            }
            for r in results
        ],
    }
    (bundle / "results.json").write_text(json.dumps(results_doc, indent=1) + "\n", encoding="utf-8")
    # the declaration, the seed, the hashes
    shutil.copyfile(decl.path, bundle / "declaration.toml")
    (bundle / "seed.json").write_text(json.dumps({"seed": seed, "speed": speed}) + "\n")
    files = sorted(p for p in bundle.rglob("*") if p.is_file() and p.name != "SHA256SUMS")
    lines = [f"{hashlib.sha256(p.read_bytes()).hexdigest()}  {p.relative_to(bundle)}" for p in files]
    (bundle / "SHA256SUMS").write_text("\n".join(lines) + "\n")


def write_junit(
    bundle: Path, decl: Declaration, results: list[Result], by_id: dict[str, Case], seconds: float
) -> None:
    counts = {v: sum(1 for r in results if r.verdict is v) for v in Verdict}
    suite = ET.Element("testsuite", name=f"me162 conformance: {decl.name}", tests=str(len(results)),
                       failures=str(counts[Verdict.FAIL]), skipped=str(counts[Verdict.NOT_APPLICABLE]),
                       errors=str(counts[Verdict.INCONCLUSIVE]), time=f"{seconds:.3f}")  # fmt: skip
    for r in results:
        c = by_id[r.case_id]
        tc = ET.SubElement(
            suite, "testcase", classname=f"me162.{c.group}", name=r.case_id, time=f"{r.seconds:.3f}"
        )
        if r.verdict is Verdict.FAIL:
            ET.SubElement(tc, "failure", message=r.reason).text = f"{c.title}: {c.purpose}"
        elif r.verdict is Verdict.INCONCLUSIVE:
            ET.SubElement(tc, "error", message=r.reason)
        elif r.verdict is Verdict.NOT_APPLICABLE:
            ET.SubElement(tc, "skipped", message=r.reason)
    ET.ElementTree(suite).write(bundle / "junit.xml", encoding="utf-8", xml_declaration=True)


# --- several bundles side by side ------------------------------------------------------------


def read_results(bundle: Path) -> dict[str, Any]:
    """A bundle's results.json, checked enough that comparing it cannot fail half way."""
    path = bundle / "results.json"
    if not bundle.is_dir():
        raise ConfigError(f"{bundle}: not a directory (a results bundle is the directory --bundle wrote)")
    try:
        doc = json.loads(path.read_text(encoding="utf-8"))
    except FileNotFoundError:
        raise ConfigError(f"{bundle}: not a results bundle (no results.json in it)") from None
    except (OSError, UnicodeDecodeError, ValueError) as e:
        raise ConfigError(f"{path}: unreadable: {e}") from None
    ok = isinstance(doc, dict) and isinstance(doc.get("reader"), str) and isinstance(doc.get("results"), list)
    keys = ("case", "group", "verdict", "reason")
    if not ok or not all(
        isinstance(r, dict) and all(isinstance(r.get(k), str) for k in keys) for r in doc["results"]
    ):
        raise ConfigError(
            f"{path}: not the results of me162-check (expected reader and results[] with {', '.join(keys)})"
        )
    results: dict[str, Any] = doc
    return results


def compare(bundles: list[Path]) -> tuple[str, str]:
    """The readers of several bundles side by side, case by case: (Markdown, HTML)."""
    docs = [read_results(b) for b in bundles]
    readers = [str(d["reader"]) for d in docs]
    # The same reader twice (two runs of one reader): tell the columns apart by their bundles.
    if len(set(readers)) < len(readers):
        readers = [f"{r} ({b.name})" for r, b in zip(readers, bundles, strict=True)]
    by_case = [{r["case"]: r for r in d["results"]} for d in docs]
    order: list[str] = []
    for m in by_case:
        order += [c for c in m if c not in order]
    titles = {c: next((m[c].get("title", "") for m in by_case if c in m), "") for c in order}
    group_of = {c: next(m[c]["group"] for m in by_case if c in m) for c in order}
    md = ["| group | " + " | ".join(readers) + " |", "|---|" + "---|" * len(readers)]
    for g in (*GROUPS, "all"):
        cells = []
        for m in by_case:
            rs = [r for r in m.values() if g == "all" or r["group"] == g]
            n = {v.value: sum(1 for r in rs if r["verdict"] == v.value) for v in Verdict}
            cells.append(f"{n['PASS']} pass, {n['FAIL']} fail" + (f", {n['INCONCLUSIVE']} inc" if n["INCONCLUSIVE"] else "")
                         + (f", {n['NOT-APPLICABLE']} n/a" if n["NOT-APPLICABLE"] else ""))  # fmt: skip
        if any(group_of[c] == g for c in order) or g == "all":
            md.append(f"| {g} | " + " | ".join(cells) + " |")
    md += ["", "| case | " + " | ".join(readers) + " |", "|---|" + "---|" * len(readers)]
    for c in order:
        md.append(f"| {c} | " + " | ".join(m[c]["verdict"] if c in m else "" for m in by_case) + " |")
    head = "".join(f"<th>{html.escape(r)}</th>" for r in readers)
    rows = []
    for c in order:
        cells = []
        for m in by_case:
            r = m.get(c)
            if r is None:
                cells.append("<td></td>")
                continue
            colour = VERDICT_COLOURS.get(r["verdict"], "#fff")
            cells.append(
                f'<td style="background:{colour}"><b>{r["verdict"]}</b><br><small>{html.escape(r["reason"])}</small></td>'
            )
        rows.append(
            f"<tr><td><b>{c}</b><br><small>{html.escape(titles[c])}</small></td>{''.join(cells)}</tr>"
        )
    page = f"""<!doctype html><html lang="en"><head><meta charset="utf-8">
<meta name="viewport" content="width=device-width, initial-scale=1"><title>me162 conformance: comparison</title>
<style>{CSS} table.cmp col.case{{width:14em}}</style></head><body>
<h1>me162 conformance: {len(readers)} readers side by side</h1>
<table class="cmp"><colgroup><col class="case">{"<col>" * len(readers)}</colgroup>
<tr><th>case</th>{head}</tr>{"".join(rows)}</table></body></html>"""
    return "\n".join(md) + "\n", page
