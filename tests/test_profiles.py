"""Profiles are data: the built-in ones load, and a bad file gets an error naming file and key."""

from __future__ import annotations

from pathlib import Path

import pytest

from me162.protocol.errors import ConfigError
from me162.simulator.profile import builtin_profiles, load_profile, parse_profile


def test_builtin_profiles() -> None:
    names = builtin_profiles()
    assert {"me162", "mt174", "ebz_dd3"} <= set(names)
    for name in names:
        p = load_profile(name)
        assert p.readout and all(a in p.registers for line in p.readout for a in line)


def test_me162_profile_facts() -> None:
    p = load_profile("me162")
    assert p.identification.raw == "/ISK5ME162-0033" and p.mode == "C" and p.max_baud == 9600
    assert p.password is None and p.operand == "" and p.quirks.nak_after_stray_ack
    assert [line[0] for line in p.readout] == [
        "C.1.0",
        "0.0.0",
        "1.8.0",
        "1.8.1",
        "1.8.2",
        "2.8.0",
        "2.8.1",
        "2.8.2",
        "F.F",
    ]


GOOD = "name: x\nidentification: /ABC5X\nregisters:\n  1.8.0: '1'\nreadout: [1.8.0]\n"


@pytest.mark.parametrize(
    ("text", "message"),
    [
        ("name: x\n", "identification: is required"),
        (GOOD.replace("/ABC5X", "ABC5X"), "identification"),
        (GOOD + "colour: red\n", "colour: unknown key"),
        (GOOD.replace("readout: [1.8.0]", "readout: [2.8.0]"), "readout[0]: register '2.8.0' is not defined"),
        (
            GOOD + "timings: {identification: 0.1}\n",
            "timings.identification: reaction time must lie in [0.2, 1.5]",
        ),
        (GOOD + "timings: {option_timeout: 3}\n", "timings.option_timeout: t_t must satisfy"),
        (GOOD + "mode: B\n", "mode: mode B contradicts"),
        (
            GOOD + "programming: {write: maybe}\n",
            "my.yaml:6: programming.write: must be one of ack, error, nak",
        ),
        (GOOD + "quirks: {nak_after_stray_ack: 3}\n", "quirks.nak_after_stray_ack: must be bool"),
        ("name: x\nserial: [unclosed\n", "my.yaml:3: not valid YAML"),
        (
            GOOD.replace("'1'", "{source: moon}"),
            "my.yaml:4: registers.1.8.0.source: must be one of absolute,",
        ),
        (GOOD + "timmings: {readout: 0.3}\n", "my.yaml:6: timmings: unknown key; did you mean 'timings'?"),
    ],
)
def test_bad_profiles_name_file_and_key(text: str, message: str) -> None:
    with pytest.raises(ConfigError) as e:
        parse_profile(text, "my.yaml")
    assert str(e.value).startswith("my.yaml") and message in str(e.value)


def test_every_schema_error_of_a_profile_at_once_with_its_line() -> None:
    text = GOOD + "colour: red\nprogramming: {write: maybe, pasword: x}\nquirks:\n  deaf_without_b0: 3\n"
    with pytest.raises(ConfigError) as e:
        parse_profile(text, "my.yaml")
    assert str(e.value).splitlines() == [
        "my.yaml:6: colour: unknown key (known: address, clock, description, energy, identification, installation, "
        "mode, name, programming, push, quirks, readable, readout, registers, serial, sources, timings)",
        "my.yaml:7: programming.pasword: unknown key; did you mean 'password'?",
        "my.yaml:7: programming.write: must be one of ack, error, nak, not 'maybe'",
        "my.yaml:9: quirks.deaf_without_b0: must be boolean, not int 3",
    ]


def test_unknown_profile_and_unreadable_file(tmp_path: Path) -> None:
    with pytest.raises(ConfigError, match=r"no profile called 'nope'; built-in profiles: .*me162"):
        load_profile("nope")
    with pytest.raises(ConfigError, match="cannot read profile"):
        load_profile(tmp_path / "missing.yaml")
