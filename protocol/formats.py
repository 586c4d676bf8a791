"""The construct definitions of every IEC 62056-21 message: the one definition of each frame,
which builds the virtual meter's bytes and parses the reader's (:mod:`me162.protocol.frames`
wraps them in typed messages and imports this module when it first needs it, so that a
program that never builds or parses a frame does not pay for construct at start-up).
"""

from __future__ import annotations

from typing import Any

import construct as cs

from me162.protocol.chars import ACK, CRLF, EOT, ETX, NAK, SOH, STX
from me162.protocol.constructs import BccField, UpTo

_latin1: Any = cs.ExprAdapter(
    cs.Bytes(1),
    decoder=lambda obj, ctx: obj.decode("latin-1"),
    encoder=lambda obj, ctx: obj.encode("latin-1"),
)


def _text_up_to(*terms: bytes, what: str) -> Any:
    return cs.ExprAdapter(
        UpTo(*terms, what=what),
        decoder=lambda obj, ctx: obj.decode("latin-1"),
        encoder=lambda obj, ctx: obj,
    )


#: ``/ ? [device address] ! CR LF`` (clause 6.3.1)
REQUEST_FORMAT: Any = cs.Struct(
    "start" / cs.Const(b"/?"),
    "address" / _text_up_to(b"!", what="request address"),
    "end" / cs.Const(b"!" + CRLF),
    cs.Terminated,
)

#: ``/ X X X Z [\\ W]... ident CR LF`` (clause 6.3.2)
IDENTIFICATION_FORMAT: Any = cs.Struct(
    "start" / cs.Const(b"/"),
    "manufacturer"
    / cs.ExprAdapter(
        cs.Bytes(3),
        decoder=lambda obj, ctx: obj.decode("latin-1"),
        encoder=lambda obj, ctx: obj.encode("latin-1"),
    ),
    "baud_char" / _latin1,
    "enhanced" / cs.GreedyRange(cs.Struct(cs.Const(b"\\"), "w" / _latin1)),
    "ident" / _text_up_to(CRLF, what="identification"),
    "end" / cs.Const(CRLF),
    cs.Terminated,
)

#: ``ACK V Z Y CR LF`` (clause 6.3.3)
OPTION_SELECT_FORMAT: Any = cs.Struct(
    "ack" / cs.Const(ACK),
    "v" / _latin1,
    "z" / _latin1,
    "y" / _latin1,
    "end" / cs.Const(CRLF),
    cs.Terminated,
)

_END = cs.OneOf(cs.Bytes(1), [ETX, EOT])

#: ``STX data-block ETX|EOT BCC`` (clauses 6.3.4, 6.3.9, 6.3.10); the BCC covers block + ETX.
DATA_MESSAGE_FORMAT: Any = cs.Struct(
    "stx" / cs.Const(STX),
    "body" / cs.RawCopy(cs.Struct("block" / UpTo(ETX, EOT, what="data message"), "end" / _END)),
    "bcc" / BccField(cs.this.body.data),
    cs.Terminated,
)

#: The readout form without STX/ETX/BCC allowed by clause 6.3.4: ``data-block ! CR LF``.
PLAIN_DATA_MESSAGE_FORMAT: Any = cs.Struct(
    "block" / UpTo(b"!" + CRLF, what="data block"),
    "end" / cs.Const(b"!" + CRLF),
    cs.Terminated,
)

#: ``SOH C D [STX data-set] ETX|EOT BCC`` (clauses 6.3.7, 6.3.8, 6.3.12); BCC from after SOH.
COMMAND_FORMAT: Any = cs.Struct(
    "soh" / cs.Const(SOH),
    "body"
    / cs.RawCopy(
        cs.Struct(
            "command" / _latin1,
            "type" / _latin1,
            "data"
            / cs.Optional(cs.Struct("stx" / cs.Const(STX), "dataset" / UpTo(ETX, EOT, what="command"))),
            "end" / _END,
        )
    ),
    "bcc" / BccField(cs.this.body.data),
    cs.Terminated,
)

#: ``STX ( error text ) ETX BCC`` (clause 6.3.11)
ERROR_MESSAGE_FORMAT: Any = cs.Struct(
    "stx" / cs.Const(STX),
    "body"
    / cs.RawCopy(
        cs.Struct(
            "open" / cs.Const(b"("),
            "text" / _text_up_to(b")", what="error text"),
            "close" / cs.Const(b")"),
            "end" / cs.Const(ETX),
        )
    ),
    "bcc" / BccField(cs.this.body.data),
    cs.Terminated,
)

ACK_FORMAT: Any = cs.Const(ACK)
NAK_FORMAT: Any = cs.Const(NAK)
