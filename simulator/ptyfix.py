"""The pty fix for readers linked against glibc: ``ptyfix.c`` built once into this user's
cache and given to reader processes with ``LD_PRELOAD``.

Debian's and Fedora's glibc fail a 7E1 ``tcsetattr`` that changes nothing on a pty with EINVAL
(the pty always shows CS8; glibc takes that for a dropped request), so a reader that applies
its settings twice in a row fails at the virtual meter although it works at a real one.  No
timing on the simulator's side can reach between two calls of one process; the fix reaches
into the reader's libc instead, and only for that case (see ``ptyfix.c``).  Programs that do
not use glibc's ``tcsetattr`` (static Go or Rust binaries, musl) never meet the problem.
"""

from __future__ import annotations

import hashlib
import logging
import os
import shutil
import subprocess
import tempfile
from collections.abc import Mapping
from functools import cache
from pathlib import Path

log = logging.getLogger(__name__)

SOURCE = Path(__file__).resolve().parent / "ptyfix.c"


def cache_dir() -> Path:
    return Path(os.environ.get("XDG_CACHE_HOME") or Path.home() / ".cache") / "me162"


@cache
def library() -> Path | None:
    """The built fix (compiled on first use with ``cc``), or None where it cannot be built."""
    source = SOURCE.read_bytes()
    target = cache_dir() / f"ptyfix-{hashlib.sha256(source).hexdigest()[:12]}.so"
    if target.exists():
        return target
    compiler = shutil.which(os.environ.get("CC", "cc")) or shutil.which("gcc")
    if compiler is None:
        log.warning("no C compiler: readers on glibc may meet EINVAL on the pty (docs/serial-port.md)")
        return None
    target.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(dir=target.parent, suffix=".so")
    os.close(fd)
    try:
        p = subprocess.run(
            [compiler, "-shared", "-fPIC", "-O2", "-o", tmp, str(SOURCE), "-ldl"],
            capture_output=True, text=True, check=False, timeout=120, stdin=subprocess.DEVNULL,
        )  # fmt: skip
        if p.returncode != 0:
            log.warning("could not build the pty fix: %s", (p.stderr.strip().splitlines() or [""])[-1])
            return None
        os.replace(tmp, target)  # atomic: a concurrent build of the same source lands the same file
    except (OSError, subprocess.TimeoutExpired) as e:
        log.warning("could not build the pty fix: %s", e)
        return None
    finally:
        Path(tmp).unlink(missing_ok=True)
    return target


def reader_env(base: Mapping[str, str] | None = None) -> dict[str, str]:
    """An environment for a reader process: ``base`` (default: this process's) with the fix
    added to ``LD_PRELOAD``."""
    env = dict(os.environ if base is None else base)
    lib = library()
    if lib is not None:
        preload = env.get("LD_PRELOAD", "")
        if str(lib) not in preload.split():
            env["LD_PRELOAD"] = f"{lib} {preload}".strip()
    return env
