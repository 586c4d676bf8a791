"""What both ends of the optical link share: IEC 62056-21 frames (construct definitions that
build and parse), the BCC, identification and data-set grammar, line settings and timing,
and the exception hierarchy.  No I/O happens in this package.

Its names are imported on first use: ``import me162.protocol.errors`` (every command line does)
must not pay for construct and the frame definitions.
"""

from __future__ import annotations

import importlib

TYPE_CHECKING = False  # typing itself costs a start-up 5 to 15 ms

if TYPE_CHECKING:
    from typing import Any

    from me162.protocol.bcc import bcc_of_message, xor7
    from me162.protocol.datablock import DataBlock, DataLine, DataSet, Obis, Value, parse_data_block
    from me162.protocol.errors import (
        AddressError,
        BccError,
        CaptureError,
        ConfigError,
        DataError,
        FramingError,
        IdentificationError,
        Me162Error,
        ParityError,
        ProtocolError,
        ProtocolTimeout,
    )
    from me162.protocol.frames import (
        BREAK,
        Ack,
        Command,
        DataMessage,
        ErrorMessage,
        Identification,
        Nak,
        OptionSelect,
        PlainDataMessage,
        RequestMessage,
    )
    from me162.protocol.line import LineSettings
    from me162.protocol.readout import Readout, decode_readout

_HOME = {
    "bcc_of_message": "bcc",
    "xor7": "bcc",
    "DataBlock": "datablock",
    "DataLine": "datablock",
    "DataSet": "datablock",
    "Obis": "datablock",
    "Value": "datablock",
    "parse_data_block": "datablock",
    "AddressError": "errors",
    "BccError": "errors",
    "CaptureError": "errors",
    "ConfigError": "errors",
    "DataError": "errors",
    "FramingError": "errors",
    "IdentificationError": "errors",
    "Me162Error": "errors",
    "ParityError": "errors",
    "ProtocolError": "errors",
    "ProtocolTimeout": "errors",
    "BREAK": "frames",
    "Ack": "frames",
    "Command": "frames",
    "DataMessage": "frames",
    "ErrorMessage": "frames",
    "Identification": "frames",
    "Nak": "frames",
    "OptionSelect": "frames",
    "PlainDataMessage": "frames",
    "RequestMessage": "frames",
    "LineSettings": "line",
    "Readout": "readout",
    "decode_readout": "readout",
}

__all__ = [
    "BREAK",
    "Ack",
    "AddressError",
    "BccError",
    "CaptureError",
    "Command",
    "ConfigError",
    "DataBlock",
    "DataError",
    "DataLine",
    "DataMessage",
    "DataSet",
    "ErrorMessage",
    "FramingError",
    "Identification",
    "IdentificationError",
    "LineSettings",
    "Me162Error",
    "Nak",
    "Obis",
    "OptionSelect",
    "ParityError",
    "PlainDataMessage",
    "ProtocolError",
    "ProtocolTimeout",
    "Readout",
    "RequestMessage",
    "Value",
    "bcc_of_message",
    "decode_readout",
    "parse_data_block",
    "xor7",
]


def __getattr__(name: str) -> Any:
    module = _HOME.get(name)
    if module is None:
        raise AttributeError(f"module 'me162.protocol' has no attribute {name!r}")
    value = getattr(importlib.import_module(f"me162.protocol.{module}"), name)
    globals()[name] = value
    return value
