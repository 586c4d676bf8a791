"""Adapter: pwitab's ``iec62056-21`` client (PyPI) as a reader under test, and its DZG fork
``iec62056-21-dzg`` (same API, no sleep before the speed switch) with ``--client iec62056_21_dzg``.

    python pwitab_reader.py PORT [--registers 1.8.0,2.8.0] [--client MODULE]

Reads with ``Iec6205621Client.with_serial_transport(port).standard_readout()`` (or R1 reads
with ``access_programming_mode`` and ``read_single_value``) and prints the result in the JSON
schema of ``me162-read --json``, so the conformance suite can check its values.  It does
nothing the client does not do itself: the client's own timing, parsing and retries are what
is graded.  Exit 1 on any error the client raises.
"""

from __future__ import annotations

import argparse
import importlib
import json
import sys


def main() -> int:
    p = argparse.ArgumentParser()
    p.add_argument("port")
    p.add_argument("--registers", default="")
    p.add_argument("--client", default="iec62056_21", choices=["iec62056_21", "iec62056_21_dzg"])
    args = p.parse_args()
    try:
        module = importlib.import_module(f"{args.client}.client")
    except ImportError:
        print(f"pwitab_reader: pip install {args.client.replace('_', '-')}", file=sys.stderr)
        return 2
    client = module.Iec6205621Client.with_serial_transport(port=args.port)
    doc: dict[str, object] = {}
    try:
        client.connect()
        regs = [r for r in args.registers.split(",") if r]
        if regs:
            client.access_programming_mode()
            out = {}
            for reg in regs:
                ds = client.read_single_value(reg)  # a DataSet
                out[reg] = {"value": ds.value, "unit": ds.unit, "error": None, "raw": str(ds)}
            client.send_break()
            doc["registers"] = out
        else:
            response = client.standard_readout()
            sets = []
            for n, line in enumerate(response.data_block.data_lines, 1):
                for ds in line.data_sets:
                    sets.append(
                        {
                            "line": n,
                            "address": ds.address,
                            "values": [{"value": ds.value, "unit": ds.unit}],
                            "raw": "",
                        }
                    )
            doc["data_sets"] = sets
        ident = client.identification
        manufacturer = client.manufacturer_id or ""
        # pwitab keeps the Z character public, its DZG fork behind an underscore
        z = (
            getattr(client, "switchover_baudrate_char", None)
            or getattr(client, "_switchover_baudrate_char", None)
            or ""
        )
        doc["identification"] = {"raw": f"/{manufacturer}{z}{ident}", "ident": ident}
    except Exception as e:  # the client raises many kinds; each one is a failed reading
        print(f"pwitab_reader: {type(e).__name__}: {e}", file=sys.stderr)
        return 1
    finally:
        client.disconnect()
    print(json.dumps(doc))
    return 0


if __name__ == "__main__":
    sys.exit(main())
