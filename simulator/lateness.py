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
        self._awake: float | None = None  #: monotonic time of a mark the thread did not sleep after

    def _now(self) -> int:
        """Nanoseconds this thread has run or waited for a CPU: schedstat's first two fields
        (one read); its CPU time alone where there is no schedstat."""
        if self._fd is not None:
            try:
                ran, waited = os.pread(self._fd, 64, 0).split()[:2]
                return int(ran) + int(waited)
            except (OSError, ValueError):
                pass
        return time.thread_time_ns()

    def mark(self) -> None:
        """At a look that found nothing more to take, before the thread may sleep."""
        self._mark = self._now()
        self._awake = None

    def mark_awake(self) -> None:
        """At a look that found nothing more to take, when the thread looks again without
        sleeping: all the time until then it runs or waits for a CPU, which the wall clock
        counts (no system call; a loop serving many meters looks thousands of times a second)."""
        self._awake = time.monotonic()

    def since_mark(self) -> float:
        """Seconds since the last mark this thread spent waiting for a CPU or running."""
        if self._awake is not None:
            return time.monotonic() - self._awake
        return max(0, self._now() - self._mark) / 1e9

    def close(self) -> None:
        if self._fd is not None:
            with contextlib.suppress(OSError):
                os.close(self._fd)
            self._fd = None
