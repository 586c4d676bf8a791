"""How late a transport's thread woke up: the time it spent ready to run but waiting for a CPU.

A transport learns that the reader wrote bytes, or changed its speed, only when its thread
runs.  On a busy machine the thread may wait for a CPU for milliseconds after the bytes
arrived, which at 20x is a tenth of a second of protocol time: a reader that switched speed
exactly on time would look as if it switched while its ACK was still on the wire.  Linux counts,
per thread, the time spent runnable but not running (``/proc/thread-self/schedstat``, second
field, in nanoseconds); the difference across a wait is how late the thread came, and what it
observed happened that much earlier.
"""

from __future__ import annotations

import contextlib
import os


class Lateness:
    """Run-queue delay of the calling thread; make one in the thread it measures."""

    def __init__(self) -> None:
        self._fd: int | None = None
        with contextlib.suppress(OSError):
            self._fd = os.open("/proc/thread-self/schedstat", os.O_RDONLY)
        self._mark = self._now()

    def _now(self) -> int:
        if self._fd is None:
            return 0
        try:
            return int(os.pread(self._fd, 64, 0).split()[1])
        except (OSError, IndexError, ValueError):
            return 0

    def mark(self) -> None:
        """Before a wait."""
        self._mark = self._now()

    def since_mark(self) -> float:
        """Seconds this thread spent waiting for a CPU since :meth:`mark`."""
        return max(0, self._now() - self._mark) / 1e9

    def close(self) -> None:
        if self._fd is not None:
            with contextlib.suppress(OSError):
                os.close(self._fd)
            self._fd = None
