"""The one exception hierarchy of me162.

Every error the project raises on purpose derives from :class:`Me162Error`.  Errors about
bytes on the optical link derive from :class:`ProtocolError`; their messages say what was
expected, what was found and where, so that a person can act on them.
"""

from __future__ import annotations


class Me162Error(Exception):
    """Root of every error raised by me162 on purpose."""


class ProtocolError(Me162Error):
    """Bytes on the link do not form the IEC 62056-21 message that was expected."""


class FramingError(ProtocolError):
    """A message is cut short, has a wrong start/end character, or an illegal character."""

    def __init__(self, message: str, offset: int | None = None) -> None:
        self.offset = offset
        super().__init__(message if offset is None else f"{message} at byte {offset}")


class BccError(ProtocolError):
    """The block check character after ETX/EOT does not match the message."""

    def __init__(self, computed: int, received: int, offset: int) -> None:
        self.computed = computed
        self.received = received
        self.offset = offset
        super().__init__(
            f"BCC mismatch: computed 0x{computed:02X}, received 0x{received:02X} after ETX at byte {offset}"
        )


class ParityError(ProtocolError):
    """A character's even-parity bit (7E1) is wrong."""

    def __init__(self, offset: int, byte: int) -> None:
        self.offset = offset
        self.byte = byte
        super().__init__(f"parity error: byte 0x{byte:02X} at offset {offset} has odd parity")


class IdentificationError(ProtocolError):
    """The identification message (``/XXXZ ident CR LF``) cannot be understood."""


class AddressError(ProtocolError):
    """A device address breaks the rules of the standard (max 32 of 0-9 A-Z a-z space)."""


class DataError(ProtocolError):
    """A data set or data line cannot be built (parsing is lenient and never raises this)."""


class ProtocolTimeout(ProtocolError):
    """The other side did not answer, or stopped in the middle of a message, in time;
    ``received`` counts the bytes that did arrive while waiting."""

    def __init__(self, message: str, received: int = 0) -> None:
        self.received = received
        super().__init__(message)


class ConfigError(Me162Error):
    """A profile, scenario, declaration or option given by the user is invalid."""


class CaptureError(Me162Error):
    """A capture file is malformed, truncated, of an unknown version or absurdly large."""
