"""The public Python API for reading a meter: ``from me162.reader import read``.

    reading = read("/dev/ttyUSB0")                    # a readout (mode C, the fastest speed)
    reading["1.8.0"].value                            # Decimal('33402.264')
    reading = read("/dev/ttyUSB0", registers=["1.8.0", "2.8.0"])   # R1 in programming mode

``read`` opens the port, reads once with the reference reader (bounded retries, B0 at the end of
programming mode) and closes it.  It returns a :class:`Reading` or raises :class:`ReaderError`
(with its :class:`Failure` class and hint) or :class:`PortError`; it never changes what it is
given.  ``me162://`` is the built-in virtual ME162, and its readings say ``virtual=True``.
"""

from __future__ import annotations

from collections.abc import Iterator, Mapping, Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime
from decimal import Decimal, InvalidOperation
from pathlib import Path

from me162.protocol.datablock import Obis
from me162.protocol.frames import Identification
from me162.protocol.readout import Readout
from me162.reader.session import ReaderConfig, SessionResult


@dataclass(frozen=True)
class Register:
    """One register as the meter sent it: the text, and the value as a Decimal when it is one."""

    address: str
    text: str
    unit: str | None = None
    error: str | None = None  #: the meter's error text (``ERROR``) instead of a value

    @property
    def value(self) -> Decimal | None:
        """``Decimal('33402.264')`` for ``0033402.264``; None for an error or a text value."""
        if self.error is not None:
            return None
        try:
            d = Decimal(self.text.strip())
        except InvalidOperation:
            return None
        return d if d.is_finite() else None


@dataclass(frozen=True)
class Session:
    mode: str
    speeds: tuple[int, ...]
    retries: int
    notes: tuple[str, ...]
    timings: Mapping[str, float]


@dataclass(frozen=True)
class Reading(Mapping[str, Register]):
    """A finished reading: a mapping from register address to :class:`Register`.

    Looking up an address also finds the same OBIS quantity written another way
    (``reading["1-0:1.8.0*255"]`` finds ``1.8.0``)."""

    port: str
    time: datetime
    virtual: bool
    identification: Identification | None
    session: Session
    registers: Mapping[str, Register] = field(default_factory=dict)
    readout: Readout | None = None  #: the decoded readout (None in programming mode)

    def __getitem__(self, address: str) -> Register:
        if address in self.registers:
            return self.registers[address]
        wanted = Obis.parse(address)
        if wanted is not None:
            for a, reg in self.registers.items():
                o = Obis.parse(a)
                if o is not None and o.matches(wanted):
                    return reg
        raise KeyError(address)

    def __iter__(self) -> Iterator[str]:
        return iter(self.registers)

    def __len__(self) -> int:
        return len(self.registers)

    @property
    def serial(self) -> str | None:
        for address in ("C.1.0", "0.0.0", "96.1.0"):
            if address in self:
                return self[address].text.strip()
        return None

    @classmethod
    def of(cls, res: SessionResult, port: str, when: datetime | None = None) -> Reading:
        registers: dict[str, Register] = {}
        if res.readout is not None:
            for _, ds in res.readout.data.data_sets:
                if ds.address and ds.values:
                    v = ds.values[0]
                    registers[ds.address] = Register(ds.address, v.value, v.unit)
        for address, r in res.registers.items():
            registers[address] = Register(address, r.get("value") or "", r.get("unit"), r.get("error"))
        session = Session(res.mode, tuple(res.speeds), res.retries, tuple(res.notes), dict(res.timings))
        return cls(
            port,
            when or datetime.now(UTC),
            port.startswith("me162://"),
            res.identification,
            session,
            registers,
            res.readout,
        )


def read(
    port: str,
    *,
    registers: Sequence[str] = (),
    password: str | None = None,
    baud: str | int = "max",
    change_delay: float = 0.0,
    address: str = "",
    mode: str = "auto",
    partial_blocks: bool = False,
    parity_in_software: bool = False,
    verify_bcc: bool = True,
    retries: int = 2,
    speed: float = 1.0,
    record: str | Path | None = None,
) -> Reading:
    """Read a meter once.  ``port`` is any pyserial URL (``/dev/ttyUSB0``, ``socket://h:p``,
    ``rfc2217://h:p``) or ``me162://`` (the virtual ME162); ``registers`` reads just those in
    programming mode; ``speed`` is the time scale of a virtual meter run faster than real time."""
    from me162.reader.driver import PortOptions, read_once

    config = ReaderConfig(
        address=address,
        baud=str(baud),
        change_delay=change_delay,
        registers=tuple(registers),
        password=password,
        partial_blocks=partial_blocks,
        mode=mode,
        verify_bcc=verify_bcc,
        session_retries=retries,
    )
    res = read_once(
        PortOptions(port, parity_in_software, speed),
        config,
        record=Path(record) if record is not None else None,
    )
    return Reading.of(res, port)
