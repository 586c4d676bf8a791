"""Decode a readout as it came off the wire: optional echoed request, the identification,
an optional echoed option select, then the data message (with or without STX/ETX/BCC).

This is what ``me162-read decode`` runs, and what the reader uses to turn a finished
readout into its JSON report.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

from me162.protocol.datablock import DataBlock, parse_data_block
from me162.protocol.errors import BccError, FramingError, IdentificationError
from me162.protocol.frames import (
    ACK,
    CRLF,
    EOT,
    ETX,
    STX,
    DataMessage,
    Identification,
    OptionSelect,
    PlainDataMessage,
    RequestMessage,
)
from me162.protocol.line import looks_like_parity_bytes, strip_parity

_NOISE = {0x00, 0x7F, 0xFF}


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
    False) or :class:`IdentificationError` with the byte offset of the problem."""
    warnings: list[str] = []
    parity = looks_like_parity_bytes(raw)
    if parity:
        raw = strip_parity(raw)
        warnings.append("bytes carried the even-parity bit in bit 7 (7E1 read as 8N1); stripped")
    pos = 0
    while pos < len(raw) and raw[pos] in _NOISE:
        pos += 1
    if pos:
        warnings.append(f"skipped {pos} noise byte(s) before the first message")

    request = None
    if raw.startswith(b"/?", pos):
        end = raw.find(b"!" + CRLF, pos)
        if end < 0:
            raise FramingError("echoed request '/?' is not terminated by '!' CR LF", pos)
        request = RequestMessage.from_bytes(raw[pos : end + 3])
        pos = end + 3

    ident = None
    if raw.startswith(b"/", pos):
        end = raw.find(CRLF, pos)
        if end < 0:
            raise IdentificationError(f"identification at byte {pos} is not terminated by CR LF")
        ident = Identification.from_bytes(raw[pos : end + 2])
        pos = end + 2

    option = None
    if raw.startswith(ACK, pos) and raw.find(CRLF, pos) == pos + 4:
        option = OptionSelect.from_bytes(raw[pos : pos + 6])
        pos += 6

    mode_d = False
    if raw.startswith(CRLF, pos) and ident is not None:
        mode_d = True  # mode D: CR LF CR LF after the ident, then the plain data block
        pos += 2

    bcc_present = False
    bcc_valid: bool | None = None
    received = computed = None
    if pos < len(raw) and raw[pos] == STX[0]:
        ends = [p for p in (raw.find(ETX, pos), raw.find(EOT, pos)) if p >= 0]
        if not ends:
            raise FramingError("data message starts with STX but has no ETX", len(raw))
        end = min(ends)
        if end + 1 >= len(raw):
            raise FramingError("data message ends after ETX without its BCC byte", end + 1)
        try:
            msg = DataMessage.from_bytes(raw[pos : end + 2], verify_bcc=verify_bcc)
        except BccError as e:
            raise BccError(e.computed, e.received, pos + e.offset) from None
        bcc_present = True
        received, computed = msg.bcc, msg.computed_bcc
        bcc_valid = msg.bcc_valid
        if not bcc_valid:
            warnings.append(
                f"BCC mismatch ignored: computed 0x{computed:02X}, received 0x{received:02X} "
                f"after ETX at byte {end + 1}"
            )
        block = msg.block
        pos = end + 2
    elif pos < len(raw):
        end = raw.find(b"!" + CRLF, pos)
        if end < 0:
            if ident is None:
                raise FramingError("no identification and no data message found", pos)
            raise FramingError("data block without STX is not terminated by '!' CR LF", len(raw))
        block = PlainDataMessage.from_bytes(raw[pos : end + 3]).block
        pos = end + 3
    else:
        if ident is None:
            raise FramingError("no identification and no data message found", pos)
        block = b""
        warnings.append("identification only: no data message followed")

    trailing = raw[pos:]
    if trailing.strip(b"\r\n\x00\x7f"):
        warnings.append(f"{len(trailing)} byte(s) after the data message ignored")
    data = parse_data_block(block)
    for line in data.lines:
        if line.rest:
            warnings.append(f"line {line.number}: text outside data sets kept as-is: {line.rest!r}")
    return Readout(
        ident,
        data,
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
