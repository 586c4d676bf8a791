"""Mutant readers: the reference reader with one thing done wrong, to show that every
conformance case can fail (tests/test_mutants.py runs each case against the mutant it must
catch).  Each mutant is a bug a real reader has, or could have.

    python broken_reader.py PORT SPEED --fault MUTANT [--registers 1.8.0,2.8.0] [--password P]
                            [--address A] [--parity-in-software] [--mode D --push-baud 9600]
    python broken_reader.py --list

It prints the JSON of ``me162-read --json`` (exit 0), or fails with exit 3.
"""

from __future__ import annotations

import argparse
import json
import sys
import termios
import time
from collections.abc import Callable, Generator
from typing import Any

from me162.protocol import line
from me162.protocol.datablock import parse_line
from me162.protocol.frames import Command, DataMessage
from me162.protocol.framing import Kind, Message
from me162.protocol.line import MODE_C_BAUDS
from me162.protocol.readout import decode_readout
from me162.reader import driver
from me162.reader.cli import result_json
from me162.reader.session import ReaderConfig, ReaderError, ReaderSession, SetSpeed, Wait, _reply

Gen = Generator[Any, Any, Any]

#: every mutant, with the bug it has
MUTANTS: dict[str, str] = {
    "accept-bad-bcc": "does not check the BCC",
    "switch-early": "switches speed as soon as it has written its ACK, before the ACK has left the wire",
    "switch-late": "switches speed a second after its ACK, when the meter is already answering",
    "ack-at-new-speed": "switches speed before writing its ACK (vzlogger PR 109)",
    "sign-on-at-9600": "never sets 300 Bd: signs on at 9600 Bd",
    "cooked-port": "leaves the port in canonical mode with CR to LF translation",
    "stay-at-300": "never switches: asks for Z=0 whatever the meter offers",
    "favourite-speed": "always asks for 9600 Bd (Z=5), whatever the meter offers",
    "uppercase-manufacturer-only": "refuses an identification whose manufacturer is not in capitals (/ISk)",
    "no-software-parity": "claims software parity but writes and reads 7 bits on an 8N1 link",
    "ignore-parity": "strips the parity bit in software without checking it",
    "rfc2217-as-raw-tcp": "opens an rfc2217:// port as a raw socket",
    "wait-for-ever": "has no timeouts",
    "first-line-is-ident": "takes the first line it reads for the identification (noise, an echo); no retries",
    "crash-on-noise": "raises when bytes other than the identification come first",
    "crash-on-odd-ident": "raises on an identification with characters other than letters, digits and -",
    "no-partial-blocks": "takes the first partial block (EOT) of an answer for the whole answer",
    "repeat-command-on-bcc": "sends the command again after an answer with a bad BCC, never NAK",
    "misparse-ident": "drops the character after Z from the identification, as pwitab does",
    "swap-y": "asks for programming mode for a readout and for a readout in programming mode",
    "ack-at-once": "sends the ACK 20 ms after the identification, whatever the meter promises",
    "ignore-address": "sends the general request /?! even when given an address",
    "force-mode-c": "reads every meter as mode C (ACK and switch), mode A and B too",
    "short-ident-timeout": "waits only 0.5 s for an identification or a P0, and does not retry",
    "impatient-exit-0": "waits 0.5 s for any answer, does not retry, and exits 0 with what it has",
    "no-retry": "neither a command nor a session is tried again",
    # not a bug: what a busy machine does to any reader (the suite must not fail it for that)
    "held-back": "is held back 40 ms of real time between its ACK and its switch, as by a busy machine",
    "no-b0": "leaves programming mode without B0",
    "retry-forever": "retries without limit",
    "error-as-value": "reports an (ERROR) answer as the register's value",
    "no-password": "never sends P1",
    "exit-0-on-errors": "exits 0 when the reading failed",
    "crash-on-timeout": "raises a traceback instead of failing cleanly",
    "crash-on-garbage": "raises on a NUL, DEL or other control character in what it reads (bytes at a wrong speed, light)",
    "trust-p0": "takes a P0 with a wrong BCC on trust",
    "take-late-answer": "takes a late second copy of an answer as the next register's value",
    "unbounded-wait": "lets every byte extend its deadline: a meter that never stops holds it for ever",
    "parse-any-answer": "parses any framed answer as a data message (an SOH escapes as a traceback)",
    "retry-at-once": "retries at once, into the 300 Bd readout the meter still sends",
    "trust-push": "takes whatever lies between / and ! CR LF as a push and decodes it unchecked",
    "wrong-values": "reports every value with its last digit changed",
    "merge-billing": "drops *NN from addresses: history values overwrite the current value",
    "drop-empty-values": "drops data sets whose value is empty",
    "strip-values": "strips the blanks around values",
    "split-unit-on-space": "takes the text after a space in a value as its unit",
    "decimal-point": "turns a decimal comma into a point",
    "first-value-only": "keeps only the first value of a data set",
    "one-set-per-line": "keeps only the first data set of a line",
    "ampersand-as-star": "writes &NN (manual reset) as *NN",
    "unsigned": "drops a minus sign",
}


class Mutant(ReaderSession):
    fault = ""

    # --- the identification ----------------------------------------------------------------

    def _receive(
        self, accept: Callable[[Message], bool], first_timeout: float, what: str, max_bytes: int
    ) -> Gen:
        if what == "the identification":
            if self.fault == "first-line-is-ident":
                accept = _any_line
            elif self.fault == "uppercase-manufacturer-only":
                accept = _uppercase_ident(accept)
            elif self.fault == "crash-on-noise":
                accept = _crash_on_noise(accept)
        msg = yield from super()._receive(accept, first_timeout, what, max_bytes)
        if what == "the identification" and self.fault == "crash-on-odd-ident":
            ident = msg.data[5:-2].decode("latin-1")
            if not ident.replace("-", "").isalnum():
                raise ValueError(f"bad identification {ident!r}")
        return msg

    def _absorb(self, event: Any) -> None:
        if self.fault == "crash-on-garbage" and any(
            b in (0x00, 0x7F) or (b < 0x20 and b not in b"\r\n\x01\x02\x03\x04\x06\x15") for b in event.data
        ):
            raise UnicodeError(f"garbage in {event.data[:12]!r}")
        super()._absorb(event)

    # --- speeds and the option select --------------------------------------------------------

    def _switch(self, baud: int, extra: float = 0.0) -> Gen:
        if self.fault == "switch-early" and baud != self.baud:
            event = yield SetSpeed(baud, self.now)  # no wait for the ACK to leave the wire
            self._absorb(event)
            self.baud = baud
            self.result.speeds.append(baud)
            return
        if self.fault == "held-back" and baud != self.baud:
            time.sleep(0.04)  # real time, whatever the time scale: the machine, not the reader
        yield from super()._switch(baud, extra)

    def _send(self, data: bytes) -> Gen:
        if self.fault == "no-b0" and data == b"\x01B0\x03q":
            return
        option = data[:1] == b"\x06" and len(data) == 6
        if option and self.fault == "swap-y":
            data = data[:3] + (b"1" if data[3:4] == b"0" else b"0") + data[4:]
        if option and self.fault == "ack-at-new-speed":
            baud = MODE_C_BAUDS.get(chr(data[2]), 300)
            event = yield SetSpeed(baud, self.now)  # the new speed before the ACK
            self._absorb(event)
            self.baud = baud
        yield from super()._send(data)

    def _target_baud(self, ident: Any) -> int:
        if self.fault == "favourite-speed":
            return 9600
        return super()._target_baud(ident)

    # --- programming mode --------------------------------------------------------------------

    def _check_operand(self, operand: Message) -> Gen:
        if self.fault != "trust-p0":
            yield from super()._check_operand(operand)

    def _after_bcc_error(self, data: bytes, repeat: bytes | None) -> bytes:
        if self.fault == "repeat-command-on-bcc":
            return data
        return super()._after_bcc_error(data, repeat)

    def _read_register(self, reg: str) -> Gen:
        if self.fault == "no-partial-blocks":
            from me162.reader.session import _data_answer

            cmd = Command.read(reg, partial_blocks=self.config.partial_blocks)
            msg = yield from self._exchange(cmd.to_bytes(), what=f"R1 {reg}", answer=_data_answer)
            value = parse_line(msg.block.decode("latin-1")).data_sets[0].values[0]
            return {
                "value": value.value,
                "unit": value.unit,
                "error": None,
                "raw": msg.block.decode("latin-1"),
            }
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

    # --- mode D ------------------------------------------------------------------------------

    def _mode_d(self) -> Gen:
        if self.fault != "trust-push":
            return (yield from super()._mode_d())
        yield from self._switch(self.config.push_baud)
        self.input.clear()
        seen = bytearray()
        while b"/" not in seen or b"!\r\n" not in seen[seen.find(b"/") + 1 :]:
            event = yield Wait(self.now + 5.0)
            self._absorb(event)
            seen += event.data
        raw = bytes(seen[seen.find(b"/") :])
        readout = decode_readout(raw[: raw.find(b"!\r\n") + 3], verify_bcc=self.config.verify_bcc)
        self.result.identification = readout.identification
        self.result.readout = readout
        return self.result


def _any_line(msg: Message) -> bool:
    return True


def _uppercase_ident(accept: Callable[[Message], bool]) -> Callable[[Message], bool]:
    return lambda msg: accept(msg) and msg.data[1:4].decode("latin-1").isupper()


def _crash_on_noise(accept: Callable[[Message], bool]) -> Callable[[Message], bool]:
    def take(msg: Message) -> bool:
        if msg.kind is Kind.NOISE:
            raise RuntimeError(f"unexpected bytes {msg.data[:12]!r}")
        return accept(msg)

    return take


# --- the output ------------------------------------------------------------------------------


def _each_value(doc: dict[str, Any], change: Callable[[str], str]) -> None:
    for ds in doc.get("data_sets", []):
        for v in ds["values"]:
            v["value"] = change(v["value"])
    for reg in (doc.get("registers") or {}).values():
        if reg.get("value") is not None:
            reg["value"] = change(reg["value"])


def _next_digit(value: str) -> str:
    if value[-1:].isdigit():
        return value[:-1] + str((int(value[-1]) + 1) % 10)
    return value + "0"


def postprocess(fault: str, doc: dict[str, Any]) -> None:
    """The mutants that report wrongly what they read right."""
    sets = doc.get("data_sets", [])
    if fault == "wrong-values":
        _each_value(doc, _next_digit)
    elif fault == "misparse-ident" and doc.get("identification"):
        ident = doc["identification"]
        ident["raw"] = ident["raw"][:5] + ident["raw"][6:]
        ident["ident"] = ident["ident"][1:]
    elif fault == "error-as-value":
        for reg in (doc.get("registers") or {}).values():
            if reg.get("error"):
                reg["value"], reg["error"] = reg["error"], None
    elif fault == "merge-billing":
        for ds in sets:
            if ds["address"] and "*" in ds["address"]:
                ds["address"] = ds["address"].split("*")[0]
    elif fault == "drop-empty-values":
        doc["data_sets"] = [ds for ds in sets if any(v["value"] for v in ds["values"])]
    elif fault == "strip-values":
        _each_value(doc, str.strip)
    elif fault == "split-unit-on-space":
        for ds in sets:
            for v in ds["values"]:
                if " " in v["value"].strip():
                    v["value"], v["unit"] = v["value"].strip().split(" ", 1)
    elif fault == "decimal-point":
        _each_value(doc, lambda s: s.replace(",", "."))
    elif fault == "first-value-only":
        for ds in sets:
            ds["values"] = ds["values"][:1]
    elif fault == "one-set-per-line":
        first: dict[int, dict[str, Any]] = {}
        for ds in sets:
            first.setdefault(ds["line"], ds)
        doc["data_sets"] = list(first.values())
    elif fault == "ampersand-as-star":
        for ds in sets:
            if ds["address"]:
                ds["address"] = ds["address"].replace("&", "*")
    elif fault == "unsigned":
        _each_value(doc, lambda s: s.replace("-", ""))


# --- the driver's part ---------------------------------------------------------------------------


def patch_driver(fault: str) -> None:
    """The mutants whose bug is in how they set up or read the port."""
    if fault == "sign-on-at-9600":
        original = driver.Driver._set_baud
        driver.Driver._set_baud = lambda self, baud: original(self, 9600 if baud == 300 else baud)  # type: ignore[method-assign]
    if fault == "cooked-port":
        opened = driver.open_port

        def cooked(opts: driver.PortOptions) -> Any:
            port = opened(opts)
            fd = port.fileno()
            attrs = termios.tcgetattr(fd)
            attrs[0] |= termios.ICRNL
            attrs[3] |= termios.ICANON
            termios.tcsetattr(fd, termios.TCSANOW, attrs)
            return port

        driver.open_port = cooked
    if fault == "ignore-parity":
        driver.check_and_strip_parity = lambda data, offset=0: line.strip_parity(data)  # type: ignore[attr-defined]


def configure(fault: str, config: ReaderConfig) -> int:
    """Mutants whose bug is a setting; returns the whole-session retries."""
    retries = {"no-retry": 0, "retry-at-once": 1, "first-line-is-ident": 0, "short-ident-timeout": 0}.get(
        fault, 2
    )
    if fault == "accept-bad-bcc":
        config.verify_bcc = False
    if fault == "no-retry":
        config.retries = 0
    if fault == "take-late-answer":
        config.stray_answer_window = 0.0  # the late copy of an answer becomes the next value
    if fault == "unbounded-wait":
        config.max_ident_bytes = config.max_message_bytes = 10**9  # each byte extends the deadline
    if fault == "retry-at-once":
        config.quiet_before_retry = config.quiet_limit = 0.0  # a retry lands in the meter's readout
    if fault == "retry-forever":
        config.retries = retries = 10**6
        config.first_timeout = 0.5
    if fault == "wait-for-ever":
        config.first_timeout = config.char_timeout = config.option_fallback_wait = 1e6
    if fault == "short-ident-timeout":
        config.first_timeout, config.option_fallback_wait = 0.5, 0.0
    if fault == "impatient-exit-0":
        config.first_timeout, config.option_fallback_wait, retries = 0.5, 0.0, 0
    if fault == "switch-late":
        config.change_delay = 1.0
    if fault == "stay-at-300":
        config.baud = "300"
    if fault == "ack-at-once":
        config.ack_delay = 0.02
    if fault == "ignore-address":
        config.address = ""
    if fault == "force-mode-c":
        config.mode = "C"
    if fault == "no-password":
        config.password = None
    return retries


def main() -> int:
    p = argparse.ArgumentParser()
    p.add_argument("port", nargs="?")
    p.add_argument("speed", type=float, nargs="?", default=1.0)
    p.add_argument("--fault", choices=sorted(MUTANTS))
    p.add_argument("--registers", default="")
    p.add_argument("--password")
    p.add_argument("--address", default="")
    p.add_argument("--parity-in-software", action="store_true")
    p.add_argument("--mode", default="auto")
    p.add_argument("--push-baud", type=int, default=2400)
    p.add_argument("--list", action="store_true")
    args = p.parse_args()
    if args.list:
        for name, bug in MUTANTS.items():
            print(f"{name:28} {bug}")
        return 0
    fault = args.fault or ""
    Mutant.fault = fault
    driver.ReaderSession = Mutant  # type: ignore[attr-defined]
    patch_driver(fault)
    config = ReaderConfig(
        registers=tuple(r for r in args.registers.split(",") if r),
        password=args.password or None,
        address=args.address,
        mode=args.mode,
        push_baud=args.push_baud,
    )
    retries = configure(fault, config)
    port = args.port
    if fault == "rfc2217-as-raw-tcp" and port.startswith("rfc2217://"):
        port = "socket://" + port.removeprefix("rfc2217://")
    parity = args.parity_in_software and fault != "no-software-parity"
    opts = driver.PortOptions(port, parity_in_software=parity, time_scale=args.speed)
    try:
        res = driver.read_once(opts, config, retries=retries)
    except ReaderError as e:
        if fault == "crash-on-timeout":
            raise RuntimeError(str(e)) from None
        if fault in ("exit-0-on-errors", "impatient-exit-0"):
            print(json.dumps({"identification": None, "data_sets": [], "registers": {}}))
            return 0
        print(e, file=sys.stderr)
        return 3
    doc = result_json(res, args.port)
    postprocess(fault, doc)
    print(json.dumps(doc))
    return 0


if __name__ == "__main__":
    sys.exit(main())
