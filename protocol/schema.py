"""The file formats' JSON Schemas (``protocol/schemas/``: profile, scenario, declaration,
capture header), and validation against them that reports every error at once, each with the
file, the line and, for a misspelt key, the key it most likely meant.

Editors use the same schemas: ``# yaml-language-server: $schema=PATH`` at the top of a profile
or scenario, with the path ``me162-sim --schema profile`` prints.  Validation is jsonschema's;
what a schema cannot say (an identification that does not parse, a readout line naming an
undefined register) is checked after it by the loader."""

from __future__ import annotations

import datetime
import difflib
import json
import re
from dataclasses import dataclass, field
from functools import cache
from pathlib import Path
from typing import Any

import yaml

from me162.protocol.errors import ConfigError, Me162Error

SCHEMAS = Path(__file__).resolve().parent / "schemas"
NAMES = ("profile", "scenario", "declaration", "capture-header")


def schema_path(name: str) -> Path:
    if name not in NAMES:
        raise ConfigError(f"no schema called {name!r} (known: {', '.join(NAMES)})")
    return SCHEMAS / f"{name}.schema.json"


@cache
def schema(name: str) -> dict[str, Any]:
    if name == "scenario":  # made from the fault action registry (the shipped file is its copy)
        from me162.simulator.faults import scenario_schema

        return scenario_schema()
    loaded: dict[str, Any] = json.loads(schema_path(name).read_text(encoding="utf-8"))
    return loaded


@dataclass
class Located:
    """A document with the line of every node (path of keys and indexes -> 1-based line)."""

    data: Any
    lines: dict[tuple[Any, ...], int] = field(default_factory=dict)

    def line(self, path: tuple[Any, ...]) -> int:
        p = path
        while p not in self.lines and p:
            p = p[:-1]
        return self.lines.get(p, 1)


def load_yaml(text: str, where: str) -> Located:
    """YAML with line numbers; dates become ISO text, as JSON Schema sees them."""
    try:
        node = yaml.compose(text)
    except yaml.YAMLError as e:
        mark = getattr(e, "problem_mark", None)
        raise ConfigError(
            f"{where}:{mark.line + 1 if mark else 1}: not valid YAML: {getattr(e, 'problem', e)}"
        ) from None
    doc = Located(None)
    if node is not None:
        doc.data = _to_py(node, (), doc.lines)
    return doc


def _to_py(node: yaml.Node, path: tuple[Any, ...], lines: dict[tuple[Any, ...], int]) -> Any:
    lines[path] = node.start_mark.line + 1
    if isinstance(node, yaml.MappingNode):
        out: dict[Any, Any] = {}
        for k, v in node.value:
            # keys as written: 6.8 or 1 stay text (register addresses, tariff numbers)
            key = k.value if isinstance(k, yaml.ScalarNode) else str(_scalar(k))
            lines[(*path, key)] = k.start_mark.line + 1
            out[key] = _to_py(v, (*path, key), lines)
        return out
    if isinstance(node, yaml.SequenceNode):
        return [_to_py(v, (*path, i), lines) for i, v in enumerate(node.value)]
    value = _scalar(node)
    if isinstance(value, datetime.date):
        return value.isoformat()
    return value


def _scalar(node: yaml.Node) -> Any:
    constructor = yaml.constructor.SafeConstructor()
    return constructor.construct_object(node, deep=True)


def toml_lines(text: str) -> dict[tuple[Any, ...], int]:
    """The line of each ``[table]`` and ``key =`` of a simple TOML file."""
    lines: dict[tuple[Any, ...], int] = {}
    table: tuple[str, ...] = ()
    for n, line in enumerate(text.splitlines(), 1):
        m = re.match(r"\s*\[([A-Za-z0-9_.-]+)\]\s*(#.*)?$", line)
        if m:
            table = tuple(m.group(1).split("."))
            lines.setdefault(table, n)
            continue
        m = re.match(r"\s*([A-Za-z0-9_-]+|\"[^\"]*\")\s*=", line)
        if m:
            lines.setdefault((*table, m.group(1).strip('"')), n)
    return lines


def check(doc: Located, name: str, where: str, *, error: type[Me162Error] = ConfigError) -> None:
    """Validate against the schema; every error at once, one line each: ``file:line: key: what``."""
    from jsonschema import Draft202012Validator

    validator = Draft202012Validator(schema(name))
    problems = []
    for e in validator.iter_errors(_without_nulls(doc.data)):
        for path, message in _explain(e):
            problems.append((doc.line(path), path, message))
    if not problems:
        return
    seen = set()
    lines = []
    for line, path, message in sorted(problems, key=lambda p: (p[0], [str(x) for x in p[1]])):
        text = f"{where}:{line}: {'.'.join(str(x) for x in path) or 'the file'}: {message}"
        if text not in seen:
            seen.add(text)
            lines.append(text)
    raise error("\n".join(lines))


def _without_nulls(data: Any) -> Any:
    """A key given as null (``password: ~``) counts as not given, as the loaders read it."""
    if isinstance(data, dict):
        return {k: _without_nulls(v) for k, v in data.items() if v is not None}
    if isinstance(data, list):
        return [_without_nulls(v) for v in data]
    return data


def _explain(e: Any) -> list[tuple[tuple[Any, ...], str]]:
    path = tuple(e.absolute_path)
    if e.validator == "additionalProperties" and isinstance(e.instance, dict):
        known = sorted(e.schema.get("properties", {}))
        out = []
        for key in e.instance:
            if key in known or any(re.search(p, str(key)) for p in e.schema.get("patternProperties", {})):
                continue
            close = difflib.get_close_matches(str(key), known, n=1, cutoff=0.6)
            hint = f"; did you mean {close[0]!r}?" if close else f" (known: {', '.join(known)})"
            out.append(((*path, key), f"unknown key{hint}"))
        return out
    if e.validator in ("oneOf", "anyOf") and e.context:
        # explain by the alternative made for this kind of value (a mapping, a list, a text...)
        branches: dict[int, list[Any]] = {}
        for c in e.context:
            branches.setdefault(c.relative_schema_path[0], []).append(c)
        alternatives = e.validator_value
        for i, errors in branches.items():
            alt = alternatives[i]
            kind = alt.get("type")
            if (isinstance(e.instance, dict) and (kind == "object" or "properties" in alt)) or (
                isinstance(e.instance, list) and kind == "array"
            ):
                return [x for c in errors for x in _explain(c)]
        kinds = " or ".join(sorted({_kind(a) for a in alternatives}))
        return [(path, f"must be {kinds}, not {type(e.instance).__name__} {_short(e.instance)}")]
    if e.validator == "minItems" and e.validator_value == 1:
        return [(path, "must not be empty")]
    if e.validator == "required":
        missing = re.findall(r"'([^']+)' is a required property", e.message)
        return [((*path, m), "is required") for m in missing] or [(path, e.message)]
    if e.validator == "enum":
        choices = ", ".join(str(c) for c in e.validator_value)
        close = difflib.get_close_matches(
            str(e.instance), [str(c) for c in e.validator_value], n=1, cutoff=0.6
        )
        hint = f"; did you mean {close[0]!r}?" if close else ""
        return [(path, f"must be one of {choices}, not {_short(e.instance)}{hint}")]
    if e.validator == "type":
        want = e.validator_value if isinstance(e.validator_value, str) else " or ".join(e.validator_value)
        what = f" ({e.schema['description']})" if e.schema.get("description") else ""
        return [(path, f"must be {want}, not {type(e.instance).__name__} {_short(e.instance)}{what}")]
    return [(path, e.message)]


def _kind(alternative: dict[str, Any]) -> str:
    if "enum" in alternative:
        return "one of " + ", ".join(str(v) for v in alternative["enum"])
    kind = alternative.get("type", "a value")
    return kind if isinstance(kind, str) else " or ".join(kind)


def _short(value: Any) -> str:
    text = repr(value)
    return text if len(text) <= 60 else text[:57] + "..."
