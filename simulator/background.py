"""A server loop in a daemon thread that can be stopped, and used as a context manager."""

from __future__ import annotations

import contextlib
import os
import threading
from typing import Self


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
