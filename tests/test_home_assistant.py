"""End to end with a real Home Assistant core: virtual ME162 → me162-read --mqtt → Mosquitto →
Home Assistant's MQTT discovery → its REST API.

`make ha-test` runs this (and `make test` runs `make ha-test`): `tools/ha_env.py` installs Home
Assistant from PyPI into a cached virtualenv on a Python it supports, with the paho-mqtt and
frontend its own manifests pin, and Home Assistant starts with --skip-pip.  Onboarding and the
MQTT config entry go through its HTTP API, as a person's browser would.  Everything listens on
127.0.0.1; Home Assistant, the broker, the simulator and the publisher are stopped at the end.
"""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time
import urllib.error
import urllib.parse
import urllib.request
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import pytest

from me162.simulator.pty_transport import PtyMeter
from me162.simulator.session import MeterOptions
from tests.mqtthelp import Mosquitto, free_port

pytestmark = [pytest.mark.homeassistant, pytest.mark.timeout(600)]
ROOT = Path(__file__).resolve().parent.parent
SPEED = 10.0


def ha_venv() -> Path:
    given = os.environ.get("ME162_HA_VENV")
    if given:
        return Path(given)
    out = subprocess.run(
        [sys.executable, str(ROOT / "tools" / "ha_env.py")], capture_output=True, text=True, check=False
    )
    assert out.returncode == 0, f"Home Assistant could not be installed: {out.stderr[-2000:]}"
    return Path(out.stdout.strip().splitlines()[-1])


class HomeAssistant:
    def __init__(self, venv: Path, folder: Path) -> None:
        self.port = free_port()
        self.base = f"http://127.0.0.1:{self.port}"
        self.folder = folder
        (folder / "configuration.yaml").write_text(
            "homeassistant:\n  name: me162 test\n  latitude: 51.5\n  longitude: 0\n  elevation: 0\n"
            "  unit_system: metric\n  time_zone: UTC\n  currency: GBP\n  country: GB\n"
            f"http:\n  server_host: 127.0.0.1\n  server_port: {self.port}\napi:\nconfig:\nonboarding:\n"
        )
        self.log = folder / "home-assistant.log"
        self.proc = subprocess.Popen(
            [str(venv / "bin" / "hass"), "-c", str(folder), "--skip-pip", "--log-file", str(self.log)],
            stdout=subprocess.DEVNULL,
            stderr=subprocess.DEVNULL,
        )
        self.token = ""
        self.wait(lambda: self.call("GET", "/api/onboarding") is not None, 180, "Home Assistant to start")

    def call(self, method: str, path: str, body: Any = None, *, form: bool = False) -> Any:
        headers = {}
        data = None
        if body is not None:
            data = urllib.parse.urlencode(body).encode() if form else json.dumps(body).encode()
            headers["Content-Type"] = "application/x-www-form-urlencoded" if form else "application/json"
        if self.token:
            headers["Authorization"] = f"Bearer {self.token}"
        req = urllib.request.Request(self.base + path, data=data, headers=headers, method=method)
        try:
            with urllib.request.urlopen(req, timeout=30) as r:
                return json.loads(r.read() or b"null")
        except (urllib.error.URLError, ConnectionError):
            return None

    def wait(self, done: Callable[[], bool], seconds: float, what: str) -> None:
        deadline = time.monotonic() + seconds
        while time.monotonic() < deadline:
            assert self.proc.poll() is None, f"Home Assistant exited: {self.log.read_text()[-3000:]}"
            if done():
                return
            time.sleep(0.5)
        raise AssertionError(f"waited {seconds} s for {what}")

    def onboard(self) -> None:
        client = self.base + "/"
        user = {
            "client_id": client,
            "name": "Test",
            "username": "test",
            "password": "pw-1234-test",
            "language": "en",
        }
        code = self.call("POST", "/api/onboarding/users", user)["auth_code"]
        grant = {"grant_type": "authorization_code", "code": code, "client_id": client}
        self.token = self.call("POST", "/auth/token", grant, form=True)["access_token"]

    def add_mqtt(self, port: int) -> None:
        flow = self.call("POST", "/api/config/config_entries/flow", {"handler": "mqtt"})
        done = self.call(
            "POST",
            f"/api/config/config_entries/flow/{flow['flow_id']}",
            {"broker": "127.0.0.1", "port": port},
        )
        assert done["type"] == "create_entry" and done["result"]["state"] == "loaded", done

    def states(self) -> dict[str, dict[str, Any]]:
        return {s["entity_id"]: s for s in self.call("GET", "/api/states") or []}

    def template(self, text: str) -> str:
        req = urllib.request.Request(
            self.base + "/api/template",
            data=json.dumps({"template": text}).encode(),
            headers={"Authorization": f"Bearer {self.token}", "Content-Type": "application/json"},
            method="POST",
        )
        with urllib.request.urlopen(req, timeout=30) as r:
            return str(r.read().decode())

    def stop(self) -> None:
        self.proc.terminate()
        try:
            self.proc.wait(timeout=60)
        except subprocess.TimeoutExpired:
            self.proc.kill()
            self.proc.wait()


@pytest.fixture
def home_assistant(tmp_path: Path) -> Iterator[HomeAssistant]:
    folder = tmp_path / "ha"
    folder.mkdir()
    ha = HomeAssistant(ha_venv(), folder)
    yield ha
    ha.stop()


def publisher(port: str, broker: Mosquitto) -> subprocess.Popen[bytes]:
    return subprocess.Popen(
        [sys.executable, "-m", "me162.reader.cli", port, "--speed", str(SPEED), "--loop", "1", "--mqtt", broker.url,
         "--meter-id", "house"],
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
    )  # fmt: skip


IMPORT = "sensor.me162_28342193_import_total"
EXPORT = "sensor.me162_28342193_export_total"


def test_the_me162_appears_on_home_assistant_with_energy_sensors_that_follow_the_publisher(
    home_assistant: HomeAssistant, tmp_path: Path
) -> None:
    ha = home_assistant
    broker = Mosquitto(tmp_path)
    broker.start()
    try:
        ha.onboard()
        ha.add_mqtt(broker.port)
        with PtyMeter(MeterOptions(speed=SPEED, moving=True)) as meter:
            pub = publisher(meter.path, broker)
            ha.wait(lambda: {IMPORT, EXPORT} <= set(ha.states()), 90, "the discovered sensors")
            ha.wait(lambda: ha.states()[IMPORT]["state"] not in ("unknown", "unavailable"), 60, "values")
            states = ha.states()
            sent: dict[str, set[float]] = {}
            from me162.protocol.datablock import parse_data_block

            for block in meter.served.meter.readouts:  # type: ignore[attr-defined]
                for _, ds in parse_data_block(block).data_sets:
                    if ds.address and ds.values:
                        sent.setdefault(ds.address, set()).add(float(ds.values[0].value))
            for entity, address in ((IMPORT, "1.8.0"), (EXPORT, "2.8.0")):
                s = states[entity]
                assert float(s["state"]) in sent[address], (entity, s["state"], sent[address])
                a = s["attributes"]
                assert a["unit_of_measurement"] == "kWh"
                assert a["device_class"] == "energy" and a["state_class"] == "total_increasing"
            # One device for both, named by the identification's manufacturer and the serial.
            devices = ha.template(f"{{{{ device_id('{IMPORT}') }}}}|{{{{ device_id('{EXPORT}') }}}}")
            first, second = devices.split("|")
            assert first and first == second
            assert ha.template(f"{{{{ device_attr('{first}', 'manufacturer') }}}}") == "Iskraemeco"
            assert ha.template(f"{{{{ device_attr('{first}', 'serial_number') }}}}") == "28342193"
            # The publisher dies: the broker's last will makes the sensors unavailable ...
            pub.send_signal(signal.SIGKILL)
            pub.wait(timeout=10)
            ha.wait(
                lambda: ha.states()[IMPORT]["state"] == "unavailable", 60, "the sensors to go unavailable"
            )
            # ... and they come back with the publisher.
            pub = publisher(meter.path, broker)
            ha.wait(
                lambda: ha.states()[IMPORT]["state"] not in ("unknown", "unavailable"), 60, "the sensors back"
            )
            pub.send_signal(signal.SIGTERM)
            assert pub.wait(timeout=30) == 130
    finally:
        broker.stop()
