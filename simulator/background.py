"""A server loop in a daemon thread that can be stopped, and used as a context manager.

While any such loop serves, what the process held when the first one started is left out of
the cyclic garbage collector's walks (``gc.freeze``), and handed back when the last one stops.
A full collection stops every thread of the process for as long as it walks every tracked
object: in a test process that has run a few hundred tests that is 100-230 ms (measured in
this project's suite), at 40x speed four to nine seconds of protocol time in which the virtual
meter sends nothing and a reader in the same process does nothing either; a reader that had
just written its ACK switches speed after the readout has begun.  Collections still run while
a loop serves, over what was made since, which a few seconds of serving keep small.
"""

from __future__ import annotations

import contextlib
import gc
import os
import threading
from typing import Self

_serving_lock = threading.Lock()
_serving = 0  #: loops started and not yet stopped, in this process
_we_froze = False  #: the first of them froze the heap (nobody else had: ours to hand back)


def _serving_starts() -> None:
    global _serving, _we_froze
    with _serving_lock:
        _serving += 1
        if _serving == 1:
            # a process that froze its heap itself (me162-sim's settle) keeps it frozen
            _we_froze = gc.get_freeze_count() == 0
            gc.freeze()


def _serving_stops() -> None:
    global _serving, _we_froze
    with _serving_lock:
        _serving -= 1
        if _serving == 0 and _we_froze:
            _we_froze = False
            gc.unfreeze()


class Background:
    """Subclasses give :meth:`run` (loop until ``self._stop`` is set) and :meth:`close`."""

    thread_name = "me162"

    def __init__(self) -> None:
        self._stop = threading.Event()
        self._thread: threading.Thread | None = None
        self.ready = threading.Event()  #: set by the loop once it is serving
        self._wake: tuple[int, int] | None = None

    @property
    def wake_fd(self) -> int:
        """A descriptor that becomes readable when :meth:`stop` is called: a loop asleep in
        select or poll includes it and wakes at once (made on first use)."""
        if self._wake is None:
            self._wake = os.pipe()
        return self._wake[0]

    def run(self) -> None:  # pragma: no cover - every subclass has its own
        raise NotImplementedError

    def close(self) -> None:
        """Release what the loop used; called once the loop has ended."""

    def start(self) -> Self:
        """Start the loop and return once it serves (a reader may open the port at once)."""
        if self._thread is None:
            _serving_starts()
        self._thread = threading.Thread(target=self._serve, name=self.thread_name, daemon=True)
        self._thread.start()
        self.ready.wait(5.0)
        return self

    def _serve(self) -> None:
        try:
            self.run()
        finally:
            self.ready.set()  # a loop that ended at once does not keep start() waiting

    def stop(self) -> None:
        self._stop.set()
        if self._wake is not None:
            with contextlib.suppress(OSError):
                os.write(self._wake[1], b"x")
        if self._thread is not None:
            self._thread.join(timeout=5)
            self._thread = None
            _serving_stops()
        self.close()
        if self._wake is not None:
            for fd in self._wake:
                with contextlib.suppress(OSError):
                    os.close(fd)
            self._wake = None

    def __enter__(self) -> Self:
        return self.start()

    def __exit__(self, *exc: object) -> None:
        self.stop()
