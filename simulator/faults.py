"""Scripted, seeded faults: what readers meet in the field, on demand and reproducibly.

A scenario (YAML, fixtures/scenarios/) names a purpose, the reference it comes from, and a
list of faults.  Each fault has a trigger — a protocol event or position: "the 2nd R1
reply", "the readout", "the identification", "after t=5 s", "every 3rd session" — and an
action on the wire: corrupt or set the BCC; flip, drop, insert or duplicate bytes; noise;
truncate; delay; hold until the reader's next message; silence; NAK or (ERROR) instead of
the answer; another speed, a late switch or none; the parity bit in bit 7; partial blocks;
the probe pulled off the line; a meter reset mid-readout.

:class:`FaultInjector` sits between the meter and the line (a link interceptor), so faults
change exactly the bytes and timing of the transmissions they hit.  Every fault that fires
is logged and put on the link's record (a ``fault`` event in captures) with what it changed.
``--chaos SEED --rate P`` picks faults from the catalogue with a seeded RNG.
"""

from __future__ import annotations

import logging
import random
from collections.abc import Callable
from dataclasses import dataclass, field, replace
from pathlib import Path
from typing import Any

from me162.protocol.bcc import xor7
from me162.protocol.errors import ConfigError
from me162.protocol.frames import Command, ErrorMessage
from me162.protocol.line import INITIAL_BAUD, STANDARD_BAUDS, add_parity
from me162.protocol.schema import Located, check, load_yaml
from me162.simulator.events import Sent, Wire, WireEvent
from me162.simulator.link import Link
from me162.simulator.meter import Meter, Transmit

log = logging.getLogger(__name__)

MESSAGES = {"identification", "readout", "operand", "reply", "error", "nak", "ack", "break", "push", "any"}
_WHOLE: dict[str, Any] = {
    "type": ["integer", "string"],
    "description": "a whole number >= 0 (or its text, e.g. 0x10)",
}
_HEX: dict[str, Any] = {"type": "string", "description": "bytes as hex text, e.g. '7f 7f'"}
_SECONDS: dict[str, Any] = {"type": "number", "minimum": 0}

Applied = tuple[list[Transmit], str]  #: what goes on the line instead, and what changed


@dataclass(frozen=True)
class Action:
    """One fault action: the JSON Schema of its parameters (the scenario schema is made from
    these), which of them it needs, and what it does to a transmission."""

    params: dict[str, dict[str, Any]]
    apply: Callable[[Transmit, dict[str, Any], Link], Applied]
    required: tuple[str, ...] = ()
    #: it changes what a transmission carries (or when), not its speed or whether it is heard:
    #: a reader listening at another speed when it fired never met it (WireRecord.slipped)
    spoils_bytes: bool = True


def _bcc(tx: Transmit, p: dict[str, Any], link: Link) -> Applied:
    data = tx.data
    if len(data) < 2 or data[-2] not in (0x03, 0x04):
        return [tx], "no BCC in this message: unchanged"
    good = xor7(data[1:-1])
    bad = int(p["value"]) if "value" in p else good ^ 0x01
    return [
        replace(tx, data=data[:-1] + bytes([bad]))
    ], f"BCC 0x{data[-1]:02X} -> 0x{bad:02X} (correct: 0x{good:02X})"


def _flip(tx: Transmit, p: dict[str, Any], link: Link) -> Applied:
    data = tx.data
    at = min(int(p.get("at", len(data) // 2)), len(data) - 1)
    mask = int(p.get("mask", 1))
    return [replace(tx, data=data[:at] + bytes([data[at] ^ mask]) + data[at + 1 :])], (
        f"byte {at} 0x{data[at]:02X} -> 0x{data[at] ^ mask:02X}"
    )


def _drop(tx: Transmit, p: dict[str, Any], link: Link) -> Applied:
    data, at, count = tx.data, int(p.get("at", 0)), int(p.get("count", 1))
    return [
        replace(tx, data=data[:at] + data[at + count :])
    ], f"dropped {data[at : at + count].hex(' ')} at byte {at}"


def _insert(tx: Transmit, p: dict[str, Any], link: Link) -> Applied:
    at = int(p.get("at", 0))
    extra = bytes(p.get("bytes") or b"\x7f") * int(p.get("count", 1))
    return [replace(tx, data=tx.data[:at] + extra + tx.data[at:])], f"inserted {extra.hex(' ')} at byte {at}"


def _duplicate(tx: Transmit, p: dict[str, Any], link: Link) -> Applied:
    data, at, count = tx.data, int(p.get("at", 0)), int(p.get("count", 1))
    return [replace(tx, data=data[:at] + data[at : at + count] * 2 + data[at + count :])], (
        f"byte(s) {data[at : at + count].hex(' ')} at {at} sent twice"
    )


def _truncate(tx: Transmit, p: dict[str, Any], link: Link) -> Applied:
    keep = int(p["keep"])
    return [replace(tx, data=tx.data[:keep])], f"cut after {keep} of {len(tx.data)} bytes"


def _delay(tx: Transmit, p: dict[str, Any], link: Link) -> Applied:
    s = float(p["seconds"])
    return [replace(tx, at=tx.at + s)], f"answer {s * 1000:.0f} ms later"


def _hold(tx: Transmit, p: dict[str, Any], link: Link) -> Applied:
    s = float(p["seconds"])
    link.hold(tx, tx.at + s)
    return [], f"held until the reader's next message reaches the meter, {s * 1000:.0f} ms at most"


def _silent(tx: Transmit, p: dict[str, Any], link: Link) -> Applied:
    return [], "not sent"


def _answer(tx: Transmit, p: dict[str, Any], link: Link) -> Applied:
    nak = p["with"] == "nak"
    data = b"\x15" if nak else ErrorMessage("ERROR").to_bytes()
    return [
        replace(tx, data=data, kind=Sent.NAK if nak else Sent.ERROR)
    ], f"answered {p['with'].upper()} instead"


def _speed(tx: Transmit, p: dict[str, Any], link: Link) -> Applied:
    return [replace(tx, baud=int(p["baud"]))], f"sent at {p['baud']} Bd instead of {tx.baud} Bd"


def _late_switch(tx: Transmit, p: dict[str, Any], link: Link) -> Applied:
    k = min(int(p.get("bytes", 4)), len(tx.data))
    first = replace(tx, data=tx.data[:k], baud=INITIAL_BAUD, then_baud=None)
    return [first, replace(tx, at=first.end, data=tx.data[k:])], (
        f"first {k} byte(s) still at 300 Bd, the rest at {tx.baud} Bd"
    )


def _parity_error(tx: Transmit, p: dict[str, Any], link: Link) -> Applied:
    at = min(int(p.get("at", len(tx.data) // 2)), len(tx.data) - 1)
    return [replace(tx, bad_parity=tx.bad_parity | {at})], (
        f"byte {at} (0x{tx.data[at]:02X}) sent with the wrong parity bit, its BCC still right"
    )


def _parity_bit(tx: Transmit, p: dict[str, Any], link: Link) -> Applied:
    return [
        replace(tx, data=add_parity(tx.data), raw=True)
    ], "sent with the even-parity bit in bit 7 (8-bit bytes)"


def _partial_blocks(tx: Transmit, p: dict[str, Any], link: Link) -> Applied:
    return [tx], "answers in partial blocks"  # the meter itself splits them (FaultInjector.__init__)


def _drop_line(tx: Transmit, p: dict[str, Any], link: Link) -> Applied:
    s = float(p["seconds"])
    link.line_drops.append((tx.at, s))
    return [], f"probe pulled off the line for {s} s"


def _reset(tx: Transmit, p: dict[str, Any], link: Link) -> Applied:
    keep = int(p.get("keep", len(tx.data) // 2))
    cut = replace(tx, data=tx.data[:keep], then_baud=None)
    if isinstance(link.meter, Meter):
        link.meter.reset(cut.end)
    return [cut], f"meter restarted after {keep} of {len(tx.data)} bytes"


#: The fault actions: the scenario schema (``scenario_schema()``, shipped as
#: protocol/schemas/scenario.schema.json) and the injector are both made from this.
ACTIONS: dict[str, Action] = {
    "corrupt_bcc": Action({}, _bcc),
    "set_bcc": Action({"value": {"type": "integer", "minimum": 0, "maximum": 255}}, _bcc, ("value",)),
    "flip": Action({"at": _WHOLE, "mask": {"type": "integer", "minimum": 1, "maximum": 255}}, _flip),
    "drop": Action({"at": _WHOLE, "count": _WHOLE}, _drop),
    "insert": Action({"at": _WHOLE, "bytes": _HEX}, _insert, ("bytes",)),
    "duplicate": Action({"at": _WHOLE, "count": _WHOLE}, _duplicate),
    "noise": Action({"at": _WHOLE, "bytes": _HEX, "count": _WHOLE}, _insert),
    "truncate": Action({"keep": _WHOLE}, _truncate, ("keep",)),
    "delay": Action({"seconds": _SECONDS}, _delay, ("seconds",)),
    "hold": Action({"seconds": _SECONDS}, _hold, ("seconds",)),
    "silent": Action({}, _silent, spoils_bytes=False),
    "answer": Action({"with": {"enum": ["nak", "error"]}}, _answer, ("with",)),
    "speed": Action(
        {"baud": {"enum": [300, 600, 1200, 2400, 4800, 9600, 19200]}}, _speed, ("baud",), spoils_bytes=False
    ),
    "late_switch": Action({"bytes": _WHOLE}, _late_switch, spoils_bytes=False),
    "parity_bit": Action({}, _parity_bit, spoils_bytes=False),
    "parity_error": Action({"at": _WHOLE}, _parity_error),
    "partial_blocks": Action(
        {"size": {"type": "integer", "minimum": 1}}, _partial_blocks, ("size",), spoils_bytes=False
    ),
    "drop_line": Action({"seconds": _SECONDS}, _drop_line, ("seconds",), spoils_bytes=False),
    "reset": Action({"keep": _WHOLE}, _reset),
}

#: the actions that spoil a transmission's bytes at the speed the meter agreed
BYTE_FAULTS = frozenset(name for name, action in ACTIONS.items() if action.spoils_bytes)


def scenario_schema() -> dict[str, Any]:
    """The JSON Schema of a scenario file, made from the action registry."""
    actions = []
    for name, action in ACTIONS.items():
        actions.append(
            {
                "if": {"properties": {"action": {"const": name}}},
                "then": {
                    "properties": {"action": True, **action.params},
                    "additionalProperties": False,
                    "required": ["action", *action.required],
                },
            }
        )
    whole = {"type": "integer", "minimum": 0}
    return {
        "$schema": "https://json-schema.org/draft/2020-12/schema",
        "$id": "https://me162.invalid/schemas/scenario.schema.json",
        "title": "me162 fault scenario",
        "description": "Scripted, seeded faults for the virtual meter (docs/scenarios.md).",
        "type": "object",
        "additionalProperties": False,
        "required": ["faults"],
        "properties": {
            "name": {"type": "string"},
            "purpose": {
                "type": "string",
                "description": "what the scenario tests (built-in scenarios have one)",
            },
            "reference": {"type": "string", "description": "where the behaviour comes from"},
            "profile": {"type": "string", "description": "the profile it needs (default me162)"},
            "faults": {
                "type": "array",
                "minItems": 1,
                "items": {
                    "type": "object",
                    "additionalProperties": False,
                    "required": ["do"],
                    "properties": {
                        "when": {
                            "type": "object",
                            "additionalProperties": False,
                            "properties": {
                                "message": {"enum": sorted(MESSAGES)},
                                "command": {"type": "string"},
                                "register": {"type": ["string", "number"]},
                                "nth": whole,
                                "every": whole,
                                "session_every": whole,
                                "after": _SECONDS,
                                "count": whole,
                            },
                        },
                        "do": {
                            "oneOf": [
                                {"enum": sorted(ACTIONS)},
                                {
                                    "type": "object",
                                    "required": ["action"],
                                    "properties": {"action": {"enum": sorted(ACTIONS)}},
                                    "allOf": actions,
                                },
                            ]
                        },
                    },
                },
            },
        },
    }


TRIGGER_KEYS = {"message", "command", "register", "nth", "every", "session_every", "after", "count"}


@dataclass(frozen=True)
class Trigger:
    message: str = "any"
    command: str | None = None
    register: str | None = None
    nth: int = 1  #: first matching transmission to hit (1-based)
    every: int | None = None  #: then every N-th one
    session_every: int | None = None  #: only in every N-th session (sign-on)
    after: float | None = None  #: only at or after this many seconds
    count: int = 1  #: how many times at most (0: no limit)


@dataclass(frozen=True)
class Fault:
    trigger: Trigger
    action: str
    params: dict[str, Any] = field(default_factory=dict)
    where: str = ""

    def describe(self) -> str:
        t = self.trigger
        what = (
            t.message if t.command is None else f"{t.command}{' ' + t.register if t.register else ''} reply"
        )
        args = ", ".join(f"{k}={v}" for k, v in self.params.items())
        return f"{self.action}({args}) on {what}" + (f" #{t.nth}" if t.nth != 1 else "")


@dataclass(frozen=True)
class Scenario:
    name: str
    purpose: str
    reference: str
    faults: tuple[Fault, ...]
    profile: str = "me162"
    path: str = ""


# --- loading ----------------------------------------------------------------------------------


class _Marks:
    """Line numbers of the YAML nodes, to say where a scenario is wrong."""

    def __init__(self, where: str, located: Located) -> None:
        self.where = where
        self.located = located

    def line(self, path: tuple[Any, ...]) -> int:
        return self.located.line(path)

    def fail(self, path: tuple[Any, ...], message: str) -> ConfigError:
        dotted = ".".join(str(x) for x in path) or "the scenario"
        return ConfigError(f"{self.where}:{self.line(path)}: {dotted}: {message}")


def _or(value: int | None, default: int) -> int:
    return default if value is None else value


def _int(value: Any) -> int | None:
    if isinstance(value, bool):
        return None
    if isinstance(value, int):
        return value
    if isinstance(value, str):
        try:
            return int(value, 0)
        except ValueError:
            return None
    return None


def parse_scenario(text: str, where: str) -> Scenario:
    located = load_yaml(text, where)
    if located.data is None:
        raise ConfigError(f"{where}:1: the scenario is empty")
    check(located, "scenario", where)  # every structural error at once, with lines
    marks = _Marks(where, located)
    doc = located.data
    faults_raw = doc.get("faults")
    if not isinstance(faults_raw, list) or not faults_raw:
        raise marks.fail(("faults",), "is required: a list of faults, each with 'when' and 'do'")
    faults = []
    for i, f in enumerate(faults_raw):
        path = ("faults", i)
        if not isinstance(f, dict) or set(f) - {"when", "do"} or "do" not in f:
            raise marks.fail(path, "a fault is a mapping with 'when' (a trigger) and 'do' (an action)")
        when = f.get("when") or {}
        if not isinstance(when, dict):
            raise marks.fail((*path, "when"), "must be a mapping")
        for k in when:
            if k not in TRIGGER_KEYS:
                raise marks.fail(
                    (*path, "when", k), f"unknown trigger key (known: {', '.join(sorted(TRIGGER_KEYS))})"
                )
        message = when.get("message", "any")
        if message not in MESSAGES:
            raise marks.fail(
                (*path, "when", "message"),
                f"unknown message {message!r} (known: {', '.join(sorted(MESSAGES))})",
            )
        ints: dict[str, int | None] = {}
        for k in ("nth", "every", "session_every", "count"):
            if k in when:
                v = _int(when[k])
                if v is None or v < (0 if k == "count" else 1):
                    raise marks.fail(
                        (*path, "when", k),
                        f"must be a whole number >= {0 if k == 'count' else 1}, not {when[k]!r}",
                    )
                ints[k] = v
        after = when.get("after")
        if after is not None and (isinstance(after, bool) or not isinstance(after, int | float) or after < 0):
            raise marks.fail((*path, "when", "after"), f"must be seconds >= 0, not {after!r}")
        trigger = Trigger(
            message=message,
            command=str(when["command"]) if "command" in when else None,
            register=str(when["register"]) if "register" in when else None,
            nth=ints.get("nth") or 1,
            every=ints.get("every"),
            session_every=ints.get("session_every"),
            after=float(after) if after is not None else None,
            count=_or(ints.get("count"), 1),
        )
        do = f["do"]
        if isinstance(do, str):
            do = {"action": do}
        if not isinstance(do, dict) or "action" not in do:
            raise marks.fail((*path, "do"), "must name an action: do: {action: corrupt_bcc}")
        action = do["action"]
        if action not in ACTIONS:
            raise marks.fail(
                (*path, "do", "action"), f"unknown action {action!r} (known: {', '.join(sorted(ACTIONS))})"
            )
        params = {k: v for k, v in do.items() if k != "action"}
        for k in params:
            if k not in ACTIONS[action].params:
                allowed = ", ".join(sorted(ACTIONS[action].params)) or "none"
                raise marks.fail((*path, "do", k), f"{action} takes no parameter {k!r} (it takes: {allowed})")
        _check_params(action, params, marks, (*path, "do"))
        faults.append(Fault(trigger, action, params, f"{where}:{marks.line(path)}"))
    name = doc.get("name") or Path(where).name.removesuffix(".yaml").removesuffix(".yml")
    return Scenario(
        name,
        doc.get("purpose") or "",
        doc.get("reference") or "",
        tuple(faults),
        str(doc.get("profile", "me162")),
        where,
    )


def _check_params(action: str, params: dict[str, Any], marks: _Marks, path: tuple[Any, ...]) -> None:
    def need_int(key: str, low: int, high: int | None = None, *, required: bool = False) -> None:
        if key not in params:
            if required:
                raise marks.fail((*path, key), f"{action} needs {key}")
            return
        v = _int(params[key])
        if v is None or v < low or (high is not None and v > high):
            bound = f"{low}..{high}" if high is not None else f">= {low}"
            raise marks.fail((*path, key), f"must be a whole number {bound}, not {params[key]!r}")
        params[key] = v

    def need_hex(key: str, *, required: bool = False) -> None:
        if key not in params:
            if required:
                raise marks.fail((*path, key), f"{action} needs {key} (hex, e.g. '7f7f')")
            return
        try:
            params[key] = bytes.fromhex(str(params[key]))
        except ValueError:
            raise marks.fail((*path, key), f"must be hex text such as '7f 7f', not {params[key]!r}") from None

    for key in ("at", "count") if action in {"insert", "noise"} else ("at", "count", "keep", "size", "bytes"):
        need_int(key, 0)
    if action == "set_bcc":
        need_int("value", 0, 255, required=True)
    if action == "flip":
        need_int("mask", 1, 255)
    if action in ("insert", "noise"):
        need_hex("bytes", required=action == "insert")
    if action == "truncate" and "keep" not in params:
        raise marks.fail((*path, "keep"), "truncate needs keep: how many bytes of the message go out")
    if action in ("delay", "hold", "drop_line"):
        v = params.get("seconds")
        if isinstance(v, bool) or not isinstance(v, int | float) or v < 0:
            raise marks.fail((*path, "seconds"), f"{action} needs seconds >= 0, not {v!r}")
    if action == "answer" and params.get("with") not in ("nak", "error"):
        raise marks.fail(
            (*path, "with"), f"answer needs with: nak or with: error, not {params.get('with')!r}"
        )
    if action == "speed":
        v = _int(params.get("baud"))
        if v not in STANDARD_BAUDS:
            raise marks.fail(
                (*path, "baud"),
                f"must be one of {', '.join(map(str, STANDARD_BAUDS))}, not {params.get('baud')!r}",
            )
        params["baud"] = v
    if action == "partial_blocks":
        need_int("size", 1, required=True)


def load_scenario(path: str | Path) -> Scenario:
    p = Path(path)
    try:
        text = p.read_text(encoding="utf-8")
    except OSError as e:
        raise ConfigError(f"cannot read scenario {p}: {e.strerror}") from None
    return parse_scenario(text, str(p))


# --- injecting ------------------------------------------------------------------------------------


class FaultInjector:
    """A link interceptor that applies faults to the meter's transmissions."""

    def __init__(self, link: Link, faults: list[Fault], *, chaos: tuple[int, float] | None = None) -> None:
        self.link = link
        self.faults = list(faults)
        self.seen: dict[int, int] = {}
        self.fired: dict[int, int] = {}
        self.chaos_rng = random.Random(chaos[0]) if chaos else None
        self.chaos_rate = chaos[1] if chaos else 0.0
        self.log: list[str] = []
        meter = link.meter
        if isinstance(meter, Meter):
            for f in self.faults:
                if f.action == "partial_blocks":
                    meter.fault_partial_size = int(f.params["size"])
        link.interceptors.append(self)

    def _record(self, t: float, fault: str, detail: str) -> None:
        text = f"{fault}: {detail}"
        self.log.append(f"t={t:.3f} {text}")
        self.link.events.append(WireEvent(t, Wire.FAULT, detail=text, fault=fault))
        log.warning("fault at t=%.3f: %s", t, text)

    def _matches(self, f: Fault, tx: Transmit) -> bool:
        t = f.trigger
        if t.message not in {"any", tx.kind}:
            return False
        meter = self.link.meter
        if t.command is not None:
            cmd: Command | None = getattr(meter, "last_command", None)
            if cmd is None or cmd.name != t.command or tx.kind not in ("reply", "error", "nak", "ack"):
                return False
            if t.register is not None and cmd.address != t.register:
                return False
        if t.after is not None and tx.at < t.after:
            return False
        return not (t.session_every is not None and getattr(meter, "sessions", 0) % t.session_every != 0)

    def __call__(self, tx: Transmit) -> list[Transmit]:
        out = [tx]
        for i, f in enumerate(self.faults):
            if f.action == "partial_blocks":
                continue
            new: list[Transmit] = []
            for x in out:
                if not self._matches(f, x):
                    new.append(x)
                    continue
                self.seen[i] = self.seen.get(i, 0) + 1
                n = self.seen[i]
                t = f.trigger
                due = n >= t.nth and (t.every is None or (n - t.nth) % t.every == 0)
                if not due or (t.count and self.fired.get(i, 0) >= t.count):
                    new.append(x)
                    continue
                self.fired[i] = self.fired.get(i, 0) + 1
                new.extend(self.apply(f.action, f.params, x, origin=f.where))
            out = new
        if self.chaos_rng is not None:
            out = [y for x in out for y in self._chaos(x)]
        return out

    def _chaos(self, tx: Transmit) -> list[Transmit]:
        rng = self.chaos_rng
        assert rng is not None
        if rng.random() >= self.chaos_rate:
            return [tx]
        action = rng.choice(
            ["corrupt_bcc", "flip", "drop", "insert", "noise", "truncate", "delay", "silent", "duplicate"]
        )
        n = max(1, len(tx.data))
        catalogue: dict[str, dict[str, Any]] = {
            "flip": {"at": rng.randrange(n), "mask": 1 << rng.randrange(7)},
            "drop": {"at": rng.randrange(n), "count": 1},
            "insert": {"at": rng.randrange(n), "bytes": bytes([rng.randrange(0x20, 0x7F)])},
            "noise": {"at": 0, "bytes": b"\x7f", "count": rng.randrange(1, 4)},
            "truncate": {"keep": rng.randrange(n)},
            "delay": {"seconds": round(rng.uniform(0.1, 2.5), 3)},
            "duplicate": {"at": rng.randrange(n), "count": 1},
        }
        params = catalogue.get(action, {})
        return self.apply(action, params, tx, origin="chaos")

    def apply(self, action: str, p: dict[str, Any], tx: Transmit, *, origin: str = "") -> list[Transmit]:
        """Apply one action (by name, from :data:`ACTIONS`) to a transmission and record it."""
        what = f"{tx.kind} ({len(tx.data)} bytes) at t={tx.at:.3f}"
        result, note = ACTIONS[action].apply(tx, p, self.link)
        self._record(tx.at, action, f"{note} [{what}]" + (f" ({origin})" if origin else ""))
        return result


def attach(
    link: Link, scenarios: list[Scenario], *, chaos: tuple[int, float] | None = None
) -> FaultInjector | None:
    faults = [f for s in scenarios for f in s.faults]
    if not faults and chaos is None:
        return None
    return FaultInjector(link, faults, chaos=chaos)
