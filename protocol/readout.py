"""Decode a readout as it came off the wire: optional echoed request, the identification,
an optional echoed option select, then the data message (with or without STX/ETX/BCC).

This is what ``me162-read decode`` runs, and what the reader uses to turn a finished
readout into its JSON report.
"""

from __future__ import annotations

import re
from dataclasses import dataclass, field
from typing import Any

from me162.protocol.bcc import xor7
from me162.protocol.chars import CRLF
from me162.protocol.datablock import DataBlock, parse_data_block
from me162.protocol.errors import BccError, FramingError, IdentificationError
from me162.protocol.frames import (
    Identification,
    OptionSelect,
    PlainDataMessage,
    RequestMessage,
    _first_end,
    _identification,
)
from me162.protocol.framing import MAX_LINE, Kind, Message, split
from me162.protocol.line import looks_like_parity_bytes, strip_parity


@dataclass
class Readout:
    """A decoded readout and what was noticed on the way."""

    identification: Identification | None
    data: DataBlock
    bcc_present: bool
    bcc_valid: bool | None
    bcc_received: int | None = None
    bcc_computed: int | None = None
    request: RequestMessage | None = None
    option_select: OptionSelect | None = None
    parity_stripped: bool = False
    mode_d: bool = False
    warnings: list[str] = field(default_factory=list)

    def to_json(self) -> dict[str, Any]:
        return {
            "identification": None if self.identification is None else self.identification.to_json(),
            "bcc": {"present": self.bcc_present, "valid": self.bcc_valid},
            "data_sets": [ds.to_json(line) for line, ds in self.data.data_sets],
            "end_seen": self.data.end_seen,
            "mode_d": self.mode_d,
            "parity_stripped": self.parity_stripped,
            "warnings": self.warnings,
        }


def decode_readout(raw: bytes, *, verify_bcc: bool = True) -> Readout:
    """Decode ``raw``; raises :class:`FramingError`, :class:`BccError` (unless ``verify_bcc`` is
    False) or :class:`IdentificationError` with the byte offset of the problem.

    The framer cuts ``raw`` into messages; they must come in the order of a readout: noise,
    the echoed request, the identification, the echoed option select, the data message (or
    the plain block of modes A, B and D), and nothing but line ends after it."""
    raw = bytes(raw)
    fast = _canonical(raw, verify_bcc)
    return fast if fast is not None else decode_any(raw, verify_bcc=verify_bcc)


def decode_any(raw: bytes, *, verify_bcc: bool = True) -> Readout:
    """:func:`decode_readout` for any input, always the general way (cut by the framer)."""
    warnings: list[str] = []
    parity = not raw.isascii() and looks_like_parity_bytes(raw)
    if parity:
        raw = strip_parity(raw)
        warnings.append("bytes carried the even-parity bit in bit 7 (7E1 read as 8N1); stripped")
    msgs = split(raw)
    i, n = 0, len(msgs)
    skipped = 0
    while i < n and msgs[i].kind is Kind.NOISE and msgs[i].began_as is None:
        skipped += len(msgs[i].data)
        i += 1
    if skipped:
        warnings.append(f"skipped {skipped} noise byte(s) before the first message")

    def at(kind: Kind) -> Message | None:
        """The next message when it is ``kind`` (or began as one and was cut short)."""
        if i < n and kind in (msgs[i].kind, msgs[i].began_as):
            return msgs[i]
        return None

    request = None
    if (m := at(Kind.REQUEST)) is not None:
        if m.kind is Kind.NOISE:
            raise FramingError("echoed request '/?' is not terminated by '!' CR LF", m.offset)
        request = RequestMessage.from_bytes(m.data)
        i += 1
    ident = None
    if (m := at(Kind.IDENTIFICATION)) is not None:
        if m.kind is Kind.NOISE:
            raise IdentificationError(f"identification at byte {m.offset} is not terminated by CR LF")
        ident = Identification.from_bytes(m.data)
        i += 1
    option = None
    if (m := at(Kind.OPTION_SELECT)) is not None and m.kind is Kind.OPTION_SELECT:
        option = OptionSelect.from_bytes(m.data)
        i += 1

    bcc_present = False
    bcc_valid: bool | None = None
    received = computed = None
    mode_d = False
    pos = msgs[i].offset if i < n else len(raw)
    m = msgs[i] if i < n else None
    if (m is not None and Kind.DATA in (m.kind, m.began_as)) or (m is not None and m.kind is Kind.PARTIAL):
        if m.kind is Kind.NOISE:
            end = _first_end(m.data)
            if end < 0:
                raise FramingError("data message starts with STX but has no ETX", len(raw))
            raise FramingError("data message ends after ETX without its BCC byte", m.offset + end + 1)
        # The framer gave STX ... (first) ETX|EOT BCC: DATA_MESSAGE_FORMAT's shape, so the message
        # is taken apart here rather than parsed again; the BCC is computed once.
        data = m.data
        received = data[-1]
        computed = xor7(data[1:-1])
        bcc_present = True
        bcc_valid = (received & 0x7F) == computed
        if not bcc_valid:
            if verify_bcc:
                raise BccError(computed, received, m.end - 1)
            warnings.append(
                f"BCC mismatch ignored: computed 0x{computed:02X}, received 0x{received:02X} "
                f"after ETX at byte {m.end - 1}"
            )
        block = data[1:-2]
        i += 1
    elif m is not None and Kind.PLAIN in (m.kind, m.began_as):
        if m.kind is Kind.NOISE:
            if ident is None:
                raise FramingError("no identification and no data message found", pos)
            raise FramingError("data block without STX is not terminated by '!' CR LF", len(raw))
        data = m.data
        if ident is not None and data.startswith(CRLF) and len(data) > 3:
            mode_d = True  # mode D: CR LF CR LF after the ident, then the plain data block
            data = data[2:]
        block = PlainDataMessage.from_bytes(data).block
        i += 1
    elif m is not None:
        if ident is None:
            raise FramingError("no identification and no data message found", pos)
        raise FramingError(f"{m.describe()} where the data message belongs", pos)
    else:
        if ident is None:
            raise FramingError("no identification and no data message found", pos)
        block = b""
        warnings.append("identification only: no data message followed")

    trailing = b"".join(x.data for x in msgs[i:])
    if trailing.strip(b"\r\n\x00\x7f"):
        warnings.append(f"{len(trailing)} byte(s) after the data message ignored")
    data_block = _block(block, warnings)
    return Readout(
        ident,
        data_block,
        bcc_present,
        bcc_valid,
        received,
        computed,
        request,
        option,
        parity,
        mode_d,
        warnings,
    )


def _block(block: bytes, warnings: list[str]) -> DataBlock:
    data_block = parse_data_block(block)
    for number, rest in data_block.leftovers():
        warnings.append(f"line {number}: text outside data sets kept as-is: {rest!r}")
    return data_block


#: The shape nearly every readout has: an identification line (as the framer cuts lines) and an
#: STX ... ETX BCC data message, and nothing else, in 7-bit characters.
_CANONICAL = re.compile(rb"(/(?!\?)[^/\x01\x02\x06\x15\r]*\r\n)?\x02([^\x03\x04]*)([\x03\x04])(.)", re.S)


def _canonical(raw: bytes, verify_bcc: bool) -> Readout | None:
    """:func:`decode_readout` of a readout of the canonical shape, the short way; None for any
    other input (the general path then decodes it).  The tests compare the two on valid,
    corrupted, truncated and parity-bit input."""
    m = _CANONICAL.fullmatch(raw)
    if m is None or not raw.isascii():
        return None
    line, block, end, bcc = m.groups()
    ident = None
    if line is not None:
        if len(line) > MAX_LINE:
            return None
        ident = _identification(line)
        if ident is None:
            return None
    computed = xor7(block) ^ end[0]
    received = bcc[0]
    valid = (received & 0x7F) == computed
    warnings: list[str] = []
    if not valid:
        where = len(raw) - 1
        if verify_bcc:
            raise BccError(computed, received, where)
        warnings.append(
            f"BCC mismatch ignored: computed 0x{computed:02X}, received 0x{received:02X} after ETX at byte {where}"
        )
    return Readout(ident, _block(block, warnings), True, valid, received, computed, warnings=warnings)
