"""The pytest plugin as a reader project uses it: fixtures on every transport with a record of
what the meter saw, the time scale and its one switch, cases addressed by id, clean JUnit."""

from __future__ import annotations

import json
import re
import subprocess
import sys
from pathlib import Path
from xml.etree import ElementTree as ET

import pytest

pytestmark = pytest.mark.timeout(300)
ROOT = Path(__file__).resolve().parent.parent

OWN_TESTS = """
import pytest
from me162.protocol.framing import Kind
from me162.reader import read


@pytest.mark.parametrize("transport", ["pty", "tcp", "tcp-parity", "rfc2217"])
def test_reads_on_every_transport(me162_meter_factory, transport):
    meter = me162_meter_factory(transport=transport)
    reading = read(meter.port, speed=meter.speed, parity_in_software=transport == "tcp-parity")
    assert str(reading["1.8.0"].value) == "33402.264"
    requests = meter.record.received(Kind.REQUEST)
    assert [r.message.data for r in requests] == [b"/?!\\r\\n"]


def test_the_record_says_what_the_meter_saw(me162_meter):
    read(me162_meter.port, registers=["1.8.0"], speed=me162_meter.speed)
    record = me162_meter.record
    assert [c.message.name for c in record.commands()] == ["R1", "B0"]
    assert record.ended_with_b0()
    assert [b for _, b in record.reader_speeds()] == [9600, 300] or record.reader_speeds()[0][1] == 9600


def test_scenarios_by_name(me162_meter_factory):
    meter = me162_meter_factory(scenarios=["bcc-corrupt-readout"])
    reading = read(meter.port, speed=meter.speed)  # read again after the refused readout
    assert reading.session.retries >= 1 and meter.record.faults()


def test_a_replay_by_name(me162_meter_factory):
    meter = me162_meter_factory(replay="ME162_4")
    assert str(read(meter.port, speed=meter.speed)["1.8.0"].value) == "32916.635"


def test_the_speed(me162_meter):
    assert me162_meter.speed == EXPECTED_SPEED
"""


def pytest_in(tmp_path: Path, *args: str, speed: float = 20) -> subprocess.CompletedProcess[str]:
    (tmp_path / "test_own.py").write_text(OWN_TESTS.replace("EXPECTED_SPEED", repr(speed)))
    return subprocess.run(
        [sys.executable, "-m", "pytest", "-q", "-p", "no:cacheprovider", *args],
        capture_output=True,
        text=True,
        timeout=280,
        check=False,
        cwd=tmp_path,
    )


def test_fixtures_on_every_transport_with_a_record_of_what_the_meter_saw(tmp_path: Path) -> None:
    p = pytest_in(tmp_path, "test_own.py")
    assert p.returncode == 0, p.stdout[-3000:] + p.stderr[-2000:]
    assert "8 passed" in p.stdout


def test_one_switch_for_real_time(tmp_path: Path) -> None:
    p = pytest_in(tmp_path, "test_own.py", "-k", "test_the_speed", "--me162-speed", "1", speed=1)
    assert p.returncode == 0, p.stdout[-2000:]
    (tmp_path / "pytest.ini").write_text("[pytest]\nme162_speed = 1\n")
    p = pytest_in(tmp_path, "test_own.py", "-k", "test_the_speed", speed=1)
    assert p.returncode == 0, p.stdout[-2000:]


def test_cases_are_addressed_by_id_and_junit_names_are_clean(tmp_path: Path) -> None:
    decl = tmp_path / "reader.toml"
    decl.write_text((ROOT / "conformance" / "readers" / "me162-read.toml").read_text())
    (tmp_path / "test_own.py").write_text("")
    p = subprocess.run(
        [sys.executable, "-m", "pytest", "-q", "-p", "no:cacheprovider", "--collect-only", "reader.toml"],
        capture_output=True, text=True, timeout=120, check=False, cwd=tmp_path,
    )  # fmt: skip
    ids = [ln for ln in p.stdout.splitlines() if "::" in ln]
    assert "reader.toml::FRAME-07" in ids and "reader.toml::REPLAY-ME162_1-R1" in ids, p.stdout[-1000:]
    p = subprocess.run(
        [sys.executable, "-m", "pytest", "-q", "-p", "no:cacheprovider", "reader.toml::FRAME-07",
         "reader.toml::ROBUST-15", "--junitxml", "junit.xml", "--me162-bundle", "bundle"],
        capture_output=True, text=True, timeout=120, check=False, cwd=tmp_path,
    )  # fmt: skip
    assert p.returncode == 0 and "1 passed, 1 skipped" in p.stdout, p.stdout[-2000:]
    cases = ET.parse(tmp_path / "junit.xml").getroot().iter("testcase")
    names = {(c.get("classname"), c.get("name")) for c in cases}
    assert names == {("reader.toml", "FRAME-07"), ("reader.toml", "ROBUST-15")}
    results = json.loads((tmp_path / "bundle" / "results.json").read_text())["results"]
    verdicts = {(r["case"], r["group"], r["verdict"]) for r in results}
    assert verdicts == {("FRAME-07", "FRAME", "PASS"), ("ROBUST-15", "ROBUST", "NOT-APPLICABLE")}, results


def test_a_shipped_declaration_by_name(tmp_path: Path) -> None:
    (tmp_path / "test_own.py").write_text("")
    p = subprocess.run(
        [sys.executable, "-m", "pytest", "-q", "-p", "no:cacheprovider", "--me162-reader", "me162-read",
         "--me162-case", "DATA-01"],
        capture_output=True, text=True, timeout=120, check=False, cwd=tmp_path,
    )  # fmt: skip
    assert p.returncode == 0 and "1 passed" in p.stdout, p.stdout[-2000:]
    p = subprocess.run(
        [sys.executable, "-m", "pytest", "-q", "-p", "no:cacheprovider", "--me162-reader", "no-such-reader"],
        capture_output=True, text=True, timeout=120, check=False, cwd=tmp_path,
    )  # fmt: skip
    assert p.returncode == 4 and "not one shipped with me162" in p.stderr, p.stderr[-1000:]


def test_the_guide_lists_every_fixture_and_option() -> None:
    guide = (ROOT / "docs" / "pytest-plugin.md").read_text()
    first = " ".join(guide.split("\n\n")[1].split())
    assert "20 times faster than real time" in first and "--me162-speed 1" in first
    from me162.conformance import plugin

    for name in dir(plugin):
        if name.startswith("me162_"):
            assert f"`{name}`" in guide, f"{name} is not in docs/pytest-plugin.md"
    for option in re.findall(r'"(--me162-[a-z-]+)"', (ROOT / "conformance" / "plugin.py").read_text()):
        assert f"`{option}" in guide, f"{option} is not in docs/pytest-plugin.md"


def test_the_plugin_under_xdist_gives_the_verdicts_of_one_process(tmp_path: Path) -> None:
    decl = tmp_path / "reader.toml"
    decl.write_text((ROOT / "conformance" / "readers" / "me162-read.toml").read_text())
    (tmp_path / "test_own.py").write_text("")
    picked = ["FRAME-01", "FRAME-07", "DATA-01", "SESSION-06", "ROBUST-15", "REPLAY-ME162_4", "LINE-03"]
    verdicts: list[dict[str, str]] = []
    for extra in (["-p", "no:xdist"], ["-n", "3"]):
        bundle = tmp_path / f"bundle{len(verdicts)}"
        p = subprocess.run(
            [sys.executable, "-m", "pytest", "-q", "-p", "no:cacheprovider", *extra, "--me162-bundle", str(bundle),
             *(f"reader.toml::{c}" for c in picked)],
            capture_output=True, text=True, timeout=280, check=False, cwd=tmp_path,
        )  # fmt: skip
        assert p.returncode == 0, p.stdout[-2000:] + p.stderr[-2000:]
        if extra[0] == "-n":
            assert "bringing up nodes" in p.stdout, p.stdout[-2000:]  # xdist ran it
        results = json.loads((bundle / "results.json").read_text())["results"]
        verdicts.append({r["case"]: r["verdict"] for r in results})
    assert verdicts[0] == verdicts[1] and set(verdicts[0]) == set(picked), verdicts
