"""Replay the meter side of a capture.

:class:`ReplayMeter` stands in for :class:`~me162.simulator.meter.Meter` behind a
:class:`~me162.simulator.link.Link`: it answers the reader's messages with the recorded
meter messages, at the recorded speeds and after the recorded delays.  The recording is cut
into sessions, each starting with a request (``/?...!``); a request from the reader starts
the next session, and an option select picks the first session from there on whose option
select it equals (a log with a readout session and a programming session serves both kinds of
reader).  Reader messages the recording answered with nothing (a B0, a stray ACK) may be left
out.  Anything else the reader does that the recording did not — another message, another
speed, speaking before the recorded answer is out — is a mismatch: the replay says so, records
a ``mismatch`` event and stays silent, as it cannot know what the real meter would have said.
"""

from __future__ import annotations

import logging
from dataclasses import dataclass, field
from pathlib import Path

from me162.protocol.capture import Capture, WireMessage, messages, read_capture
from me162.protocol.chars import ACK
from me162.protocol.errors import CaptureError
from me162.protocol.frames import Identification
from me162.protocol.framing import MAX_BLOCK, MAX_LINE, AckRule, Kind, Message
from me162.protocol.line import INITIAL_BAUD, T_R_MAX, LineSettings
from me162.simulator.clock import in_force
from me162.simulator.events import Did, MeterEvent, Sent
from me162.simulator.meter import MessageReceiver, State, Transmit
from me162.simulator.profile import Profile

log = logging.getLogger(__name__)
MIN_DELAY = 0.02


@dataclass
class Step:
    """One reader message and the meter's recorded answers to it."""

    expect: bytes
    baud: int
    answers: list[tuple[float, bytes, int]] = field(default_factory=list)  # (delay, data, baud)


@dataclass
class ReplaySession:
    steps: list[Step]


def _chunks(capture: Capture) -> list[tuple[float, str, bytes, int]]:
    """The capture's messages in order (a recorder may have split one into many data events,
    or written two in one): (time, direction, bytes, speed)."""
    return [
        (m.t, m.dir, m.message.data, m.baud or INITIAL_BAUD)
        for m in messages(capture)
        if isinstance(m, WireMessage)
    ]


def build_script(capture: Capture) -> list[ReplaySession]:
    sessions: list[ReplaySession] = []
    current: ReplaySession | None = None
    last_r2m_end = 0.0
    for t, d, data, baud in _chunks(capture):
        if d == "r2m":
            if data.startswith(b"/?") or current is None:
                current = ReplaySession([])
                sessions.append(current)
            current.steps.append(Step(data, baud))
            last_r2m_end = t + len(data) * LineSettings(baud).char_time
        else:
            if current is None:  # the log starts with the meter's answer: any request will do
                current = ReplaySession([Step(b"/?!\r\n", INITIAL_BAUD)])
                sessions.append(current)
            step = current.steps[-1]
            delay = max(MIN_DELAY, t - last_r2m_end) if not step.answers else 0.0
            step.answers.append((delay, data, baud))
    if not sessions:
        raise CaptureError(f"{capture.path}: no reader-to-meter messages to replay against")
    return sessions


class ReplayMeter:
    """Serves the meter side of a capture (see the module docstring)."""

    def __init__(self, capture: Capture, profile: Profile, *, loop: bool = False, speed: float = 1.0) -> None:
        self.capture = capture
        self.profile = profile
        self.loop = loop  #: after the last recorded session, a request starts the first again
        self.speed = speed  #: the time scale the replay runs at (for the time-scale hint)
        self.scale_hint_given = False
        self.sessions = build_script(capture)
        self.session_index = -1
        self.step_index = 0
        self.now = 0.0
        self.busy_until = 0.0
        self.state = State.IDLE
        self.outbox: list[Transmit] = []
        self.events: list[MeterEvent] = []
        self.mismatches: list[str] = []
        self._rx = MessageReceiver(max_line=MAX_LINE, max_block=MAX_BLOCK)
        self._baud = INITIAL_BAUD
        first = self.sessions[0].steps[0].baud  # listen at the speed the first request came at
        self._speeds: list[tuple[float, int]] = [(0.0, first)]

    @classmethod
    def from_file(cls, path: str | Path, *, loop: bool = False, speed: float = 1.0) -> ReplayMeter:
        from me162.simulator.profile import Profile as P

        capture = read_capture(path)
        ident_line = str(capture.header.get("meter", {}).get("ident") or "/REP5REPLAY")
        try:
            ident = Identification.from_line(ident_line)
        except Exception:
            ident = Identification("REP", "5", "REPLAY")
        return cls(capture, P(name=f"replay:{Path(path).name}", identification=ident), loop=loop, speed=speed)

    # --- the Meter interface the link uses -------------------------------------------------------

    def uart_baud(self, t: float) -> int:
        return in_force(self._speeds, t)

    @property
    def tightest_window(self) -> float:
        """The shortest recorded pause before an answer at another speed than the reader's
        message, which the reader must switch within (see Meter.tightest_window)."""
        delays = [
            step.answers[0][0]
            for s in self.sessions
            for step in s.steps
            if step.answers and step.answers[0][2] != step.baud
        ]
        return min(delays, default=1.0)

    def next_deadline(self) -> float | None:
        return None

    def advance(self, t: float) -> None:
        self.now = max(self.now, t)

    def take(self) -> list[Transmit]:
        out, self.outbox = self.outbox, []
        return out

    def receive(self, t: float, byte: int, error: bool = False) -> None:
        self.advance(t)
        if t < self.busy_until:
            self._mismatch("the reader spoke before the recorded answer was out", bytes([byte]), b"")
            return
        if byte == 0x2F and not error:  # "/" starts a request: whatever came before was noise
            self._rx.clear()
        self._rx.feed(byte, error)
        # An ACK the recording has on its own (a partial block's) needs no more bytes to be whole.
        ack = AckRule.ALONE if self._expected() == ACK else AckRule.AUTO
        for msg, bad in self._rx.messages(ack):
            self._event(Did.RECEIVED, msg.describe(), message=msg, error=bad)
            if msg.kind is not Kind.NOISE:
                self._message(msg, bad)

    # --- replay ----------------------------------------------------------------------------------

    def _expected(self) -> bytes:
        """The reader message the recording has next (empty outside a session)."""
        if self.session_index < 0:
            return b""
        steps = self.sessions[self.session_index].steps
        return steps[self.step_index].expect if self.step_index < len(steps) else b""

    def _event(self, kind: Did, detail: str, *, message: Message | None = None, error: bool = False) -> None:
        self.events.append(MeterEvent(self.now, kind, detail, message, error))

    def _check_time_scale(self, message: Message) -> None:
        """A reader that answers the identification later than the standard allows, on a
        replay run faster than real time, is most likely a real-time reader: say so once."""
        took = (
            self.now - len(message.data) * LineSettings(self.uart_baud(self.now)).char_time - self.busy_until
        )
        if self.speed <= 1.0 or took <= T_R_MAX or self.scale_hint_given:
            return
        self.scale_hint_given = True
        hint = (
            f"the reader answered the identification {took:.2f} s after it (the standard allows {T_R_MAX:g} s): "
            f"that is {took / self.speed:.2f} s of real time at --speed {self.speed:g}; a reader at real time "
            f"needs the same time scale (me162-read --speed {self.speed:g}) or a replay at --speed 1"
        )
        log.warning("%s", hint)
        self.mismatches.append(hint)
        self._event(Did.MISMATCH, hint)

    def _mismatch(self, why: str, got: bytes, expected: bytes) -> None:
        detail = f"{why}: got {got[:40]!r}" + (f", the recording has {expected[:40]!r}" if expected else "")
        self.mismatches.append(detail)
        self._event(Did.MISMATCH, detail)
        log.warning("replay mismatch: %s", detail)

    def _message(self, message: Message, error: bool) -> None:
        msg = message.data
        if error:
            self._mismatch(
                f"bytes at another speed than the recorded {self.uart_baud(self.now)} Bd", msg, b""
            )
            return
        if message.kind is Kind.REQUEST:
            order = list(range(self.session_index + 1, len(self.sessions)))
            if self.loop:
                order += range(0, self.session_index + 1)
            nxt = next((j for j in order if self.sessions[j].steps[0].expect == msg), None)
            if nxt is None:
                again = "" if self.loop else " (me162-sim replay --loop serves the recording again)"
                self._mismatch(f"a request the rest of the recording does not have{again}", msg, b"")
                return
            if nxt <= self.session_index:
                self._event(Did.REPLAY, f"the recording starts over at session {nxt + 1} (--loop)")
            self.session_index, self.step_index = nxt, 0
        if message.is_break and message.bcc_ok:  # a break ends any session; the meter never answers it
            self._event(Did.REPLAY, "the reader signed off with B0")
            if self.session_index >= 0:
                self.step_index = len(self.sessions[self.session_index].steps)
            self._speeds.append((self.now, INITIAL_BAUD))
            return
        if self.session_index < 0:
            self._mismatch("the recording starts with a request", msg, self.sessions[0].steps[0].expect)
            return
        steps = self.sessions[self.session_index].steps
        if message.kind is Kind.OPTION_SELECT:
            self._check_time_scale(message)
        if (
            message.kind is Kind.OPTION_SELECT
            and self.step_index < len(steps)
            and steps[self.step_index].expect != msg
        ):
            # another kind of session (readout vs programming): find one whose option select matches
            for i in range(self.session_index + 1, len(self.sessions)):
                later = self.sessions[i].steps
                if len(later) > 1 and later[1].expect == msg:
                    self.session_index, self.step_index = i, 1
                    steps = later
                    break
        i = self.step_index
        while i < len(steps) and steps[i].expect != msg and not steps[i].answers:
            i += 1  # the recording's unanswered messages (B0, stray ACK) may be left out
        if i >= len(steps) or steps[i].expect != msg:
            expected = steps[self.step_index].expect if self.step_index < len(steps) else b""
            self._mismatch("the reader sent something the recording does not have here", msg, expected)
            return
        step = steps[i]
        self.step_index = i + 1
        self._event(Did.REPLAY, f"session {self.session_index + 1} step {i + 1}: {msg[:20]!r}")
        at = self.now
        for delay, data, baud in step.answers:
            at = max(at + delay, self.busy_until)
            tx = Transmit(at, data, baud, Sent.REPLAY)
            self.outbox.append(tx)
            self.busy_until = tx.end
            self._speeds.append((at, baud))
            at = tx.end
        # listen at the speed the recording's next reader message travels at
        nxt_baud = steps[self.step_index].baud if self.step_index < len(steps) else INITIAL_BAUD
        self._speeds.append((max(self.busy_until, self.now), nxt_baud))
