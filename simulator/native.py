"""C sources of the simulator built once into this user's cache with ``cc`` (``ptyfix.c``, the
pty fix given to readers; ``pacer.c``, the thread that paces readouts), and found again by the
hash of their source, so that an upgrade builds anew and concurrent builds land the same file."""

from __future__ import annotations

import hashlib
import logging
import os
import shutil
import subprocess
import tempfile
from pathlib import Path

log = logging.getLogger(__name__)

HERE = Path(__file__).resolve().parent


def cache_dir() -> Path:
    return Path(os.environ.get("XDG_CACHE_HOME") or Path.home() / ".cache") / "me162"


def build(name: str, libs: tuple[str, ...] = (), *, what: str) -> Path | None:
    """``name``.c built into a shared library (compiled on first use), or None where it cannot
    be built (``what`` names it in the warning)."""
    source = (HERE / f"{name}.c").read_bytes()
    target = cache_dir() / f"{name}-{hashlib.sha256(source).hexdigest()[:12]}.so"
    if target.exists():
        return target
    compiler = shutil.which(os.environ.get("CC", "cc")) or shutil.which("gcc")
    if compiler is None:
        log.warning("no C compiler: could not build %s", what)
        return None
    target.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(dir=target.parent, suffix=".so")
    os.close(fd)
    try:
        p = subprocess.run(
            [compiler, "-shared", "-fPIC", "-O2", "-o", tmp, str(HERE / f"{name}.c"), *libs],
            capture_output=True, text=True, check=False, timeout=120, stdin=subprocess.DEVNULL,
        )  # fmt: skip
        if p.returncode != 0:
            log.warning("could not build %s: %s", what, (p.stderr.strip().splitlines() or [""])[-1])
            return None
        os.replace(tmp, target)  # atomic: a concurrent build of the same source lands the same file
    except (OSError, subprocess.TimeoutExpired) as e:
        log.warning("could not build %s: %s", what, e)
        return None
    finally:
        Path(tmp).unlink(missing_ok=True)
    return target
