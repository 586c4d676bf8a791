"""The pacer: one thread in C (``pacer.c``) that writes streaming readouts to their ptys, each
character when its time comes, for every meter the process serves.

Pacing in Python cost ~13 us a character, the interpreter's turn included: a hundred meters
streaming at 9600 Bd ask for 96,000 characters a second, more than one core, so characters
came late while many streamed at once.  The thread here costs a write(2) a character and
never waits for the interpreter lock; the meter's loop (pty_transport) still decides every
character — it asks the link which characters come, hands them here with their due times,
moves the link past what is written, and cancels the rest when the reader acts.

Built with ``cc`` on first use (as the pty fix is); where it cannot be built, or with
``ME162_PACER=python``, the meters pace in Python as before.
"""

from __future__ import annotations

import ctypes
import logging
import os
import threading
from array import array
from collections.abc import Sequence

from me162.simulator.native import build

log = logging.getLogger(__name__)

_P = ctypes.c_void_p


class Pacer:
    """The pacing thread of this process (see :func:`shared`)."""

    def __init__(self, lib: ctypes.CDLL) -> None:
        lib.pacer_new.restype = _P
        lib.pacer_new.argtypes = []
        lib.pacer_free.argtypes = [_P]
        lib.pacer_open.restype = ctypes.c_int
        lib.pacer_open.argtypes = [_P, ctypes.c_int]
        lib.pacer_add.restype = ctypes.c_int
        lib.pacer_add.argtypes = [_P, ctypes.c_int, ctypes.c_int, _P, ctypes.c_char_p, ctypes.c_int64]
        lib.pacer_written.restype = ctypes.c_int64
        lib.pacer_written.argtypes = [_P, ctypes.c_int]
        lib.pacer_cancel.restype = ctypes.c_int64
        lib.pacer_cancel.argtypes = [_P, ctypes.c_int]
        lib.pacer_dropped.restype = ctypes.c_int64
        lib.pacer_dropped.argtypes = [_P, ctypes.c_int, ctypes.POINTER(ctypes.c_int)]
        lib.pacer_close.argtypes = [_P, ctypes.c_int]
        self._lib = lib
        self._p = lib.pacer_new()
        if not self._p:
            raise OSError("could not start the pacing thread")

    def open(self, fd: int) -> int:
        """A slot for the master descriptor ``fd`` (close it before the descriptor)."""
        slot = int(self._lib.pacer_open(self._p, fd))
        if slot < 0:
            raise MemoryError("pacer: out of memory")
        return slot

    def add(self, slot: int, due: Sequence[float], chars: Sequence[bytes], early: float) -> None:
        """Queue characters: each ``chars[k]`` (0 to 3 bytes: what the reader's input flags
        make of one character) written at monotonic time ``due[k]``, or up to ``early``
        seconds before it when the thread is awake for another."""
        n = len(due)
        times = array("q", [int(t * 1e9) for t in due])
        packed = b"".join([_PACKED[c] if len(c) == 1 else _pack(c) for c in chars])
        address, _ = times.buffer_info()
        if self._lib.pacer_add(self._p, slot, n, address, packed, int(early * 1e9)) != 0:
            raise MemoryError("pacer: out of memory")

    def written(self, slot: int) -> int:
        """Characters of ``slot`` handed to the reader since it was opened."""
        return int(self._lib.pacer_written(self._p, slot))

    def cancel(self, slot: int) -> int:
        """Drop what is queued; characters handed over since the slot was opened.  None of
        this slot's is written after this returns."""
        return int(self._lib.pacer_cancel(self._p, slot))

    def dropped(self, slot: int) -> tuple[int, int]:
        """Characters lost to a reader that is not reading, and the first other write error
        (an errno, 0: none), since the last call."""
        error = ctypes.c_int(0)
        n = int(self._lib.pacer_dropped(self._p, slot, ctypes.byref(error)))
        return n, error.value

    def close(self, slot: int) -> None:
        self._lib.pacer_close(self._p, slot)


def _pack(c: bytes) -> bytes:
    if len(c) > 3:
        raise ValueError(f"a paced character is at most 3 bytes, not {len(c)}")
    return bytes((len(c),)) + c.ljust(3, b"\0")


_PACKED = {bytes((b,)): _pack(bytes((b,))) for b in range(256)}

_lock = threading.Lock()
_shared: Pacer | None = None
_tried = False


def shared() -> Pacer | None:
    """The process's pacer, started on first use; None where ``pacer.c`` cannot be built or
    ``ME162_PACER=python`` asks for pacing in Python."""
    global _shared, _tried
    if os.environ.get("ME162_PACER", "native") == "python":
        return None
    with _lock:
        if not _tried:
            _tried = True
            lib = build("pacer", ("-pthread",), what="the pacer")
            if lib is None:
                log.warning("readouts are paced in Python (less exact with many meters)")
            else:
                # PyDLL: its calls keep the interpreter lock.  Each takes the pacer's mutex for
                # at most one sweep of writes; giving the lock away and queueing for it again
                # would cost a thread among many meters' threads a switch interval (5 ms)
                _shared = Pacer(ctypes.PyDLL(str(lib)))
        return _shared


def _forget() -> None:
    """In a forked child the pacing thread does not exist: start another if asked."""
    global _shared, _tried, _lock
    _shared, _tried, _lock = None, False, threading.Lock()


os.register_at_fork(after_in_child=_forget)
