"""What both ends of the optical link share: IEC 62056-21 frames (construct definitions that
build and parse), the BCC, identification and data-set grammar, line settings and timing,
and the exception hierarchy.  No I/O happens in this package."""

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
