"""How late a transport's thread looked: the time since its last look that it did not spend
blocked waiting for the reader.

A transport learns that the reader wrote bytes, or changed its speed, only when its thread
looks.  Between two looks the thread runs (its own work), waits for a CPU, or blocks until the
reader does something; only the blocking is time in which something the reader did reaches it
at once.  On a busy machine the waiting for a CPU alone is milliseconds, which at 20x is a tenth
of a second of protocol time: a reader that switched speed exactly on time would look as if it
switched while its ACK was still on the wire.  Linux counts, per thread, the time spent
runnable but not running (``/proc/thread-self/schedstat``, second field, in nanoseconds), and
Python the thread's CPU time; their sum since the last look is how late this look may be, and
what it found happened up to that much earlier.
"""

from __future__ import annotations

import contextlib
import os
import time


class Lateness:
    """Run-queue delay of the calling thread; make one in the thread it measures."""

    def __init__(self) -> None:
        self._fd: int | None = None
        with contextlib.suppress(OSError):
            self._fd = os.open("/proc/thread-self/schedstat", os.O_RDONLY)
        self._mark = self._now()
        self._cpu = time.thread_time()

    def _now(self) -> int:
        if self._fd is None:
            return 0
        try:
            return int(os.pread(self._fd, 64, 0).split()[1])
        except (OSError, IndexError, ValueError):
            return 0

    def mark(self) -> None:
        """At a look that found nothing more to take."""
        self._mark = self._now()
        self._cpu = time.thread_time()

    def since_mark(self) -> float:
        """Seconds since :meth:`mark` this thread spent waiting for a CPU or running."""
        return max(0, self._now() - self._mark) / 1e9 + max(0.0, time.thread_time() - self._cpu)

    def close(self) -> None:
        if self._fd is not None:
            with contextlib.suppress(OSError):
                os.close(self._fd)
            self._fd = None
