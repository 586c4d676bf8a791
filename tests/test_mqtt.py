"""The publishing mode against a real Mosquitto: virtual ME162 with moving registers → me162-read
--mqtt → Mosquitto → a subscriber that checks what arrives against the meter's own record.

Mosquitto is the Debian package that `make test-deps` installs; a missing broker fails these
tests, it never skips them.  Everything listens on 127.0.0.1 and is stopped at the end.
"""

from __future__ import annotations

import json
import signal
import subprocess
import sys
import threading
import time
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import paho.mqtt.client as mqtt
import pytest
from paho.mqtt.enums import CallbackAPIVersion

from me162.protocol.datablock import parse_data_block
from me162.reader.publish import Broker, legacy_payload, number
from me162.simulator.pty_transport import PtyMeter
from me162.simulator.session import MeterOptions
from tests.mqtthelp import Mosquitto, free_port

pytestmark = pytest.mark.timeout(180)
SPEED = 10.0


@dataclass
class Subscriber:
    """Collects every message; keeps its session (QoS 1) across a broker restart."""

    port: int
    messages: list[tuple[str, bytes, bool]] = field(default_factory=list)
    lock: threading.Lock = field(default_factory=threading.Lock)

    def __post_init__(self) -> None:
        self.client = mqtt.Client(
            CallbackAPIVersion.VERSION2, client_id=f"test-sub-{self.port}", clean_session=False
        )
        self.client.on_message = self._on_message
        self.client.on_connect = lambda c, *a: c.subscribe("#", qos=1)
        self.client.reconnect_delay_set(1, 1)
        self.client.connect("127.0.0.1", self.port)
        self.client.loop_start()

    def _on_message(self, client: Any, userdata: Any, msg: Any) -> None:
        with self.lock:
            self.messages.append((msg.topic, bytes(msg.payload), bool(msg.retain)))

    def on(self, topic: str) -> list[bytes]:
        with self.lock:
            return [p for t, p, _ in self.messages if t == topic]

    def wait_for(self, topic: str, count: int = 1, timeout: float = 30.0) -> list[bytes]:
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            got = self.on(topic)
            if len(got) >= count:
                return got
            time.sleep(0.05)
        raise AssertionError(f"{len(self.on(topic))} message(s) on {topic}, expected {count}")

    def close(self) -> None:
        self.client.loop_stop()
        self.client.disconnect()


@pytest.fixture
def broker(tmp_path: Path) -> Iterator[Mosquitto]:
    b = Mosquitto(tmp_path)
    b.start()
    yield b
    b.stop()


@pytest.fixture
def meter() -> Iterator[PtyMeter]:
    with PtyMeter(MeterOptions(speed=SPEED, moving=True)) as pm:
        yield pm


def publisher(port: str, url: str, *extra: str) -> subprocess.Popen[str]:
    return subprocess.Popen(
        [sys.executable, "-m", "me162.reader.cli", port, "--speed", str(SPEED), "--mqtt", url, "--meter-id", "m1",
         *extra],
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
    )  # fmt: skip


def sent_values(meter: PtyMeter) -> dict[str, set[str]]:
    """Every value the virtual meter sent, per register (its own record, before faults)."""
    out: dict[str, set[str]] = {}
    for block in meter.served.meter.readouts:  # type: ignore[attr-defined]
        for _, ds in parse_data_block(block).data_sets:
            if ds.address and ds.values:
                out.setdefault(ds.address, set()).add(ds.values[0].value)
    return out


def test_readings_discovery_availability_and_the_original_payload(broker: Mosquitto, meter: PtyMeter) -> None:
    sub = Subscriber(broker.port)
    p = publisher(meter.path, broker.url, "--loop", "0.2", "--count", "3", "--legacy-topic", "/halixon")
    _, err = p.communicate(timeout=120)
    assert p.returncode == 0, err
    states = [json.loads(m) for m in sub.wait_for("me162/m1/state", 3)]
    sent = sent_values(meter)
    for state in states:
        assert state["virtual"] is False and state["serial"] == "28342193"
        assert state["identification"] == "/ISK5ME162-0033" and state["manufacturer"] == "Iskraemeco"
        for address in ("1.8.0", "2.8.0", "1.8.2"):
            reg = state["registers"][address]
            assert reg["unit"] == "kWh" and reg["text"] in sent[address]
            assert reg["value"] == number(reg["text"])
    assert len({s["time"] for s in states}) == 3
    (config,) = [json.loads(m) for m in sub.wait_for("homeassistant/device/me162_28342193/config")]
    assert config["device"]["identifiers"] == ["me162_28342193"]
    assert (
        config["device"]["manufacturer"] == "Iskraemeco" and config["device"]["serial_number"] == "28342193"
    )
    energy = {k: c for k, c in config["components"].items() if c.get("device_class") == "energy"}
    assert {c["name"] for c in energy.values()} >= {"Import total (1.8.0)", "Export total (2.8.0)"}
    for c in energy.values():
        assert c["state_class"] == "total_increasing" and c["unit_of_measurement"] == "kWh"
        assert c["unique_id"].startswith("me162_") and c["default_entity_id"].startswith("sensor.")
    assert {c.get("entity_category") for c in config["components"].values()} == {None, "diagnostic"}
    assert sub.wait_for("me162/m1/availability", 2)[-1] == b"offline"  # online, then a clean stop
    assert b"online" in sub.on("me162/m1/availability")
    legacy = [json.loads(m) for m in sub.wait_for("/halixon", 3)]
    assert set(legacy[0]) == {
        "uart_channel_number", "meter_serial_number", "meter_import", "meter_export", "timestamp", "timestamp_msec"
    }  # fmt: skip
    assert legacy[-1]["meter_import"] == states[-1]["registers"]["1.8.0"]["value"]
    assert legacy[-1]["meter_serial_number"] == "28342193" and legacy[-1]["uart_channel_number"] == 1
    sub.close()


def test_the_broker_publishes_the_last_will_when_the_publisher_is_killed(
    broker: Mosquitto, meter: PtyMeter
) -> None:
    sub = Subscriber(broker.port)
    p = publisher(meter.path, broker.url, "--loop", "0.5")
    sub.wait_for("me162/m1/state", 1)
    assert sub.on("me162/m1/availability")[-1] == b"online"
    p.send_signal(signal.SIGKILL)
    p.wait(timeout=10)
    deadline = time.monotonic() + 30
    while sub.on("me162/m1/availability")[-1] != b"offline" and time.monotonic() < deadline:
        time.sleep(0.05)
    assert sub.on("me162/m1/availability")[-1] == b"offline"
    sub.close()


def test_a_broker_restart_loses_no_reading(broker: Mosquitto, meter: PtyMeter) -> None:
    sub = Subscriber(broker.port)
    p = publisher(meter.path, broker.url, "--loop", "0.3", "--count", "14")
    sub.wait_for("me162/m1/state", 2)
    broker.stop()
    time.sleep(1.5)  # readings go on while the broker is down, and wait in the queue
    broker.start()
    _, err = p.communicate(timeout=120)
    assert p.returncode == 0, err
    states = [json.loads(m) for m in sub.wait_for("me162/m1/state", 14, timeout=60)]
    times = [s["time"] for s in states]
    assert len(set(times)) == 14 and times == sorted(times), times  # every reading, in order
    sub.close()


def test_a_failed_reading_never_overwrites_the_values(broker: Mosquitto, tmp_path: Path) -> None:
    silent = tmp_path / "silent.yaml"
    silent.write_text(
        "name: s\npurpose: p\nreference: r\nfaults:\n"
        "  - when: {message: identification, nth: 2}\n    do: {action: silent}\n"
    )
    with PtyMeter(MeterOptions(speed=SPEED, moving=True, scenarios=[silent])) as pm:
        sub = Subscriber(broker.port)
        p = publisher(pm.path, broker.url, "--loop", "0.2", "--count", "2", "--retries", "0")
        p.communicate(timeout=120)
        states = sub.wait_for("me162/m1/state", 1)
        (diag,) = [json.loads(m) for m in sub.wait_for("me162/m1/diagnostics", 1)]
        time.sleep(0.5)
        assert len(sub.on("me162/m1/state")) == len(states) == 1  # the failure did not publish a state
        assert diag["failure"] == "no identification" and diag["hint"]
        sub.close()
        # A new subscriber gets the last good values retained, and the failure beside them.
        late = Subscriber(broker.port)
        assert json.loads(late.wait_for("me162/m1/state")[0])["registers"]["1.8.0"]["unit"] == "kWh"
        late.close()


def test_the_password_comes_from_the_environment_or_a_file_never_the_url(tmp_path: Path) -> None:
    with pytest.raises(Exception, match="ME162_MQTT_PASSWORD"):
        Broker.parse("mqtt://user:secret@127.0.0.1:1883")
    p = subprocess.run(
        [sys.executable, "-m", "me162.reader.cli", "me162://", "--mqtt", "mqtt://u:secret@127.0.0.1"],
        capture_output=True,
        text=True,
        timeout=30,
        check=False,
    )
    assert p.returncode == 2 and "secret" not in p.stderr and len(p.stderr.strip().splitlines()) == 1


def test_the_original_payload_shape() -> None:
    from datetime import UTC, datetime

    when = datetime(2023, 7, 20, 7, 8, 5, 345000, tzinfo=UTC)
    state = {"serial": "12345678", "registers": {"1.8.0": {"value": 1362.414}, "2.8.0": {"value": 1031.432}}}
    assert legacy_payload(state, 1, when) == {
        "uart_channel_number": 1,
        "meter_serial_number": "12345678",
        "meter_import": 1362.414,
        "meter_export": 1031.432,
        "timestamp": 1689836885,
        "timestamp_msec": 345,
    }


def test_sigterm_stops_cleanly_with_offline(broker: Mosquitto, meter: PtyMeter) -> None:
    sub = Subscriber(broker.port)
    p = publisher(meter.path, broker.url, "--loop", "0.5")
    sub.wait_for("me162/m1/state", 1)
    p.send_signal(signal.SIGTERM)
    _, err = p.communicate(timeout=60)
    assert p.returncode == 130 and "stopped by SIGTERM" in err
    assert sub.wait_for("me162/m1/availability", 2)[-1] == b"offline"
    sub.close()


def test_discovery_is_sent_again_when_home_assistant_comes_online(broker: Mosquitto, meter: PtyMeter) -> None:
    sub = Subscriber(broker.port)
    p = publisher(meter.path, broker.url, "--loop", "0.5")
    try:
        topic = "homeassistant/device/me162_28342193/config"
        sub.wait_for(topic, 1)
        sub.client.publish("homeassistant/status", "online", qos=1)
        sub.wait_for(topic, 2)
    finally:
        p.send_signal(signal.SIGTERM)
        p.communicate(timeout=60)
        sub.close()


def test_per_component_discovery_for_older_home_assistant(broker: Mosquitto, meter: PtyMeter) -> None:
    sub = Subscriber(broker.port)
    p = publisher(meter.path, broker.url, "--loop", "0.2", "--count", "1", "--discovery", "components")
    p.communicate(timeout=60)
    config = json.loads(sub.wait_for("homeassistant/sensor/me162_28342193/import_total/config")[0])
    assert config["device_class"] == "energy" and config["state_class"] == "total_increasing"
    assert config["device"]["identifiers"] == ["me162_28342193"] and config["state_topic"] == "me162/m1/state"
    assert "p" not in config
    sub.close()


def test_a_full_queue_drops_the_oldest_reading_and_counts_it() -> None:
    from me162.reader.publish import Broker, Publisher, PublishOptions
    from me162.reader.session import SessionResult

    pub = Publisher(
        PublishOptions(Broker.parse(f"mqtt://127.0.0.1:{free_port()}"), queue_size=3, discovery="none")
    )
    for _ in range(5):  # never connected: everything waits in the queue
        pub.reading(SessionResult(None))
    assert pub.stats.dropped == 2
    assert len([m for m in pub._queue if m.topic == "me162/meter/state"]) == 3
