"""What the three command lines (``me162-read``, ``me162-sim``, ``me162-check``) share: bad
options refused with one line, typed option values that refuse NaN, out-of-range numbers and
impossible TCP ports up front, and the same verbosity options everywhere.

Imported by every command line: it must stay cheap (argparse only; logging is imported by
the functions that need it, so that ``--help`` does not)."""

from __future__ import annotations

import argparse
import math
import re
from typing import Any, NoReturn

EXIT_USAGE = 2
LEVELS = ("debug", "info", "warning", "error")


class OneLineParser(argparse.ArgumentParser):
    """Bad options are refused with one line (and exit 2), not a usage block."""

    def error(self, message: str) -> NoReturn:
        self.exit(EXIT_USAGE, f"{self.prog}: {message} (see {self.prog} --help)\n")


def finite(text: str, *, low: float, high: float, low_open: bool = False) -> float:
    try:
        value = float(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"must be a number, not {text!r}") from None
    if not math.isfinite(value) or value < low or (low_open and value == low) or value > high:
        bound = f"{'more than' if low_open else 'at least'} {low:g} and at most {high:g}"
        raise argparse.ArgumentTypeError(f"must be {bound}, not {text!r}")
    return value


def number(*, low: float = 0.0, high: float, low_open: bool = False) -> Any:
    """An argparse type: a finite number in [low, high] (or (low, high])."""

    def parse(text: str) -> float:
        return finite(text, low=low, high=high, low_open=low_open)

    return parse


def whole(*, low: int, high: int) -> Any:
    """An argparse type: a whole number in [low, high]."""

    def parse(text: str) -> int:
        if not re.fullmatch(r"[+-]?[0-9]+", text.strip()):
            raise argparse.ArgumentTypeError(f"must be a whole number, not {text!r}")
        value = int(text)
        if not low <= value <= high:
            raise argparse.ArgumentTypeError(f"must be between {low} and {high}, not {value}")
        return value

    return parse


#: a TCP port to listen on: 0 (any free one) to 65535
tcp_port = whole(low=0, high=65535)


def add_verbosity(p: argparse.ArgumentParser, *, verbose_help: str = "log more (the wire traffic)") -> None:
    """``-v/--verbose``, ``-q/--quiet`` and ``--log-level``, one at a time."""
    g = p.add_mutually_exclusive_group()
    g.add_argument("-v", "--verbose", action="store_true", help=verbose_help)
    g.add_argument("-q", "--quiet", action="store_true", help="log errors only")
    g.add_argument(
        "--log-level", choices=LEVELS, metavar="LEVEL", help=f"log at this level: {', '.join(LEVELS)}"
    )


def log_level(args: argparse.Namespace, *, default: int, verbose: int | None = None) -> int:
    """The logging level the verbosity options ask for (``verbose``: for -v, default DEBUG)."""
    import logging

    if verbose is None:
        verbose = logging.DEBUG
    if getattr(args, "log_level", None):
        return int(getattr(logging, args.log_level.upper()))
    if getattr(args, "quiet", False):
        return logging.ERROR
    if getattr(args, "verbose", False):
        return verbose
    return default
