"""The reference reader's protocol logic, as a sans-I/O state machine.

:class:`ReaderSession` is fed bytes and time and answers with actions: send these bytes, set
the UART to this speed (not before that time), wait for input until that time.  It never
touches a port, a thread or a clock; :mod:`me162.reader.driver` runs it over pyserial, and
the tests run it against scripted input.

It does what PRIOR_ART-listed readers get wrong: it parses the identification by the standard
(no dropped character after Z), switches speed only after the ACK has left the wire (by the
character time, since tcdrain on USB adapters and ptys returns early) plus an optional change
delay, uses inter-character timeouts instead of one short total timeout, verifies the BCC,
bounds every retry, never ACKs the P0 message (the ME162 NAKs the next command if it does),
and always ends programming mode with B0.
"""

from __future__ import annotations

import logging
from collections.abc import Callable, Generator
from dataclasses import dataclass, field
from enum import Enum
from typing import Any

from me162.protocol.bcc import bcc_ok
from me162.protocol.chars import ACK, ETX, NAK, Ctl
from me162.protocol.datablock import Value, parse_line
from me162.protocol.errors import BccError, Me162Error, ProtocolError, ProtocolTimeout
from me162.protocol.frames import (
    Command,
    DataMessage,
    Identification,
    OptionSelect,
    RequestMessage,
    is_error_text,
)
from me162.protocol.framing import AckRule, Framer, Kind, Message
from me162.protocol.line import (
    INITIAL_BAUD,
    MODE_B_BAUDS,
    MODE_C_BAUDS,
    T_A_MAX,
    T_R_MAX,
    T_R_MIN,
    T_R_MIN_FAST,
    LineSettings,
    mode_c_char,
)
from me162.protocol.readout import Readout, decode_readout

log = logging.getLogger(__name__)


class Failure(Enum):
    """Why a reading failed, each with a hint a person can act on."""

    NO_IDENTIFICATION = (
        "no identification",
        "check the probe sits on the optical port (cable down), the port is right and no other "
        "program holds it; a meter left in programming mode stays deaf for up to a minute",
    )
    LINE_BUSY = (
        "bytes but no identification",
        "bytes arrived but none formed an identification: a meter that pushes by itself (try "
        "--mode D), another program on the port, stray light on the probe, or a meter still "
        "sending a readout at 300 Bd",
    )
    NO_DATA = (
        "identification but no data",
        "the speed switch failed: try --change-delay 0.4 for a slow USB adapter, or --baud 300",
    )
    TIMEOUT_AFTER_ACK = (
        "timeout after the ACK",
        "the meter did not answer the option select: try --baud 300 or a longer --change-delay",
    )
    UNEXPECTED_SPEED = (
        "data at an unexpected speed",
        "the bytes after the ACK are garbage: the meter answered at another speed; try --baud 300",
    )
    BCC = ("BCC error", "noise in the optical path or a speed mismatch; shield the probe from light")
    PROTOCOL = (
        "protocol error",
        "the meter's answer breaks the framing; record it with --record and report it",
    )
    PASSWORD = ("password refused", "the meter ended the session (B0) after P1: check --password")
    PROGRAMMING = ("programming mode failed", "the meter kept refusing commands (NAK); try again later")

    @property
    def summary(self) -> str:
        return self.value[0]

    @property
    def hint(self) -> str:
        return self.value[1]


class ReaderError(Me162Error):
    """A reading failed; ``failure`` classifies it and carries the hint."""

    def __init__(self, failure: Failure, detail: str = "") -> None:
        self.failure = failure
        self.detail = detail
        self.result: SessionResult | None = None  #: what the session had found (notes, retries)
        super().__init__(f"{failure.summary}{': ' + detail if detail else ''} (hint: {failure.hint})")


# --- actions the driver carries out ------------------------------------------------------------


@dataclass(frozen=True)
class Send:
    data: bytes


@dataclass(frozen=True)
class SetSpeed:
    baud: int
    not_before: float


@dataclass(frozen=True)
class Wait:
    """Read input until ``until`` (or until something arrives); then feed it back."""

    until: float


Action = Send | SetSpeed | Wait


#: The switch to the agreed speed comes this share of the meter's shortest reaction time (t_r
#: min: 200 ms, 20 ms for a meter with a lowercase third letter) after the ACK has left the
#: wire, not at the very moment: a driver that hands the last bytes over late (a USB adapter's
#: FIFO, a pty's work queue) still sends them whole at the old speed, and the meter cannot
#: answer before t_r min.
SWITCH_LEAD = 0.2


@dataclass
class ReaderConfig:
    address: str = ""
    baud: str = "max"  #: "max", or a number: the highest speed to switch to (300: never switch)
    change_delay: float = 0.0  #: extra seconds between the ACK leaving the wire and the switch
    ack_delay: float | None = None  #: seconds after the ident before the ACK (default: t_r min)
    registers: tuple[str, ...] = ()  #: programming mode: read these with R1 instead of a readout
    password: str | None = None
    partial_blocks: bool = False
    wake_up: bool = False
    break_first: bool = False
    break_baud: int = 9600
    mode: str = "auto"  #: auto, or force A, B, C, D
    push_baud: int = 2400  #: mode D: the speed the meter pushes at
    verify_bcc: bool = True
    first_timeout: float = T_R_MAX + 0.5  #: seconds to wait for the first byte of an answer
    char_timeout: float = T_A_MAX  #: seconds allowed between two characters of a message
    option_fallback_wait: float = 3.0  #: after a failed switch, how long the 300 Bd fallback may take
    retries: int = 3  #: NAK/timeout retries per command
    session_retries: int = 2  #: whole-session retries, each after the line has gone quiet
    max_ident_bytes: int = 128  #: bytes (echo and noise included) the identification may take
    max_message_bytes: int = 65536  #: a readout longer than this is refused, not waited for
    stray_answer_window: float = 2 * T_R_MAX  #: after a repeated command: silence that proves
    #: no second answer is on its way (a meter answers within t_r <= 1.5 s)
    quiet_before_retry: float = T_A_MAX  #: silence that ends whatever the meter was sending
    quiet_limit: float = 30.0  #: give up waiting for silence after this long
    spoiled_pushes: int = 3  #: mode D: pushes in a row that break off before the attempt fails


@dataclass
class SessionResult:
    identification: Identification | None
    readout: Readout | None = None
    registers: dict[str, dict[str, Any]] = field(default_factory=dict)
    mode: str = ""
    speeds: list[int] = field(default_factory=list)  #: the port's speeds in order, 300 first
    retries: int = 0
    notes: list[str] = field(default_factory=list)
    timings: dict[str, float] = field(default_factory=dict)


@dataclass(frozen=True)
class Event:
    """What the driver feeds back after an action: bytes received, and the time now."""

    data: bytes
    now: float


class State(Enum):
    START = "start"
    WAKE_UP = "wake-up"
    BREAK = "break"
    SIGN_ON = "sign-on"
    IDENTIFICATION = "identification"
    OPTION_SELECT = "option-select"
    READOUT = "readout"
    OPERAND = "operand"
    PASSWORD = "password"
    COMMANDS = "commands"
    SIGN_OFF = "sign-off"
    DONE = "done"


Gen = Generator[Action, Event, Any]


class ReaderSession:
    """One reading: drive it with :meth:`start` and :meth:`feed`."""

    def __init__(self, config: ReaderConfig) -> None:
        self.config = config
        self.state = State.START
        self.now = 0.0
        self.baud = INITIAL_BAUD
        self.tx_done = 0.0
        #: what the meter sent, cut into messages (the meter's ACKs always stand alone)
        self.input = Framer(ack=AckRule.ALONE)
        self.unframed = b""  #: after a receive timed out: what arrived without forming the message
        self.result = SessionResult(None, speeds=[INITIAL_BAUD])
        self.progress = 0
        self._gen = self._session()
        self.finished = False
        self.outcome: SessionResult | None = None

    # --- driving -----------------------------------------------------------------------------

    def start(self, now: float) -> Action:
        self.now = now
        return next(self._gen)

    def feed(self, event: Event) -> Action | None:
        """Feed what happened since the last action; returns the next action, or None when the
        session is over (then :attr:`outcome` is set, or a :class:`ReaderError` was raised)."""
        self.now = event.now
        try:
            return self._gen.send(event)
        except StopIteration as stop:
            self.finished = True
            self.outcome = stop.value
            return None

    # --- helpers -----------------------------------------------------------------------------

    def _send(self, data: bytes) -> Gen:
        start = max(self.now, self.tx_done)
        duration = len(data) * LineSettings(self.baud).char_time
        self.tx_done = start + duration
        log.debug("send %s at %d Bd", data.hex(" "), self.baud)
        event = yield Send(data)
        # The bytes went out when the driver wrote them, which may be later than planned (a busy
        # machine): a switch timed from the plan would cut the end of the ACK off.
        self.tx_done = max(self.tx_done, event.now + duration)
        self._absorb(event)

    def _switch(self, baud: int, extra: float = 0.0) -> Gen:
        if baud == self.baud:
            return
        not_before = max(self.now, self.tx_done + extra)
        event = yield SetSpeed(baud, not_before)
        self._absorb(event)
        self.baud = baud
        self.result.speeds.append(baud)

    def _absorb(self, event: Event) -> None:
        self.now = event.now
        self.input.feed(event.data)
        self.progress += len(event.data)

    def _pause(self, seconds: float) -> Gen:
        until = self.now + max(0.0, seconds)
        while self.now < until:
            event = yield Wait(until)
            self._absorb(event)

    def _until_sent(self) -> Gen:
        """Wait until what was sent has left the wire."""
        yield from self._pause(self.tx_done - self.now)

    def _quiet(self, silence: float, limit: float) -> Gen:
        """Listen until nothing has arrived for ``silence`` seconds (at most ``limit`` seconds);
        what arrives is dropped.  Returns how many bytes were dropped, and whether the line did
        go quiet (False: it was still talking when ``limit`` ran out)."""
        stop = self.now + limit
        dropped = 0
        until = min(stop, self.now + silence)
        last = self.now
        while self.now < until:
            event = yield Wait(until)
            self._absorb(event)
            if event.data:
                until = min(stop, self.now + silence)
                dropped += len(event.data)
                last = self.now
        self.input.clear()
        return dropped, self.now >= last + silence

    def _receive(
        self, accept: Callable[[Message], bool], first_timeout: float, what: str, max_bytes: int
    ) -> Gen:
        """Collect input until the framer gives a message that ``accept(message)`` takes;
        messages it does not take (noise, an echo) are passed over.

        ``first_timeout`` bounds the wait for the first byte; after it, each gap is bounded by
        the inter-character timeout.  More than ``max_bytes`` bytes without the message raises
        :class:`Overflow`: a line that never stops talking cannot hold the reader for ever.
        On a timeout, :attr:`unframed` holds what arrived (passed over, or still pending).
        """
        deadline = self.now + first_timeout
        got = 0
        passed = bytearray()
        while True:
            while (msg := self.input.next()) is not None:
                if accept(msg):
                    return msg
                if len(passed) <= max_bytes:
                    passed += msg.data
            if got > max_bytes:
                raise Overflow(f"{got} bytes without {what}")
            if self.now >= deadline:
                have = bytes(passed) + self.input.pending
                self.unframed = have
                raise ProtocolTimeout(
                    f"timed out waiting for {what}; got {len(have)} byte(s): {have[:40]!r}", got
                )
            event = yield Wait(deadline)
            self._absorb(event)
            if event.data:
                got += len(event.data)
                deadline = max(deadline, self.now + self.config.char_timeout)

    # --- the session -------------------------------------------------------------------------

    def _session(self) -> Gen:
        """Whole-session attempts: a failed attempt is retried (bounded) once the line is quiet,
        so that a retry never lands inside what the meter is still sending, and not at all if
        it does not go quiet; in mode D, where the meter pushes by itself, a retry listens again
        at once."""
        cfg = self.config
        res = self.result
        attempt = 0
        break_first = cfg.break_first
        while True:
            try:
                return (yield from self._attempt(break_first=break_first))
            except ReaderError as e:
                if attempt >= cfg.session_retries or e.failure is Failure.PASSWORD:
                    e.result = res
                    raise
                attempt += 1
                res.retries += 1
                res.notes.append(
                    f"attempt {attempt} failed ({e.failure.summary}); retry {attempt} of {cfg.session_retries}"
                )
                log.info("attempt %d failed: %s; retrying", attempt, e)
                if e.failure in (Failure.NO_IDENTIFICATION, Failure.LINE_BUSY, Failure.PROGRAMMING):
                    break_first = True  # a session may still be open: the meter is deaf until B0
                if cfg.mode == "D":  # a pushing meter is never quiet, and a retry only listens again
                    self.input.clear()
                else:
                    yield from self._switch(INITIAL_BAUD)
                    dropped, quiet = yield from self._quiet(cfg.quiet_before_retry, cfg.quiet_limit)
                    if not quiet:  # a retry would land in what the meter is sending, and the next one too
                        busy = ReaderError(
                            Failure.LINE_BUSY,
                            f"after attempt {attempt}, the line did not go quiet for {cfg.quiet_before_retry:g} s "
                            f"within {cfg.quiet_limit:g} s ({dropped} byte(s)): no retry into what the meter "
                            "is sending",
                        )
                        busy.result = res
                        raise busy from e
                    if dropped:
                        res.notes.append(f"waited for the line to go quiet first ({dropped} byte(s) dropped)")
                yield from self._pause(min(1.5 * attempt, 6.0))

    def _attempt(self, *, break_first: bool) -> Gen:
        cfg = self.config
        res = self.result
        res.identification = None
        res.readout = None
        res.registers = {}
        res.mode = ""
        start = self.now
        if cfg.mode == "D":
            return (yield from self._mode_d())
        if break_first:
            self.state = State.BREAK
            yield from self._switch(cfg.break_baud)
            yield from self._send(Command.break_().to_bytes())
            yield from self._until_sent()
            yield from self._pause(0.2)  # B0 out, meter idle
            yield from self._switch(INITIAL_BAUD)
            res.notes.append(f"sent B0 at {cfg.break_baud} Bd first, in case a session was left open")
        if cfg.wake_up:
            self.state = State.WAKE_UP
            yield from self._send(b"\x00" * 65)  # 65 NULs: 2.17 s at 300 Bd (2.1-2.3 s)
            yield from self._until_sent()
            yield from self._pause(1.6)  # then 1.5-1.7 s
        self.input.clear()
        self.state = State.SIGN_ON
        request = RequestMessage(cfg.address).to_bytes()
        yield from self._send(request)
        self.state = State.IDENTIFICATION
        echoed = []
        passed_over: list[str] = []  #: lines shaped like an identification that are not one

        def identification(msg: Message) -> bool:
            """An identification a meter can have sent; a line of garbage shaped like one (bytes
            read at another speed, light) is passed over, within the same byte budget."""
            if msg.kind is Kind.REQUEST and msg.data == request:
                echoed.append(msg)
            if msg.kind is not Kind.IDENTIFICATION:
                return False
            got = _as_identification(msg.data)
            if isinstance(got, str):
                passed_over.append(f"{msg.data[:40]!r} ({got})")
                return False
            return True

        def failed(e: Exception) -> str:
            if not passed_over:
                return str(e)
            return f"{e}; passed over {len(passed_over)} line(s) that are no identification, the last {passed_over[-1]}"

        try:
            found = yield from self._receive(
                identification,
                cfg.first_timeout + LineSettings(INITIAL_BAUD).transfer_time(len(request)),
                "the identification",
                cfg.max_ident_bytes,
            )
        except Overflow as e:
            raise ReaderError(Failure.LINE_BUSY, failed(e)) from None
        except ProtocolTimeout as e:
            busy = e.received > 0
            raise ReaderError(Failure.LINE_BUSY if busy else Failure.NO_IDENTIFICATION, failed(e)) from None
        ident = _as_identification(found.data)  # (a subclass's acceptor may take other lines)
        if isinstance(ident, str):
            raise ReaderError(Failure.LINE_BUSY, f"not an identification ({ident}): {found.data[:40]!r}")
        if echoed:
            res.notes.append("skipped the echo of the request (the probe echoes)")
        if passed_over:
            res.notes.append(f"passed over {len(passed_over)} line(s) that are no identification")
        res.identification = ident
        res.timings["identification"] = round(self.now - start, 3)
        mode = cfg.mode if cfg.mode != "auto" else ident.mode
        if mode == "E":
            res.notes.append(f"{ident.raw} offers mode E (HDLC/DLMS, \\2); reading it in mode C")
            mode = "C"
        res.mode = mode
        if mode in ("A", "B"):
            baud = MODE_B_BAUDS.get(ident.baud_char, INITIAL_BAUD) if mode == "B" else INITIAL_BAUD
            yield from self._switch(baud)
            yield from self._readout(baud, after_ack=False)
            if cfg.registers:
                self._registers_from_readout()
            return res
        return (yield from self._mode_c(ident))

    def _registers_from_readout(self) -> None:
        """A mode A or B meter sends its readout unasked: the registers asked for are taken
        from it (programming mode after the readout is not used)."""
        res = self.result
        assert res.readout is not None
        res.notes.append(f"mode {res.mode}: the registers are taken from the readout")
        for reg in self.config.registers:
            ds = res.readout.data.find(reg)
            if ds is None or not ds.values:
                res.registers[reg] = {"value": None, "unit": None, "error": "not in the readout", "raw": ""}
            else:
                v = ds.values[0]
                res.registers[reg] = {"value": v.value, "unit": v.unit, "error": None, "raw": ds.raw}

    def _target_baud(self, ident: Identification) -> int:
        offered = ident.baud or INITIAL_BAUD
        if self.config.baud == "max":
            return offered
        cap = int(self.config.baud)
        return offered if offered <= cap else INITIAL_BAUD

    def _mode_c(self, ident: Identification) -> Gen:
        cfg = self.config
        res = self.result
        baud = self._target_baud(ident)
        z = mode_c_char(baud) if baud in MODE_C_BAUDS.values() else "0"
        if baud != (ident.baud or 300) and baud == INITIAL_BAUD:
            res.notes.append(
                f"staying at 300 Bd (--baud {cfg.baud}) although the meter offers {ident.baud} Bd"
            )
        programming = bool(cfg.registers)
        self.state = State.OPTION_SELECT
        t_r = (
            cfg.ack_delay if cfg.ack_delay is not None else (T_R_MIN_FAST if ident.fast_reaction else T_R_MIN)
        )
        yield from self._pause(t_r)
        self.input.clear()
        yield from self._send(OptionSelect("0", z, "1" if programming else "0").to_bytes())
        reaction = T_R_MIN_FAST if ident.fast_reaction else T_R_MIN
        yield from self._switch(baud, cfg.change_delay + SWITCH_LEAD * reaction)
        if programming:
            return (yield from self._programming(ident, baud))
        return (yield from self._readout(baud, after_ack=True))

    def _readout(self, baud: int, *, after_ack: bool) -> Gen:
        cfg = self.config
        res = self.result
        self.state = State.READOUT
        started = self.now
        wait = cfg.first_timeout + (cfg.option_fallback_wait if after_ack else 0.0)
        try:
            msg = yield from self._receive(_block, wait, "the data message", cfg.max_message_bytes)
        except Overflow as e:
            raise ReaderError(
                Failure.PROTOCOL, f"{e}: the meter does not stop sending (limit {cfg.max_message_bytes})"
            ) from None
        except ProtocolTimeout as e:
            if _looks_garbled(self.unframed):
                raise ReaderError(
                    Failure.UNEXPECTED_SPEED, f"{len(self.unframed)} unreadable byte(s) at {baud} Bd"
                ) from None
            raise ReaderError(Failure.NO_DATA if after_ack else Failure.PROTOCOL, str(e)) from None
        if msg.kind is Kind.PLAIN and cfg.verify_bcc:
            # A block without STX after an option select: if an ETX follows, the STX was lost
            # and the BCC cannot be checked; the standard's plain form has no ETX.
            yield from self._pause(0.1)
            if self.input.pending[:1] == ETX:
                raise ReaderError(Failure.BCC, "a data message whose STX was lost: its BCC cannot be checked")
        if msg.kind is Kind.COMMAND:
            raise ReaderError(
                Failure.UNEXPECTED_SPEED if _looks_garbled(msg.data) else Failure.PROTOCOL,
                f"expected a data message, got the command {msg.name!r}: {msg.data[:30]!r}",
            )
        readout = self._decode(msg.data, baud)
        readout.identification = res.identification
        res.readout = readout
        res.timings["readout"] = round(self.now - started, 3)
        self.state = State.DONE
        return res

    def _decode(self, raw: bytes, baud: int) -> Readout:
        try:
            return decode_readout(raw, verify_bcc=self.config.verify_bcc)
        except BccError as e:
            raise ReaderError(Failure.BCC, str(e)) from None
        except ProtocolError as e:
            if _looks_garbled(raw):
                raise ReaderError(Failure.UNEXPECTED_SPEED, f"unreadable bytes at {baud} Bd") from None
            raise ReaderError(Failure.PROTOCOL, str(e)) from None

    def _mode_d(self) -> Gen:
        cfg = self.config
        res = self.result
        res.mode = "D"
        yield from self._switch(cfg.push_baud)
        self.input.clear()
        self.input.blocks = False  # pushes are plain blocks: an STX is garbage, not a message
        self.state = State.READOUT
        ident: list[Message] = []
        spoiled: list[Message] = []

        def telegram(msg: Message) -> bool:
            """An identification, then (right after it) the plain data block of the push.  A
            push that starts but breaks off is passed over; a few in a row end the attempt."""
            if msg.kind is Kind.PLAIN and ident and ident[0].end == msg.offset:
                return True
            if ident or msg.began_as in (Kind.IDENTIFICATION, Kind.REQUEST):
                spoiled.append(ident[0] if ident else msg)
                if len(spoiled) >= cfg.spoiled_pushes:
                    raise ReaderError(
                        Failure.PROTOCOL,
                        f"{len(spoiled)} pushes in a row could not be read; the last began "
                        f"{spoiled[-1].data[:24]!r}",
                    )
            ident[:] = [msg] if msg.kind is Kind.IDENTIFICATION else []
            return False

        try:
            block = yield from self._receive(
                telegram, cfg.first_timeout + 10.0, "a mode D telegram", cfg.max_message_bytes
            )
        except Overflow as e:
            raise ReaderError(Failure.LINE_BUSY, f"{e}: no telegram in what the meter sends") from None
        except ProtocolTimeout as e:
            failure = Failure.LINE_BUSY if e.received else Failure.NO_IDENTIFICATION
            raise ReaderError(failure, str(e)) from None
        readout = self._decode(ident[0].data + block.data, cfg.push_baud)
        if readout.identification is None:
            raise ReaderError(Failure.PROTOCOL, "a mode D telegram without its identification")
        res.identification = readout.identification
        res.readout = readout
        self.state = State.DONE
        return res

    # --- programming mode ----------------------------------------------------------------------

    def _programming(self, ident: Identification, baud: int) -> Gen:
        cfg = self.config
        res = self.result
        self.state = State.OPERAND
        try:
            operand = yield from self._receive(
                _block,
                cfg.first_timeout + cfg.option_fallback_wait,
                "the P0 message",
                cfg.max_message_bytes,
            )
        except Overflow as e:
            raise ReaderError(Failure.PROTOCOL, str(e)) from None
        except ProtocolTimeout as e:
            if _looks_garbled(self.unframed):
                raise ReaderError(Failure.UNEXPECTED_SPEED, f"unreadable bytes at {baud} Bd") from None
            raise ReaderError(Failure.TIMEOUT_AFTER_ACK, str(e)) from None
        if operand.name != "P0":
            if operand.kind in (Kind.DATA, Kind.PARTIAL):
                raise ReaderError(
                    Failure.PROTOCOL, "the meter sent a readout instead of entering programming mode"
                )
            raise ReaderError(
                Failure.UNEXPECTED_SPEED if _looks_garbled(operand.data) else Failure.PROTOCOL,
                f"expected P0, got {operand.data[:30]!r}",
            )
        # Do not ACK the P0: the ME162 NAKs the next command when the reader does.
        closed = False
        try:
            yield from self._check_operand(operand)
            if cfg.password is not None:
                self.state = State.PASSWORD
                yield from self._exchange(
                    Command.password(cfg.password).to_bytes(), what="P1", answer=_p1_answer
                )
            self.state = State.COMMANDS
            for reg in cfg.registers:
                res.registers[reg] = yield from self._read_register(reg)
        except GeneratorExit:  # the session is being thrown away: nothing can be sent
            closed = True
            raise
        finally:
            if not closed:
                self.state = State.SIGN_OFF
                yield from self._send(Command.break_().to_bytes())
                # Let the B0 leave the wire before the port is closed or set back to 300 Bd.
                yield from self._until_sent()
        self.state = State.DONE
        return res

    def _check_operand(self, operand: Message) -> Gen:
        """A P0 with a wrong BCC is asked for again (NAK): an operand is not taken on trust."""
        if not operand.bcc_ok:
            self.result.notes.append("P0: BCC error; NAK")
            yield from self._exchange(NAK, what="the P0 again", answer=_p0_answer, repeat=NAK)

    def _read_register(self, reg: str) -> Gen:
        cfg = self.config
        cmd = Command.read(reg, partial_blocks=cfg.partial_blocks)
        msg = yield from self._exchange(cmd.to_bytes(), what=f"{cmd.name} {reg}", answer=_data_answer)
        blocks = [msg.block]
        while msg.partial:
            msg = yield from self._exchange(
                ACK, what=f"the next partial block of {reg}", answer=_data_answer, repeat=NAK
            )
            blocks.append(msg.block)
        text = b"".join(blocks).decode("latin-1")
        sets = parse_line(text).data_sets
        first = sets[0].values[0] if sets and sets[0].values else Value(text)
        if is_error_text(first.value):
            return {"value": None, "unit": None, "error": first.value, "raw": text}
        return {"value": first.value, "unit": first.unit, "error": None, "raw": text}

    def _exchange(self, data: bytes, *, what: str, answer: Any, repeat: bytes | None = None) -> Gen:
        """Send ``data`` and get an answer that ``answer`` accepts.

        NAK, silence and BCC errors are retried a bounded number of times with a growing pause
        (a bad BCC asks the meter to repeat with NAK).  The ME162's answers carry no address,
        so an answer must be proved to belong to this command: once ``data`` has gone out more
        than once, a second answer may still be on its way, and the exchange ends only after
        ``stray_answer_window`` of silence, dropping any late copy, so that it can never be
        taken as the answer to the next command.
        """
        cfg = self.config
        res = self.result
        attempt = 0
        send = data
        copies = 0
        while True:
            self.input.clear()
            yield from self._send(send)
            copies += send == data
            problem = ""
            try:
                reply = yield from self._receive(
                    _reply, cfg.first_timeout, f"the answer to {what}", cfg.max_message_bytes
                )
            except (ProtocolTimeout, Overflow) as e:
                problem, send = f"no answer ({e})", data
            else:
                verdict = answer(reply)
                if isinstance(verdict, str):
                    if verdict == "ended":
                        raise ReaderError(
                            Failure.PASSWORD if what == "P1" else Failure.PROGRAMMING,
                            f"the meter ended the session (B0) after {what}",
                        )
                    problem = verdict
                    send = self._after_bcc_error(data, repeat) if verdict.startswith("BCC") else data
                else:
                    if copies > 1 or (repeat is not None and attempt):
                        stray, _ = yield from self._quiet(cfg.stray_answer_window, cfg.quiet_limit)
                        if stray:
                            res.notes.append(f"{what}: dropped {stray} byte(s) of a late second answer")
                    return verdict
            attempt += 1
            res.retries += 1
            res.notes.append(f"{what}: {problem}; retry {attempt} of {cfg.retries}")
            if attempt > cfg.retries:
                raise ReaderError(Failure.PROGRAMMING, f"{what}: {problem} after {cfg.retries} retries")
            yield from self._pause(0.2 * attempt)

    def _after_bcc_error(self, data: bytes, repeat: bytes | None) -> bytes:
        """What to send after an answer with a bad BCC: NAK (or ``repeat``), which asks for the
        same answer again; the answer is ours, so the command is not sent a second time."""
        return repeat or NAK


def _as_identification(data: bytes) -> Identification | str:
    """The identification ``data`` holds, or why it cannot be a meter's (unreadable, or
    implausible: bytes read at another speed, light)."""
    try:
        ident = Identification.from_bytes(data)
    except ProtocolError as e:
        return f"unreadable: {e}"
    return ident.plausible or ident


class Overflow(ProtocolError):
    """More bytes arrived than the message being waited for can have."""


# --- what counts as an answer ------------------------------------------------------------------

#: messages that may carry a readout (or stand where one should)
_BLOCKS = frozenset((Kind.DATA, Kind.PARTIAL, Kind.COMMAND, Kind.PLAIN))
#: messages that may answer a command
_REPLIES = _BLOCKS | {Kind.ACK, Kind.NAK}


def _block(msg: Message) -> bool:
    return msg.kind in _BLOCKS


def _reply(msg: Message) -> bool:
    return msg.kind in _REPLIES


def _ended(reply: Message) -> bool:
    return reply.is_break and reply.name == "B0" and bool(reply.bcc_ok)


def _data_answer(reply: Message) -> DataMessage | str:
    """An R1/R3 answer: a data message (or error message) with a good BCC; else what is wrong."""
    if reply.kind is Kind.NAK:
        return "NAK"
    if _ended(reply):
        return "ended"
    if reply.kind not in (Kind.DATA, Kind.PARTIAL):
        return f"unexpected answer {reply.data[:20]!r}"
    if not reply.bcc_ok:
        return "BCC error"
    try:
        return DataMessage.from_bytes(reply.data, verify_bcc=True)
    except BccError:
        return "BCC error"
    except ProtocolError:
        return f"unexpected answer {reply.data[:20]!r}"


def _p0_answer(reply: Message) -> Message | str:
    """The P0 asked for again: the meter's operand with a good BCC."""
    if reply.name == "P0":
        return reply if reply.bcc_ok else "BCC error"
    if _ended(reply):
        return "ended"
    return f"unexpected answer {reply.data[:20]!r}"


def _p1_answer(reply: Message) -> bytes | str:
    if reply.kind is Kind.ACK:
        return reply.data
    if reply.kind is Kind.NAK:
        return "NAK"
    if _ended(reply):
        return "ended"
    if reply.kind is Kind.DATA and bcc_ok(reply.data):
        raise ReaderError(Failure.PASSWORD, f"the meter answered P1 with {reply.data[:30]!r}")
    return f"unexpected answer {reply.data[:20]!r}"


_TEXT_CONTROLS = frozenset((Ctl.SOH, Ctl.STX, Ctl.ETX, Ctl.EOT, 0x0A, 0x0D))


def _looks_garbled(data: bytes) -> bool:
    """Bytes received at the wrong speed: NULs from framing errors, or mostly non-text."""
    if not data:
        return False
    bad = sum(1 for b in data if b == 0 or (b < 0x20 and b not in _TEXT_CONTROLS) or b > 0x7E)
    return bad / len(data) > 0.2
