"""A server loop in a daemon thread that can be stopped, and used as a context manager."""

from __future__ import annotations

import threading
from typing import Self


class Background:
    """Subclasses give :meth:`run` (loop until ``self._stop`` is set) and :meth:`close`."""

    thread_name = "me162"

    def __init__(self) -> None:
        self._stop = threading.Event()
        self._thread: threading.Thread | None = None

    def run(self) -> None:  # pragma: no cover - every subclass has its own
        raise NotImplementedError

    def close(self) -> None:
        """Release what the loop used; called once the loop has ended."""

    def start(self) -> Self:
        self._thread = threading.Thread(target=self.run, name=self.thread_name, daemon=True)
        self._thread.start()
        return self

    def stop(self) -> None:
        self._stop.set()
        if self._thread is not None:
            self._thread.join(timeout=5)
        self.close()

    def __enter__(self) -> Self:
        return self.start()

    def __exit__(self, *exc: object) -> None:
        self.stop()
