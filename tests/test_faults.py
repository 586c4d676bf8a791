"""Scripted, seeded faults: scenario files, each action's exact effect on the wire, triggers,
seeded chaos, and what a pyserial client on a pty sees of each scenario."""

from __future__ import annotations

import itertools
import json
import time
from datetime import datetime
from pathlib import Path

import pytest
import serial

from me162.protocol import DataMessage, OptionSelect, schema
from me162.protocol.bcc import xor7
from me162.protocol.capture import read_capture
from me162.protocol.errors import ConfigError
from me162.protocol.frames import Command
from me162.protocol.line import add_parity
from me162.simulator.events import Did, Sent
from me162.simulator.faults import (
    ACTIONS,
    Fault,
    FaultInjector,
    Trigger,
    load_scenario,
    parse_scenario,
    scenario_schema,
)
from me162.simulator.link import Link
from me162.simulator.meter import Transmit
from me162.simulator.pty_transport import PtyMeter
from me162.simulator.session import MeterOptions
from tests.ptyhelp import write_taken
from tests.simhelp import Bench

SCENARIOS = sorted((Path(__file__).resolve().parent.parent / "fixtures" / "scenarios").glob("*.yaml"))
READOUT = DataMessage(b"C.1.0(28342193)\r\n1.8.0(0033402.264*kWh)\r\n!\r\n").to_bytes()
TX = Transmit(1.0, READOUT, 9600, Sent.READOUT, 300)


def test_there_are_at_least_25_documented_scenarios_covering_every_action() -> None:
    assert len(SCENARIOS) >= 25
    used = set()
    for path in SCENARIOS:
        s = load_scenario(path)
        assert s.name == path.stem and s.purpose and s.reference
        used |= {f.action for f in s.faults}
    assert used == set(ACTIONS)


def injector(*faults: Fault) -> FaultInjector:
    return FaultInjector(Bench().link, list(faults))


@pytest.mark.parametrize(
    ("action", "params", "expect"),
    [
        ("corrupt_bcc", {}, lambda d: d[:-1] == READOUT[:-1] and d[-1] == READOUT[-1] ^ 1),
        ("set_bcc", {"value": 0x0A}, lambda d: d == READOUT[:-1] + b"\n"),
        (
            "flip",
            {"at": 17, "mask": 4},
            lambda d: d[17] == READOUT[17] ^ 4 and d[:17] == READOUT[:17] and d[18:] == READOUT[18:],
        ),
        ("drop", {"at": 0, "count": 1}, lambda d: d == READOUT[1:]),
        ("insert", {"at": 5, "bytes": b"~"}, lambda d: d == READOUT[:5] + b"~" + READOUT[5:]),
        ("duplicate", {"at": 3, "count": 2}, lambda d: d == READOUT[:5] + READOUT[3:]),
        ("noise", {"at": 0, "bytes": b"\x7f", "count": 3}, lambda d: d == b"\x7f\x7f\x7f" + READOUT),
        ("truncate", {"keep": 10}, lambda d: d == READOUT[:10]),
        ("parity_bit", {}, lambda d: d == add_parity(READOUT)),
    ],
)
def test_byte_actions_change_exactly_what_they_say(
    action: str, params: dict[str, object], expect: object
) -> None:
    inj = injector()
    (out,) = inj.apply(action, dict(params), TX)
    assert callable(expect) and expect(out.data)
    assert out.at == TX.at and inj.log and action in inj.log[0]


def test_timing_and_speed_actions() -> None:
    inj = injector()
    (late,) = inj.apply("delay", {"seconds": 2.5}, TX)
    assert late.at == pytest.approx(3.5) and late.data == READOUT
    assert inj.apply("silent", {}, TX) == []
    (slow,) = inj.apply("speed", {"baud": 4800}, TX)
    assert slow.baud == 4800 and slow.data == READOUT
    first, rest = inj.apply("late_switch", {"bytes": 3}, TX)
    assert (first.baud, first.data) == (300, READOUT[:3]) and (rest.baud, rest.data) == (9600, READOUT[3:])
    assert rest.at == pytest.approx(first.end)
    (nak,) = inj.apply("answer", {"with": "nak"}, TX)
    assert nak.data == b"\x15"
    (err,) = inj.apply("answer", {"with": "error"}, TX)
    assert err.data == b"\x02(ERROR)\x03Z"
    assert inj.apply("drop_line", {"seconds": 2.0}, TX) == [] and inj.link.line_drops == [(1.0, 2.0)]


def test_reset_truncates_and_the_meter_starts_over() -> None:
    b = Bench(scenarios=[str(p) for p in SCENARIOS if p.stem == "reset-mid-readout"])
    b.sign_on()
    b.send(OptionSelect("0", "5", "0").to_bytes(), gap=0.05)
    b.baud(9600)
    got = b.wait(3.0)
    assert len(got) == 90 and b.meter.state.value == "idle"
    b.baud(300)
    assert b.sign_on() == b"/ISK5ME162-0033\r\n"


def test_nth_register_count_every_and_session_triggers() -> None:
    b = Bench(scenarios=[str(p) for p in SCENARIOS if p.stem in ("nak-second-r1", "error-r1-1.8.0")])
    b.sign_on()
    b.send(OptionSelect("0", "5", "1").to_bytes(), gap=0.05)
    b.baud(9600)
    b.read_until(b"\x03", extra=1)
    answers = []
    for reg in ("2.8.0", "2.8.0", "1.8.0", "2.8.0"):
        b.send(Command.read(reg).to_bytes(), gap=0.03)
        answers.append(b.read_until(b"\x15", limit=0.6) or b.read_until(b"\x03", extra=1))
    assert answers[0].startswith(b"\x02(0000013.465")  # the 1st R1 is clean
    assert answers[1] == b"\x15"  # the 2nd R1 gets NAK
    assert answers[2] == b"\x02(ERROR)\x03Z"  # R1 of 1.8.0 gets (ERROR)
    assert answers[3].startswith(b"\x02(0000013.465")  # count 1: only once


def held_r1_bench() -> Bench:
    """Programming mode at 9600 Bd, the first R1 answer held (1.0 s at most)."""
    b = Bench()
    FaultInjector(b.link, [Fault(Trigger(message="reply"), "hold", {"seconds": 1.0})])
    b.sign_on()
    b.send(OptionSelect("0", "5", "1").to_bytes(), gap=0.05)
    b.baud(9600)
    b.read_until(b"\x03", extra=1)
    return b


def test_a_held_answer_goes_out_ahead_of_the_answer_to_the_readers_next_message() -> None:
    """However late the reader sends its next command (here 0.5 s after the held answer was
    due, or before it was due), the held answer lands after it and before its own answer."""
    for gap in (0.5, 0.01):
        b = held_r1_bench()
        sent = b.send(Command.read("1.8.0").to_bytes(), gap=0.03)
        assert b.wait(gap) == b""  # held: nothing comes, not even at the answer's own time
        asked = b.send(Command.read("2.8.0").to_bytes())
        first = b.read_until(b"\x03", extra=1)
        second = b.read_until(b"\x03", extra=1)
        assert first.startswith(b"\x02(0033402.264") and second.startswith(b"\x02(0000013.465"), gap
        (release,) = [e for e in b.link.events if e.kind == "fault" and "goes out" in e.detail]
        assert "the reader's next message" in release.detail
        due = next(e.t for e in b.link.events if e.kind == "fault" and "held until" in e.detail)
        # at its own time if the reader was that quick, else when the command has reached the meter
        assert release.t == pytest.approx(max(due, asked), abs=0.002) and release.t > sent


def test_a_held_answer_goes_out_at_its_limit_when_the_reader_sends_nothing() -> None:
    b = held_r1_bench()
    b.send(Command.read("1.8.0").to_bytes(), gap=0.03)
    got = b.read_until(b"\x03", extra=1, limit=3.0)
    assert got.startswith(b"\x02(0033402.264")
    (held,) = [e for e in b.link.events if e.kind == "fault" and "held until" in e.detail]
    (release,) = [e for e in b.link.events if e.kind == "fault" and "goes out" in e.detail]
    assert "its time is up" in release.detail
    assert release.t == pytest.approx(held.t + 1.0)
    assert b.link.held == []


def test_every_third_session() -> None:
    b = Bench(scenarios=[str(p) for p in SCENARIOS if p.stem == "corrupt-every-third-session"])
    verdicts = []
    for _ in range(6):
        b.baud(300)
        b.sign_on()
        b.send(OptionSelect("0", "5", "0").to_bytes(), gap=0.05)
        b.baud(9600)
        raw = b.read_until(b"\x03", extra=1)
        verdicts.append(DataMessage.from_bytes(raw, verify_bcc=False).bcc_valid)
    assert verdicts == [True, True, False, True, True, False]


def test_after_t_trigger() -> None:
    b = Bench(scenarios=[str(p) for p in SCENARIOS if p.stem == "noise-after-t10"])
    assert b.sign_on() == b"/ISK5ME162-0033\r\n"
    b.wait(12.0)
    assert b.sign_on() == b"\x7f/ISK5ME162-0033\r\n"


def test_partial_blocks_fault() -> None:
    b = Bench(scenarios=[str(p) for p in SCENARIOS if p.stem == "partial-blocks-r1"])
    b.sign_on()
    b.send(OptionSelect("0", "5", "1").to_bytes(), gap=0.05)
    b.baud(9600)
    b.read_until(b"\x03", extra=1)
    b.send(Command.read("1.8.0").to_bytes(), gap=0.03)
    first = b.read_until(b"\x04", extra=1)
    assert DataMessage.from_bytes(first).partial and DataMessage.from_bytes(first).block == b"(0033402"


def test_fired_faults_are_on_the_record() -> None:
    b = Bench(scenarios=[str(p) for p in SCENARIOS if p.stem == "bcc-corrupt-readout"])
    b.sign_on()
    b.send(OptionSelect("0", "5", "0").to_bytes(), gap=0.05)
    b.baud(9600)
    b.read_until(b"\x03", extra=1)
    (event,) = [e for e in b.link.events if e.kind == "fault"]
    assert event.detail.startswith("corrupt_bcc: BCC 0x4C -> 0x4D (correct: 0x4C) [readout (198 bytes) at t=")
    assert "bcc-corrupt-readout.yaml" in event.detail


def chaos_run(seed: int) -> list[bytes]:
    b = Bench(chaos=(seed, 0.5))
    for _ in range(4):
        b.baud(300)
        b.send(b"/?!\r\n", gap=3.0)
        b.wait(3.0)
        b.send(OptionSelect("0", "5", "0").to_bytes(), gap=0.05)
        b.baud(9600)
        b.wait(4.0)
    return [e.data for e in b.link.events if e.kind == "data" and e.dir == "m2r"] + [
        e.detail.encode() for e in b.link.events if e.kind == "fault"
    ]


def test_a_seed_reproduces_the_same_faults_byte_for_byte() -> None:
    first = chaos_run(42)
    assert first == chaos_run(42)
    assert first != chaos_run(43)
    assert any(x.startswith(b"t=") is False and b"chaos" in x for x in first)


BAD = [
    ("name: x\n", ":1: faults: is required"),  # purpose and reference: built-in scenarios only
    ("name: x\npurpose: p\nreference: r\nfaults: []\n", ":4: faults: must not be empty"),
    (
        "name: x\npurpose: p\nreference: r\nfaults:\n  - when: {message: readout}\n    do: {action: explode}\n",
        ":6: faults.0.do.action: must be one of answer, corrupt_bcc,",
    ),
    (
        "name: x\npurpose: p\nreference: r\nfaults:\n  - when: {message: radout}\n    do: silent\n",
        ":5: faults.0.when.message: must be one of ack, any, break, error, identification, nak, operand, push, readout, "
        "reply, not 'radout'; did you mean 'readout'?",
    ),
    (
        "name: x\npurpose: p\nreference: r\nfaults:\n  - when: {nth: 0}\n    do: silent\n",
        ":5: faults.0.when.nth: must be a whole number >= 1",
    ),
    (
        "name: x\npurpose: p\nreference: r\nfaults:\n  - do: {action: delay}\n",
        ":5: faults.0.do.seconds: is required",
    ),
    (
        "name: x\npurpose: p\nreference: r\nfaults:\n  - do: {action: speed, baud: 1234}\n",
        "faults.0.do.baud: must be one of 300",
    ),
    ("name: x\npurpose: p\nreference: r\nfaults:\n  - do: {action: insert, bytes: zz}\n", "must be hex text"),
    (
        "name: x\npurpose: p\nreference: r\nfaults:\n  - do: {action: flip, colour: red}\n",
        ":5: faults.0.do.colour: unknown key (known: action, at, mask)",
    ),
    (
        "name: x\npurpose: p\nreference: r\nfaults:\n  - do: {action: truncate}\n",
        ":5: faults.0.do.keep: is required",
    ),
    ("name: x\npurpose: p\nreference: r\ncolour: red\nfaults:\n  - do: silent\n", ":4: colour: unknown key"),
    ("name: [unclosed\n", "not valid YAML"),
]


def test_every_error_of_a_scenario_at_once_and_a_shipped_schema_that_matches_the_registry() -> None:
    text = "name: x\nfaults:\n  - when: {mesage: readout}\n    do: {action: delay}\n  - do: {action: flip, mask: 0}\n"
    with pytest.raises(ConfigError) as e:
        parse_scenario(text, "bad.yaml")
    assert str(e.value).splitlines() == [
        "bad.yaml:3: faults.0.when.mesage: unknown key; did you mean 'message'?",
        "bad.yaml:4: faults.0.do.seconds: is required",
        "bad.yaml:5: faults.1.do.mask: 0 is less than the minimum of 1",
    ]
    shipped = json.loads((Path(schema.__file__).parent / "schemas" / "scenario.schema.json").read_text())
    assert shipped == scenario_schema(), (
        "protocol/schemas/scenario.schema.json is stale: run tools/gen_docs.py"
    )


def test_built_in_scenarios_say_what_they_test_and_where_it_comes_from() -> None:
    for path in SCENARIOS:
        s = load_scenario(path)
        assert s.purpose.strip() and s.reference.strip(), path


@pytest.mark.parametrize(("text", "message"), BAD)
def test_bad_scenarios_name_the_file_the_line_and_the_problem(text: str, message: str) -> None:
    with pytest.raises(ConfigError) as e:
        parse_scenario(text, "bad.yaml")
    assert str(e.value).startswith("bad.yaml:") and message in str(e.value)


def test_nothing_starts_with_a_bad_scenario(tmp_path: Path) -> None:
    import subprocess
    import sys

    bad = tmp_path / "bad.yaml"
    bad.write_text(BAD[2][0])
    p = subprocess.run(
        [sys.executable, "-m", "me162.simulator.cli", "--pty", "--scenario", str(bad)],
        capture_output=True,
        text=True,
        timeout=30,
        check=False,
    )
    assert (
        p.returncode == 2
        and "bad.yaml:6: faults.0.do.action: must be one of answer," in p.stderr
        and not p.stdout
    )


# --- end to end: what a pyserial client on a pty sees --------------------------------------------

SPEED = 40.0


def client_session(path: str, latencies: list[float], link: Link) -> bytes:
    """Three readouts and a programming session, as a plain pyserial client; all it received
    (and, in ``latencies``, how long each answer took to start, in protocol seconds).  It
    switches speed once the meter's ``link`` has taken its ACK, and the ACK's wire time later."""
    got = bytearray()
    lat = latencies

    def wait_first(since: float, start: int) -> None:
        lat.append(round((time.monotonic() - since) * SPEED, 1) if len(got) > start else -1.0)

    try:
        port = serial.Serial(path, 300, bytesize=7, parity="E", timeout=0.005)
        for sessions, option in enumerate(("050", "050", "050", "051")):
            if port.baudrate != 300:
                port.baudrate = 300
            port.write(b"/?!\r\n")
            start, since = len(got), time.monotonic()
            deadline = time.monotonic() + 3.5 / SPEED * 2
            while b"\r\n" not in got[start:] and time.monotonic() < deadline:
                got += port.read(64)
                if len(got) > start and len(lat) < 1 + 2 * sessions:
                    wait_first(since, start)
            write_taken(link, port, OptionSelect(*option).to_bytes())
            time.sleep(6 * 10 / 300 / SPEED + 0.003)  # the ACK's wire time, then switch
            port.baudrate = 9600
            start, since = len(got), time.monotonic()
            end = time.monotonic() + 4.0 / SPEED * 2
            while time.monotonic() < end:
                got += port.read(256)
                if len(got) > start and len(lat) < 2 + 2 * sessions:
                    wait_first(since, start)
            if option == "051":
                for reg in ("1.8.0", "2.8.0", "1.8.0"):
                    port.write(Command.read(reg).to_bytes())
                    end = time.monotonic() + 0.8 / SPEED * 2
                    while time.monotonic() < end:
                        got += port.read(64)
                port.write(Command.break_().to_bytes())
                time.sleep(0.02)
            time.sleep(12.0 / SPEED)  # past a 300 Bd fallback readout
        port.close()
    except (serial.SerialException, OSError):
        got += b"<port gone>"
    return bytes(got)


@pytest.fixture(scope="module")
def clean() -> tuple[bytes, list[float]]:
    lat: list[float] = []
    with PtyMeter(MeterOptions(speed=SPEED, clock_start=datetime(2026, 6, 21, 12), moving=False)) as pm:
        return client_session(pm.path, lat, pm.served.link), lat


#: what a plain 7E1 client on a pty cannot see: a mode D meter's fault (another profile), and a
#: wrong parity bit (the pty has no parity; an 8N1 link shows it, LINE-14)
NOT_ON_A_PTY = {"corrupt-push", "parity-error-in-readout"}


@pytest.mark.timeout(120)
@pytest.mark.parametrize("path", [p for p in SCENARIOS if p.stem not in NOT_ON_A_PTY], ids=lambda p: p.stem)
def test_a_pyserial_client_on_a_pty_sees_each_fault(
    path: Path, clean: tuple[bytes, list[float]], tmp_path: Path
) -> None:
    opts = MeterOptions(
        speed=SPEED, clock_start=datetime(2026, 6, 21, 12), moving=False, scenarios=[path], record=tmp_path
    )
    lat: list[float] = []
    with PtyMeter(opts) as pm:
        got = client_session(pm.path, lat, pm.served.link)
        time.sleep(0.05)
        fired = [e for e in pm.served.link.events if e.kind == "fault"]
    assert fired, "the scenario never fired"
    if path.stem.startswith("delay-"):  # the same bytes, later: one answer starts that much later
        # at least half the scenario's delay later than without it: the client sees an answer
        # start in read steps of 5 ms (0.2 s at 40x), and a busy runner wakes it later still
        # (a 1.0 s delay measured 0.8 s); the amount itself is checked without a pty
        # (test_timing_and_speed_actions)
        (delay,) = [float(f.params["seconds"]) for f in load_scenario(path).faults if f.action == "delay"]
        assert any(a - b >= delay / 2 for a, b in zip(lat, clean[1], strict=False)), (lat, clean[1])
    else:
        assert got != clean[0]
    faults_in_captures = [
        e for f in tmp_path.glob("*.capture.jsonl") for e in read_capture(f).events if e.type == "fault"
    ]
    assert (
        faults_in_captures
        or any(e.kind == "fault" and "partial" in e.detail for e in fired)
        or "<port gone>" in got.decode("latin-1")
    )


def test_bcc_helper_sanity() -> None:
    assert xor7(READOUT[1:-1]) == READOUT[-1]
    assert Trigger().count == 1


def test_docs_list_every_scenario() -> None:
    doc = (Path(__file__).resolve().parent.parent / "docs" / "scenarios.md").read_text()
    for path in SCENARIOS:
        assert f"| `{path.stem}` |" in doc
    for action in ACTIONS:
        assert f"| `{action}` |" in doc


def test_chaos_options_are_checked() -> None:
    import subprocess
    import sys

    p = subprocess.run(
        [sys.executable, "-m", "me162.simulator.cli", "--pty", "--chaos", "1", "--rate", "2"],
        capture_output=True, text=True, timeout=30, check=False,
    )  # fmt: skip
    assert p.returncode == 2 and "argument --rate: must be at least 0 and at most 1" in p.stderr


def test_a_sign_on_during_a_readout_that_never_switched_is_not_heard_and_nothing_overlaps() -> None:
    # The meter was told 9600 Bd but a fault keeps its readout at 300 Bd (6.6 s): the meter's
    # state machine thinks it finished long before the line is free.  A reader that gives up
    # and signs on again at 300 Bd inside that readout must not make the meter transmit twice
    # at once (that once hung the line model for ever).
    b = Bench(scenarios=[str(p) for p in SCENARIOS if p.stem == "no-switch"])
    assert b.sign_on().endswith(b"\r\n")
    end = b.send(b"\x06050\r\n", gap=0.3)
    b.baud(9600, at=end)
    b.wait(0.8)
    b.baud(300)
    b.send(b"/?!\r\n")
    b.wait(12.0)
    sent = [(e.t, e.t + len(e.data) * 10 / (e.baud or 300)) for e in b.link.events
            if e.kind == "data" and e.dir == "m2r"]  # fmt: skip
    assert all(a_end <= b_start + 1e-9 for (_, a_end), (b_start, _) in itertools.pairwise(sent))
    assert any(e.did is Did.IGNORED and "while transmitting" in e.detail for e in b.link.events)
