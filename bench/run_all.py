"""Run every benchmark in bench/ and print one JSON line each (numbers, not pass/fail)."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

HERE = Path(__file__).resolve().parent


def main() -> int:
    status = 0
    for script in sorted(HERE.glob("bench_*.py")):
        p = subprocess.run([sys.executable, str(script)], check=False)
        status |= p.returncode
    return status


if __name__ == "__main__":
    sys.exit(main())
