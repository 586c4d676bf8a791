"""Publishing readings to MQTT, with Home Assistant discovery: the ME162 on the energy dashboard.

``me162-read PORT --loop 60 --mqtt mqtt://broker:1883`` reads the meter every 60 s with the
reader's own loop and hands every reading to a :class:`Publisher`:

- ``<prefix>/<meter id>/state`` (retained, QoS 1): one JSON document per reading — every
  register as a number with its unit and its text, the identification, the serial, the time,
  and whether the meter is virtual (docs/home-assistant.md has the schema);
- ``<prefix>/<meter id>/diagnostics`` (retained): a failed reading never overwrites the state;
  it goes here with its failure class and hint;
- ``<prefix>/<meter id>/availability``: ``online`` when connected, ``offline`` as the last will
  (the broker publishes it when the process dies) and on a clean stop;
- Home Assistant discovery: one device per meter, an energy sensor for every 1.8.x and 2.8.x
  register and diagnostic sensors; device-based (``<discovery prefix>/device/<id>/config``) or
  one config per entity for older Home Assistant, sent again whenever Home Assistant's status
  topic says ``online``;
- optionally the original ME162 project's payload (``uart_channel_number``, ``meter_import``…)
  on a topic of the user's choice, so a hand-written ``configuration.yaml`` keeps working.

Readings taken while the broker cannot be reached wait in a bounded queue (the oldest is
dropped, and counted) and go out in order, QoS 1, once it can; a message leaves the queue only
when the broker has acknowledged it.  The password never appears in a log line or an error.
"""

from __future__ import annotations

import json
import logging
import re
import ssl
import threading
import time
from collections import deque
from dataclasses import dataclass, field
from datetime import UTC, datetime
from decimal import Decimal, InvalidOperation
from pathlib import Path
from typing import Any
from urllib.parse import unquote, urlsplit

from me162.protocol.datablock import Obis
from me162.protocol.errors import ConfigError
from me162.protocol.version import __version__
from me162.reader.session import SessionResult

log = logging.getLogger(__name__)

#: FLAG Association manufacturer ids of meters that have an optical port, for the device name
MANUFACTURERS = {
    "ISK": "Iskraemeco",
    "LGZ": "Landis+Gyr",
    "EMH": "EMH metering",
    "EBZ": "eBZ",
    "ESY": "EasyMeter",
    "KAM": "Kamstrup",
    "ELS": "Elster",
    "HAG": "Hager",
    "LOG": "Logarex",
    "ITF": "Itron",
    "APA": "Apator",
    "MKL": "Makel",
    "KFM": "Köhler",
}


@dataclass(frozen=True)
class Broker:
    """Where to publish: ``mqtt://[user@]host[:1883]`` or ``mqtts://[user@]host[:8883]``."""

    host: str
    port: int
    tls: bool
    username: str | None = None

    @classmethod
    def parse(cls, url: str) -> Broker:
        parts = urlsplit(url)
        if parts.scheme not in ("mqtt", "mqtts"):
            raise ConfigError(f"broker {url!r}: use mqtt://host:1883 or mqtts://host:8883")
        if parts.password is not None:
            raise ConfigError(
                "broker URL: a password in the URL would show in the process list; "
                "give it in ME162_MQTT_PASSWORD or --mqtt-password-file"
            )
        if not parts.hostname:
            raise ConfigError(f"broker {url!r}: no host")
        try:
            port = parts.port or (8883 if parts.scheme == "mqtts" else 1883)
        except ValueError:
            raise ConfigError(f"broker {url!r}: the port must be a number from 1 to 65535") from None
        if parts.path not in ("", "/") or parts.query:
            raise ConfigError(f"broker {url!r}: a broker URL has no path or options")
        return cls(
            parts.hostname, port, parts.scheme == "mqtts", unquote(parts.username) if parts.username else None
        )

    def __str__(self) -> str:
        user = f"{self.username}@" if self.username else ""
        return f"{'mqtts' if self.tls else 'mqtt'}://{user}{self.host}:{self.port}"


@dataclass
class PublishOptions:
    broker: Broker
    password: str | None = None  #: from ME162_MQTT_PASSWORD or a file; never logged
    ca: Path | None = None
    cert: Path | None = None
    key: Path | None = None
    prefix: str = "me162"
    meter_id: str = "meter"
    discovery: str = "device"  #: "device", "components" or "none"
    discovery_prefix: str = "homeassistant"
    legacy_topic: str | None = None  #: the original project's payload goes here too
    uart_channel: int = 1
    queue_size: int = 1000
    client_id: str = ""
    keepalive: int = 60

    @property
    def base(self) -> str:
        return f"{self.prefix}/{self.meter_id}"

    @property
    def state_topic(self) -> str:
        return f"{self.base}/state"

    @property
    def diagnostics_topic(self) -> str:
        return f"{self.base}/diagnostics"

    @property
    def availability_topic(self) -> str:
        return f"{self.base}/availability"


_TOPIC_PART = re.compile(r"[^/#+\s]+")


def check_topic_part(value: str, what: str) -> str:
    if not _TOPIC_PART.fullmatch(value):
        raise ConfigError(f"{what} {value!r}: no '/', '#', '+' or spaces")
    return value


def read_password(env: dict[str, str], file: Path | None) -> str | None:
    """The broker password from a file (first line) or ``ME162_MQTT_PASSWORD``."""
    if file is not None:
        try:
            return file.read_text(encoding="utf-8").splitlines()[0] if file.stat().st_size else ""
        except (OSError, IndexError) as e:
            raise ConfigError(f"--mqtt-password-file {file}: {getattr(e, 'strerror', None) or e}") from None
    return env.get("ME162_MQTT_PASSWORD")


# --- payloads -------------------------------------------------------------------------------------


def number(text: str | None) -> int | float | None:
    """A register value as a JSON number (``0033402.264`` → 33402.264), or None."""
    if text is None:
        return None
    try:
        d = Decimal(text.strip())
    except InvalidOperation:
        return None
    if not d.is_finite():
        return None
    return int(d) if d == d.to_integral_value() and "." not in text else float(d)


def registers_of(res: SessionResult) -> dict[str, dict[str, Any]]:
    """Every register of a reading: ``{"1.8.0": {"value": 33402.264, "unit": "kWh", "text": ...}}``."""
    out: dict[str, dict[str, Any]] = {}
    if res.readout is not None:
        for _, ds in res.readout.data.data_sets:
            if not ds.address or not ds.values:
                continue
            v = ds.values[0]
            out[ds.address] = {"value": number(v.value), "unit": v.unit, "text": v.value}
    for reg, r in res.registers.items():
        if r.get("error"):
            continue
        out[reg] = {"value": number(r.get("value")), "unit": r.get("unit"), "text": r.get("value")}
    return out


@dataclass(frozen=True)
class MeterInfo:
    """Who the meter is, from its identification and serial register."""

    identification: str
    manufacturer_id: str
    model: str
    serial: str

    @property
    def manufacturer(self) -> str:
        return MANUFACTURERS.get(self.manufacturer_id.upper(), self.manufacturer_id)

    @property
    def node_id(self) -> str:
        return re.sub(r"[^a-z0-9_]", "_", f"{self.model}_{self.serial}".lower())

    @classmethod
    def of(cls, res: SessionResult, registers: dict[str, dict[str, Any]]) -> MeterInfo:
        ident = res.identification
        raw = ident.raw if ident is not None else ""
        model = ident.ident.split("-", 1)[0] if ident is not None and ident.ident else "meter"
        serial = next(
            (
                str(registers[a]["text"]).strip()
                for a in ("C.1.0", "0.0.0", "96.1.0", "0.0.1")
                if a in registers
            ),
            "",
        )
        if not serial:
            serial = next(
                (
                    str(r["text"]).strip()
                    for a, r in registers.items()
                    if (o := Obis.parse(a)) and (o.c, o.d) == (96, 1)
                ),
                "unknown",
            )
        return cls(raw, ident.manufacturer if ident is not None else "", model, serial)


def reading_payload(res: SessionResult, *, virtual: bool, when: datetime) -> dict[str, Any]:
    registers = registers_of(res)
    meter = MeterInfo.of(res, registers)
    return {
        "time": when.isoformat(timespec="milliseconds"),
        "virtual": virtual,
        "identification": meter.identification,
        "manufacturer": meter.manufacturer,
        "model": meter.model,
        "serial": meter.serial,
        "registers": registers,
        "session": {"mode": res.mode, "speeds": res.speeds, "retries": res.retries},
    }


def failure_payload(failure: str, message: str, hint: str, *, when: datetime) -> dict[str, Any]:
    return {"time": when.isoformat(timespec="seconds"), "failure": failure, "message": message, "hint": hint}


def legacy_payload(state: dict[str, Any], uart_channel: int, when: datetime) -> dict[str, Any]:
    """The original ME162 project's payload (uart_channel_number, meter_import, ...)."""
    regs = state["registers"]

    def kwh(address: str) -> float | int | None:
        r = regs.get(address)
        return None if r is None else r["value"]

    return {
        "uart_channel_number": uart_channel,
        "meter_serial_number": state["serial"],
        "meter_import": kwh("1.8.0"),
        "meter_export": kwh("2.8.0"),
        "timestamp": int(when.timestamp()),
        "timestamp_msec": when.microsecond // 1000,
    }


def _energy_name(address: str) -> str | None:
    o = Obis.parse(address)
    if o is None or o.d != 8 or o.c not in (1, 2) or o.billing_period is not None:
        return None
    what = "Import" if o.c == 1 else "Export"
    return f"{what} {'total' if not o.e else f'tariff {o.e}'}"


def discovery_components(
    state: dict[str, Any], opts: PublishOptions, meter: MeterInfo
) -> dict[str, dict[str, Any]]:
    """The Home Assistant entities of one meter, keyed by object id."""
    comps: dict[str, dict[str, Any]] = {}
    for address, reg in state["registers"].items():
        name = _energy_name(address)
        if name is None or reg["value"] is None:
            continue
        key = re.sub(r"[^a-z0-9]+", "_", f"{name}".lower()).strip("_")
        obj = f"{meter.node_id}_{key}"
        comps[key] = {
            "p": "sensor",
            "name": f"{name} ({address})",
            "unique_id": f"{meter.node_id}_{re.sub(r'[^0-9a-z]', '_', address.lower())}",
            "default_entity_id": f"sensor.{obj}",
            "object_id": obj,
            "device_class": "energy",
            "state_class": "total_increasing",
            "unit_of_measurement": "kWh",
            "suggested_display_precision": 3,
            "state_topic": opts.state_topic,
            "value_template": "{{ value_json.registers['" + address + "'].value }}",
        }
    comps["last_reading"] = {
        "p": "sensor",
        "name": "Last reading",
        "unique_id": f"{meter.node_id}_last_reading",
        "default_entity_id": f"sensor.{meter.node_id}_last_reading",
        "object_id": f"{meter.node_id}_last_reading",
        "device_class": "timestamp",
        "entity_category": "diagnostic",
        "state_topic": opts.state_topic,
        "value_template": "{{ value_json.time }}",
    }
    comps["last_error"] = {
        "p": "sensor",
        "name": "Last error",
        "unique_id": f"{meter.node_id}_last_error",
        "default_entity_id": f"sensor.{meter.node_id}_last_error",
        "object_id": f"{meter.node_id}_last_error",
        "entity_category": "diagnostic",
        "state_topic": opts.diagnostics_topic,
        "value_template": "{{ value_json.failure }}",
        "json_attributes_topic": opts.diagnostics_topic,
    }
    return comps


def discovery_messages(state: dict[str, Any], opts: PublishOptions) -> list[tuple[str, dict[str, Any]]]:
    """(topic, retained config) for Home Assistant MQTT discovery."""
    meter = MeterInfo(state["identification"], state["identification"][1:4], state["model"], state["serial"])
    device = {
        "identifiers": [meter.node_id],
        "name": f"{meter.manufacturer} {meter.model} {meter.serial}",
        "manufacturer": meter.manufacturer,
        "model": meter.model,
        "serial_number": meter.serial,
    }
    origin = {"name": "me162", "sw_version": __version__}
    availability = {"topic": opts.availability_topic}
    comps = discovery_components(state, opts, meter)
    if opts.discovery == "device":
        payload = {
            "device": device,
            "origin": origin,
            "availability": [availability],
            "qos": 1,
            "components": comps,
        }
        return [(f"{opts.discovery_prefix}/device/{meter.node_id}/config", payload)]
    out = []
    for key, comp in comps.items():
        config = {k: v for k, v in comp.items() if k != "p"}
        config.update(device=device, origin=origin, availability=[availability], qos=1)
        out.append((f"{opts.discovery_prefix}/{comp['p']}/{meter.node_id}/{key}/config", config))
    return out


# --- the client ---------------------------------------------------------------------------------------


@dataclass
class _Message:
    topic: str
    payload: str
    retain: bool
    mid: int | None = None


@dataclass
class PublisherStats:
    published: int = 0
    dropped: int = 0  #: oldest readings dropped because the queue was full
    connects: int = 0
    errors: list[str] = field(default_factory=list)


class Publisher:
    """Publishes readings to one broker with paho-mqtt; thread-safe, reconnects by itself.

    Threads: the caller hands readings over (:meth:`reading`, :meth:`failure`), paho's network
    thread runs the callbacks, and a pump thread of this class does all the publishing.  The
    callbacks never wait for this class's lock — paho calls some of them while holding its own
    message lock, which ``publish`` needs — they only leave a note and wake the pump.
    """

    def __init__(self, opts: PublishOptions, *, virtual: bool = False) -> None:
        import paho.mqtt.client as mqtt
        from paho.mqtt.enums import CallbackAPIVersion

        self.opts = opts
        self.virtual = virtual
        self.stats = PublisherStats()
        self._lock = threading.RLock()  #: the queue, in-flight messages, the last state
        self._queue: deque[_Message] = deque()
        self._inflight: dict[int, _Message] = {}
        self._acks: deque[int] = deque()  #: acknowledged message ids, from the network thread
        self._reconnected = False  #: set by the network thread: resend what was not acknowledged
        self._rediscover = False  #: set by the network thread: Home Assistant came online
        self._connected = threading.Event()
        self._wake = threading.Event()
        self._stopping = threading.Event()
        self._last_state: dict[str, Any] | None = None
        self._pump_thread = threading.Thread(target=self._run, name="me162-mqtt-pump", daemon=True)
        client_id = opts.client_id or f"me162-{opts.meter_id}"
        self.client = mqtt.Client(
            CallbackAPIVersion.VERSION2, client_id=client_id, clean_session=True, protocol=mqtt.MQTTv311
        )
        if opts.broker.username is not None:
            self.client.username_pw_set(opts.broker.username, opts.password)
        if opts.broker.tls:
            ctx = ssl.create_default_context(cafile=str(opts.ca) if opts.ca else None)
            if opts.cert is not None:
                ctx.load_cert_chain(str(opts.cert), str(opts.key) if opts.key else None)
            self.client.tls_set_context(ctx)
        self.client.will_set(opts.availability_topic, "offline", qos=1, retain=True)
        self.client.reconnect_delay_set(min_delay=1, max_delay=60)
        self.client.on_connect = self._on_connect
        self.client.on_disconnect = self._on_disconnect
        self.client.on_publish = self._on_publish
        self.client.on_message = self._on_message

    # --- lifecycle ------------------------------------------------------------------------------------

    def start(self) -> None:
        """Connect in the background (the broker may be down now: readings queue meanwhile)."""
        self.client.connect_async(self.opts.broker.host, self.opts.broker.port, keepalive=self.opts.keepalive)
        self.client.loop_start()
        self._pump_thread.start()

    def wait_connected(self, timeout: float) -> bool:
        return self._connected.wait(timeout)

    def close(self, timeout: float = 5.0) -> None:
        """``offline``, then what is queued, then disconnect (a clean stop: no last will)."""
        with self._lock:
            self._enqueue(self.opts.availability_topic, "offline", retain=True, counted=False)
        deadline = time.monotonic() + timeout
        left = 0
        while time.monotonic() < deadline:
            with self._lock:
                left = len(self._queue) + len(self._inflight)
            if not left:
                break
            self._wake.set()
            time.sleep(0.02)
        if left:
            log.warning("stopping with %d message(s) not acknowledged by %s", left, self.opts.broker)
        self._stopping.set()
        self._wake.set()
        if self._pump_thread.is_alive():
            self._pump_thread.join(timeout=5)
        self.client.disconnect()
        self.client.loop_stop()

    # --- what the reader hands over --------------------------------------------------------------

    def reading(self, res: SessionResult, when: datetime | None = None) -> dict[str, Any]:
        when = when or datetime.now(UTC)
        state = reading_payload(res, virtual=self.virtual, when=when)
        with self._lock:
            first = self._last_state is None or self._last_state["serial"] != state["serial"]
            self._last_state = state
            if first and self.opts.discovery != "none":
                self._send_discovery()
            self._enqueue(self.opts.state_topic, json.dumps(state), retain=True)
            if self.opts.legacy_topic:
                legacy = legacy_payload(state, self.opts.uart_channel, when)
                self._enqueue(self.opts.legacy_topic, json.dumps(legacy), retain=False)
        return state

    def failure(self, failure: str, message: str, hint: str, when: datetime | None = None) -> None:
        doc = failure_payload(failure, message, hint, when=when or datetime.now(UTC))
        with self._lock:
            self._enqueue(self.opts.diagnostics_topic, json.dumps(doc), retain=True)

    # --- internals (under self._lock) ------------------------------------------------------------

    def _send_discovery(self) -> None:
        assert self._last_state is not None
        for topic, payload in discovery_messages(self._last_state, self.opts):
            self._enqueue(topic, json.dumps(payload), retain=True, counted=False)

    def _enqueue(self, topic: str, payload: str, *, retain: bool, counted: bool = True) -> None:
        if counted and len(self._queue) >= self.opts.queue_size:
            drop = next((m for m in self._queue if m.topic == self.opts.state_topic), self._queue[0])
            self._queue.remove(drop)
            self.stats.dropped += 1
            log.warning(
                "queue full (%d): dropped the oldest reading (%d dropped so far)",
                self.opts.queue_size,
                self.stats.dropped,
            )
        self._queue.append(_Message(topic, payload, retain))
        self._wake.set()

    def _run(self) -> None:
        """The pump thread: everything paho is asked to publish is asked from here, in order."""
        while not self._stopping.is_set():
            self._wake.wait(0.5)
            self._wake.clear()
            with self._lock:
                self._service()

    def _service(self) -> None:
        while self._acks:
            if self._inflight.pop(self._acks.popleft(), None) is not None:
                self.stats.published += 1
        if self._reconnected:
            # What was handed over but not acknowledged goes again, before anything newer.
            self._reconnected = False
            unacked = sorted(self._inflight.values(), key=lambda m: m.mid or 0)
            self._inflight.clear()
            self._queue.extendleft(reversed(unacked))
        if self._rediscover:
            self._rediscover = False
            if self._last_state is not None and self.opts.discovery != "none":
                log.info("Home Assistant is online: discovery sent again")
                self._send_discovery()
        while self._queue and self._connected.is_set():
            msg = self._queue[0]
            info = self.client.publish(msg.topic, msg.payload, qos=1, retain=msg.retain)
            if info.rc != 0:  # not connected after all: keep it for the next connection
                return
            self._queue.popleft()
            msg.mid = info.mid
            self._inflight[info.mid] = msg

    # --- paho's callbacks (network thread: never wait for self._lock here) -------------------------

    def _on_connect(self, client: Any, userdata: Any, flags: Any, reason: Any, properties: Any) -> None:
        if getattr(reason, "is_failure", False):
            text = f"the broker {self.opts.broker} refused the connection: {reason}"
            log.warning("%s", text)
            self.stats.errors.append(text)
            return
        self.stats.connects += 1
        log.info("connected to %s", self.opts.broker)
        client.publish(self.opts.availability_topic, "online", qos=1, retain=True)
        if self.opts.discovery != "none":
            client.subscribe(f"{self.opts.discovery_prefix}/status", qos=1)
        self._reconnected = True
        self._connected.set()
        self._wake.set()

    def _on_disconnect(self, client: Any, userdata: Any, flags: Any, reason: Any, properties: Any) -> None:
        self._connected.clear()
        log.warning("disconnected from %s (%s): reconnecting", self.opts.broker, reason)

    def _on_publish(self, client: Any, userdata: Any, mid: int, reason: Any, properties: Any) -> None:
        self._acks.append(mid)
        self._wake.set()

    def _on_message(self, client: Any, userdata: Any, message: Any) -> None:
        if message.topic == f"{self.opts.discovery_prefix}/status" and message.payload == b"online":
            self._rediscover = True
            self._wake.set()
