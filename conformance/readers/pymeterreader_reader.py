"""Adapter: pymeterreader's ``PlainReader`` (PyPI ``pymeterreader`` 0.3.0, the IEC 62056-21
reader of that volkszaehler/MQTT gateway) as a reader under test.

    python pymeterreader_reader.py PORT [--baudrate 300]

``PlainReader(PORT, baudrate=...).fetch()`` sends its wake-up NULs and ``/?!``, reads the
identification, sends no ACK and reads the answer at ``baudrate``; its ``Sample`` is printed in
the JSON schema of ``me162-read --json``.  Its values are floats, so they are reported as it
gives them.  It logs and returns None on failure: exit 1 with its last log line.
"""

from __future__ import annotations

import argparse
import importlib
import json
import logging
import sys


def main() -> int:
    p = argparse.ArgumentParser()
    p.add_argument("port")
    p.add_argument("--baudrate", type=int, default=300)
    args = p.parse_args()
    logging.basicConfig(level=logging.WARNING, stream=sys.stderr, format="pymeterreader: %(message)s")
    try:
        plain = importlib.import_module("pymeterreader.device_lib.meter_plain")
    except ImportError:
        print("pymeterreader_reader: pip install pymeterreader", file=sys.stderr)
        return 2
    sample = plain.PlainReader(args.port, baudrate=args.baudrate).fetch()
    if sample is None:
        print("pymeterreader_reader: fetch() returned no sample", file=sys.stderr)
        return 1
    sets = [
        {
            "line": n,
            "address": ch.channel_name,
            "values": [{"value": str(ch.value), "unit": ch.unit or ""}],
            "raw": "",
        }
        for n, ch in enumerate(sample.channels, 1)
    ]
    doc = {"data_sets": sets}  # it keeps no identification (its meter_id is data set 9.21)
    print(json.dumps(doc))
    return 0


if __name__ == "__main__":
    sys.exit(main())
