"""Every frame type builds and parses, and build -> parse -> build is the identity."""

from __future__ import annotations

import pytest
from hypothesis import given
from hypothesis import strategies as st

from me162.protocol import (
    AddressError,
    BccError,
    Command,
    DataMessage,
    ErrorMessage,
    FramingError,
    Identification,
    OptionSelect,
    PlainDataMessage,
    RequestMessage,
)
from me162.protocol.frames import Ack, Nak, addresses_match

printable = st.text(
    alphabet=st.characters(min_codepoint=0x20, max_codepoint=0x7E, exclude_characters="/!()*\\"),
    max_size=20,
)
address = st.text(alphabet="0123456789ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz ", max_size=32)
block_bytes = st.binary(max_size=300).map(lambda b: bytes(c & 0x7F for c in b if c & 0x7F not in (3, 4)))


@given(address)
def test_request_round_trip(addr: str) -> None:
    raw = RequestMessage(addr).to_bytes()
    assert raw == b"/?" + addr.encode() + b"!\r\n"
    assert RequestMessage.from_bytes(raw) == RequestMessage(addr)


@pytest.mark.parametrize("bad", ["x" * 33, "12-34", "a!b", "é"])
def test_request_address_rules(bad: str) -> None:
    with pytest.raises(AddressError):
        RequestMessage(bad).to_bytes()


def test_request_leading_zeros_are_ignored() -> None:
    assert addresses_match("010203", "10203")
    assert addresses_match("000010203", "010203")
    assert addresses_match("", "28342193")  # the general address
    assert addresses_match("000", "0000")  # all zeros match all zeros
    assert not addresses_match("000", "28342193")
    assert not addresses_match("28342193", "28342194")
    assert not addresses_match("abc", "ABC")  # case counts


@given(
    st.text(alphabet="ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz", min_size=3, max_size=3),
    st.sampled_from(list("0123456ABCDEF ")),
    st.lists(st.sampled_from(list("0123456789@")), max_size=2),
    printable,
)
def test_identification_round_trip(man: str, z: str, enhanced: list[str], ident: str) -> None:
    i = Identification(man, z, ident, tuple(enhanced))
    raw = i.to_bytes()
    assert raw.endswith(b"\r\n") and raw.startswith(b"/")
    assert Identification.from_bytes(raw) == i
    assert Identification.from_bytes(raw).to_bytes() == raw


@given(st.sampled_from("012"), st.sampled_from("0123456"), st.sampled_from("0126"))
def test_option_select_round_trip(v: str, z: str, y: str) -> None:
    o = OptionSelect(v, z, y)
    raw = o.to_bytes()
    assert raw == b"\x06" + (v + z + y).encode() + b"\r\n"
    assert OptionSelect.from_bytes(raw) == o


@given(block_bytes, st.booleans())
def test_data_message_round_trip(block: bytes, partial: bool) -> None:
    raw = DataMessage(block, partial).to_bytes()
    parsed = DataMessage.from_bytes(raw)
    assert parsed.block == block and parsed.partial == partial and parsed.bcc_valid
    assert DataMessage(parsed.block, parsed.partial, parsed.bcc).to_bytes() == raw


@given(block_bytes, st.integers(0, 255))
def test_data_message_any_bcc_value_builds_and_is_judged(block: bytes, bcc: int) -> None:
    raw = DataMessage(block, bcc=bcc).to_bytes()
    assert raw[-1] == bcc
    msg = DataMessage.from_bytes(raw, verify_bcc=False)
    assert msg.bcc == bcc
    if not msg.bcc_valid:
        with pytest.raises(BccError):
            DataMessage.from_bytes(raw)


def test_plain_data_message() -> None:
    raw = b"1.8.0(0001.000*kWh)\r\n!\r\n"
    assert PlainDataMessage.from_bytes(raw).to_bytes() == raw


@given(
    st.sampled_from(["P0", "P1", "P2", "W1", "W2", "R1", "R3", "E2"]),
    st.text(alphabet="0123456789.:()*ABCkWh", max_size=40),
    st.booleans(),
)
def test_command_round_trip(name: str, data: str, partial: bool) -> None:
    c = Command(name[0], name[1], data.encode(), partial)
    raw = c.to_bytes()
    parsed = Command.from_bytes(raw)
    assert (parsed.command, parsed.type, parsed.data, parsed.partial) == (c.command, c.type, c.data, partial)
    assert Command(parsed.command, parsed.type, parsed.data, parsed.partial, parsed.bcc).to_bytes() == raw


def test_break_has_no_stx() -> None:
    raw = Command.break_().to_bytes()
    assert raw == b"\x01B0\x03q"
    c = Command.from_bytes(raw)
    assert c.is_break and c.data is None


def test_command_fields() -> None:
    c = Command.from_bytes(b"\x01R1\x021.8.0()\x03Z")
    assert c.name == "R1" and c.address == "1.8.0" and c.value == ""
    assert Command.from_bytes(Command.read("C.1.0", "1").to_bytes()).value == "1"


@given(st.text(alphabet="ABCDEFGHIJKLMNOPQRSTUVWXYZ0123456789 ", max_size=32))
def test_error_message_round_trip(text: str) -> None:
    raw = ErrorMessage(text).to_bytes()
    assert ErrorMessage.from_bytes(raw).text == text


def test_ack_nak() -> None:
    assert Ack().to_bytes() == b"\x06"
    assert Nak().to_bytes() == b"\x15"


@pytest.mark.parametrize(
    ("raw", "what"),
    [
        (b"\x02C.1.0(1)\r\n", "no ETX"),
        (b"\x02C.1.0(1)\x03", "no BCC"),
        (b"C.1.0(1)\x03L", "no STX"),
        (b"\x02(1)\x033X", "junk after the BCC"),
    ],
)
def test_data_message_framing_is_strict(raw: bytes, what: str) -> None:
    with pytest.raises(FramingError):
        DataMessage.from_bytes(raw)


def test_bcc_error_message_is_actionable() -> None:
    raw = DataMessage(b"(1)").to_bytes()[:-1] + b"K"
    with pytest.raises(
        BccError, match=r"BCC mismatch: computed 0x[0-9A-F]{2}, received 0x4B after ETX at byte 5"
    ):
        DataMessage.from_bytes(raw)
