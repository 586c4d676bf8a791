"""The one stream framer: bytes in, whole IEC 62056-21 messages out.

Everything in me162 that asks "where does this message end, and what kind is it?" — the
reader's session, the virtual meter's receiver, replay, the capture tools, grading and the
report — asks :class:`Framer`.  The boundary rules are written here once:

- ``SOH`` or ``STX`` starts a block message, which ends one byte after the first ``ETX`` or
  ``EOT``: that byte is the BCC, whatever its value (control characters included).  A command
  (``SOH``) may hold an ``STX``; nothing restarts a block message but its end.
- ``/`` starts a line that ends at ``CR LF``: a request (``/?...!``) or an identification.  A
  new ``/``, or an ``SOH``, ``STX``, ``ACK`` or ``NAK``, inside the line cuts it: the part before
  is noise (a message cut short), and the new character starts the next message.
- ``ACK`` is an acknowledgement, or the first character of an option select ``ACK V Z Y CR LF``
  (:class:`AckRule` says how to tell, by who is listening).  ``NAK`` is one character.
- Printable text (and ``CR``, ``LF``) not inside a message is a plain data block when it ends
  with ``! CR LF`` (modes A/B without STX, mode D pushes); a ``/`` or a control character in
  it makes what came before noise.
- Anything else is noise; consecutive noise bytes come out as one message (once something
  else follows them, or the stream ends).

The framer knows nothing of time: a caller that gives up on a message (an inter-character
timeout) calls :meth:`Framer.clear`.  It never raises on input and scans every byte a bounded
number of times, however the input is cut into pieces.  What a message *means* (parsing it,
checking its BCC) is :mod:`me162.protocol.frames`' business; :class:`Message` only carries the
verdict of the BCC, computed once.
"""

from __future__ import annotations

import re
from collections.abc import Iterator
from enum import Enum, StrEnum
from typing import NamedTuple

from me162.protocol.bcc import xor7
from me162.protocol.chars import Ctl


class Kind(StrEnum):
    """What kind of message a run of bytes is."""

    REQUEST = "request"  #: ``/ ? address ! CR LF``
    IDENTIFICATION = "identification"  #: ``/ XXX Z ident CR LF``
    OPTION_SELECT = "option-select"  #: ``ACK V Z Y CR LF``
    ACK = "ack"
    NAK = "nak"
    DATA = "data"  #: ``STX block ETX BCC`` (a readout, an R1 answer, an error message)
    PARTIAL = "partial"  #: ``STX block EOT BCC``: a partial block
    COMMAND = "command"  #: ``SOH C D [STX data] ETX|EOT BCC`` (P0 from the meter, R1, B0, ...)
    PLAIN = "plain"  #: a data block ending in ``! CR LF`` without STX (modes A/B, mode D pushes)
    NOISE = "noise"  #: bytes that form no message: junk, or a message cut short

    @property
    def framed(self) -> bool:
        """Whether messages of this kind end with a BCC."""
        return self in (Kind.DATA, Kind.PARTIAL, Kind.COMMAND)


class AckRule(Enum):
    """How an ``ACK`` is read, which depends on who listens."""

    #: an ACK followed by three printable characters and CR LF is an option select, any other
    #: ACK stands alone; a stream that ends in the middle of a possible option select waits
    AUTO = "auto"
    #: every ACK stands alone (the meter in programming mode; the reader listening to a meter)
    ALONE = "alone"
    #: an ACK starts an option select of six characters, or fewer up to CR LF (the meter
    #: waiting for one, which reads what comes and then judges it)
    OPTION = "option"


class Message(NamedTuple):
    """One message (or one run of noise) and where it starts in the stream (a named tuple:
    the framer makes one for every message the meter and the reader exchange)."""

    kind: Kind
    data: bytes
    offset: int  #: of the first byte, counted from the framer's creation
    began_as: Kind | None = None  #: for noise that is a message cut short: what it began as

    @property
    def end(self) -> int:
        return self.offset + len(self.data)

    @property
    def bcc(self) -> int | None:
        """The received BCC byte of a block message (None for other kinds)."""
        return self.data[-1] if self.kind.framed else None

    @property
    def computed_bcc(self) -> int | None:
        return xor7(self.data[1:-1]) if self.kind.framed else None

    @property
    def bcc_ok(self) -> bool | None:
        """Whether the BCC matches (its 7 data bits; None for messages without one)."""
        if not self.kind.framed:
            return None
        return (self.data[-1] & 0x7F) == xor7(self.data[1:-1])

    @property
    def name(self) -> str:
        """A command's two letters (``R1``, ``B0``, ``P0``); empty for other kinds."""
        if self.kind is Kind.COMMAND and len(self.data) >= 3:
            return self.data[1:3].decode("latin-1")
        return ""

    @property
    def is_break(self) -> bool:
        return self.kind is Kind.COMMAND and self.data[1:2] == b"B"

    @property
    def text(self) -> str:
        """What a block message carries between STX/SOH and ETX/EOT, or the whole line."""
        if self.kind.framed:
            return self.data[1:-2].decode("latin-1")
        return self.data.decode("latin-1")

    def describe(self) -> str:
        """One line for a person: what the message is and, for block messages, the BCC verdict."""
        return describe(self)


# The characters that start a message; inside a line or a plain block they cut it.
_STARTS = b"/\x01\x02\x06\x15"
_LINE_STOP = re.compile(rb"\r\n|[/\x01\x02\x06\x15]")
_BLOCK_END = re.compile(rb"[\x03\x04]")
_PLAIN_STOP = re.compile(rb"!\r\n|[^\x20-\x7e\r\n]|/")
_NOISE_RUN = re.compile(rb"[^\x20-\x7e\r\n\x01\x02\x06\x15]+")
_OPTION = re.compile(rb"\x06[\x20-\x7e]{3}\r\n")
_OPTION_PREFIX = re.compile(rb"\x06(?:[\x20-\x7e]{0,2}|[\x20-\x7e]{3}\r?)\Z")

_new = tuple.__new__
MAX_LINE = 128  #: a ``/`` line longer than this (CR LF included) is noise
MAX_BLOCK = 1 << 20  #: a block message or plain block longer than this is noise


class Framer:
    """Finds message boundaries in a byte stream fed in pieces of any size.

    >>> f = Framer()
    >>> f.feed(b"/?!\\r\\n/ISK5ME162-0033\\r\\n\\x06050\\r")
    >>> [m.kind.value for m in f]
    ['request', 'identification']
    >>> f.feed(b"\\n")
    >>> [m.kind.value for m in f]
    ['option-select']
    """

    def __init__(
        self,
        *,
        ack: AckRule = AckRule.AUTO,
        max_line: int = MAX_LINE,
        max_block: int = MAX_BLOCK,
        blocks: bool = True,
    ) -> None:
        self.ack = ack
        #: False: SOH and STX start nothing and are noise, for a listener to whom no block
        #: message can come (mode D pushes are plain blocks): a stray STX in garbage would
        #: otherwise hold every later message in a block that never ends
        self.blocks = blocks
        self.max_line = max_line
        self.max_block = max_block
        self._buf = bytearray()
        self._p = 0  #: where the pending bytes start in ``_buf`` (what is before is taken)
        self._base = 0  #: stream offset of ``_buf[0]``
        self._scan = 0  #: where the search for the current candidate's end resumes (in _buf)

    # --- feeding and taking ------------------------------------------------------------------

    def feed(self, data: bytes) -> None:
        if self._p and self._p >= len(self._buf) >> 1:  # drop what was taken, now and then
            del self._buf[: self._p]
            self._base += self._p
            self._scan = max(0, self._scan - self._p)
            self._p = 0
        self._buf += data

    def next(self, *, final: bool = False) -> Message | None:
        """The next complete message, or None when more bytes are needed.  With ``final`` the
        stream has ended: what is left comes out as noise (a message cut short)."""
        if self._p >= len(self._buf):
            return None
        msg = self._one(final)
        if msg is not None:
            self._p += len(msg.data)
            self._scan = self._p
        return msg

    def __iter__(self) -> Iterator[Message]:
        """The complete messages fed so far (more may follow from later bytes)."""
        while (msg := self.next()) is not None:
            yield msg

    def flush(self) -> list[Message]:
        """Every message left, the stream having ended (an unfinished one as noise)."""
        out = []
        while (msg := self.next(final=True)) is not None:
            out.append(msg)
        return out

    def clear(self) -> None:
        """Forget what is pending (the caller gave up on it); offsets keep counting."""
        self._base += len(self._buf)
        self._buf.clear()
        self._p = self._scan = 0

    @property
    def pending(self) -> bytes:
        """The bytes not yet taken as a message."""
        return bytes(self._buf[self._p :])

    @property
    def offset(self) -> int:
        """The stream offset of the first pending byte."""
        return self._base + self._p

    # --- the rules (positions are indices into _buf; the candidate starts at _p) -------------

    def _msg(self, kind: Kind, end: int, began_as: Kind | None = None) -> Message:
        p = self._p
        return _new(Message, (kind, bytes(self._buf[p:end]), self._base + p, began_as))

    def _wait(self, final: bool, began_as: Kind) -> Message | None:
        """The stream stops inside a message: wait for more, or (final) call it noise."""
        if final:
            return self._msg(Kind.NOISE, len(self._buf), began_as)
        self._scan = max(self._p, len(self._buf) - 2)  # a two-byte terminator may straddle the cut
        return None

    def _one(self, final: bool) -> Message | None:
        buf = self._buf
        first = buf[self._p]
        if first == 0x2F:  # "/"
            return self._line(final)
        if first in (Ctl.STX, Ctl.SOH):
            return self._block(final) if self.blocks else self._msg(Kind.NOISE, self._p + 1)
        if first == Ctl.ACK:
            return self._ack(final)
        if first == Ctl.NAK:
            return self._msg(Kind.NAK, self._p + 1)
        if 0x20 <= first <= 0x7E or first in (0x0D, 0x0A):
            return self._plain(final)
        m = _NOISE_RUN.match(buf, self._p)
        assert m is not None
        if m.end() == len(buf) and not final:
            return None  # the run may go on: noise comes out as one message
        return self._msg(Kind.NOISE, m.end())

    def _line(self, final: bool) -> Message | None:
        buf, p = self._buf, self._p
        began = Kind.REQUEST if buf[p + 1 : p + 2] == b"?" else Kind.IDENTIFICATION
        m = _LINE_STOP.search(buf, max(p + 1, self._scan))
        if m is None:
            if len(buf) - p > self.max_line:
                return self._msg(Kind.NOISE, len(buf), began)
            return self._wait(final, began)
        if m.group() != b"\r\n":  # a new message starts inside the line: it was cut short
            return self._msg(Kind.NOISE, m.start(), began)
        end = m.end()
        if end - p > self.max_line:
            return self._msg(Kind.NOISE, end, began)
        if began is Kind.REQUEST:
            return self._msg(Kind.REQUEST if buf[end - 3] == 0x21 else Kind.NOISE, end, Kind.REQUEST)
        if end - p == 3:  # "/" CR LF: no identification
            return self._msg(Kind.NOISE, end, began)
        return self._msg(Kind.IDENTIFICATION, end)

    def _block(self, final: bool) -> Message | None:
        buf, p = self._buf, self._p
        began = Kind.COMMAND if buf[p] == Ctl.SOH else Kind.DATA
        m = _BLOCK_END.search(buf, max(p + 1, self._scan))
        if m is None or m.end() >= len(buf):  # no end yet, or no BCC after it yet
            if len(buf) - p > self.max_block:
                return self._msg(Kind.NOISE, _next_start(buf, p + 1), began)
            if m is not None and not final:
                self._scan = m.start()
                return None
            return self._wait(final, began)
        end = m.end() + 1
        if end - p > self.max_block:
            return self._msg(Kind.NOISE, end, began)
        if began is Kind.DATA and buf[m.start()] == Ctl.EOT:
            return self._msg(Kind.PARTIAL, end)
        return self._msg(began, end)

    def _ack(self, final: bool) -> Message | None:
        buf, p = self._buf, self._p
        if self.ack is AckRule.ALONE:
            return self._msg(Kind.ACK, p + 1)
        if self.ack is AckRule.OPTION:
            crlf = buf.find(b"\r\n", p + 1, p + 6)
            if crlf >= 0 or len(buf) - p >= 6:
                end = crlf + 2 if crlf >= 0 else p + 6
                ok = _OPTION.fullmatch(buf, p, end) is not None
                return self._msg(Kind.OPTION_SELECT if ok else Kind.NOISE, end, Kind.OPTION_SELECT)
            return self._wait(final, Kind.OPTION_SELECT)
        if _OPTION.match(buf, p):
            return self._msg(Kind.OPTION_SELECT, p + 6)
        if not final and _OPTION_PREFIX.match(buf, p):
            return None  # perhaps the start of an option select
        return self._msg(Kind.ACK, p + 1)

    def _plain(self, final: bool) -> Message | None:
        buf, p = self._buf, self._p
        m = _PLAIN_STOP.search(buf, max(p, self._scan))
        if m is None:
            if len(buf) - p > self.max_block:
                return self._msg(Kind.NOISE, len(buf), Kind.PLAIN)
            return self._wait(final, Kind.PLAIN)
        if m.group() == b"!\r\n":
            return self._msg(Kind.PLAIN, m.end())
        return self._msg(Kind.NOISE, m.start(), Kind.PLAIN)


def _next_start(buf: bytearray, pos: int) -> int:
    """The position of the next character that may start a message (or the end)."""
    hits = [i for i in (buf.find(c, pos) for c in (b"/", b"\x01", b"\x02")) if i >= 0]
    return min(hits) if hits else len(buf)


def split(data: bytes, *, ack: AckRule = AckRule.AUTO) -> list[Message]:
    """Every message in a finished stream, in order (the last one as noise if cut short).

    >>> [m.kind.value for m in split(b"\\x06050\\r\\n\\x01B0\\x03q")]
    ['option-select', 'command']
    """
    framer = Framer(ack=ack)
    framer.feed(data)
    return framer.flush()


def classify(data: bytes) -> Message:
    """The one message ``data`` is, when it is exactly one; otherwise noise."""
    msgs = split(data)
    if len(msgs) == 1:
        return msgs[0]
    return Message(Kind.NOISE, bytes(data), 0)


def starts_message(byte: int) -> bool:
    """Whether this character begins a message (``/``, SOH, STX, ACK, NAK)."""
    return byte in _STARTS


# --- describing ------------------------------------------------------------------------------


def _short(text: str, limit: int = 60) -> str:
    text = text.replace("\r\n", "⏎").replace("\x02", " STX ")
    return text if len(text) <= limit else text[: limit - 3] + "..."


def bcc_verdict(msg: Message) -> str:
    if not msg.kind.framed:
        return ""
    if msg.bcc_ok:
        return "BCC ok"
    return f"BCC WRONG (0x{msg.data[-1]:02X}, computed 0x{msg.computed_bcc:02X})"


def describe(msg: Message) -> str:
    """A one-line reading of one message, with its decoded meaning and the BCC verdict."""
    data = msg.data
    k = msg.kind
    if k is Kind.REQUEST:
        return f"request {data[:-2].decode('latin-1')}"
    if k is Kind.IDENTIFICATION:
        return f"identification {data[:-2].decode('latin-1')}"
    if k is Kind.OPTION_SELECT:
        v, z, y = (chr(c) for c in data[1:4])
        what = {"0": "readout", "1": "programming"}.get(y, f"mode {y}")
        return f"option select V={v} Z={z} Y={y} ({what})"
    if k is Kind.ACK:
        return "ACK"
    if k is Kind.NAK:
        return "NAK"
    if k is Kind.COMMAND:
        body = data[3:-2].decode("latin-1").replace("\x02", "", 1)
        shown = f" {_short(body)}" if body else ""
        return f"command {msg.name}{shown} ({len(data)} bytes, {bcc_verdict(msg)})"
    if k in (Kind.DATA, Kind.PARTIAL):
        what = "partial block" if k is Kind.PARTIAL else "data"
        return f"{what} {_short(msg.text)!r} ({len(data)} bytes, {bcc_verdict(msg)})"
    if k is Kind.PLAIN:
        return f"plain data block {_short(data.decode('latin-1'))!r} ({len(data)} bytes, no BCC)"
    if msg.began_as is not None:
        return f"{msg.began_as.value} cut short ({len(data)} bytes): {data[:24]!r}"
    if all(0x20 <= b <= 0x7E or b in (0x0D, 0x0A) for b in data):
        return f"text ({len(data)} bytes): {data[:40]!r}"
    return f"noise ({len(data)} bytes): {data[:16].hex(' ')}"
