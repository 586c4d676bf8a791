"""The typed vocabulary of what happens on the virtual line, for logs, captures and grading.

Nothing is recovered by parsing a formatted string: every event carries its kind as an enum
member (a ``StrEnum``, so it still reads and records as the same text), and an event about a
message carries the message as the framer cut it.

- :class:`Sent` — what the meter transmits (fault scenarios name these in ``when.message``).
- :class:`Did` — what the meter did or noticed; :attr:`Did.RECEIVED` is every whole message it
  read from the reader, so grading judges what the meter received, not the bytes a reader
  wrote (which may carry the parity bit in bit 7, or be garbled on the way).
- :class:`Wire` — the kinds of :class:`WireEvent` on the link's record.
"""

from __future__ import annotations

from dataclasses import dataclass
from enum import StrEnum

from me162.protocol.framing import Message


class Sent(StrEnum):
    """What a meter's transmission is."""

    IDENTIFICATION = "identification"
    READOUT = "readout"
    OPERAND = "operand"  #: the P0 message that opens programming mode
    REPLY = "reply"  #: a data message answering a command
    ERROR = "error"  #: an error message answering a command
    NAK = "nak"
    ACK = "ack"
    BREAK = "break"  #: B0 from the meter (a refused password)
    PUSH = "push"  #: mode D
    REPLAY = "replay"  #: a recorded message played back
    NOISE = "noise"  #: junk on the line, no message


class Did(StrEnum):
    """What the meter did or noticed."""

    RECEIVED = "received"  #: a whole message from the reader (``message``; ``error``: a character error)
    REQUEST = "request"  #: a sign-on it answers
    IGNORED = "ignored"
    DISCARDED = "discarded"  #: part of a message dropped after a pause over t_a
    OPTION = "option"  #: an option select it acts on
    OPTION_ERROR = "option-error"
    FALLBACK = "fallback"  #: a readout at 300 Bd instead of what was asked
    PROGRAMMING = "programming"  #: programming mode entered
    TIMEOUT = "timeout"
    IDLE = "idle"
    RESET = "reset"
    STRAY_ACK = "stray-ack"
    REPEAT = "repeat"  #: the last answer sent again after a NAK
    NAK = "nak"  #: the meter refused a command with NAK
    COMMAND = "command"  #: a command it carries out
    BREAK = "break"  #: B0 or B1: programming mode ended
    PASSWORD = "password"  #: a wrong password
    ERROR = "error"  #: an error message instead of data
    FAULT = "fault"  #: a fault the meter applies itself
    MISMATCH = "mismatch"  #: replay: the reader deviated from the recording
    REPLAY = "replay"  #: replay: a recorded step played


class Wire(StrEnum):
    """The kinds of event on the link's record."""

    DATA = "data"
    SETTINGS = "settings"  #: the reader changed its UART
    METER = "meter"  #: see :attr:`WireEvent.did`
    FAULT = "fault"  #: see :attr:`WireEvent.fault`
    NOTE = "note"
    OPEN = "open"
    CLOSE = "close"
    PORT = "port"  #: how the reader set its port (a pty)
    ORDER_UNKNOWN = "order-unknown"  #: bytes read together with a settings change


class Dir(StrEnum):
    R2M = "r2m"  #: reader to meter
    M2R = "m2r"  #: meter to reader


@dataclass(frozen=True)
class WireEvent:
    """One thing that happened on the link, for logs, captures and grading."""

    t: float
    kind: Wire
    dir: Dir | None = None
    data: bytes = b""
    baud: int | None = None
    detail: str = ""
    sent: Sent | None = None  #: a meter transmission's kind
    did: Did | None = None  #: a meter event's kind
    message: Message | None = None  #: the message a meter event is about
    error: bool = False  #: a received message had a parity or framing error
    fault: str = ""  #: a fault's action name


@dataclass(frozen=True)
class MeterEvent:
    """Something the meter did or noticed (the meter's own record)."""

    t: float
    kind: Did
    detail: str = ""
    message: Message | None = None
    error: bool = False
