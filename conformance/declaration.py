"""The reader declaration (TOML): how to run the reader under test and what it claims.

See docs/conformance.md for the format.  Commands are argument lists with placeholders
({port}, {speed}, {registers}, {password}, {address}, {here}); they are never run through a
shell.
"""

from __future__ import annotations

import sys
import tomllib
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from me162.protocol.errors import ConfigError

PLACEHOLDERS = {"port", "speed", "registers", "password", "address", "here", "python"}
MODES = {"A", "B", "C", "D"}
TRANSPORTS = {"pty", "tcp-parity", "rfc2217"}


@dataclass(frozen=True)
class Declaration:
    name: str
    command: tuple[str, ...]
    path: Path
    registers_command: tuple[str, ...] = ()
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
    def scales_time(self) -> bool:
        """The reader takes {speed}: its timings run as fast as the virtual meter's."""
        return any("{speed}" in a for a in (*self.command, *self.registers_command))

    def argv(self, *, port: str, speed: float, registers: list[str] | None = None, password: str | None = None,
             address: str = "") -> list[str]:  # fmt: skip
        template = self.registers_command if registers else self.command
        values = {
            "port": port,
            "speed": f"{speed:g}",
            "registers": ",".join(registers or []),
            "password": password or "",
            "address": address,
            "here": str(self.here),
            "python": sys.executable,
        }
        out = []
        for arg in template:
            if arg == "{password}" and not password:
                continue
            out.append(arg.format(**values))
        # a password option with an empty value is dropped together with its value
        return [
            a for i, a in enumerate(out) if not (a == "--password" and (i + 1 >= len(out) or not out[i + 1]))
        ]


def load_declaration(path: str | Path) -> Declaration:
    p = Path(path).resolve()
    try:
        data = tomllib.loads(p.read_text(encoding="utf-8"))
    except OSError as e:
        raise ConfigError(f"cannot read the reader declaration {path}: {e.strerror}") from None
    except tomllib.TOMLDecodeError as e:
        raise ConfigError(f"{path}: not valid TOML: {e}") from None

    def fail(key: str, message: str) -> ConfigError:
        return ConfigError(f"{path}: {key}: {message}")

    reader = data.get("reader")
    if not isinstance(reader, dict):
        raise fail("reader", "a [reader] table with name and command is required")
    claims = data.get("claims", {})
    if not isinstance(claims, dict):
        raise fail("claims", "must be a table")
    for key in set(reader) - {"name", "command", "registers_command", "prepare", "timeout", "output"}:
        raise fail(f"reader.{key}", "unknown key")
    known_claims = {"modes", "max_baud", "programming", "registers", "partial_blocks", "password", "address",
                    "software_parity", "transports", "fixed_speed"}  # fmt: skip
    for key in set(claims) - known_claims:
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
            for name in _fields(a):
                if name not in PLACEHOLDERS:
                    raise fail(
                        f"reader.{key}",
                        f"unknown placeholder {{{name}}} (known: {', '.join(sorted(PLACEHOLDERS))})",
                    )
        return tuple(v)

    command = argv("command", required=True)
    if not any("{port}" in a for a in command):
        raise fail("reader.command", "must contain {port}")
    name = reader.get("name")
    if not isinstance(name, str) or not name:
        raise fail("reader.name", "is required")
    output = reader.get("output", "json")
    if output not in ("json", "exit-code"):
        raise fail("reader.output", "must be 'json' or 'exit-code'")
    timeout = reader.get("timeout", 60)
    if not isinstance(timeout, int | float) or timeout <= 0:
        raise fail("reader.timeout", "must be a positive number of seconds")
    modes = claims.get("modes", ["C"])
    if not isinstance(modes, list) or not set(modes) <= MODES:
        raise fail("claims.modes", "must be a list of A, B, C, D")
    transports = claims.get("transports", ["pty"])
    if not isinstance(transports, list) or not set(transports) <= TRANSPORTS:
        raise fail("claims.transports", f"must be a list of {', '.join(sorted(TRANSPORTS))}")
    programming = bool(claims.get("programming", False))
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
        prepare=argv("prepare"),
        timeout=float(timeout),
        output=output,
        modes=frozenset(modes),
        max_baud=int(claims.get("max_baud", 9600)),
        programming=programming,
        registers=tuple(str(r) for r in claims.get("registers", [])),
        partial_blocks=bool(claims.get("partial_blocks", False)),
        password=bool(claims.get("password", False)),
        address=bool(claims.get("address", False)),
        software_parity=bool(claims.get("software_parity", False)),
        transports=frozenset(transports),
        fixed_speed=bool(claims.get("fixed_speed", False)),
        raw=data,
    )


def _fields(arg: str) -> list[str]:
    import string

    try:
        return [f for _, f, _, _ in string.Formatter().parse(arg) if f]
    except ValueError:
        return []
