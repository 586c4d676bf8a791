"""The ``prepare`` step of the third-party readers' declarations: installs a peer into this
user's cache, never into the installed me162 or the environment running the suite.

    python peer_env.py pip CACHE REQUIREMENT...   # a virtualenv at CACHE/venv
    python peer_env.py npm CACHE PACKAGE...       # node_modules under CACHE

Runs once per set of requirements (a stamp file remembers what is installed), so the suite's
second run starts at once.  Exit 1 with one line on stderr when the installer is missing or
fails; the suite reports that line as the reason the reader could not start.
"""

from __future__ import annotations

import shutil
import subprocess
import sys
import venv
from pathlib import Path


def run(argv: list[str], log: Path) -> None:
    with log.open("w") as out:
        p = subprocess.run(argv, stdout=out, stderr=subprocess.STDOUT, stdin=subprocess.DEVNULL, check=False)
    if p.returncode != 0:
        tail = (log.read_text(errors="replace").strip().splitlines() or [""])[-1]
        raise SystemExit(f"peer_env: {' '.join(argv[:4])} ... exited {p.returncode}: {tail} (log: {log})")


def main(argv: list[str]) -> int:
    if len(argv) < 3 or argv[0] not in ("pip", "npm"):
        print(__doc__, file=sys.stderr)
        return 2
    kind, cache, wanted = argv[0], Path(argv[1]), argv[2:]
    cache.mkdir(parents=True, exist_ok=True)
    stamp = cache / f".installed-{kind}"
    if stamp.exists() and stamp.read_text().split() == wanted:
        return 0
    stamp.unlink(missing_ok=True)
    log = cache / f"install-{kind}.log"
    if kind == "pip":
        env = cache / "venv"
        if not (env / "bin" / "python").exists():
            venv.EnvBuilder(with_pip=True, clear=True).create(env)
        run(
            [str(env / "bin" / "python"), "-m", "pip", "install", "--disable-pip-version-check", *wanted], log
        )
    else:
        npm = shutil.which("npm")
        if npm is None:
            print(
                "peer_env: npm not found: install Node.js and npm (Debian: apt install nodejs npm)",
                file=sys.stderr,
            )
            return 1
        run([npm, "install", "--prefix", str(cache), "--no-audit", "--no-fund", "--no-save", *wanted], log)
    stamp.write_text("\n".join(wanted) + "\n")
    return 0


if __name__ == "__main__":
    try:
        sys.exit(main(sys.argv[1:]))
    except SystemExit as e:
        if isinstance(e.code, str):
            print(e.code, file=sys.stderr)
            sys.exit(1)
        raise
