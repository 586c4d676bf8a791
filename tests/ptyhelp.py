"""For tests whose client talks to a virtual meter on a pty from the same process."""

from __future__ import annotations

import time

from me162.simulator.events import Dir, Wire
from me162.simulator.link import Link


def reader_bytes(link: Link) -> int:
    """How many bytes the meter's side has taken from the reader so far."""
    return sum(len(e.data) for e in list(link.events) if e.kind is Wire.DATA and e.dir is Dir.R2M)


def wait_taken(link: Link, count: int, timeout: float = 2.0) -> None:
    """Wait until the meter's side has taken ``count`` bytes from the reader in all.

    A pty hands what a client writes to the simulator through the kernel's work queue, and a
    settings change at once; on a busy machine (a CI runner just after installing) the queue
    can be tens of milliseconds late, so a client that switches speed a fixed time after its
    ACK may have it seen as switching before the ACK was written (the simulator dates what it
    reads together with a settings change at the change; docs/serial-port.md).  A client that
    is to behave like a correct reader waits for its bytes to be taken first."""
    deadline = time.monotonic() + timeout
    while reader_bytes(link) < count and time.monotonic() < deadline:
        time.sleep(0.0005)
