"""Make (or find) the cached virtualenv with a real Home Assistant core for the end-to-end test.

    python tools/ha_env.py          # prints the venv's path; creates it when missing

Home Assistant runs on the newest Python of this machine that a pinned release supports
(pyenv's versions and the PATH are searched): 3.14.2 and later run 2026.3, 3.13.2 and later
2025.5, 3.13.0 and 3.13.1 run 2025.4.4.  It is installed from PyPI into
~/.cache/me162/ha-<version>-py<python>, and so are the exact paho-mqtt and frontend its own
manifests pin (Home Assistant is then started with --skip-pip).  Nothing here is skipped:
with no suitable Python the command fails and says why.
"""

from __future__ import annotations

import json
import os
import re
import subprocess
import sys
from pathlib import Path

#: (lowest Python, Home Assistant release that runs on it), newest first
RELEASES = [((3, 14, 2), "2026.3.0"), ((3, 13, 2), "2025.5.3"), ((3, 13, 0), "2025.4.4")]


def candidates() -> list[Path]:
    found: list[Path] = []
    pyenv = Path(os.environ.get("PYENV_ROOT", Path.home() / ".pyenv")) / "versions"
    if pyenv.is_dir():
        found += sorted(pyenv.glob("3.1[3-9]*/bin/python3"))
    for d in os.environ.get("PATH", "").split(os.pathsep):
        for name in ("python3.14", "python3.13"):
            p = Path(d) / name
            if p.exists():
                found.append(p)
    return found


def version_of(python: Path) -> tuple[int, int, int] | None:
    try:
        out = subprocess.run(
            [str(python), "-c", "import sys; print('%d.%d.%d' % sys.version_info[:3])"],
            capture_output=True,
            text=True,
            timeout=30,
            check=True,
        ).stdout.strip()
    except (OSError, subprocess.SubprocessError):
        return None
    m = re.fullmatch(r"(\d+)\.(\d+)\.(\d+)", out)
    return (int(m[1]), int(m[2]), int(m[3])) if m else None


def choose() -> tuple[Path, tuple[int, int, int], str]:
    best: tuple[Path, tuple[int, int, int], str] | None = None
    for python in candidates():
        v = version_of(python)
        if v is None:
            continue
        release = next((ha for low, ha in RELEASES if v >= low and v[:2] == low[:2]), None)
        if release and (best is None or v > best[1]):
            best = (python, v, release)
    if best is None:
        raise SystemExit(
            "ha_env: no Python 3.13 or 3.14 on this machine for Home Assistant "
            "(pyenv install 3.13.0 gives one)"
        )
    return best


def pip(venv: Path, *args: str) -> None:
    subprocess.run([str(venv / "bin" / "python"), "-m", "pip", "install", "-q", *args], check=True)


def manifest_requirements(venv: Path, *components: str) -> list[str]:
    site = next(venv.glob("lib/python3.*/site-packages/homeassistant/components"))
    reqs: list[str] = []
    for c in components:
        reqs += json.loads((site / c / "manifest.json").read_text())["requirements"]
    return reqs


def main() -> int:
    python, v, release = choose()
    cache = Path(os.environ.get("XDG_CACHE_HOME", Path.home() / ".cache")) / "me162"
    venv = cache / f"ha-{release}-py{'.'.join(map(str, v))}"
    stamp = venv / ".me162-complete"
    if not stamp.exists():
        print(f"ha_env: installing Home Assistant {release} on Python {'.'.join(map(str, v))} into {venv}",
              file=sys.stderr)  # fmt: skip
        subprocess.run([str(python), "-m", "venv", "--clear", str(venv)], check=True)
        pip(venv, "--upgrade", "pip")
        pip(venv, f"homeassistant=={release}")
        pip(venv, *manifest_requirements(venv, "mqtt", "frontend"))
        stamp.write_text(release)
    print(venv)
    return 0


if __name__ == "__main__":
    sys.exit(main())
