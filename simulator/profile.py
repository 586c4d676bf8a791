"""Meter profiles: a meter is data (a YAML file in simulator/profiles/), not code.

A profile gives the identification, the protocol mode and speed, the readout layout and value
formats, the registers programming mode can read, the password, the timings and the quirks of
one meter model.  ``load_profile("me162")`` loads a built-in one; a path loads a user's file.
Errors name the file and the key that is wrong.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import datetime
from functools import lru_cache
from importlib import resources
from pathlib import Path
from typing import Any

from me162.protocol.errors import ConfigError, IdentificationError
from me162.protocol.frames import Identification
from me162.protocol.schema import Located, check, load_yaml

PROFILE_PACKAGE = "me162.simulator"
#: Where a register's value comes from. Power sources give kW, or W when the unit is "W".
SOURCES = {
    "import",
    "export",
    "absolute",
    "serial",
    "address",
    "time",
    "date",
    "power_import",
    "power_export",
    "power_net",
    "fixed",
}


@dataclass(frozen=True)
class RegisterSpec:
    """How one register's value is made."""

    address: str
    source: str = "fixed"
    value: str = ""
    tariff: int = 0
    format: str = ""
    unit: str | None = None
    billing: int | None = None  #: historical value: the start of the N-th previous month


@dataclass(frozen=True)
class Timings:
    """Reaction-time ranges (seconds, [low, high], drawn by the seeded RNG) and timeouts."""

    identification: tuple[float, float] = (0.22, 0.30)
    readout: tuple[float, float] = (0.30, 0.40)
    operand: tuple[float, float] = (0.33, 0.42)
    reply: tuple[float, float] = (0.22, 0.30)
    option_timeout: float = 2.0  #: t_t: 1.5 < t_t <= 2.2
    inactivity_timeout: float = 60.0


@dataclass(frozen=True)
class Quirks:
    """Recorded behaviour of the real meter, each one switchable."""

    nak_after_stray_ack: bool = False  #: an ACK from the reader in programming mode spoils the next command
    no_programming_at_300: bool = False  #: "ACK 0 0 1" gives the 300 Bd readout instead of programming
    deaf_without_b0: bool = True  #: a session left without B0 lasts until the inactivity timeout
    fallback_readout: bool = True  #: no/bad option select -> readout at 300 Bd after t_t


@dataclass(frozen=True)
class Profile:
    name: str
    identification: Identification
    description: str = ""
    sources: tuple[str, ...] = ()
    mode: str = "C"
    address: str = ""
    serial: str = ""
    registers: dict[str, RegisterSpec] = field(default_factory=dict)
    readout: tuple[tuple[str, ...], ...] = ()
    readable: tuple[str, ...] = ()
    password: str | None = None
    operand: str = ""
    write: str = "error"  #: answer to W1: "ack", "error" or "nak"
    error_text: str = "ERROR"
    reply_with_address: bool = False
    partial_block_size: int | None = None  #: R3 replies split into blocks of this many bytes
    push_interval: float | None = None  #: mode D: seconds between telegrams
    push_baud: int = 2400
    timings: Timings = field(default_factory=Timings)
    quirks: Quirks = field(default_factory=Quirks)
    energy_import: dict[int, float] = field(default_factory=dict)
    energy_export: dict[int, float] = field(default_factory=dict)
    tariffs: tuple[tuple[float, int], ...] = ((0.0, 2),)
    installation: dict[str, float] = field(default_factory=dict)
    clock_start: datetime | None = None

    @property
    def max_baud(self) -> int:
        return self.identification.baud or 300

    @property
    def fast_reaction(self) -> bool:
        return self.identification.fast_reaction


def builtin_profiles() -> list[str]:
    folder = resources.files(PROFILE_PACKAGE) / "profiles"
    return sorted(p.name[:-5] for p in folder.iterdir() if p.name.endswith(".yaml"))


def load_profile(name_or_path: str | Path) -> Profile:
    """Load a built-in profile by name or a profile file by path."""
    path = Path(name_or_path)
    if path.suffix in (".yaml", ".yml") or path.exists():
        try:
            text = path.read_text(encoding="utf-8")
        except OSError as e:
            raise ConfigError(f"cannot read profile {path}: {e.strerror}") from None
        return parse_profile(text, str(path))
    res = resources.files(PROFILE_PACKAGE) / "profiles" / f"{name_or_path}.yaml"
    if not res.is_file():
        known = ", ".join(builtin_profiles())
        raise ConfigError(f"no profile called {name_or_path!r}; built-in profiles: {known}")
    return parse_profile(res.read_text(encoding="utf-8"), f"profiles/{name_or_path}.yaml")


class _Doc:
    """Typed access to a YAML mapping (already checked against the profile schema) with errors
    that name the file, the line and the key."""

    def __init__(
        self, data: Any, where: str, path: tuple[str, ...] = (), located: Located | None = None
    ) -> None:
        if not isinstance(data, dict):
            raise ConfigError(f"{where}: {'.'.join(path) or 'the profile'} must be a mapping")
        self.data: dict[str, Any] = data
        self.where = where
        self.path = path
        self.located = located

    def fail(self, k: str, msg: str) -> ConfigError:
        at = f"{self.located.line((*self.path, k))}" if self.located else "1"
        return ConfigError(f"{self.where}:{at}: {'.'.join((*self.path, k))}: {msg}")

    def get(self, k: str, typ: type | tuple[type, ...], default: Any = None, required: bool = False) -> Any:
        if k not in self.data or self.data[k] is None:
            if required:
                raise self.fail(k, "is required")
            return default
        v = self.data[k]
        if typ is float and isinstance(v, int) and not isinstance(v, bool):
            v = float(v)
        if not isinstance(v, typ) or (isinstance(v, bool) and typ in (int, float)):
            name = typ.__name__ if isinstance(typ, type) else " or ".join(t.__name__ for t in typ)
            raise self.fail(k, f"must be {name}, not {type(v).__name__} {v!r}")
        return v

    def sub(self, k: str) -> _Doc:
        return _Doc(self.data.get(k) or {}, self.where, (*self.path, k), self.located)


def _range(doc: _Doc, k: str, default: tuple[float, float]) -> tuple[float, float]:
    v = doc.data.get(k)
    if v is None:
        return default
    if isinstance(v, int | float) and not isinstance(v, bool):
        return (float(v), float(v))
    if isinstance(v, list) and len(v) == 2 and all(isinstance(x, int | float) for x in v) and v[0] <= v[1]:
        return (float(v[0]), float(v[1]))
    raise doc.fail(k, f"must be seconds or [low, high], not {v!r}")


@lru_cache(maxsize=64)
def parse_profile(text: str, where: str) -> Profile:
    """A profile from its YAML text (``where`` names it in errors).  The same text is read once
    per process: a hundred meters of one profile share one frozen Profile."""
    located = load_yaml(text, where)
    if located.data is None:
        raise ConfigError(f"{where}:1: the profile is empty")
    check(located, "profile", where)  # every structural error at once, with lines
    doc = _Doc(located.data, where, (), located)
    line = located.line
    try:
        ident = Identification.from_line(doc.get("identification", str, required=True))
    except IdentificationError as e:
        raise ConfigError(f"{where}:{line(('identification',))}: identification: {e}") from None
    mode = doc.get("mode", str, ident.mode if ident.mode != "E" else "C")
    if mode not in ("A", "B", "C", "D"):
        raise doc.fail("mode", f"must be A, B, C or D, not {mode!r}")
    if mode in ("A", "B", "C") and ident.mode not in (mode, "E"):
        raise doc.fail(
            "mode", f"mode {mode} contradicts the identification's baud character {ident.baud_char!r}"
        )

    regs: dict[str, RegisterSpec] = {}
    if isinstance(doc.data.get("registers"), dict):  # YAML reads 6.8 as a number: addresses are text
        doc.data["registers"] = {str(k): v for k, v in doc.data["registers"].items()}
    rdoc = doc.sub("registers")
    for address in rdoc.data:
        spec = rdoc.data[address]
        if isinstance(spec, str | int | float) and not isinstance(spec, bool):
            regs[str(address)] = RegisterSpec(str(address), "fixed", str(spec))
            continue
        sd = rdoc.sub(str(address))
        source = sd.get("source", str, "fixed")
        if source not in SOURCES:
            raise sd.fail("source", f"unknown source {source!r} (known: {', '.join(sorted(SOURCES))})")
        regs[str(address)] = RegisterSpec(
            str(address),
            source,
            str(sd.get("value", (str, int, float), "")),
            sd.get("tariff", int, 0),
            sd.get("format", str, ""),
            sd.get("unit", str),
            sd.get("billing", int),
        )
    readout: list[tuple[str, ...]] = []
    for n, line in enumerate(doc.get("readout", list, [])):
        items = tuple(line) if isinstance(line, list) else (line,)
        for a in items:
            if str(a) not in regs:
                raise doc.fail(f"readout[{n}]", f"register {a!r} is not defined under registers")
        readout.append(tuple(str(a) for a in items))
    readable = tuple(str(a) for a in doc.get("readable", list, list(regs)))
    for a in readable:
        if a not in regs:
            raise doc.fail("readable", f"register {a!r} is not defined under registers")

    pd = doc.sub("programming")
    write = pd.get("write", str, "error")
    if write not in ("ack", "error", "nak"):
        raise pd.fail("write", f"must be ack, error or nak, not {write!r}")
    push = doc.sub("push")
    if mode == "D" and "interval" not in push.data:
        raise push.fail("interval", "a mode D profile needs the push interval in seconds")

    td = doc.sub("timings")
    timings = Timings(
        _range(td, "identification", Timings.identification),
        _range(td, "readout", Timings.readout),
        _range(td, "operand", Timings.operand),
        _range(td, "reply", Timings.reply),
        td.get("option_timeout", float, 2.0),
        td.get("inactivity_timeout", float, 60.0),
    )
    floor = 0.02 if ident.fast_reaction else 0.2
    for k in ("identification", "readout", "operand", "reply"):
        low, high = getattr(timings, k)
        if low < floor or high > 1.5:
            raise td.fail(k, f"reaction time must lie in [{floor}, 1.5] s for ident {ident.raw}")
    if not 1.5 < timings.option_timeout <= 2.2:
        raise td.fail("option_timeout", "t_t must satisfy 1.5 s < t_t <= 2.2 s")

    qd = doc.sub("quirks")
    quirks = Quirks(
        qd.get("nak_after_stray_ack", bool, False),
        qd.get("no_programming_at_300", bool, False),
        qd.get("deaf_without_b0", bool, True),
        qd.get("fallback_readout", bool, True),
    )
    ed = doc.sub("energy")

    def tariff_map(k: str) -> dict[int, float]:
        raw = ed.get(k, dict, {1: 0.0, 2: 0.0})
        try:
            return {int(t): float(v) for t, v in raw.items()}
        except (TypeError, ValueError):
            raise ed.fail(k, "must map tariff numbers to kWh") from None

    tariffs_raw = ed.get("tariffs", list, [[0, 2]])
    try:
        tariffs = tuple((float(a), int(b)) for a, b in tariffs_raw)
    except (TypeError, ValueError):
        raise ed.fail("tariffs", "must be a list of [start_hour, tariff]") from None
    inst = doc.sub("installation")
    clock = doc.get("clock", (str, datetime))
    if isinstance(clock, str):
        try:
            clock = datetime.fromisoformat(clock)
        except ValueError:
            raise doc.fail("clock", f"not an ISO date-time: {clock!r}") from None
    return Profile(
        name=doc.get("name", str, required=True),
        identification=ident,
        description=doc.get("description", str, ""),
        sources=tuple(str(s) for s in doc.get("sources", list, [])),
        mode=mode,
        address=str(doc.get("address", (str, int), "")),
        serial=str(doc.get("serial", (str, int), "")),
        registers=regs,
        readout=tuple(readout),
        readable=readable,
        password=pd.get("password", str),
        operand=str(pd.get("operand", (str, int), "")),
        write=write,
        error_text=pd.get("error_text", str, "ERROR"),
        reply_with_address=pd.get("reply_with_address", bool, False),
        partial_block_size=pd.get("partial_block_size", int),
        push_interval=push.get("interval", float),
        push_baud=push.get("baud", int, 2400),
        timings=timings,
        quirks=quirks,
        energy_import=tariff_map("import"),
        energy_export=tariff_map("export"),
        tariffs=tariffs,
        installation={k: float(v) for k, v in inst.data.items()},
        clock_start=clock,
    )
