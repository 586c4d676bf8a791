"""Line settings, baud tables, 7E1 parity helpers and the timing constants of IEC 62056-21."""

from __future__ import annotations

from dataclasses import dataclass
from functools import lru_cache
from typing import Literal

from me162.protocol.errors import ParityError

Parity = Literal["N", "E", "O"]

#: Mode B baud characters (clause 6.3.14 item 13b). G, H, I are reserved.
MODE_B_BAUDS: dict[str, int] = {
    "A": 600,
    "B": 1200,
    "C": 2400,
    "D": 4800,
    "E": 9600,
    "F": 19200,
}
#: Mode C and E baud characters (item 13c). 7, 8, 9 are reserved.
MODE_C_BAUDS: dict[str, int] = {
    "0": 300,
    "1": 600,
    "2": 1200,
    "3": 2400,
    "4": 4800,
    "5": 9600,
    "6": 19200,
}
#: Mode D always announces 2400 Bd with the character "3" (item 13d).
MODE_D_BAUD = 2400
INITIAL_BAUD = 300
STANDARD_BAUDS = (300, 600, 1200, 2400, 4800, 9600, 19200)


def mode_c_char(baud: int) -> str:
    """The mode C baud character for a baud rate (``9600`` → ``"5"``)."""
    for char, value in MODE_C_BAUDS.items():
        if value == baud:
            return char
    raise ValueError(f"{baud} Bd has no mode C baud character")


# --- timing (seconds), clause 6.4 and Annex A/B ------------------------------------------
T_R_MIN = 0.200  #: minimum reaction time
T_R_MIN_FAST = 0.020  #: minimum reaction time when the ident's third letter is lowercase
T_R_MAX = 1.500  #: maximum reaction time
T_A_MAX = 1.500  #: maximum gap between two characters of one message
T_T_MIN = 1.500  #: the meter waits more than this for the option select (mode C) ...
T_T_MAX = 2.200  #: ... and at most this, then sends the readout at 300 Bd
INACTIVITY_MIN = 60.0  #: meter returns to the start state after 60-120 s of silence
INACTIVITY_MAX = 120.0
COMMAND_ANSWER_MAX = 1.500  #: the HHU should act if a command is not answered within this
WAKEUP_NUL_MIN = 2.1  #: battery meters: NULs for 2.1-2.3 s at 300 Bd ...
WAKEUP_NUL_MAX = 2.3
WAKEUP_PAUSE_MIN = 1.5  #: ... then a pause of 1.5-1.7 s before the request
WAKEUP_PAUSE_MAX = 1.7


@dataclass(frozen=True)
class LineSettings:
    """What a UART is set to: speed and character format."""

    baud: int = INITIAL_BAUD
    bits: int = 7
    parity: Parity = "E"
    stop: int = 1

    @property
    def bits_per_char(self) -> int:
        """Start bit + data bits + parity bit + stop bits (10 for 7E1 and 8N1)."""
        return 1 + self.bits + (0 if self.parity == "N" else 1) + self.stop

    @property
    def char_time(self) -> float:
        """Seconds one character takes on the wire."""
        return self.bits_per_char / self.baud

    def transfer_time(self, nbytes: int) -> float:
        return nbytes * self.char_time

    def with_baud(self, baud: int) -> LineSettings:
        return line_settings(baud, self.bits, self.parity, self.stop)

    def describe(self) -> str:
        return f"{self.baud} {self.bits}{self.parity}{self.stop}"

    def to_dict(self) -> dict[str, int | str]:
        return {"baud": self.baud, "bits": self.bits, "parity": self.parity, "stop": self.stop}


def line_settings(
    baud: int = INITIAL_BAUD, bits: int = 7, parity: Parity = "E", stop: int = 1
) -> LineSettings:
    """The one :class:`LineSettings` object for these settings: the link compares the settings
    of every character it hands over with the receiver's, and ``is`` answers at once where
    ``==`` compares four fields."""
    return _line_settings(baud, bits, parity, stop)


@lru_cache(maxsize=256)  # (a reader may set any speed: bounded)
def _line_settings(baud: int, bits: int, parity: Parity, stop: int) -> LineSettings:
    return LineSettings(baud, bits, parity, stop)


SETTINGS_7E1_300 = line_settings()


def char_time(baud: int, bits_per_char: int = 10) -> float:
    """Seconds per character; IEC 62056-21 characters are 10 bits (1 start, 7 data, even, 1 stop)."""
    return bits_per_char / baud


def even_parity_bit(byte: int) -> int:
    """The even-parity bit for the low 7 bits of ``byte`` (0 or 1)."""
    return bin(byte & 0x7F).count("1") & 1


def add_parity(data: bytes) -> bytes:
    """Put the even-parity bit into bit 7, as 7E1 looks when carried as 8N1.

    >>> add_parity(b"/?!\\r\\n").hex(" ")
    'af 3f 21 8d 0a'
    """
    return bytes((b & 0x7F) | (even_parity_bit(b) << 7) for b in data)


def strip_parity(data: bytes) -> bytes:
    """Clear bit 7 of every byte without checking it."""
    return bytes(b & 0x7F for b in data)


def check_parity(data: bytes, offset: int = 0) -> None:
    """Raise :class:`ParityError` at the first byte whose bit 7 is not its even-parity bit."""
    for i, b in enumerate(data):
        if (b >> 7) != even_parity_bit(b):
            raise ParityError(offset + i, b)


def check_and_strip_parity(data: bytes, offset: int = 0) -> bytes:
    """Check the even-parity bit in bit 7 of every byte, then strip it."""
    check_parity(data, offset)
    return strip_parity(data)


def looks_like_parity_bytes(data: bytes) -> bool:
    """True when ``data`` reads as 7E1 received by an 8N1 port: bytes with bit 7 set, and
    every byte's bit 7 equals its even-parity bit (plain ASCII never sets bit 7)."""
    if not any(b & 0x80 for b in data):
        return False
    return all((b >> 7) == even_parity_bit(b) for b in data)
