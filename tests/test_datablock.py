"""The lenient, lossless data-set grammar on the odd but real forms meters send."""

from __future__ import annotations

import pytest

from me162.protocol import DataSet, Obis, parse_data_block
from me162.protocol.datablock import build_data_block, parse_line
from me162.protocol.errors import DataError


def test_several_values_for_one_address() -> None:
    line = parse_line("1.6.2*14(26.60)(1609051415)")
    (ds,) = line.data_sets
    assert ds.address == "1.6.2*14" and [v.value for v in ds.values] == ["26.60", "1609051415"]
    assert ds.obis == Obis(1, 6, e=2, f=14, reset="*") or str(ds.obis) == "1.6.2*14"


def test_several_data_sets_on_one_line() -> None:
    line = parse_line("0.9.1(11:38:19)0.9.2(13-07-22)")
    assert [d.address for d in line.data_sets] == ["0.9.1", "0.9.2"]
    assert [d.raw for d in line.data_sets] == ["0.9.1(11:38:19)", "0.9.2(13-07-22)"]


def test_address_may_be_absent() -> None:
    (ds,) = parse_line("(0033402.264*kWh)").data_sets
    assert ds.address is None and ds.value == "0033402.264" and ds.unit == "kWh"


@pytest.mark.parametrize(
    ("text", "value", "unit"),
    [
        ("0.0(          120858)", "          120858", None),
        ("C.1.1(        )", "        ", None),
        ("0-0:C.51.4*255()", "", None),
        ("1-0:1.8.0*255(024562 kWh)", "024562 kWh", None),
        ("1.8.0(000007,4*kW)", "000007,4", "kW"),
        ("9.4(088*C&082*C)", "088", "C&082*C"),
    ],
)
def test_odd_values_are_kept_exactly(text: str, value: str, unit: str | None) -> None:
    (ds,) = parse_line(text).data_sets
    assert (ds.value, ds.unit, ds.raw) == (value, unit, text)


def test_numbers_tolerate_padding_units_and_commas() -> None:
    assert parse_line("0.0(   12.5)").data_sets[0].values[0].number() == 12.5
    assert parse_line("1.8.0(024562 kWh)").data_sets[0].values[0].number() == 24562
    assert parse_line("1.8.0(000007,4*kW)").data_sets[0].values[0].number() == 7.4
    assert parse_line("C.1.6(FDF5)").data_sets[0].values[0].number() is None


@pytest.mark.parametrize(
    ("code", "normal"),
    [
        ("C.1.0", "96.1.0"),
        ("F.F", "97.97"),
        ("0-0:C.1.0*255", "0-0:96.1.0*255"),
        ("1.8.0&12", "1.8.0&12"),
        ("1-0:21.7.255*255", "1-0:21.7.255*255"),
        ("32.7", "32.7"),
        ("P.01", "99.1"),
        ("L.2.1", "98.2.1"),
    ],
)
def test_obis_reduced_codes(code: str, normal: str) -> None:
    o = Obis.parse(code)
    assert o is not None and str(o) == normal


@pytest.mark.parametrize("code", ["FF", "1-1:30D", "", "abc"])
def test_non_obis_addresses_are_kept_without_obis(code: str) -> None:
    assert Obis.parse(code) is None


def test_bang_glued_to_the_last_line_and_lf_only() -> None:
    block = parse_data_block(b"1.8.0(1*kWh)\n2.8.0(2*kWh)!\r\n")
    assert block.end_seen and [d.address for _, d in block.data_sets] == ["1.8.0", "2.8.0"]


def test_unparseable_text_is_kept_in_rest() -> None:
    block = parse_data_block("0-@P`R+*B*U-L(RLx/EBZ5\r\n1.8.0(1)\r\n!\r\n")
    assert block.lines[0].rest.startswith("0-@P") and block.lines[1].data_sets[0].address == "1.8.0"


def test_build_checks_limits_and_round_trips() -> None:
    ds = DataSet.make("1.8.0", ("0033402.264", "kWh"))
    assert ds.raw == "1.8.0(0033402.264*kWh)"
    raw = build_data_block([[ds], [DataSet.make("F.F", "0000000")]])
    assert raw == b"1.8.0(0033402.264*kWh)\r\nF.F(0000000)\r\n!\r\n"
    assert [d.raw for _, d in parse_data_block(raw).data_sets] == ["1.8.0(0033402.264*kWh)", "F.F(0000000)"]
    with pytest.raises(DataError):
        DataSet.make("1.8.0", "a*b")
    with pytest.raises(DataError):
        DataSet.make("x" * 17, "1")
