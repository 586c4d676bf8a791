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

    A client that is to behave like a correct reader switches speed after its ACK has left
    the wire; it waits for the simulator to take the ACK first, then for its wire time, so
    that how soon the simulator's thread gets a CPU on a busy machine does not decide whether
    the switch is seen before or after the ACK (docs/serial-port.md: ordering)."""
    deadline = time.monotonic() + timeout
    while reader_bytes(link) < count and time.monotonic() < deadline:
        time.sleep(0.0005)
