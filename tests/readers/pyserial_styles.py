"""A mode C reader of the virtual ME162 on pyserial, for the serial-port matrix
(tests/test_serial_styles.py).

    python pyserial_styles.py PORT SPEED STYLE [--early]

STYLE: constructor   every setting given to serial.Serial(...)
       after-open    port properties set again once the port is in use (timeout, baudrate)
       immediate     port properties set again right after the open (glibc's EINVAL on a pty)
       open-close    opens the port, sets it and closes it at once: reads nothing
Prints the readout; exit 0 when its BCC is right, 1 otherwise.
"""

from __future__ import annotations

import sys
import time

import serial


def main() -> int:
    path, speed, style = sys.argv[1], float(sys.argv[2]), sys.argv[3]
    early = "--early" in sys.argv[4:]
    port = serial.Serial(path, 300, bytesize=7, parity="E", timeout=2.5 / speed)
    if style == "open-close":
        port.close()
        return 0
    if style == "immediate":
        port.timeout = 2.5 / speed  # re-applies the same 7E1 settings at once
    port.write(b"/?!\r\n")
    ident = port.read_until(b"\r\n")
    if not ident.startswith(b"/"):
        print(f"no identification: {ident!r}", file=sys.stderr)
        return 1
    if style == "after-open":
        port.timeout = 2.5 / speed  # re-applies the same 7E1 settings
    time.sleep(0.25 / speed)
    if style == "after-open":
        port.baudrate = 300  # and again
    port.write(b"\x06050\r\n")
    if not early:
        time.sleep((6 * 10 / 300 + 0.03) / speed)
    port.baudrate = 9600
    msg = port.read_until(b"\x03")
    msg += port.read(1)
    stx = msg.find(b"\x02")
    if stx < 0 or len(msg) < stx + 3 or msg[-2:-1] != b"\x03":
        print(f"no readout: {msg[:40]!r}", file=sys.stderr)
        return 1
    bcc = 0
    for b in msg[stx + 1 : -1]:
        bcc ^= b
    if (bcc & 0x7F) != (msg[-1] & 0x7F):
        print("BCC mismatch", file=sys.stderr)
        return 1
    sys.stdout.write(msg[stx + 1 : -2].decode("latin-1"))
    port.close()
    return 0


if __name__ == "__main__":
    sys.exit(main())
