"""The results bundle: report.md, report.html (with a timeline picture of every failing
exchange), JUnit XML, the capture of every case, the declaration, the seed, SHA-256 sums."""

from __future__ import annotations

import hashlib
import html
import json
import shutil
from pathlib import Path
from xml.etree import ElementTree as ET

from me162.conformance.cases import Case
from me162.conformance.declaration import Declaration
from me162.conformance.suite import Outcome, Result, Verdict
from me162.simulator.capture_tools import describe
from me162.simulator.events import WireEvent

COLOURS = {
    300: "#7aa6da",
    600: "#70c0b1",
    1200: "#b9ca4a",
    2400: "#e6c547",
    4800: "#e78c45",
    9600: "#d54e53",
    19200: "#c397d8",
}


def timeline_svg(outcome: Outcome, width: int = 960, window: tuple[float, float] | None = None) -> str:
    """Both directions on a time axis: each message a box as long as it took on the wire,
    coloured by speed and labelled; the reader's speed changes and the faults as markers.
    ``window`` limits the picture to (from, to) seconds."""

    def duration(e: WireEvent) -> float:
        return len(e.data) * 10 / (e.baud or 300)

    def inside(t: float, dur: float = 0.0) -> bool:
        return window is None or (t + dur >= window[0] and t <= window[1])

    data = sorted(
        (e for e in outcome.events if e.kind == "data" and inside(e.t, duration(e))), key=lambda e: e.t
    )
    marks = sorted(
        (e for e in outcome.events if e.kind in ("settings", "fault") and inside(e.t)), key=lambda e: e.t
    )
    if not data:
        return "<p>(nothing crossed the line)</p>"
    t0 = data[0].t if window is None else window[0]
    t1 = max(e.t + duration(e) for e in data) if window is None else window[1]
    span = max(t1 - t0, 0.001)
    left, lane = 70, 46
    height = 40 + 2 * lane + 52

    def x(t: float) -> float:
        return left + (t - t0) / span * (width - left - 10)

    parts = [
        f'<svg xmlns="http://www.w3.org/2000/svg" width="{width}" height="{height}" font-family="monospace" font-size="10">',
        f'<text x="4" y="{30 + lane / 2}">reader→</text><text x="4" y="{30 + lane * 1.5}">←meter</text>',
    ]
    for e in data:
        y = 20 if e.dir == "r2m" else 20 + lane
        start = max(x(e.t), left)
        w = max(2.0, min(x(e.t + duration(e)), width - 10) - start)
        colour = COLOURS.get(e.baud or 300, "#999")
        parts.append(
            f'<rect x="{start:.1f}" y="{y}" width="{w:.1f}" height="{lane - 8}" fill="{colour}" stroke="#333">'
            f"<title>t={e.t:.3f} s {e.dir} {e.baud} Bd: {html.escape(e.data[:60].hex(' '))}</title></rect>"
        )
        if w > 26:
            parts.append(f'<text x="{start + 2:.1f}" y="{y + 12}">{e.baud}</text>')
        if w > 60:
            label = html.escape(describe(e.data)[: int(w / 6.5)])
            parts.append(f'<text x="{start + 2:.1f}" y="{y + 26}">{label}</text>')
    last, row = -1e9, 0
    for m in marks:
        colour = "#c00" if m.kind == "fault" else "#060"
        text = f"speed {m.baud}" if m.kind == "settings" else "fault"
        row = row + 1 if x(m.t) - last < 80 else 0  # stagger labels that would overlap
        last = x(m.t)
        parts.append(
            f'<line x1="{x(m.t):.1f}" y1="14" x2="{x(m.t):.1f}" y2="{20 + 2 * lane}" stroke="{colour}" '
            f'stroke-dasharray="3,2"><title>{html.escape(m.detail)}</title></line>'
        )
        parts.append(
            f'<text x="{x(m.t) + 2:.1f}" y="{30 + 2 * lane + 12 * (row % 3)}" fill="{colour}">{text}</text>'
        )
    parts.append(
        f'<text x="{left}" y="{height - 4}">t = {t0:.3f} s</text><text x="{width - 110}" y="{height - 4}">t = {t1:.3f} s</text>'
    )
    parts.append("</svg>")
    return "".join(parts)


def exchange_pictures(outcome: Outcome) -> str:
    """The whole exchange, and a close-up around the first option select when there is one."""
    acks = [
        e
        for e in outcome.events
        if e.kind == "data" and e.dir == "r2m" and e.data[:1] == b"\x06" and len(e.data) == 6
    ]
    out = timeline_svg(outcome)
    if acks:
        out += f"<p>around the first option select:</p>{timeline_svg(outcome, window=(acks[0].t - 0.6, acks[0].t + 1.4))}"
    return out


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
    counts = {v: sum(1 for r in results if r.verdict is v) for v in Verdict}
    summary = (
        f"{counts[Verdict.PASS]} passed, {counts[Verdict.FAIL]} failed, {counts[Verdict.INCONCLUSIVE]} inconclusive, "
        f"{counts[Verdict.NOT_APPLICABLE]} not applicable"
    )
    # Markdown
    md = [
        f"# me162 conformance report: {decl.name}",
        "",
        f"{summary}; speed {speed:g}x, seed {seed}, {seconds:.1f} s.",
        "",
    ]
    md += ["| case | verdict | title | reason |", "|---|---|---|---|"]
    for r in results:
        c = by_id[r.case_id]
        md.append(f"| {r.case_id} | {r.verdict.value} | {c.title} | {r.reason.replace('|', '/')} |")
    md += ["", "## Cases", ""]
    for r in results:
        c = by_id[r.case_id]
        md += [
            f"### {r.case_id} {c.title}: {r.verdict.value}",
            "",
            f"- purpose: {c.purpose}",
            f"- reference: {c.reference}",
            f"- reason: {r.reason}",
            "",
        ]
    (bundle / "report.md").write_text("\n".join(md) + "\n", encoding="utf-8")
    # HTML
    rows = []
    for r in results:
        c = by_id[r.case_id]
        cls = r.verdict.value.lower()
        picture = ""
        if r.verdict in (Verdict.FAIL, Verdict.INCONCLUSIVE) and r.outcome is not None:
            run = r.outcome.run
            picture = (
                f"<details open><summary>exchange</summary>{exchange_pictures(r.outcome)}"
                f"<p>command: <code>{html.escape(' '.join(run.argv))}</code> — exit {run.exit_code}, {run.seconds:.2f} s"
                f"{' (timed out)' if run.timed_out else ''}</p>"
                f"<pre>{html.escape(run.stderr[-1500:])}</pre></details>"
            )
        rows.append(
            f'<tr class="{cls}"><td>{r.case_id}</td><td>{r.verdict.value}</td><td><b>{html.escape(c.title)}</b><br>'
            f"{html.escape(c.purpose)}<br><small>{html.escape(c.reference)}</small></td><td>{html.escape(r.reason)}{picture}</td></tr>"
        )
    page = f"""<!doctype html><html><head><meta charset="utf-8"><title>me162 conformance: {html.escape(decl.name)}</title>
<style>body{{font-family:sans-serif;margin:2em}}table{{border-collapse:collapse}}td{{border:1px solid #ccc;padding:4px;vertical-align:top}}
tr.pass td:nth-child(2){{background:#cfc}}tr.fail td:nth-child(2){{background:#fbb}}tr.inconclusive td:nth-child(2){{background:#ffd}}
tr.not-applicable td:nth-child(2){{background:#eee}}svg{{background:#fafafa;border:1px solid #ddd}}</style></head><body>
<h1>me162 conformance: {html.escape(decl.name)}</h1><p>{summary}; speed {speed:g}x, seed {seed}, {seconds:.1f} s.</p>
<table><tr><th>case</th><th>verdict</th><th>case</th><th>reason</th></tr>{"".join(rows)}</table></body></html>"""
    (bundle / "report.html").write_text(page, encoding="utf-8")
    # JUnit
    suite = ET.Element("testsuite", name=f"me162 conformance: {decl.name}", tests=str(len(results)),
                       failures=str(counts[Verdict.FAIL]), skipped=str(counts[Verdict.NOT_APPLICABLE]),
                       errors=str(counts[Verdict.INCONCLUSIVE]), time=f"{seconds:.3f}")  # fmt: skip
    for r in results:
        c = by_id[r.case_id]
        tc = ET.SubElement(
            suite,
            "testcase",
            classname=f"me162.{c.group}",
            name=f"{r.case_id} {c.title}",
            time=f"{r.seconds:.3f}",
        )
        if r.verdict is Verdict.FAIL:
            ET.SubElement(tc, "failure", message=r.reason).text = c.purpose
        elif r.verdict is Verdict.INCONCLUSIVE:
            ET.SubElement(tc, "error", message=r.reason)
        elif r.verdict is Verdict.NOT_APPLICABLE:
            ET.SubElement(tc, "skipped", message=r.reason)
    ET.ElementTree(suite).write(bundle / "junit.xml", encoding="utf-8", xml_declaration=True)
    # machine-readable results
    results_doc = {
        "reader": decl.name,
        "speed": speed,
        "seed": seed,
        "seconds": round(seconds, 1),
        "results": [
            {
                "case": r.case_id,
                "group": by_id[r.case_id].group,
                "verdict": r.verdict.value,
                "reason": r.reason,
                "seconds": round(r.seconds, 2),
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
