"""Fuzz every place bytes from the wire enter the reader's session: whatever the meter sends at
any step — identification, readout, P0, R1 answers, partial blocks, pushes — the session ends
with a result or a classified ReaderError, in a bounded number of steps: never a traceback."""

from __future__ import annotations

from hypothesis import given, settings
from hypothesis import strategies as st

from me162.protocol.frames import DataMessage
from me162.reader.session import (
    Event,
    ReaderConfig,
    ReaderError,
    ReaderSession,
    Send,
    SetSpeed,
    State,
    Wait,
)

REAL = [
    b"/ISK5ME162-0033\r\n",
    DataMessage(b"C.1.0(28342193)\r\n1.8.0(0033402.264*kWh)\r\n!\r\n").to_bytes(),
    b"\x01P0\x02()\x03`",
    b"\x02(0033402.264*kWh)\x03T",
    b"\x02(ERROR)\x03Z",
    b"\x15",
    b"\x06",
    b"\x01B0\x03q",
    DataMessage(b"(0033", partial=True).to_bytes(),
    b"/EBZ5DD3BZ06ETA_107\r\n\r\n1-0:1.8.0*255(000.1*kWh)\r\n!\r\n",
]

# What the meter sends at one step: real messages, spoiled real messages, or any bytes.
chunk = st.one_of(
    st.sampled_from(REAL),
    st.tuples(st.sampled_from(REAL), st.integers(0, 60), st.integers(1, 255)).map(
        lambda t: t[0][: t[1]] + bytes([t[0][t[1] % len(t[0])] ^ t[2]]) + t[0][t[1] + 1 :]
    ),
    st.tuples(st.sampled_from(REAL), st.integers(0, 60)).map(lambda t: t[0][: t[1]]),
    st.binary(max_size=64),
)
configs = st.sampled_from(
    [
        ReaderConfig(),
        ReaderConfig(registers=("1.8.0", "2.8.0")),
        ReaderConfig(registers=("1.8.0",), partial_blocks=True, password="x"),
        ReaderConfig(mode="D"),
        ReaderConfig(baud="300", verify_bcc=False),
    ]
)


@settings(max_examples=400, deadline=None)
@given(configs, st.lists(st.tuples(chunk, st.floats(0.0, 3.0)), max_size=30))
def test_any_bytes_at_any_step_end_in_a_result_or_a_reader_error(
    config: ReaderConfig, script: list[tuple[bytes, float]]
) -> None:
    session = ReaderSession(config)
    now = 0.0
    action: Send | SetSpeed | Wait | None = session.start(now)
    steps = 0
    try:
        while action is not None:
            steps += 1
            assert steps < 20_000, "the session does not end"
            data = b""
            if isinstance(action, SetSpeed):
                now = max(now, action.not_before)
            elif isinstance(action, Wait):
                if script:
                    data, gap = script.pop(0)
                    now = min(action.until, now + gap) if data else action.until
                else:
                    now = max(now, action.until)
            action = session.feed(Event(data, now))
    except ReaderError:
        return
    assert session.outcome is not None


HAPPY = {
    "readout": [REAL[0], REAL[1]],
    "programming": [REAL[0], REAL[2], REAL[3], REAL[3]],
    "push": [REAL[9]],
}
LISTENING = {State.IDENTIFICATION, State.READOUT, State.OPERAND, State.PASSWORD, State.COMMANDS}
CONFIG = {
    "readout": ReaderConfig(session_retries=0),
    "programming": ReaderConfig(registers=("1.8.0", "2.8.0"), session_retries=0),
    "push": ReaderConfig(mode="D", session_retries=0),
}


@settings(max_examples=2000, deadline=None)
@given(
    st.sampled_from(sorted(HAPPY)),
    st.integers(0, 3),
    st.one_of(st.integers(0, 2), st.integers(0, 80)),
    st.one_of(st.sampled_from([1, 2, 3, 4, 8, 16, 32, 64, 0x7F]), st.integers(1, 127)),
    st.sampled_from(["flip", "cut", "insert", "drop"]),
)
def test_one_spoiled_byte_anywhere_in_a_good_exchange_never_escapes_as_a_traceback(
    kind: str, which: int, at: int, value: int, how: str
) -> None:
    script = list(HAPPY[kind])
    msg = script[which % len(script)]
    i = at % len(msg)
    spoiled = {
        "flip": msg[:i] + bytes([msg[i] ^ value]) + msg[i + 1 :],
        "cut": msg[:i],
        "insert": msg[:i] + bytes([value]) + msg[i:],
        "drop": msg[:i] + msg[i + 1 :],
    }[how]
    script[which % len(script)] = spoiled
    session = ReaderSession(CONFIG[kind])
    now = 0.0
    action: Send | SetSpeed | Wait | None = session.start(now)
    try:
        for _ in range(20_000):
            if action is None:
                return
            data = b""
            if isinstance(action, SetSpeed):
                now = max(now, action.not_before)
            elif isinstance(action, Wait):
                listening = session.state in LISTENING
                data = script.pop(0) if script and listening else b""
                now = now + 0.3 if data else max(now, action.until)
            action = session.feed(Event(data, now))
        raise AssertionError("the session does not end")
    except ReaderError:
        return
