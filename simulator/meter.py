"""The virtual meter as a sans-I/O state machine.

Characters and time go in (:meth:`Meter.receive`, :meth:`Meter.advance`); transmissions come
out (:meth:`Meter.take`): "send these bytes at this baud starting at this time, and set the
UART to that speed afterwards".  The meter knows nothing of ptys, sockets or threads; the
:mod:`me162.simulator.link` engine paces its bytes and garbles them at mismatched speeds.

Every transmission carries a :class:`~me162.simulator.events.Sent` kind (identification,
readout, operand, reply, error, nak, ack, break, push) so that a fault layer can change any of
them on the way out; every whole message the meter reads from the reader goes on its record
(:attr:`~me162.simulator.events.Did.RECEIVED`), with whether a character of it had an error.
"""

from __future__ import annotations

import logging
import math
import random
import re
from dataclasses import dataclass
from datetime import datetime, timedelta
from enum import Enum
from functools import cached_property
from typing import Protocol

from me162.protocol.bcc import bcc_ok
from me162.protocol.chars import ACK, CRLF, NAK
from me162.protocol.datablock import Obis
from me162.protocol.errors import ProtocolError
from me162.protocol.frames import (
    Command,
    DataMessage,
    ErrorMessage,
    OptionSelect,
    addresses_match,
)
from me162.protocol.framing import AckRule, Framer, Kind, Message
from me162.protocol.line import INITIAL_BAUD, MODE_C_BAUDS, T_A_MAX, LineSettings
from me162.simulator.clock import in_force
from me162.simulator.events import Did, MeterEvent, Sent
from me162.simulator.profile import Profile, RegisterSpec
from me162.simulator.registers import Installation, RegisterModel, TariffSchedule

log = logging.getLogger(__name__)


class State(Enum):
    IDLE = "idle"
    WAIT_OPTION = "wait-option"
    READOUT = "readout"
    PROGRAMMING = "programming"


@dataclass(frozen=True)
class Transmit:
    """Send ``data`` at ``baud`` with the first start bit at ``at`` (virtual seconds)."""

    at: float
    data: bytes
    baud: int
    kind: Sent
    then_baud: int | None = None
    raw: bool = False  #: deliver the bytes as 8-bit values (a converter passing the parity bit)
    bad_parity: frozenset[int] = frozenset()  #: positions of characters sent with a wrong parity bit

    @property
    def end(self) -> float:
        return self.at + len(self.data) * LineSettings(self.baud).char_time


#: the longest line the meter listens to: ``/?`` + a 32-character address + ``!`` CR LF
MAX_REQUEST = 37
#: the longest command the meter takes; a longer one is answered with NAK
MAX_COMMAND = 300


class MessageReceiver:
    """The meter's receiver: the framer, the offsets of characters that arrived with a parity
    or framing error, and when the last character came."""

    def __init__(self, *, max_line: int = MAX_REQUEST, max_block: int = MAX_COMMAND) -> None:
        self.framer = Framer(ack=AckRule.ALONE, max_line=max_line, max_block=max_block)
        self.errors: list[int] = []
        self.last = -1.0

    @property
    def data(self) -> bytes:
        return self.framer.pending

    def clear(self) -> None:
        self.framer.clear()
        self.errors.clear()

    def feed(self, byte: int, error: bool) -> None:
        if error:
            self.errors.append(self.framer.offset + len(self.framer.pending))
        self.framer.feed(bytes([byte]))

    def messages(self, ack: AckRule) -> list[tuple[Message, bool]]:
        """Whole messages received, each with whether any of its characters had an error."""
        self.framer.ack = ack
        out = []
        for msg in self.framer:
            out.append((msg, any(msg.offset <= e < msg.end for e in self.errors)))
        if out:
            self.errors = [e for e in self.errors if e >= out[-1][0].end]
        return out


def _truncate(value: float, fmt: str) -> float:
    m = re.search(r"\.(\d+)f", fmt)
    digits = int(m[1]) if m else 3
    scale = math.pow(10, digits)
    return math.floor(value * scale + 1e-6) / scale


#: protocol seconds of the UART's speed history kept behind the present: the link asks for the
#: speed of characters on the line now, never of ones a minute back
SPEED_HISTORY = 60.0


def _speeds_before(
    history: list[tuple[float, int]], t: float, *, at_too: bool = False
) -> list[tuple[float, int]]:
    """The entries of a speed history that begin before ``t`` (or at it, ``at_too``): what
    was planned after ``t`` is dropped, and so is what lies over :data:`SPEED_HISTORY`
    before it, but for the entry in force then.  A meter that serves for days would
    otherwise copy its whole history at every transmission."""
    kept = [(w, b) for w, b in history if w < t or (at_too and w == t)]
    cut = t - SPEED_HISTORY
    first = 0
    while first + 1 < len(kept) and kept[first + 1][0] <= cut:
        first += 1
    return kept[first:]


class MeterLike(Protocol):
    """What the link needs of a meter: the virtual meter, or a replay of a capture."""

    profile: Profile
    now: float
    events: list[MeterEvent]

    @property
    def tightest_window(self) -> float: ...
    def uart_baud(self, t: float) -> int: ...
    def next_deadline(self) -> float | None: ...
    def advance(self, t: float) -> None: ...
    def receive(self, t: float, byte: int, error: bool = False) -> None: ...
    def take(self) -> list[Transmit]: ...


class Meter:
    """One virtual meter of a given profile."""

    def __init__(
        self,
        profile: Profile,
        *,
        seed: int = 0,
        clock_start: datetime | None = None,
        moving: bool = True,
    ) -> None:
        self.profile = profile
        self.rng = random.Random(seed)
        self.clock_start = clock_start or profile.clock_start or datetime.now().replace(microsecond=0)
        i = profile.installation
        inst = Installation(
            seed=int(i.get("seed", 0)) * 1000003 + seed,
            base_load_kw=i.get("base_load_kw", 0.25),
            peak_load_kw=i.get("peak_load_kw", 1.8),
            solar_peak_kw=i.get("solar_peak_kw", 3.0),
        )
        self.registers = RegisterModel(
            self.clock_start,
            import_kwh=profile.energy_import,
            export_kwh=profile.energy_export,
            installation=inst,
            schedule=TariffSchedule(list(profile.tariffs)),
            moving=moving,
        )
        self._initial = (dict(self.registers.imports), dict(self.registers.exports))
        self.state = State.IDLE
        self.now = 0.0
        self.busy_until = 0.0
        self.session_baud = INITIAL_BAUD
        self.deadline: float | None = None
        self.rx = MessageReceiver()
        self.outbox: list[Transmit] = []
        self.events: list[MeterEvent] = []
        self._speeds: list[tuple[float, int]] = [
            (0.0, profile.push_baud if profile.mode == "D" else INITIAL_BAUD)
        ]
        self._last_reply: Transmit | None = None
        self._pending_blocks: list[bytes] = []
        self._spoil_next = False
        self._authorized = profile.password is None
        self._written: dict[str, str] = {}
        self.sessions = 0
        #: what the meter sent, for grading and soaks: (time, register, value text) of every
        #: register it answered, and every readout block it built (before any fault)
        self.answers: list[tuple[float, str, str]] = []
        self.readouts: list[bytes] = []
        self.last_command: Command | None = None  #: the command the meter is answering (faults use it)
        self.fault_partial_size: int | None = None  #: a fault: answer R1 in partial blocks of this size
        if profile.mode == "D":
            self.deadline = 0.0

    # --- time and speed ---------------------------------------------------------------------

    def clock(self, t: float | None = None) -> datetime:
        """The meter's wall clock at virtual time ``t``."""
        return self.clock_start + timedelta(seconds=self.now if t is None else t)

    def uart_baud(self, t: float) -> int:
        """The speed the meter's UART is set to at time ``t``."""
        return in_force(self._speeds, t)

    @property
    def tightest_window(self) -> float:
        """The shortest time, in protocol seconds, a reader has to act in: from the end of its
        option select to the first answer at the new speed (the readout or the P0), by which
        the reader must have switched.  A transport running the meter faster than real time
        keeps this at a few milliseconds of real time at least (see the conformance suite)."""
        t = self.profile.timings
        return min(t.readout[0], t.operand[0])

    def next_deadline(self) -> float | None:
        return self.deadline

    def take(self) -> list[Transmit]:
        out, self.outbox = self.outbox, []
        return out

    def _event(
        self, kind: Did, detail: str = "", *, message: Message | None = None, error: bool = False
    ) -> None:
        self.events.append(MeterEvent(self.now, kind, detail, message, error))
        log.debug("meter %s t=%.3f %s %s", self.profile.name, self.now, kind, detail)

    def _send(self, at: float, data: bytes, baud: int, kind: Sent, then_baud: int | None = None) -> Transmit:
        tx = Transmit(at, data, baud, kind, then_baud)
        self.outbox.append(tx)
        self._speeds = _speeds_before(self._speeds, at)
        self._speeds.append((at, baud))
        if then_baud is not None:
            self._speeds.append((tx.end, then_baud))
        self.busy_until = max(self.busy_until, tx.end)
        if kind in (Sent.REPLY, Sent.ERROR, Sent.OPERAND):
            self._last_reply = tx
        return tx

    def _reaction(self, which: str) -> float:
        low, high = getattr(self.profile.timings, which)
        value: float = self.rng.uniform(low, high)
        return value

    # --- input ------------------------------------------------------------------------------

    def advance(self, t: float) -> None:
        """Let time pass to ``t``: timers fire."""
        while self.deadline is not None and self.deadline <= t:
            when = self.deadline
            self.deadline = None
            self.now = max(self.now, when)
            self._timer()
        self.now = max(self.now, t)

    def receive(self, t: float, byte: int, error: bool = False) -> None:
        """One character arrived complete (its stop bit) at ``t``; ``error`` marks a parity
        or framing error the UART saw."""
        self.advance(t)
        # (Half duplex is the link's business: it knows what went out on the line, faults
        # included, and hands the meter nothing it sends while transmitting.)
        if self.rx.data and t - self.rx.last > T_A_MAX:
            self._event(Did.DISCARDED, f"{len(self.rx.data)} byte(s): gap over 1.5 s inside a message")
            self.rx.clear()
        self.rx.last = t
        if self.profile.mode == "D":
            return
        if self.state in (State.IDLE, State.WAIT_OPTION, State.READOUT):
            self._rx_sign_on(byte, error)
        elif self.state is State.PROGRAMMING:
            self._rx_programming(byte, error)

    def _rx_sign_on(self, byte: int, error: bool) -> None:
        rx = self.rx
        if byte == ord("/") and not error:
            rx.clear()  # a "/" starts a sign-on, whatever came before
        rx.feed(byte, error)
        ack = AckRule.OPTION if self.state is State.WAIT_OPTION else AckRule.ALONE
        for msg, bad in rx.messages(ack):
            self._received(msg, bad)
            if msg.kind is Kind.REQUEST:
                self._request(msg.data, bad)
            elif self.state is State.WAIT_OPTION and Kind.OPTION_SELECT in (msg.kind, msg.began_as):
                self._option(msg.data, bad)

    def _received(self, msg: Message, error: bool) -> None:
        """Put a whole message from the reader on the record, as the meter read it."""
        self._event(Did.RECEIVED, msg.describe(), message=msg, error=error)

    def _request(self, data: bytes, error: bool) -> None:
        address = data[2:-3].decode("latin-1")
        if error:
            self._event(Did.IGNORED, f"request with a character error: {data!r}")
            return
        if not re.fullmatch(r"[0-9A-Za-z ]{0,32}", address):
            self._event(Did.IGNORED, f"request with an illegal address: {data!r}")
            return
        if not addresses_match(address, self.profile.address):
            self._event(Did.IGNORED, f"request for address {address!r}, not this meter")
            return
        self.sessions += 1
        self._event(Did.REQUEST, address or "(general)")
        ident = self._identification
        at = self.now + self._reaction("identification")
        mode = self.profile.mode
        if mode == "A":
            tx = self._send(at, ident, INITIAL_BAUD, Sent.IDENTIFICATION)
            self._send(tx.end, self._readout_bytes(), INITIAL_BAUD, Sent.READOUT, INITIAL_BAUD)
            self.state = State.READOUT
            self.deadline = self.busy_until
        elif mode == "B":
            tx = self._send(at, ident, INITIAL_BAUD, Sent.IDENTIFICATION)
            baud = self.profile.max_baud
            self._send(
                tx.end + self._reaction("readout"), self._readout_bytes(), baud, Sent.READOUT, INITIAL_BAUD
            )
            self.state = State.READOUT
            self.deadline = self.busy_until
        else:
            tx = self._send(at, ident, INITIAL_BAUD, Sent.IDENTIFICATION)
            self.state = State.WAIT_OPTION
            self.deadline = tx.end + self.profile.timings.option_timeout

    def _option(self, data: bytes, error: bool) -> None:
        if error:
            self._event(Did.OPTION_ERROR, f"option select with a character error: {data!r}")
            return
        try:
            opt = OptionSelect.from_bytes(data)
        except ProtocolError:
            self._event(Did.OPTION_ERROR, f"not an option select: {data!r}")
            return
        ident_z = self.profile.identification.baud_char
        self._event(Did.OPTION, f"V={opt.v} Z={opt.z} Y={opt.y}")
        self.deadline = None
        if opt.v != "0" or opt.y not in ("0", "1"):
            self._readout_at(INITIAL_BAUD, "unsupported V/Y: readout at 300 Bd")
        elif opt.z not in (ident_z, "0") or opt.z not in MODE_C_BAUDS:
            self._readout_at(INITIAL_BAUD, f"Z={opt.z} is not the offered {ident_z}: readout at 300 Bd")
        elif opt.y == "0":
            self._readout_at(MODE_C_BAUDS[opt.z], "")
        elif opt.z == "0" and self.profile.quirks.no_programming_at_300:
            self._readout_at(INITIAL_BAUD, "programming at 300 Bd refused (quirk): readout at 300 Bd")
        else:
            self._enter_programming(MODE_C_BAUDS[opt.z])

    def _readout_at(self, baud: int, why: str) -> None:
        if why:
            self._event(Did.FALLBACK, why)
        at = self.now + self._reaction("readout")
        self._send(at, self._readout_bytes(), baud, Sent.READOUT, INITIAL_BAUD)
        self.state = State.READOUT
        self.deadline = self.busy_until

    def _enter_programming(self, baud: int) -> None:
        self.state = State.PROGRAMMING
        self.session_baud = baud
        self._authorized = self.profile.password is None
        self._spoil_next = False
        self._pending_blocks = []
        operand = Command("P", "0", f"({self.profile.operand})".encode("latin-1")).to_bytes()
        self._send(self.now + self._reaction("operand"), operand, baud, Sent.OPERAND)
        self._event(Did.PROGRAMMING, f"at {baud} Bd")
        self._touch()

    def abandon_session(self) -> None:
        """Be in a programming session a reader left without B0 (deaf to sign-ons until it ends):
        what the meter is in after such a reader, for cases and tests that start there."""
        self._enter_programming(self.profile.max_baud)
        self.outbox.clear()

    def last_answer(self, address: str) -> str | None:
        """The value text (without parentheses) of the last R1 answer for ``address``, as the
        meter sent it (before any fault), or None."""
        spec = self.lookup(address)
        for _, reg, value in reversed(self.answers):
            if spec is not None and reg == spec.address:
                return value[1:-1]
        return None

    def _touch(self) -> None:
        self.deadline = self.busy_until + self.profile.timings.inactivity_timeout
        if not self.profile.quirks.deaf_without_b0:
            self.deadline = self.busy_until + self.profile.timings.option_timeout + 1.0

    def _timer(self) -> None:
        if self.profile.mode == "D":
            interval = self.profile.push_interval or 1.0
            if self.now >= self.busy_until:
                self._send(self.now, self._push_bytes(), self.profile.push_baud, Sent.PUSH)
            self.deadline = self.now + interval
        elif self.state is State.WAIT_OPTION:
            if self.profile.quirks.fallback_readout:
                self._readout_at(INITIAL_BAUD, "no option select within t_t: readout at 300 Bd")
            else:
                self._event(Did.TIMEOUT, "no option select within t_t")
                self.state = State.IDLE
        elif self.state is State.READOUT:
            self.state = State.IDLE
            self._event(Did.IDLE, "readout sent")
        elif self.state is State.PROGRAMMING:
            self._event(Did.TIMEOUT, "programming mode ended by inactivity")
            self._go_idle()

    def reset(self, at: float) -> None:
        """Power cycle: whatever the meter was doing, it is idle at 300 Bd from ``at`` on."""
        self.state = State.IDLE
        self.deadline = 0.0 if self.profile.mode == "D" else None
        self.rx.clear()
        self._pending_blocks = []
        self.busy_until = min(self.busy_until, at)
        self._speeds = _speeds_before(self._speeds, at)
        self._speeds.append((at, self.profile.push_baud if self.profile.mode == "D" else INITIAL_BAUD))
        self._event(Did.RESET, "the meter restarted")

    def _go_idle(self) -> None:
        self.state = State.IDLE
        self.deadline = None
        self.rx.clear()
        self._speeds = _speeds_before(self._speeds, self.now, at_too=True)
        self._speeds.append((max(self.now, self.busy_until), INITIAL_BAUD))

    # --- programming mode -------------------------------------------------------------------

    def _rx_programming(self, byte: int, error: bool) -> None:
        rx = self.rx
        rx.feed(byte, error)
        for msg, bad in rx.messages(AckRule.ALONE):
            self._received(msg, bad)
            if msg.kind is Kind.COMMAND:
                self._command(msg.data, error=bad)
            elif msg.kind is Kind.ACK and not bad:
                self._ack_received()
            elif msg.kind is Kind.NAK and not bad:
                self._nak_received()
            elif msg.began_as is Kind.COMMAND and len(msg.data) > MAX_COMMAND:
                self._event(Did.NAK, f"command longer than {MAX_COMMAND} bytes")
                self._reply(NAK, Sent.NAK)
            else:
                self._event(Did.IGNORED, f"{msg.describe()} outside a command")

    def _ack_received(self) -> None:
        self._touch()
        if self._pending_blocks:
            self._send_block()
            return
        if self.profile.quirks.nak_after_stray_ack:
            self._spoil_next = True
        self._event(Did.STRAY_ACK, "ACK outside a partial-block transfer")

    def _nak_received(self) -> None:
        self._touch()
        last = self._last_reply
        if last is None:
            self._event(Did.IGNORED, "NAK with nothing to repeat")
            return
        self._event(Did.REPEAT, f"NAK: repeating the last {last.kind}")
        self._send(self.now + self._reaction("reply"), last.data, self.session_baud, last.kind)

    def _reply(self, data: bytes, kind: Sent = Sent.REPLY) -> None:
        self._send(self.now + self._reaction("reply"), data, self.session_baud, kind)

    def _command(self, data: bytes, error: bool) -> None:
        self._touch()
        if self._spoil_next:
            self._spoil_next = False
            self._event(Did.NAK, "command after a stray ACK (quirk)")
            self._reply(NAK, Sent.NAK)
            return
        if error:
            self._event(Did.NAK, "parity or framing error in the command")
            self._reply(NAK, Sent.NAK)
            return
        if not bcc_ok(data):
            self._event(Did.NAK, f"BCC error in {data!r}")
            self._reply(NAK, Sent.NAK)
            return
        try:
            cmd = Command.from_bytes(data, verify_bcc=False)
        except ProtocolError as e:
            self._event(Did.NAK, f"syntax error: {e}")
            self._reply(NAK, Sent.NAK)
            return
        self._pending_blocks = []
        self.last_command = cmd
        self._event(Did.COMMAND, f"{cmd.name} {cmd.address}".strip())
        if cmd.command == "B":
            if cmd.type == "1":
                self._reply(ACK, Sent.ACK)
            self._event(Did.BREAK, f"B{cmd.type}: back to 300 Bd")
            self._go_idle()
        elif cmd.command == "P":
            self._password(cmd)
        elif cmd.command == "R":
            self._read(cmd)
        elif cmd.command == "W":
            self._write(cmd)
        elif cmd.command == "E":
            self._error()
        else:
            self._event(Did.NAK, f"unknown command {cmd.name}")
            self._reply(NAK, Sent.NAK)

    def _error(self) -> None:
        self._reply(ErrorMessage(self.profile.error_text).to_bytes(), Sent.ERROR)

    def _password(self, cmd: Command) -> None:
        if cmd.type != "1":
            self._error()
            return
        expected = self.profile.password
        if expected is None or cmd.value == expected:
            self._authorized = True
            self._reply(ACK, Sent.ACK)
            return
        self._event(Did.PASSWORD, "wrong password: meter sends B0 and ends the session")
        self._reply(Command.break_().to_bytes(), Sent.BREAK)
        self._go_idle()

    def lookup(self, address: str) -> RegisterSpec | None:
        """The register R1 of ``address`` reads: the same address, or the same OBIS quantity."""
        regs = self.profile.registers
        if address in regs and address in self.profile.readable:
            return regs[address]
        wanted = Obis.parse(address)
        if wanted is None:
            return None
        for a in self.profile.readable:
            o = Obis.parse(a)
            if o is not None and o.matches(wanted):
                return regs[a]
        return None

    def _read(self, cmd: Command) -> None:
        if not self._authorized:
            self._error()
            return
        if cmd.type not in ("1", "3"):
            self._error()
            return
        spec = self.lookup(cmd.address)
        if spec is None:
            self._event(Did.ERROR, f"unknown register {cmd.address}")
            self._error()
            return
        value = self._written.get(spec.address) or self.value_text(spec)
        self.answers.append((self.now, spec.address, value))
        text = (cmd.address if self.profile.reply_with_address else "") + value
        block = text.encode("latin-1")
        size = self.profile.partial_block_size
        if self.fault_partial_size and len(block) > self.fault_partial_size:
            size = self.fault_partial_size
            self._event(
                Did.FAULT,
                f"partial_blocks: the {cmd.name} {cmd.address} reply split into blocks of {size} bytes",
            )
            self._pending_blocks = [block[i : i + size] for i in range(0, len(block), size)]
            self._send_block()
            return
        if cmd.type == "3" and size and len(block) > size:
            self._pending_blocks = [block[i : i + size] for i in range(0, len(block), size)]
            self._send_block()
            return
        self._reply(DataMessage(block).to_bytes())

    def _send_block(self) -> None:
        block = self._pending_blocks.pop(0)
        partial = bool(self._pending_blocks)
        self._reply(DataMessage(block, partial=partial).to_bytes())

    def _write(self, cmd: Command) -> None:
        if not self._authorized:
            self._error()
            return
        answer = self.profile.write
        spec = self.lookup(cmd.address)
        if answer == "nak":
            self._reply(NAK, Sent.NAK)
        elif answer == "ack" and spec is not None and cmd.type == "1":
            unit = f"*{spec.unit}" if spec.unit else ""
            self._written[spec.address] = f"({cmd.value}{unit})" if "*" not in cmd.value else f"({cmd.value})"
            self._reply(ACK, Sent.ACK)
        else:
            self._error()

    # --- values -----------------------------------------------------------------------------

    def value_text(self, spec: RegisterSpec, t: float | None = None) -> str:
        """``(value*unit)`` of a register at virtual time ``t`` (default: now)."""
        when = self.clock(t)
        self.registers.advance_to(when)
        src = spec.source
        unit = spec.unit
        if src in ("import", "export", "absolute"):
            kwh = self.registers.energy(src, spec.tariff)
            if spec.billing:
                kwh = self._billing_value(src, spec.tariff, spec.billing, when, kwh)
            value = (
                spec.format.format(_truncate(kwh, spec.format or "{:.3f}")) if spec.format else f"{kwh:.3f}"
            )
        elif src.startswith("power_"):
            p = self.registers.power_kw
            p = {"power_import": max(p, 0.0), "power_export": max(-p, 0.0)}.get(src, p)
            if unit == "W":
                p *= 1000
            value = spec.format.format(p) if spec.format else f"{p:.3f}"
        elif src == "serial":
            value = self.profile.serial
        elif src == "address":
            value = self.profile.address
        elif src == "time":
            value = when.strftime(spec.format or "%H:%M:%S")
        elif src == "date":
            value = when.strftime(spec.format or "%y-%m-%d")
        else:
            value = spec.value
        return f"({value}" + (f"*{unit}" if unit else "") + ")"

    def _initial_energy(self, src: str, tariff: int) -> float:
        imports, exports = self._initial
        if src == "absolute":
            return self._initial_energy("import", tariff) + self._initial_energy("export", tariff)
        regs = imports if src == "import" else exports
        return sum(regs.values()) if tariff == 0 else regs.get(tariff, 0.0)

    def _billing_value(self, src: str, tariff: int, n: int, when: datetime, now_kwh: float) -> float:
        """Approximate register value at the start of the n-th previous month: the current value
        less the installation's average consumption since then (monotonic, deterministic)."""
        # Constant for a given meter: measured from the clock's start, not from ``when``, so a
        # billing snapshot never changes while the meter runs (a month boundary crossed while
        # running is not modelled).
        ref = self.clock_start
        start = ref.replace(day=1, hour=0, minute=0, second=0, microsecond=0)
        for _ in range(n - 1):
            start = (start - timedelta(days=1)).replace(day=1)
        days = (ref - start).total_seconds() / 86400
        now_kwh = self._initial_energy(src, tariff)
        inst = self.registers.installation
        per_day = (
            (inst.base_load_kw + 0.3 * inst.peak_load_kw) * 24 if src != "export" else inst.solar_peak_kw * 3
        )
        share = 1.0 if tariff == 0 else 0.5
        return max(0.0, now_kwh - per_day * days * share)

    def readout_block(self) -> bytes:
        lines = []
        for line in self.profile.readout:
            lines.append("".join(a + self.value_text(self.profile.registers[a]) for a in line))
        return ("\r\n".join(lines) + "\r\n!\r\n").encode("latin-1")

    @cached_property
    def _identification(self) -> bytes:
        """The identification message, built once (the profile does not change)."""
        return self.profile.identification.to_bytes()

    def _readout_bytes(self) -> bytes:
        block = self.readout_block()
        self.readouts.append(block)
        return DataMessage(block).to_bytes()

    def _push_bytes(self) -> bytes:
        return self._identification + CRLF + self.readout_block()
