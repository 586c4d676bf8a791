"""The reader declaration (TOML): how to run the reader under test and what it claims.

See docs/conformance.md for the format.  Commands are argument lists with placeholders; they are
never run through a shell:

- ``{port}`` the device or URL to open; ``{speed}`` the time scale of the virtual meter;
- ``{registers}`` the registers to read by R1, comma separated; ``{password}`` the P1 password
  (when there is none, the placeholder is dropped, and so is an option just before it such as
  ``--password``; an argument such as ``--password={password}`` is dropped whole);
- ``{address}`` the meter's device address (empty for the general address);
- ``{here}`` the declaration's folder; ``{cache}`` a folder of this user's cache for what
  ``prepare`` builds (never inside an installed package); ``{python}`` the Python running the
  suite.

A declaration is a file, or the name of one shipped with me162 (``me162-read``, ``pwitab``,
``c-reader``; ``me162-check --list-readers`` lists them).
"""

from __future__ import annotations

import hashlib
import os
import re
import string
import sys
import tomllib
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from me162.protocol.errors import ConfigError
from me162.protocol.schema import Located, check, toml_lines

PLACEHOLDERS = {"port", "speed", "registers", "password", "address", "here", "cache", "python"}
MODES = {"A", "B", "C", "D"}
TRANSPORTS = {"pty", "tcp-parity", "rfc2217"}
READERS = Path(__file__).resolve().parent / "readers"


@dataclass(frozen=True)
class Declaration:
    name: str
    command: tuple[str, ...]
    path: Path
    registers_command: tuple[str, ...] = ()
    software_parity_command: tuple[str, ...] = ()  #: how to read over an 8N1 link (parity in bit 7)
    prepare: tuple[str, ...] = ()
    timeout: float = 60.0
    output: str = "json"  #: "json" (the schema of me162-read --json) or "exit-code"
    modes: frozenset[str] = frozenset({"C"})
    max_baud: int = 9600
    programming: bool = False
    registers: tuple[str, ...] = ()
    partial_blocks: bool = False
    password: bool = False
    address: bool = False
    software_parity: bool = False
    transports: frozenset[str] = frozenset({"pty"})
    fixed_speed: bool = False  #: the reader talks at 9600 Bd from the start (wired interfaces)
    raw: dict[str, Any] = field(default_factory=dict)

    @property
    def here(self) -> Path:
        return self.path.parent

    @property
    def cache(self) -> Path:
        """This declaration's folder in the user's cache (XDG_CACHE_HOME, else ~/.cache)."""
        base = Path(os.environ.get("XDG_CACHE_HOME") or Path.home() / ".cache")
        slug = re.sub(r"[^A-Za-z0-9]+", "-", self.name).strip("-").lower() or "reader"
        digest = hashlib.sha256(str(self.path).encode()).hexdigest()[:10]
        return base / "me162" / "readers" / f"{slug}-{digest}"

    @property
    def scales_time(self) -> bool:
        """The reader takes {speed}: its timings run as fast as the virtual meter's."""
        return any(
            "{speed}" in a for a in (*self.command, *self.registers_command, *self.software_parity_command)
        )

    def values(self, **given: str) -> dict[str, str]:
        return {"here": str(self.here), "cache": str(self.cache), "python": sys.executable, **given}

    def argv(self, *, port: str, speed: float, registers: list[str] | None = None, password: str | None = None,
             address: str = "", software_parity: bool = False) -> list[str]:  # fmt: skip
        """The command for one reading, its placeholders filled in."""
        if registers:
            template = self.registers_command
        elif software_parity and self.software_parity_command:
            template = self.software_parity_command
        else:
            template = self.command
        values = self.values(
            port=port,
            speed=f"{speed:g}",
            registers=",".join(registers or []),
            password=password or "",
            address=address,
        )
        out: list[str] = []
        for arg in template:
            if "{password}" in arg and not password:
                if arg == "{password}" and out and out[-1].startswith("-"):
                    out.pop()  # the option that would take the password as its value
                continue
            out.append(arg.format(**values))
        return out

    def prepare_argv(self) -> list[str]:
        return [a.format(**self.values()) for a in self.prepare]


def shipped() -> dict[str, Path]:
    """The declarations shipped with me162, by name."""
    return {p.stem: p for p in sorted(READERS.glob("*.toml"))}


def find_declaration(name_or_path: str | Path) -> Path:
    """A declaration file: a path that exists, or the name of a shipped declaration."""
    path = Path(name_or_path)
    if path.is_file():
        return path
    known = shipped()
    name = path.name.removesuffix(".toml")
    if name in known and len(path.parts) <= 3:
        return known[name]
    raise ConfigError(
        f"no reader declaration {name_or_path}: not a file, and not one shipped with me162 "
        f"({', '.join(known)})"
    )


def load_declaration(path: str | Path) -> Declaration:
    p = find_declaration(path).resolve()
    try:
        text = p.read_text(encoding="utf-8")
        data = tomllib.loads(text)
    except OSError as e:
        raise ConfigError(f"cannot read the reader declaration {path}: {e.strerror}") from None
    except UnicodeDecodeError:
        raise ConfigError(f"{path}: not a text file (a reader declaration is TOML)") from None
    except tomllib.TOMLDecodeError as e:
        raise ConfigError(f"{path}: not valid TOML: {e}") from None

    lines = toml_lines(text)
    check(Located(data, lines), "declaration", str(path))  # every structural error at once

    def fail(key: str, message: str) -> ConfigError:
        at = lines.get(tuple(key.split(".")), lines.get(tuple(key.split(".")[:1]), 1))
        return ConfigError(f"{path}:{at}: {key}: {message}")

    reader = data.get("reader")
    if not isinstance(reader, dict):
        raise fail("reader", "a [reader] table with name and command is required")
    claims = data.get("claims", {})
    if not isinstance(claims, dict):
        raise fail("claims", "must be a table")
    known_reader = {
        "name",
        "command",
        "registers_command",
        "software_parity_command",
        "prepare",
        "timeout",
        "output",
    }
    for key in sorted(set(reader) - known_reader):
        raise fail(f"reader.{key}", f"unknown key (known: {', '.join(sorted(known_reader))})")
    known_claims = {"modes", "max_baud", "programming", "registers", "partial_blocks", "password", "address",
                    "software_parity", "transports", "fixed_speed"}  # fmt: skip
    for key in sorted(set(claims) - known_claims):
        raise fail(f"claims.{key}", f"unknown key (known: {', '.join(sorted(known_claims))})")

    def argv(key: str, required: bool = False) -> tuple[str, ...]:
        v = reader.get(key)
        if v is None and not required:
            return ()
        if not isinstance(v, list) or not v or not all(isinstance(a, str) for a in v):
            raise fail(
                f"reader.{key}",
                'must be a list of arguments (never a shell line), e.g. ["my-reader", "{port}"]',
            )
        for a in v:
            try:
                names = [f for _, f, _, _ in string.Formatter().parse(a) if f is not None]
            except ValueError as e:
                hint = "a placeholder is {name}; write {{ for a brace"
                raise fail(f"reader.{key}", f"{a!r}: {e} ({hint})") from None
            for name in names:
                if name not in PLACEHOLDERS:
                    raise fail(
                        f"reader.{key}",
                        f"unknown placeholder {{{name}}} (known: {', '.join(sorted(PLACEHOLDERS))})",
                    )
        return tuple(v)

    def flag(key: str) -> bool:
        v = claims.get(key, False)
        if not isinstance(v, bool):
            raise fail(f"claims.{key}", f"must be true or false, not {v!r}")
        return v

    command = argv("command", required=True)
    if not any("{port}" in a for a in command):
        raise fail("reader.command", "must contain {port}")
    name = reader.get("name")
    if not isinstance(name, str) or not name:
        raise fail("reader.name", "is required: a line of text")
    output = reader.get("output", "json")
    if output not in ("json", "exit-code"):
        raise fail("reader.output", "must be 'json' or 'exit-code'")
    timeout = reader.get("timeout", 60)
    if isinstance(timeout, bool) or not isinstance(timeout, int | float) or not 0 < timeout <= 3600:
        raise fail("reader.timeout", f"must be seconds between 0 and 3600, not {timeout!r}")
    modes = claims.get("modes", ["C"])
    if not isinstance(modes, list) or not modes or not set(modes) <= MODES:
        raise fail("claims.modes", f"must be a list of A, B, C, D, not {modes!r}")
    transports = claims.get("transports", ["pty"])
    if not isinstance(transports, list) or not set(transports) <= TRANSPORTS:
        raise fail(
            "claims.transports", f"must be a list of {', '.join(sorted(TRANSPORTS))}, not {transports!r}"
        )
    max_baud = claims.get("max_baud", 9600)
    if isinstance(max_baud, bool) or max_baud not in (300, 600, 1200, 2400, 4800, 9600, 19200):
        raise fail(
            "claims.max_baud", f"must be one of 300, 600, 1200, 2400, 4800, 9600, 19200, not {max_baud!r}"
        )
    registers = claims.get("registers", [])
    if not isinstance(registers, list) or not all(isinstance(r, str) and r for r in registers):
        raise fail(
            "claims.registers", f'must be a list of register addresses such as ["1.8.0"], not {registers!r}'
        )
    programming = flag("programming")
    registers_command = argv("registers_command")
    if programming and not registers_command:
        raise fail(
            "reader.registers_command", "a reader that claims programming mode needs it (with {registers})"
        )
    return Declaration(
        name=name,
        command=command,
        path=p,
        registers_command=registers_command,
        software_parity_command=argv("software_parity_command"),
        prepare=argv("prepare"),
        timeout=float(timeout),
        output=output,
        modes=frozenset(modes),
        max_baud=int(max_baud),
        programming=programming,
        registers=tuple(registers),
        partial_blocks=flag("partial_blocks"),
        password=flag("password"),
        address=flag("address"),
        software_parity=flag("software_parity"),
        transports=frozenset(transports),
        fixed_speed=flag("fixed_speed"),
        raw=data,
    )
