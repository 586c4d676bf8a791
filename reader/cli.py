"""``me162-read``: the reference reader's command line.

    me162-read decode [FILE|-] [--hex] [--json] [--no-bcc-check]

Exit codes: 0 success; 2 BCC mismatch (or a usage error); 3 the bytes are not a readout
(framing, identification); 4 the input cannot be read.
"""

from __future__ import annotations

import argparse
import sys

from me162.reader import decode


def build_parser() -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(
        prog="me162-read",
        description="Reference reader for IEC 62056-21 meters (Iskra ME162 and others).",
    )
    sub = p.add_subparsers(dest="command", required=True)
    d = sub.add_parser(
        "decode",
        help="decode raw bytes as they came off the wire",
        description="Decode raw bytes as they came off the wire: optionally the echoed request, "
        "then the identification line, then the data message.",
    )
    decode.add_arguments(d)
    return p


def main(argv: list[str] | None = None) -> int:
    args = build_parser().parse_args(argv)
    if args.command == "decode":
        return decode.run(args)
    return 2  # pragma: no cover - argparse rejects unknown commands


if __name__ == "__main__":
    sys.exit(main())
