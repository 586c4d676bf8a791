"""Data blocks, data lines and data sets (clause 6.5-6.6), parsed leniently and losslessly.

A data set is ``[address](value[*unit])[(value[*unit])...]``; a line may hold several data
sets; a block is lines separated by CR LF and, in a readout, ends with ``!``.  Real meters break
every content rule (units inside the value, blank padding, empty values, ``!`` glued to the
last line, LF-only line ends from a tty), so parsing never rejects content: whatever does not
fit the grammar is kept in ``rest``.  Every line keeps its raw text.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from operator import itemgetter
from typing import Any, NamedTuple

from me162.protocol.errors import DataError

_LETTERS = {"C": 96, "F": 97, "L": 98, "P": 99}
_GROUP = r"(\d{1,3}|[CFLP])"
_OBIS_RE = re.compile(
    rf"^(?:(?P<a>\d{{1,3}})-(?P<b>\d{{1,3}}):)?(?P<c>{_GROUP[1:-1]})\.(?P<d>{_GROUP[1:-1]})"
    rf"(?:\.(?P<e>\d{{1,3}}))?(?:(?P<reset>[*&])(?P<f>\d{{1,3}}))?$"
)


@dataclass(frozen=True)
class Obis:
    """An OBIS code in reduced form ``A-B:C.D.E*F`` (IEC 62056-61); A, B, E, F optional.

    The letters C, F, L, P in groups C and D stand for 96, 97, 98, 99; ``&F`` instead of ``*F``
    marks a manual reset.
    """

    c: int
    d: int
    a: int | None = None
    b: int | None = None
    e: int | None = None
    f: int | None = None
    reset: str | None = None

    @classmethod
    def parse(cls, text: str) -> Obis | None:
        m = _OBIS_RE.match(text.strip())
        if not m:
            return None

        def num(s: str | None) -> int | None:
            if s is None:
                return None
            return _LETTERS[s] if s in _LETTERS else int(s)

        c, d = num(m["c"]), num(m["d"])
        assert c is not None and d is not None
        return cls(c, d, num(m["a"]), num(m["b"]), num(m["e"]), num(m["f"]), m["reset"])

    def __str__(self) -> str:
        s = f"{self.a}-{self.b}:" if self.a is not None else ""
        s += f"{self.c}.{self.d}"
        if self.e is not None:
            s += f".{self.e}"
        if self.f is not None:
            s += f"{self.reset or '*'}{self.f}"
        return s

    @property
    def billing_period(self) -> int | None:
        """F, the historical value's index; None for the current value (F absent or 255)."""
        return None if self.f in (None, 255) else self.f

    def matches(self, other: Obis) -> bool:
        """Same quantity: C, D and E equal (E absent counts as 0), same billing period (F absent
        and F=255 both mean the current value), A and B ignored (often omitted)."""
        return (
            self.c == other.c
            and self.d == other.d
            and (self.e or 0) == (other.e or 0)
            and self.billing_period == other.billing_period
        )


class Value(NamedTuple):
    """One ``(value*unit)`` group; ``value`` is exactly what the meter sent (padding included).

    Values, data sets and data lines are named tuples: immutable, and cheap to make by the
    thousand (a 578-line readout has as many of each)."""

    value: str
    unit: str | None = None

    def to_text(self) -> str:
        return f"({self.value}" + (f"*{self.unit}" if self.unit is not None else "") + ")"

    def number(self) -> float | None:
        """The value as a number when it is one (blank padding and a unit after a space are
        tolerated, a decimal comma too); None otherwise."""
        text = self.value.strip().split(" ")[0].replace(",", ".")
        try:
            return float(text)
        except ValueError:
            return None

    def to_json(self) -> dict[str, Any]:
        return {"value": self.value, "unit": self.unit}


class DataSet(NamedTuple):
    """An address (may be None) and one or more values, with the raw text they came from."""

    address: str | None
    values: tuple[Value, ...]
    raw: str

    @property
    def obis(self) -> Obis | None:
        return Obis.parse(self.address) if self.address else None

    @property
    def value(self) -> str | None:
        return self.values[0].value if self.values else None

    @property
    def unit(self) -> str | None:
        return self.values[0].unit if self.values else None

    def to_text(self) -> str:
        return (self.address or "") + "".join(v.to_text() for v in self.values)

    @classmethod
    def make(cls, address: str | None, *values: tuple[str, str | None] | str) -> DataSet:
        """Build a data set, checking the limits of clause 6.6 (address and unit at most 16
        characters, value at most 128, none of ( ) / ! and no * in the value)."""
        vals = tuple(Value(v) if isinstance(v, str) else Value(*v) for v in values)
        if address is not None and (len(address) > 16 or any(ch in address for ch in "()/!")):
            raise DataError(f"address {address!r}: at most 16 characters, none of ( ) / !")
        for v in vals:
            if len(v.value) > 128 or any(ch in v.value for ch in "()*/!"):
                raise DataError(f"value {v.value!r}: at most 128 characters, none of ( ) * / !")
            if v.unit is not None and (len(v.unit) > 16 or any(ch in v.unit for ch in "()/!")):
                raise DataError(f"unit {v.unit!r}: at most 16 characters, none of ( ) / !")
        ds = cls(address, vals, "")
        return cls(address, vals, ds.to_text())

    def to_json(self, line: int) -> dict[str, Any]:
        obis = self.obis
        return {
            "line": line,
            "address": self.address,
            "obis": None if obis is None else str(obis),
            "values": [v.to_json() for v in self.values],
            "raw": self.raw,
        }


class DataLine(NamedTuple):
    """One line of a data block: its data sets, and any text that fits no data set."""

    number: int
    raw: str
    data_sets: tuple[DataSet, ...]
    rest: str = ""


class DataBlock:
    """The parsed content of a data message: its lines, and the data sets in them.

    A block parsed the short way (:func:`parse_data_block` on a regular block) makes its data
    sets when they are first asked for and its :class:`DataLine` objects only if those are
    asked for too (most programs never look at lines); either way the result is the same."""

    __slots__ = ("_lines", "_rows", "_sets", "_simple", "end_seen", "raw")

    def __init__(self, lines: tuple[DataLine, ...], end_seen: bool, raw: str) -> None:
        self._lines: tuple[DataLine, ...] | None = lines
        self._rows: list[Row] | list[SimpleRow] = []
        self._simple = False
        self._sets: list[tuple[int, DataSet]] | None = None
        self.end_seen = end_seen
        self.raw = raw

    @classmethod
    def _regular(cls, rows: list[Row] | list[SimpleRow], raw: str, simple: bool) -> DataBlock:
        """From :data:`_REGULAR_LINE` rows, or :data:`_SIMPLE_LINE` rows when ``simple``, one
        per line."""
        block = cls((), True, raw)
        block._lines = None
        block._rows = rows
        block._simple = simple
        return block

    @property
    def data_sets(self) -> list[tuple[int, DataSet]]:
        """(line number, data set) of every data set, in order."""
        if self._sets is None:
            if self._lines is not None:
                self._sets = [(ln.number, ds) for ln in self._lines for ds in ln.data_sets]
            else:
                self._sets = _sets_of_rows(self._rows, self._simple)
        return list(self._sets)

    @property
    def lines(self) -> tuple[DataLine, ...]:
        if self._lines is None:
            sets = self.data_sets
            rests = [""] * len(sets) if self._simple else list(map(_REST, self._rows))
            self._lines = tuple(
                [
                    _new(DataLine, (number, row[0], (ds,), rest))
                    for (number, ds), row, rest in zip(sets, self._rows, rests, strict=True)
                ]
            )
        return self._lines

    def leftovers(self) -> list[tuple[int, str]]:
        """(line number, text) of every line with text that fits no data set."""
        if self._lines is None:
            if self._simple or not any(map(_REST, self._rows)):
                return []
            return [(n, row[6]) for n, row in enumerate(self._rows, 1) if row[6]]
        return [(ln.number, ln.rest) for ln in self._lines if ln.rest]

    def __eq__(self, other: object) -> bool:
        if not isinstance(other, DataBlock):
            return NotImplemented
        return (self.lines, self.end_seen, self.raw) == (other.lines, other.end_seen, other.raw)

    def __hash__(self) -> int:
        return hash((self.lines, self.end_seen, self.raw))

    def __repr__(self) -> str:
        return f"DataBlock(lines={self.lines!r}, end_seen={self.end_seen!r}, raw={self.raw!r})"

    def find(self, address: str) -> DataSet | None:
        """The first data set whose address is ``address``, or the same OBIS quantity."""
        wanted = Obis.parse(address)
        for _, ds in self.data_sets:
            if ds.address == address:
                return ds
        if wanted is not None:
            for _, ds in self.data_sets:
                o = ds.obis
                if o is not None and o.matches(wanted):
                    return ds
        return None


#: a line of one data set with one value and no parentheses inside it: most lines of most meters
_ONE_SET = re.compile(r"([^()]*)\(([^()]*)\)")


def parse_line(text: str, number: int = 1) -> DataLine:
    """Split one data line into data sets; never raises."""
    m = _ONE_SET.fullmatch(text)
    if m is not None:  # the common case, taken the short way (same result as the loop below)
        address, inner = m.groups()
        value, star, unit = inner.partition("*")
        ds = DataSet(address or None, (Value(value, unit if star else None),), text)
        return DataLine(number, text, (ds,), "")
    return _parse_line(text, number)


def _parse_line(text: str, number: int) -> DataLine:
    sets: list[DataSet] = []
    pos = 0
    n = len(text)
    rest = ""
    while pos < n:
        open_at = text.find("(", pos)
        if open_at < 0:
            rest = text[pos:]
            break
        start = pos
        address = text[pos:open_at]
        pos = open_at
        values: list[Value] = []
        unterminated = False
        while pos < n and text[pos] == "(":
            close = text.find(")", pos + 1)
            if close < 0:
                unterminated = True
                break
            inner = text[pos + 1 : close]
            if "*" in inner:
                v, u = inner.split("*", 1)
                values.append(Value(v, u))
            else:
                values.append(Value(inner))
            pos = close + 1
        if unterminated:
            rest = text[start:]
            break
        sets.append(DataSet(address if address != "" else None, tuple(values), text[start:pos]))
    return DataLine(number, text, tuple(sets), rest)


_LINE_SPLIT = re.compile(r"\r\n|\n|\r")


#: a block whose every line is one data set (one or more values) and, perhaps, text without
#: parentheses after it, each line ending in CR LF, and then ``!`` CR LF: nearly every readout.
#: :data:`_REGULAR_LINE` finds the lines; they are the whole block when their lengths add up.
_REGULAR_LINE = re.compile(
    r"(([^()\r\n]*)\(([^()*\r\n]*)(\*?)([^()\r\n]*)\)((?:\([^()\r\n]*\))*)([^()!\r\n]*))\r\n"
)
#: a row: the line, the address, the first value, "*" or "", its unit, the other values, the rest
Row = tuple[str, str, str, str, str, str, str]
#: the lines of a block without ")(" (one value per data set): :data:`_REGULAR_LINE` without
#: the other values and the rest, which makes fewer strings per line
_SIMPLE_LINE = re.compile(r"(([^()\r\n]*)\(([^()*\r\n]*)(\*?)([^()\r\n]*)\))\r\n")
#: a row of :data:`_SIMPLE_LINE`: the line, the address, the value, "*" or "", the unit
SimpleRow = tuple[str, str, str, str, str]
_new = tuple.__new__
_LINE, _REST = itemgetter(0), itemgetter(6)


def _value(inner: str) -> Value:
    value, star, unit = inner.partition("*")
    return _new(Value, (value, unit if star else None))


def _sets_of_rows(rows: list[Row] | list[SimpleRow], simple: bool) -> list[tuple[int, DataSet]]:
    if simple:  # one value per line, no leftovers
        return [
            (number, _new(DataSet, (address or None, (_new(Value, (value, unit if star else None)),), line)))
            for number, (line, address, value, star, unit) in enumerate(rows, 1)
        ]
    out: list[tuple[int, DataSet]] = []
    append = out.append
    for number, (line, address, value, star, unit, more, rest) in enumerate(rows, 1):
        values: tuple[Value, ...] = (_new(Value, (value, unit if star else None)),)
        if more:
            values += tuple([_value(inner) for inner in more[1:-1].split(")(")])
        append(
            (
                number,
                _new(DataSet, (address or None, values, line[: len(line) - len(rest)] if rest else line)),
            )
        )
    return out


def _regular_block(text: str) -> DataBlock | None:
    """A regular block (see :data:`_REGULAR_LINE`) parsed the short way: the result of
    :func:`parse_block_by_lines` (the tests compare the two on every kind of input); None when
    the block is not regular."""
    if not text.endswith("!\r\n") or (len(text) > 3 and text[-5:-3] != "\r\n"):
        return None
    if ")(" not in text:  # one value per data set (most meters): fewer strings per line
        rows = _SIMPLE_LINE.findall(text)
        if sum(map(len, map(_LINE, rows))) + 2 * len(rows) + 3 == len(text):
            return DataBlock._regular(rows, text, True)
    rows = _REGULAR_LINE.findall(text)
    if sum(map(len, map(_LINE, rows))) + 2 * len(rows) + 3 != len(text):
        return None
    return DataBlock._regular(rows, text, False)


def parse_data_block(block: bytes | str) -> DataBlock:
    """Parse a data block (the bytes between STX and ETX, or a plain readout); never raises."""
    text = block.decode("latin-1") if isinstance(block, bytes | bytearray) else block
    return _regular_block(text) or parse_block_by_lines(text)


def parse_block_by_lines(text: str) -> DataBlock:
    """The general parse, line by line, of any text (what :func:`parse_data_block` does)."""
    lines: list[DataLine] = []
    end_seen = False
    number = 0
    crlf = text.count("\r\n")
    if text.count("\r") == crlf and text.count("\n") == crlf:  # CR LF line ends only
        raw_lines = text.split("\r\n")
    else:
        raw_lines = _LINE_SPLIT.split(text)
    append = lines.append
    for raw_line in raw_lines:
        if end_seen:
            if raw_line:
                number += 1
                append(DataLine(number, raw_line, (), raw_line))
            continue
        line = raw_line
        if line == "!":
            end_seen = True
            continue
        if line.endswith("!") and line.count("(") == line.count(")"):
            line = line[:-1]
            end_seen = True
        if line == "":
            continue
        number += 1
        append(parse_line(line, number))
    return DataBlock(tuple(lines), end_seen, text)


def build_data_block(lines: list[list[DataSet]], *, end: bool = True) -> bytes:
    """Bytes of a readout data block: one CR LF terminated line per list, then ``!CRLF``."""
    out = "".join("".join(ds.to_text() for ds in line) + "\r\n" for line in lines)
    if end:
        out += "!\r\n"
    return out.encode("latin-1")
