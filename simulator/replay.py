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

from me162.protocol.capture import Capture, read_capture
from me162.protocol.errors import CaptureError
from me162.protocol.frames import Identification
from me162.protocol.line import INITIAL_BAUD, LineSettings
from me162.simulator.clock import in_force
from me162.simulator.meter import MeterEvent, State, Transmit
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
    """Data events with consecutive same-direction chunks merged (a logger may split them)."""
    out: list[tuple[float, str, bytes, int]] = []
    for e in capture.data_events():
        baud = int(e.fields.get("baud") or INITIAL_BAUD)
        d = e.dir or "m2r"
        if (
            out
            and out[-1][1] == d
            and d == "m2r"
            and out[-1][3] == baud
            and not e.data.startswith((b"/", b"\x01", b"\x02", b"\x15", b"\x06"))
        ):
            t, _, data, _ = out[-1]
            out[-1] = (t, d, data + e.data, baud)
        else:
            out.append((e.t, d, e.data, baud))
    return out


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

    def __init__(self, capture: Capture, profile: Profile) -> None:
        self.capture = capture
        self.profile = profile
        self.sessions = build_script(capture)
        self.session_index = -1
        self.step_index = 0
        self.now = 0.0
        self.busy_until = 0.0
        self.state = State.IDLE
        self.outbox: list[Transmit] = []
        self.events: list[MeterEvent] = []
        self.mismatches: list[str] = []
        self._rx = bytearray()
        self._rx_error = False
        self._baud = INITIAL_BAUD
        first = self.sessions[0].steps[0].baud  # listen at the speed the first request came at
        self._speeds: list[tuple[float, int]] = [(0.0, first)]

    @classmethod
    def from_file(cls, path: str | Path) -> ReplayMeter:
        from me162.simulator.profile import Profile as P

        capture = read_capture(path)
        ident_line = str(capture.header.get("meter", {}).get("ident") or "/REP5REPLAY")
        try:
            ident = Identification.from_line(ident_line)
        except Exception:
            ident = Identification("REP", "5", "REPLAY")
        return cls(capture, P(name=f"replay:{Path(path).name}", identification=ident))

    # --- the Meter interface the link uses -------------------------------------------------------

    def uart_baud(self, t: float) -> int:
        return in_force(self._speeds, t)

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
            self._rx_error = False
        self._rx.append(byte)
        self._rx_error |= error
        msg = _complete(self._rx)
        if msg is None:
            if len(self._rx) > 512:
                self._rx.clear()
            return
        del self._rx[: len(msg)]
        error, self._rx_error = self._rx_error, False
        self._message(msg, error)

    # --- replay ----------------------------------------------------------------------------------

    def _event(self, kind: str, detail: str) -> None:
        self.events.append(MeterEvent(self.now, kind, detail))

    def _mismatch(self, why: str, got: bytes, expected: bytes) -> None:
        detail = f"{why}: got {got[:40]!r}" + (f", the recording has {expected[:40]!r}" if expected else "")
        self.mismatches.append(detail)
        self._event("mismatch", detail)
        log.warning("replay mismatch: %s", detail)

    def _message(self, msg: bytes, error: bool) -> None:
        if error:
            self._mismatch(
                f"bytes at another speed than the recorded {self.uart_baud(self.now)} Bd", msg, b""
            )
            return
        if msg.startswith(b"/?"):
            nxt = next(
                (
                    j
                    for j in range(self.session_index + 1, len(self.sessions))
                    if self.sessions[j].steps[0].expect == msg
                ),
                None,
            )
            if nxt is None:
                self._mismatch("a request the rest of the recording does not have", msg, b"")
                return
            self.session_index, self.step_index = nxt, 0
        if msg == b"\x01B0\x03q":  # a break ends any session; the meter never answers it
            self._event("replay", "the reader signed off with B0")
            if self.session_index >= 0:
                self.step_index = len(self.sessions[self.session_index].steps)
            self._speeds.append((self.now, INITIAL_BAUD))
            return
        if self.session_index < 0:
            self._mismatch("the recording starts with a request", msg, self.sessions[0].steps[0].expect)
            return
        steps = self.sessions[self.session_index].steps
        if (
            msg.startswith(b"\x06")
            and len(msg) == 6
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
        self._event("replay", f"session {self.session_index + 1} step {i + 1}: {msg[:20]!r}")
        at = self.now
        for delay, data, baud in step.answers:
            at = max(at + delay, self.busy_until)
            tx = Transmit(at, data, baud, "replay")
            self.outbox.append(tx)
            self.busy_until = tx.end
            self._speeds.append((at, baud))
            at = tx.end
        # listen at the speed the recording's next reader message travels at
        nxt_baud = steps[self.step_index].baud if self.step_index < len(steps) else INITIAL_BAUD
        self._speeds.append((max(self.busy_until, self.now), nxt_baud))


def _complete(buf: bytearray) -> bytes | None:
    """A whole reader message at the start of ``buf``: request, option select, command, ACK/NAK."""
    if not buf:
        return None
    b0 = buf[0]
    if b0 == ord("/"):
        end = buf.find(b"!\r\n")
        return bytes(buf[: end + 3]) if end >= 0 else None
    if b0 == 0x06:
        if len(buf) >= 2 and buf[1] in (0x01, 0x06, 0x15):
            return b"\x06"
        if len(buf) >= 6:
            return bytes(buf[:6]) if buf[4:6] == b"\r\n" else b"\x06"
        return None
    if b0 == 0x15:
        return b"\x15"
    if b0 == 0x01:
        for j in range(1, len(buf)):
            if buf[j] in (0x03, 0x04):
                return bytes(buf[: j + 2]) if j + 1 < len(buf) else None
        return None
    # noise before a message: drop one byte
    del buf[0]
    return _complete(buf)
