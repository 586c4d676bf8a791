"""The control characters of IEC 62056-21 (clause 6.3), spelt once.

Each is an :class:`Ctl` member (an ``int``, for comparing with a byte of a ``bytes`` object) and
a one-byte ``bytes`` constant of the same name (for building and searching)::

    data[0] == Ctl.STX          data.startswith(STX)
"""

from __future__ import annotations

from enum import IntEnum


class Ctl(IntEnum):
    SOH = 0x01  #: start of header: a programming command (or the P0 operand) follows
    STX = 0x02  #: start of text: a data block follows
    ETX = 0x03  #: end of text: the BCC follows
    EOT = 0x04  #: end of a partial block: the BCC follows, more blocks come on ACK
    ACK = 0x06  #: acknowledge; also the first character of an option select
    NAK = 0x15  #: negative acknowledge: repeat, please

    @property
    def byte(self) -> bytes:
        return bytes([self.value])


SOH = Ctl.SOH.byte
STX = Ctl.STX.byte
ETX = Ctl.ETX.byte
EOT = Ctl.EOT.byte
ACK = Ctl.ACK.byte
NAK = Ctl.NAK.byte
CRLF = b"\r\n"
END_OF_BLOCK = b"!\r\n"  #: the end of a readout's data block (and of a plain, unframed one)
#: the characters after which exactly one BCC byte follows
BLOCK_ENDS = frozenset((Ctl.ETX, Ctl.EOT))
