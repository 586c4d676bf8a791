"""Every IEC 62056-21 message as one construct definition that both builds and parses.

The virtual meter builds its bytes with these definitions and the reader parses with them, so
the two ends cannot disagree about framing.  The ``*_FORMAT`` objects in
:mod:`me162.protocol.formats` are the construct definitions (imported when first needed); the
dataclasses here are the typed API the rest of the project uses.

Parsing is strict about framing and the BCC only; the content (idents, data sets) is parsed
leniently elsewhere because real meters bend every content rule.
"""

from __future__ import annotations

import functools
import re
from dataclasses import dataclass
from typing import Any, ClassVar

from me162.protocol.bcc import xor7
from me162.protocol.chars import ACK, CRLF, EOT, ETX, NAK, SOH, STX, Ctl
from me162.protocol.errors import (
    AddressError,
    BccError,
    DataError,
    FramingError,
    IdentificationError,
    Me162Error,
)
from me162.protocol.line import MODE_B_BAUDS, MODE_C_BAUDS, T_R_MIN, T_R_MIN_FAST


def _formats() -> Any:
    from me162.protocol import formats

    return formats


def _parse(fmt: str, data: bytes, what: str, *, verify_bcc: bool = True) -> Any:
    import construct as cs

    try:
        return getattr(_formats(), fmt).parse(bytes(data), verify_bcc=verify_bcc)
    except Me162Error:
        raise
    except cs.ConstructError as e:
        detail = str(e).splitlines()[-1].strip()
        detail = re.sub(r"^\(parsing\)\s*->\s*[\w\s>-]*->?\s*", "", detail)
        raise FramingError(f"not a valid {what} ({detail}): {bytes(data)[:40]!r}") from None


def _build(fmt: str, obj: Any, what: str) -> bytes:
    import construct as cs

    try:
        return bytes(getattr(_formats(), fmt).build(obj))
    except Me162Error:
        raise
    except cs.ConstructError as e:
        raise DataError(f"cannot build {what}: {e}") from None


# --- typed messages ------------------------------------------------------------------------

_ADDRESS_RE = re.compile(r"[0-9A-Za-z ]{0,32}")


def validate_address(address: str) -> str:
    """Check a device address against clause 6.3.14 item 22 and return it."""
    if len(address) > 32:
        raise AddressError(f"device address {address!r} is {len(address)} characters; max 32")
    if not _ADDRESS_RE.fullmatch(address):
        raise AddressError(f"device address {address!r} may hold only 0-9, A-Z, a-z and space")
    return address


def addresses_match(requested: str, meter: str) -> bool:
    """Whether a request for ``requested`` is for a meter whose address is ``meter``.

    An empty request address is the general address that every meter answers; otherwise
    leading zeros are ignored on both sides (``10203`` = ``000010203``) and case and spaces count.
    """
    if requested == "":
        return True
    return requested.lstrip("0") == meter.lstrip("0")


@dataclass(frozen=True)
class RequestMessage:
    """``/?address!CRLF`` from the reader (HHU) to the meter."""

    address: str = ""

    def to_bytes(self) -> bytes:
        validate_address(self.address)
        return _build("REQUEST_FORMAT", {"address": self.address.encode("ascii")}, "request")

    @classmethod
    def from_bytes(cls, data: bytes) -> RequestMessage:
        c = _parse("REQUEST_FORMAT", data, "request message")
        return cls(c.address)


#: Manufacturer codes (the three letters after ``/``) of the meters in the captures, as the
#: DLMS UA's FLAG ID list registers them.
MANUFACTURERS: dict[str, str] = {
    "ACE": "Actaris (Itron)",
    "DZG": "DZG Metering",
    "EBZ": "eBZ",
    "ELS": "Elster",
    "EMH": "EMH metering",
    "ESY": "EasyMeter",
    "HAG": "Hager",
    "ISK": "Iskraemeco",
    "KMP": "Kamstrup",
    "LGZ": "Landis+Gyr",
    "LOG": "Logarex",
    "LUG": "Landis+Gyr (heat meters)",
}


#: IDENTIFICATION_FORMAT as one regular expression: GreedyRange is possessive (it never gives a
#: ``\\W`` back to the ident) and UpTo stops at the first CR LF, which must end the message.
_IDENTIFICATION_RE = re.compile(rb"/(.{3})(.)((?:\\.)*+)((?:(?!\r\n).)*)\r\n", re.S)


@functools.lru_cache(maxsize=256)
def _identification(data: bytes) -> Identification | None:
    """IDENTIFICATION_FORMAT's result the short way (the tests prove they agree), or None for
    what it would refuse.  Remembered: a reader reads the same meter again and again, and an
    Identification is immutable."""
    m = _IDENTIFICATION_RE.fullmatch(data)
    if m is None:
        return None
    man, z, enhanced, ident = m.groups()
    return Identification(
        man.decode("latin-1"),
        z.decode("latin-1"),
        ident.decode("latin-1"),
        tuple(enhanced[1::2].decode("latin-1")),
    )


@dataclass(frozen=True)
class Identification:
    """``/XXXZ[\\W]ident CRLF`` from the meter; ``raw`` is the line without CR LF."""

    manufacturer: str
    baud_char: str
    ident: str
    enhanced: tuple[str, ...] = ()

    @property
    def raw(self) -> str:
        return (
            "/" + self.manufacturer + self.baud_char + "".join("\\" + w for w in self.enhanced) + self.ident
        )

    @property
    def mode(self) -> str:
        """Protocol mode the baud character announces: A, B, C, or E (mode C plus ``\\2``).

        Mode D cannot be told from the ident: a mode D meter pushes its ident unasked.
        """
        z = self.baud_char
        if z in "0123456789" and z != "":
            return "E" if "2" in self.enhanced else "C"
        if z in "ABCDEFGHI" and z != "":
            return "B"
        return "A"

    @property
    def baud(self) -> int | None:
        """The highest baud rate the meter offers (None for a reserved character)."""
        z = self.baud_char
        if self.mode in ("C", "E"):
            return MODE_C_BAUDS.get(z)
        if self.mode == "B":
            return MODE_B_BAUDS.get(z)
        return 300

    @property
    def maker(self) -> str | None:
        """The manufacturer's name, when its code is a known one (case does not matter)."""
        return MANUFACTURERS.get(self.manufacturer.upper())

    @property
    def fast_reaction(self) -> bool:
        """A lowercase third letter promises a minimum reaction time of 20 ms."""
        return len(self.manufacturer) == 3 and self.manufacturer[2].islower()

    @property
    def reaction_time_ms(self) -> int:
        return round((T_R_MIN_FAST if self.fast_reaction else T_R_MIN) * 1000)

    @property
    def mode_e_capable(self) -> bool:
        return "2" in self.enhanced

    @property
    def plausible(self) -> str | None:
        """Why this cannot be a meter's identification (bytes misread at another speed, noise),
        or None: the manufacturer is three letters, Z and the ident are printable and the
        ident is at most 32 characters (16 by the standard; j62056 tolerates 32)."""
        if not (len(self.manufacturer) == 3 and self.manufacturer.isascii() and self.manufacturer.isalpha()):
            return f"manufacturer {self.manufacturer!r} is not three letters"
        for what, text in (("baud character", self.baud_char), ("ident", self.ident)):
            if any(not 0x20 <= ord(ch) <= 0x7E for ch in text):
                return f"{what} {text!r} holds characters that are not printable"
        if len(self.ident) > 32:
            return f"ident of {len(self.ident)} characters (at most 16 by the standard)"
        return None

    def to_bytes(self) -> bytes:
        if len(self.manufacturer) != 3 or len(self.baud_char) != 1:
            raise IdentificationError("manufacturer needs 3 characters and the baud character 1")
        for part in (self.manufacturer, self.baud_char, self.ident, *self.enhanced):
            if any(ch in part for ch in "/!\r\n") or any(ord(ch) < 0x20 for ch in part):
                raise IdentificationError(f"{part!r} may not hold '/', '!' or control characters")
        if any(len(w) != 1 for w in self.enhanced):
            raise IdentificationError("each \\W enhanced identification is one character")
        obj = {
            "manufacturer": self.manufacturer,
            "baud_char": self.baud_char,
            "enhanced": [{"w": w} for w in self.enhanced],
            "ident": self.ident.encode("latin-1"),
        }
        return _build("IDENTIFICATION_FORMAT", obj, "identification")

    @classmethod
    def from_bytes(cls, data: bytes) -> Identification:
        if not data.startswith(b"/"):
            raise IdentificationError(f"identification must start with '/': {data[:40]!r}")
        if not data.endswith(CRLF):
            raise IdentificationError(f"identification must end with CR LF: {data[:40]!r}")
        if len(data) < 7:
            raise IdentificationError(f"identification too short: {data!r}")
        fast = _identification(bytes(data))
        if fast is not None:
            return fast
        try:
            c = _parse("IDENTIFICATION_FORMAT", data, "identification")
        except FramingError as e:
            raise IdentificationError(str(e)) from None
        return cls(c.manufacturer, c.baud_char, c.ident, tuple(x.w for x in c.enhanced))

    @classmethod
    def from_line(cls, line: str) -> Identification:
        """Parse ``/ISK5ME162-0033`` (with or without CR LF)."""
        raw = line.encode("latin-1")
        return cls.from_bytes(raw if raw.endswith(CRLF) else raw + CRLF)

    def to_json(self) -> dict[str, Any]:
        return {
            "raw": self.raw,
            "manufacturer": self.manufacturer,
            "baud_char": self.baud_char,
            "mode": self.mode,
            "baud": self.baud,
            "reaction_time_ms": self.reaction_time_ms,
            "enhanced": list(self.enhanced),
            "ident": self.ident,
        }


@dataclass(frozen=True)
class OptionSelect:
    """``ACK V Z Y CRLF``: protocol control V, baud character Z, mode control Y."""

    v: str = "0"
    z: str = "0"
    y: str = "0"

    PROTOCOLS: ClassVar[dict[str, str]] = {"0": "normal", "1": "secondary", "2": "HDLC"}

    @property
    def baud(self) -> int | None:
        return MODE_C_BAUDS.get(self.z)

    @property
    def mode_control(self) -> str:
        """``readout`` (0), ``programming`` (1), ``binary`` (2), ``manufacturer`` (6-9) or ``reserved``."""
        return {"0": "readout", "1": "programming", "2": "binary"}.get(
            self.y, "manufacturer" if self.y in "6789" and self.y else "reserved"
        )

    def to_bytes(self) -> bytes:
        return _build("OPTION_SELECT_FORMAT", {"v": self.v, "z": self.z, "y": self.y}, "option select")

    @classmethod
    def from_bytes(cls, data: bytes) -> OptionSelect:
        c = _parse("OPTION_SELECT_FORMAT", data, "option select message")
        return cls(c.v, c.z, c.y)


def _first_end(data: bytes) -> int:
    """The position of the first ETX or EOT (-1: none)."""
    etx, eot = data.find(ETX), data.find(EOT)
    return etx if eot < 0 or 0 <= etx < eot else eot


def _message_bytes(fmt: str, body: dict[str, Any], bcc: int | None, what: str) -> bytes:
    return _build(fmt, {"body": {"value": body}, "bcc": bcc}, what)


@dataclass(frozen=True)
class DataMessage:
    """``STX block ETX BCC`` (or ``EOT`` for a partial block).

    ``block`` is everything between STX and ETX/EOT; for a readout it ends with ``!CRLF``.
    After parsing, ``bcc`` is the received byte; when building, ``None`` means "compute it".
    """

    block: bytes
    partial: bool = False
    bcc: int | None = None

    def to_bytes(self) -> bytes:
        end = EOT if self.partial else ETX
        return _message_bytes(
            "DATA_MESSAGE_FORMAT", {"block": self.block, "end": end}, self.bcc, "data message"
        )

    @property
    def computed_bcc(self) -> int:
        return xor7(self.block + (EOT if self.partial else ETX))

    @property
    def bcc_valid(self) -> bool:
        return self.bcc is None or (self.bcc & 0x7F) == self.computed_bcc

    @classmethod
    def from_bytes(cls, data: bytes, *, verify_bcc: bool = True) -> DataMessage:
        data = bytes(data)
        end = _first_end(data)
        if data[:1] == STX and end > 0 and end + 2 == len(data):
            # DATA_MESSAGE_FORMAT's result, the short way (tests prove they agree)
            bcc = data[-1]
            if verify_bcc and (bcc & 0x7F) != xor7(data[1 : end + 1]):
                raise BccError(xor7(data[1 : end + 1]), bcc, end + 1)
            return cls(data[1:end], data[end] == Ctl.EOT, bcc)
        c = _parse("DATA_MESSAGE_FORMAT", data, "data message", verify_bcc=verify_bcc)
        return cls(c.body.value.block, c.body.value.end == EOT, c.bcc)


@dataclass(frozen=True)
class PlainDataMessage:
    """The readout form without STX, ETX and BCC; ``block`` includes the final ``!CRLF``."""

    block: bytes

    def to_bytes(self) -> bytes:
        if not self.block.endswith(b"!" + CRLF):
            raise DataError("a plain data message ends with '!' CR LF")
        return _build("PLAIN_DATA_MESSAGE_FORMAT", {"block": self.block[:-3]}, "plain data message")

    @classmethod
    def from_bytes(cls, data: bytes) -> PlainDataMessage:
        c = _parse("PLAIN_DATA_MESSAGE_FORMAT", data, "plain data message")
        return cls(c.block + b"!" + CRLF)


@dataclass(frozen=True)
class Command:
    """``SOH C D [STX data-set] ETX|EOT BCC``: P(assword), W(rite), R(ead), E(xecute), B(reak).

    ``data`` is the data set between STX and ETX (None when the command has no STX, as B0).
    """

    command: str
    type: str
    data: bytes | None = None
    partial: bool = False
    bcc: int | None = None

    @property
    def name(self) -> str:
        return self.command + self.type

    @property
    def is_break(self) -> bool:
        return self.command == "B"

    @property
    def address(self) -> str:
        """The data set's address (the register for R/W commands)."""
        if self.data is None:
            return ""
        text = self.data.decode("latin-1")
        return text.split("(", 1)[0]

    @property
    def value(self) -> str:
        """What stands between the parentheses of the data set."""
        if self.data is None or b"(" not in self.data:
            return ""
        inner = self.data.decode("latin-1").split("(", 1)[1]
        return inner[: inner.rfind(")")] if ")" in inner else inner

    def to_bytes(self) -> bytes:
        body = {
            "command": self.command,
            "type": self.type,
            "data": None if self.data is None else {"dataset": self.data},
            "end": EOT if self.partial else ETX,
        }
        return _message_bytes("COMMAND_FORMAT", body, self.bcc, "command message")

    @property
    def bcc_valid(self) -> bool:
        stx = b"" if self.data is None else STX + self.data
        computed = xor7(self.name.encode("latin-1") + stx + (EOT if self.partial else ETX))
        return self.bcc is None or (self.bcc & 0x7F) == computed

    @classmethod
    def from_bytes(cls, data: bytes, *, verify_bcc: bool = True) -> Command:
        c = _parse("COMMAND_FORMAT", data, "command message", verify_bcc=verify_bcc)
        v = c.body.value
        return cls(v.command, v.type, None if v.data is None else v.data.dataset, v.end == EOT, c.bcc)

    # Convenience constructors for the commands readers send.
    @classmethod
    def read(cls, address: str, value: str = "", *, partial_blocks: bool = False) -> Command:
        return cls("R", "3" if partial_blocks else "1", f"{address}({value})".encode("latin-1"))

    @classmethod
    def write(cls, address: str, value: str) -> Command:
        return cls("W", "1", f"{address}({value})".encode("latin-1"))

    @classmethod
    def password(cls, password: str, kind: str = "1") -> Command:
        return cls("P", kind, f"({password})".encode("latin-1"))

    @classmethod
    def break_(cls) -> Command:
        return cls("B", "0")


BREAK = Command.break_()


@dataclass(frozen=True)
class ErrorMessage:
    """``STX (error text) ETX BCC``: the meter could not carry out a well-formed command."""

    text: str
    bcc: int | None = None

    def to_bytes(self) -> bytes:
        if len(self.text) > 32 or any(ch in self.text for ch in "()*/!"):
            raise DataError(f"error text {self.text!r}: max 32 characters, none of ( ) * / !")
        body = {"text": self.text.encode("latin-1"), "end": ETX}
        return _message_bytes("ERROR_MESSAGE_FORMAT", body, self.bcc, "error message")

    @classmethod
    def from_bytes(cls, data: bytes, *, verify_bcc: bool = True) -> ErrorMessage:
        c = _parse("ERROR_MESSAGE_FORMAT", data, "error message", verify_bcc=verify_bcc)
        return cls(c.body.value.text, c.bcc)


def is_error_text(value: str) -> bool:
    """Whether a programming-mode reply value is an error message rather than data.

    The standard recommends error texts that cannot be confused with data, e.g. starting
    with "ER"; the ME162 sends ``(ERROR)``, EMH meters ``ERR(...)``-style codes.
    """
    return value.upper().startswith("ER")


@dataclass(frozen=True)
class Ack:
    def to_bytes(self) -> bytes:
        return _build("ACK_FORMAT", None, "ACK")


@dataclass(frozen=True)
class Nak:
    def to_bytes(self) -> bytes:
        return _build("NAK_FORMAT", None, "NAK")


Message = (
    RequestMessage
    | Identification
    | OptionSelect
    | DataMessage
    | PlainDataMessage
    | Command
    | ErrorMessage
    | Ack
    | Nak
)

__all__ = [
    "ACK",
    "BREAK",
    "CRLF",
    "EOT",
    "ETX",
    "NAK",
    "SOH",
    "STX",
    "Ack",
    "BccError",
    "Command",
    "DataMessage",
    "ErrorMessage",
    "Identification",
    "Message",
    "Nak",
    "OptionSelect",
    "PlainDataMessage",
    "RequestMessage",
    "addresses_match",
    "is_error_text",
    "validate_address",
]
