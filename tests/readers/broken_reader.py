"""A deliberately broken reader, to show that the conformance cases can fail.

    python broken_reader.py PORT SPEED --fault accept-bad-bcc|switch-early|no-b0|retry-forever|misparse-ident|
                                               ack-at-new-speed|no-retry|wrong-values|take-late-answer|
                                               unbounded-wait|parse-any-answer|retry-at-once|trust-push
                            [--mode D --push-baud 9600]
                            [--registers 1.8.0,2.8.0]

It is the reference reader's session with one thing done wrong, printing the same JSON.
"""

from __future__ import annotations

import argparse
import json
import sys
from collections.abc import Generator
from typing import Any

from me162.protocol.datablock import parse_line
from me162.protocol.frames import Command, DataMessage
from me162.protocol.line import MODE_C_BAUDS
from me162.protocol.readout import decode_readout
from me162.reader import driver
from me162.reader.cli import result_json
from me162.reader.session import ReaderConfig, ReaderError, ReaderSession, SetSpeed, Wait, _reply


class Broken(ReaderSession):
    fault = ""

    def _mode_d(self) -> Generator[Any, Any, Any]:
        if self.fault != "trust-push":
            return (yield from super()._mode_d())
        # Takes whatever lies between "/" and "!" CR LF as a push and decodes it without
        # classifying errors, as the reader once did: a spoiled push escapes as a traceback.
        yield from self._switch(self.config.push_baud)
        self.input.clear()
        seen = bytearray()
        while b"!\r\n" not in seen[seen.find(b"/") + 1 :] or b"/" not in seen:
            event = yield Wait(self.now + 5.0)
            self._absorb(event)
            seen += event.data
        raw = bytes(seen[seen.find(b"/") :])
        readout = decode_readout(raw[: raw.find(b"!\r\n") + 3], verify_bcc=self.config.verify_bcc)
        self.result.identification = readout.identification
        self.result.readout = readout
        return self.result

    def _read_register(self, reg: str) -> Generator[Any, Any, Any]:
        if self.fault != "parse-any-answer":
            return (yield from super()._read_register(reg))
        # Takes any framed answer with a good BCC as a data message, as the reader once did:
        # an SOH in the first byte escapes as a FramingError traceback.
        cmd = Command.read(reg)
        self.input.clear()
        yield from self._send(cmd.to_bytes())
        reply = yield from self._receive(_reply, self.config.first_timeout, "the answer", 4096)
        msg = DataMessage.from_bytes(reply.data)
        text = msg.block.decode("latin-1")
        value = parse_line(text).data_sets[0].values[0]
        return {"value": value.value, "unit": value.unit, "error": None, "raw": text}

    def _switch(self, baud: int, extra: float = 0.0) -> Generator[Any, Any, None]:
        if self.fault == "switch-early" and baud != self.baud:
            event = yield SetSpeed(baud, self.now)  # no wait for the ACK to leave the wire
            self._absorb(event)
            self.baud = baud
            self.result.speeds.append(baud)
            return
        yield from super()._switch(baud, extra)

    def _send(self, data: bytes) -> Generator[Any, Any, None]:
        if self.fault == "no-b0" and data == b"\x01B0\x03q":
            return
        if self.fault == "ack-at-new-speed" and data[:1] == b"\x06" and len(data) == 6:
            baud = MODE_C_BAUDS.get(chr(data[2]), 300)
            event = yield SetSpeed(baud, self.now)  # the new speed before the ACK (vzlogger PR 109)
            self._absorb(event)
            self.baud = baud
        yield from super()._send(data)


def main() -> int:
    p = argparse.ArgumentParser()
    p.add_argument("port")
    p.add_argument("speed", type=float)
    p.add_argument("--fault", required=True)
    p.add_argument("--registers", default="")
    p.add_argument("--mode", default="auto")
    p.add_argument("--push-baud", type=int, default=2400)
    args = p.parse_args()
    Broken.fault = args.fault
    driver.ReaderSession = Broken  # type: ignore[attr-defined]
    regs = tuple(r for r in args.registers.split(",") if r)
    config = ReaderConfig(
        registers=regs, verify_bcc=args.fault != "accept-bad-bcc", mode=args.mode, push_baud=args.push_baud
    )
    if args.fault == "no-retry":
        config.retries = 0  # neither the command nor the session is tried again
    retries = {"no-retry": 0, "retry-at-once": 1}.get(args.fault, 2)
    if args.fault == "take-late-answer":
        config.stray_answer_window = 0.0  # the late copy of an answer becomes the next value
    if args.fault == "unbounded-wait":
        config.max_ident_bytes = config.max_message_bytes = 10**9  # each byte extends the deadline
    if args.fault == "retry-at-once":
        config.quiet_before_retry = config.quiet_limit = 0.0  # a retry lands in the meter's readout
    if args.fault == "retry-forever":
        config.retries = 10**6
        retries = 10**6
        config.first_timeout = 0.5
    opts = driver.PortOptions(args.port, time_scale=args.speed)
    try:
        res = driver.read_once(opts, config, retries=retries)
    except ReaderError as e:
        print(e, file=sys.stderr)
        return 3
    doc = result_json(res, args.port)
    if args.fault == "wrong-values":
        for ds in doc.get("data_sets", []):
            for v in ds["values"]:
                if v["value"][-1:].isdigit():
                    v["value"] = v["value"][:-1] + str((int(v["value"][-1]) + 1) % 10)
    if args.fault == "misparse-ident" and doc.get("identification"):
        raw = doc["identification"]["raw"]
        doc["identification"]["raw"] = raw[:5] + raw[6:]  # drops the character after Z, as pwitab does
    print(json.dumps(doc))
    return 0


if __name__ == "__main__":
    sys.exit(main())
