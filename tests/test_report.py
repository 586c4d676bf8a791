"""The results bundle's report, read as a reader author reads it: a summary per group, the
exchange of every failing case drawn to the page's width from the bundle's own captures (so
cases run in worker processes have their pictures), the fault's name at its marker, the
probe's echo apart from the identification; laid out at 1280 px in a real headless Chromium
without sideways scrolling; and ``me162-check compare`` putting several bundles side by side.

Chromium is installed by `make test-deps`; in CI a missing browser fails, never skips.
"""

from __future__ import annotations

import json
import re
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

from me162.conformance.cases import catalogue
from me162.conformance.declaration import load_declaration
from me162.conformance.report import write_bundle
from me162.conformance.run import run_suite, select
from me162.conformance.suite import Verdict

pytestmark = pytest.mark.timeout(300)
BROKEN = Path(__file__).resolve().parent / "readers" / "broken_reader.py"
CASES = ["FRAME-01", "FRAME-07", "FRAME-08", "LINE-02"]


def mutant(tmp_path: Path, fault: str) -> Path:
    path = tmp_path / f"{fault}.toml"
    path.write_text(
        f'[reader]\nname = "mutant {fault}"\n'
        f'command = ["{sys.executable}", "{BROKEN}", "{{port}}", "{{speed}}", "--fault", "{fault}"]\ntimeout = 30\n'
        '[claims]\nmodes = ["C"]\nprogramming = false\nregisters = ["1.8.0", "2.8.0"]\n'
    )
    return path


def bundle_of(tmp_path: Path, fault: str, name: str) -> Path:
    decl = load_declaration(mutant(tmp_path, fault))
    cases = select(catalogue(), ids=CASES)
    bundle = tmp_path / name
    results = run_suite(decl, cases, speed=20, bundle=bundle, jobs=3)  # pictures from workers' captures
    assert all(r.outcome is None for r in results[1:] if r.verdict is not Verdict.NOT_APPLICABLE)
    write_bundle(bundle, decl, cases, results, speed=20, seed=0, seconds=1.0)
    return bundle


@pytest.fixture(scope="module")
def bundle(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return bundle_of(tmp_path_factory.mktemp("report"), "first-line-is-ident", "first-line")


def test_the_report_summarises_by_group_and_draws_each_failing_exchange(bundle: Path) -> None:
    page = (bundle / "report.html").read_text()
    md = (bundle / "report.md").read_text()
    assert re.search(r"<tr><td>FRAME</td><td>1</td><td>2</td><td>0</td><td>0</td></tr>", page), page[:3000]
    assert "| FRAME | 1 | 2 | 0 | 0 |" in md and "| LINE | 1 | 0 | 0 | 0 |" in md
    # One heading per column, none repeated.
    heads = re.findall(r"<th>([^<]*)</th>", page.split('<table class="cases">')[1].split("</tr>")[0])
    assert heads == ["case", "verdict", "what it checks", "reason"]
    # The failing cases' exchanges: a full-width row each, drawn from the bundle's captures.
    assert page.count('<tr class="exchange"><td colspan="4">') == 2
    for svg in re.findall(r"<svg[^>]*>", page):
        assert "viewBox" in svg and " width=" not in svg  # scaled to the page by CSS, not fixed pixels
    frame08 = page.split('id="FRAME-08"')[1].split('<tr id="')[0]
    boxes = re.findall(r"<rect [^>]*><title>([^<]*)</title>", frame08)
    assert any("request /?!" in b for b in boxes) and any("identification /ISK5ME162" in b for b in boxes)
    assert len(boxes) == 3, boxes  # the request, its echo, the identification: three boxes
    assert "⚡ insert (echo-request)" in frame08  # the fault by name, and the scenario it comes from
    frame07 = page.split('id="FRAME-07"')[1].split('<tr id="')[0]
    assert "⚡ noise (noise-before-identification)" in frame07
    assert "command: <code>" in frame07  # the run's command line, kept though it ran in a worker
    # A passing case has no picture.
    assert "exchange of FRAME-01" not in page


MEASURE = """<script>
window.addEventListener("load", () => {
  const box = (el) => el.getBoundingClientRect();
  const svgs = [...document.querySelectorAll("svg")].map((s) => Math.round(box(s).width));
  const what = document.querySelector("table.cases col.what");
  const idCells = [...document.querySelectorAll("table.cases tr[id] > td:first-child")];
  const out = {
    viewport: window.innerWidth,
    scrollWidth: document.documentElement.scrollWidth,
    svgs,
    whatWidth: Math.round(box(document.querySelector("table.cases tr[id] > td:nth-child(3)")).width),
    idLines: idCells.map((td) => {
      const r = document.createRange();
      r.selectNodeContents(td);
      return r.getClientRects().length;  // one rectangle per line the text takes
    }),
  };
  const pre = document.createElement("pre");
  pre.id = "layout";
  pre.textContent = JSON.stringify(out);
  document.body.appendChild(pre);
});
</script>"""


def chromium() -> str:
    exe = shutil.which("chromium") or shutil.which("chromium-browser")
    assert exe, "no Chromium: `make test-deps` installs it"
    return exe


def test_the_report_fits_a_1280_px_screen_in_headless_chromium(bundle: Path, tmp_path: Path) -> None:
    page = (bundle / "report.html").read_text().replace("</body>", MEASURE + "</body>")
    probe = tmp_path / "report.html"
    probe.write_text(page)
    browser = [chromium(), "--headless", "--no-sandbox", "--disable-gpu", "--hide-scrollbars",
               "--window-size=1280,1000", "--virtual-time-budget=3000"]  # fmt: skip
    p = subprocess.run(
        [*browser, "--dump-dom", probe.as_uri()], capture_output=True, text=True, timeout=120, check=False
    )
    found = re.search(r'<pre id="layout">([^<]*)</pre>', p.stdout)
    assert found, p.stderr[-2000:]
    layout = json.loads(found.group(1))
    assert layout["viewport"] == 1280
    assert layout["scrollWidth"] <= 1280, layout  # no sideways scrolling
    assert layout["svgs"] and min(layout["svgs"]) >= 1000, layout  # the timelines use the page's width
    assert layout["whatWidth"] >= 300, layout  # the case's description is not squeezed to a word a line
    # Each case id sits on one line.
    assert layout["idLines"] == [1] * len(CASES), layout
    # And the screenshot a person looks at is made the same way.
    shot = tmp_path / "report.png"
    subprocess.run([*browser, f"--screenshot={shot}", (bundle / "report.html").as_uri()],
                   capture_output=True, timeout=120, check=True)  # fmt: skip
    assert shot.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"


def cli(*args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", "me162.conformance.cli", *args],
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
    )


def test_compare_puts_readers_side_by_side_case_by_case(bundle: Path, tmp_path: Path) -> None:
    other = bundle_of(tmp_path, "accept-bad-bcc", "accept-bad-bcc")
    page = tmp_path / "compare.html"
    p = cli("compare", str(bundle), str(other), "--html", str(page))
    assert p.returncode == 0, p.stderr
    lines = p.stdout.splitlines()
    assert lines[0] == "| group | mutant first-line-is-ident | mutant accept-bad-bcc |"
    assert "| FRAME | 1 pass, 2 fail | 2 pass, 1 fail |" in lines
    assert "| FRAME-01 | PASS | FAIL |" in lines and "| FRAME-08 | FAIL | PASS |" in lines
    html = page.read_text()
    assert html.count("<tr><td><b>") == len(CASES) and "mutant accept-bad-bcc" in html
    # The same reader twice: the columns are told apart by their bundles.
    p = cli("compare", str(bundle), str(bundle))
    assert (
        p.stdout.splitlines()[0]
        == "| group | mutant first-line-is-ident (first-line) | mutant first-line-is-ident (first-line) |"
    )


def test_compare_refuses_what_is_not_a_bundle_with_the_reason(bundle: Path, tmp_path: Path) -> None:
    p = cli("compare", str(bundle), str(tmp_path))
    assert p.returncode == 2 and "no results.json in it" in p.stderr and not p.stdout
    (tmp_path / "results.json").write_text('{"reader": "x", "results": [{"case": 1}]}')
    p = cli("compare", str(bundle), str(tmp_path))
    assert p.returncode == 2 and "not the results of me162-check" in p.stderr
    p = cli("compare", str(bundle / "report.md"))
    assert p.returncode == 2 and "not a directory" in p.stderr
    assert "compare BUNDLE" in cli("--help").stdout
