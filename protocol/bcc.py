"""The block check character (BCC) of IEC 62056-21 (clause 6.2, ISO/IEC 1155).

XOR of the 7 data bits of every character from the one after the first SOH or STX up to and
including the ETX or EOT that ends the message.  The BCC byte itself may be any value,
control characters included.
"""

from __future__ import annotations

from collections.abc import Iterable

SOH = 0x01
STX = 0x02


def xor7(data: Iterable[int]) -> int:
    """XOR of the low 7 bits of every byte (parity bits in bit 7 are ignored)."""
    x = 0
    for c in data:
        x ^= c
    return x & 0x7F


def bcc_of_message(message: bytes) -> int:
    """BCC of a whole message that starts with SOH/STX and ends with ETX/EOT (no BCC byte).

    >>> hex(bcc_of_message(b"\\x01B0\\x03"))
    '0x71'
    """
    starts = [p for p in (message.find(bytes([SOH])), message.find(bytes([STX]))) if p >= 0]
    if not starts:
        raise ValueError("message has neither SOH nor STX: no BCC range")
    return xor7(message[min(starts) + 1 :])
