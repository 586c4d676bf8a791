"""A bit-level model of two UARTs joined by a line, so that bytes sent at one speed and
received at another come out garbled exactly as real hardware garbles them.

A sender turns each byte into a frame of bits (start 0, data LSB first, parity, stop 1s) of
``1/baud`` seconds each; the line idles at 1 between frames.  A receiver waits for a falling
edge, samples the middle of every bit at its own speed, checks the parity and the stop bit,
and re-arms after the middle of the stop bit.  Deterministic: the same frames give the same
bytes, framing and parity errors included.
"""

from __future__ import annotations

from bisect import bisect_right
from dataclasses import dataclass

from me162.protocol.line import LineSettings


def frame_bits(byte: int, fmt: LineSettings) -> tuple[int, ...]:
    data = [(byte >> i) & 1 for i in range(fmt.bits)]
    parity: list[int] = []
    if fmt.parity == "E":
        parity = [sum(data) & 1]
    elif fmt.parity == "O":
        parity = [1 - (sum(data) & 1)]
    return (0, *data, *parity, *([1] * fmt.stop))


@dataclass(frozen=True)
class Frame:
    """One character on the line."""

    start: float
    byte: int
    fmt: LineSettings
    raw: bool = False  #: the receiver's port passes all 8 bits (see Transmit.raw)

    @property
    def bits(self) -> tuple[int, ...]:
        return frame_bits(self.byte, self.fmt)

    @property
    def end(self) -> float:
        return self.start + self.fmt.bits_per_char / self.fmt.baud


@dataclass(frozen=True)
class RxChar:
    """What a receiver made of the line: a value, when its stop bit was sampled, errors."""

    t: float
    byte: int
    framing_error: bool = False
    parity_error: bool = False

    @property
    def error(self) -> bool:
        return self.framing_error or self.parity_error


def decode_bits(bits: tuple[int, ...], rx: LineSettings) -> tuple[int, bool, bool]:
    """Decode one frame's bit pattern with the receiver's format: (value, framing, parity)."""
    data = bits[1 : 1 + rx.bits]
    value = sum(b << i for i, b in enumerate(data))
    pos = 1 + rx.bits
    parity_error = False
    if rx.parity != "N":
        p = bits[pos] if pos < len(bits) else 1
        want = (sum(data) & 1) if rx.parity == "E" else 1 - (sum(data) & 1)
        parity_error = p != want
        pos += 1
    stops = [bits[i] if i < len(bits) else 1 for i in range(pos, pos + rx.stop)]
    return value, any(s == 0 for s in stops), parity_error


class Waveform:
    """The line level over time for a run of frames (idle 1 outside them)."""

    def __init__(self, frames: list[Frame]) -> None:
        self.edges: list[float] = []
        self.levels: list[int] = []
        level = 1
        for f in sorted(frames, key=lambda fr: fr.start):
            if self.edges and f.start > self.edges[-1] and level != 1:
                self._put(self._last_end, 1)
                level = 1
            dt = 1.0 / f.fmt.baud
            for i, b in enumerate(f.bits):
                if b != level:
                    self._put(f.start + i * dt, b)
                    level = b
            self._last_end = f.end
        if level != 1 and frames:
            self._put(self._last_end, 1)

    _last_end = 0.0

    def _put(self, t: float, level: int) -> None:
        self.edges.append(t)
        self.levels.append(level)

    def level(self, t: float) -> int:
        i = bisect_right(self.edges, t) - 1
        return 1 if i < 0 else self.levels[i]

    def next_falling_edge(self, after: float) -> float | None:
        i = bisect_right(self.edges, after)
        while i < len(self.edges):
            if self.levels[i] == 0:
                return self.edges[i]
            i += 1
        return None


def receive(frames: list[Frame], rx: LineSettings, after: float = float("-inf")) -> list[RxChar]:
    """Everything a receiver set to ``rx`` makes of ``frames``."""
    if not frames:
        return []
    wave = Waveform(frames)
    out: list[RxChar] = []
    dt = 1.0 / rx.baud
    n = rx.bits_per_char
    t = after
    while True:
        edge = wave.next_falling_edge(t)
        if edge is None:
            return out
        samples = tuple(wave.level(edge + (k + 0.5) * dt) for k in range(n))
        if samples[0] != 0:  # a glitch shorter than half a bit: not a start bit
            t = edge
            continue
        value, framing, parity = decode_bits(samples, rx)
        stop_sample = edge + (n - 0.5) * dt
        out.append(RxChar(stop_sample, value, framing, parity))
        t = stop_sample
