"""For tests whose client talks to a virtual meter on a pty from the same process."""

from __future__ import annotations

import time

import serial

from me162.simulator.link import Link
from me162.simulator.record import WireRecord


def reader_bytes(link: Link) -> int:
    """How many bytes the meter's side has taken from the reader so far."""
    record = WireRecord()
    record.events = list(link.events)
    return sum(len(e.data) for e in record.wrote())


def write_taken(link: Link, port: serial.SerialBase, data: bytes, timeout: float = 2.0) -> None:
    """Write ``data`` and wait until the meter's side has taken it.

    A client that is to behave like a correct reader switches speed after its ACK has left
    the wire; it waits for the simulator to take the ACK first, then for its wire time, so
    that how soon the simulator's thread gets a CPU on a busy machine does not decide whether
    the switch is seen before or after the ACK (docs/serial-port.md: ordering)."""
    count = reader_bytes(link) + len(data)
    port.write(data)
    deadline = time.monotonic() + timeout
    while reader_bytes(link) < count and time.monotonic() < deadline:
        time.sleep(0.0005)
