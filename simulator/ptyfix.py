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

import logging
import os
from collections.abc import Mapping
from functools import cache
from pathlib import Path

from me162.simulator.native import build

log = logging.getLogger(__name__)


@cache
def library() -> Path | None:
    """The built fix (compiled on first use with ``cc``), or None where it cannot be built."""
    lib = build("ptyfix", ("-ldl",), what="the pty fix")
    if lib is None:
        log.warning("readers on glibc may meet EINVAL on the pty (docs/serial-port.md)")
    return lib


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
