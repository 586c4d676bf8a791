"""The fast paths of decoding agree with the one definition of every frame, on every input.

construct stays the one definition of every frame; decoding takes shorter ways where it can
(a regular expression for the identification, slicing for a data message, one pass for a
regular data block, one match for a readout of the usual shape).  These tests hold each short
way against the definition it stands for, on valid, corrupted, truncated and parity-bit input.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest
from hypothesis import example, given, settings
from hypothesis import strategies as st

from me162.protocol.datablock import parse_block_by_lines, parse_data_block
from me162.protocol.errors import Me162Error
from me162.protocol.frames import DataMessage, Identification, _identification, _parse
from me162.protocol.line import add_parity
from me162.protocol.readout import Readout, _canonical, decode_any, decode_readout

CAPTURES = Path(__file__).resolve().parent.parent / "fixtures" / "captures"
REAL = [p.read_bytes() for p in sorted(CAPTURES.glob("*.readout.bin"))]

# bytes that matter to the grammar, and some that do not
SPECIAL = b"/\\?!()*\r\n\x01\x02\x03\x04\x06\x15 09AZaz.-:&\x7f\x80\xff"
chunks = st.lists(
    st.one_of(st.sampled_from([bytes([b]) for b in SPECIAL]), st.sampled_from([b"\r\n", b"ISK5", b"1.8.0"])),
    max_size=40,
).map(b"".join)


def mutate(data: bytes, draw: Any) -> bytes:
    """A real message spoiled the ways a line spoils it: a byte changed, dropped, inserted,
    the message cut short, or the parity bit added."""
    if not data:
        return data
    how = draw(st.sampled_from(["flip", "drop", "insert", "truncate", "parity", "none"]))
    i = draw(st.integers(0, len(data) - 1))
    if how == "flip":
        return data[:i] + bytes([data[i] ^ (1 << draw(st.integers(0, 7)))]) + data[i + 1 :]
    if how == "drop":
        return data[:i] + data[i + 1 :]
    if how == "insert":
        return data[:i] + bytes([draw(st.sampled_from(list(SPECIAL)))]) + data[i:]
    if how == "truncate":
        return data[:i]
    if how == "parity":
        return add_parity(data)
    return data


def by_construct(fmt: str, data: bytes, **kw: Any) -> Any:
    try:
        return _parse(fmt, data, "x", **kw)
    except Me162Error as e:
        return type(e)


# --- the identification -------------------------------------------------------------------------


def identification_by_construct(data: bytes) -> Identification | None:
    c = by_construct("IDENTIFICATION_FORMAT", data)
    if isinstance(c, type):
        return None
    return Identification(c.manufacturer, c.baud_char, c.ident, tuple(x.w for x in c.enhanced))


IDENTS = [
    b"/ISK5ME162-0033\r\n",
    b"/ISK5\\2MT372-3107\r\n",
    b"/ELS5\\@V9.30 \r\n",
    b"/ISk5\\MT382-1003\r\n",
    b"/EMH5\\@\\\x81LZQJL0013F\r\n",
]


@given(st.one_of(chunks.map(lambda c: b"/" + c), st.sampled_from(IDENTS), chunks))
@example(b"/ISK5\\\r\n")
@example(b"/ISK5\\\\\\2x\r\n")
@example(b"/A\r\nB5x\r\n")
@settings(max_examples=600)
def test_the_identification_fast_path_is_the_construct_definition(data: bytes) -> None:
    assert _identification(data) == identification_by_construct(data)


@given(st.sampled_from(IDENTS), st.data())
def test_the_identification_fast_path_on_spoiled_real_identifications(
    ident: bytes, data: st.DataObject
) -> None:
    spoiled = mutate(ident, data.draw)
    assert _identification(spoiled) == identification_by_construct(spoiled)


# --- the data message ---------------------------------------------------------------------------


def data_message(data: bytes, verify: bool) -> DataMessage | type:
    try:
        return DataMessage.from_bytes(data, verify_bcc=verify)
    except Me162Error as e:
        return type(e)


def data_message_by_construct(data: bytes, verify: bool) -> DataMessage | type:
    c = by_construct("DATA_MESSAGE_FORMAT", data, verify_bcc=verify)
    if isinstance(c, type):
        return c
    return DataMessage(c.body.value.block, c.body.value.end == b"\x04", c.bcc)


READOUTS = [r[r.index(b"\x02") :] for r in REAL if b"\x02" in r]


@given(st.one_of(chunks.map(lambda c: b"\x02" + c), st.sampled_from(READOUTS)), st.booleans(), st.data())
@settings(max_examples=600)
def test_the_data_message_fast_path_is_the_construct_definition(
    message: bytes, verify: bool, data: st.DataObject
) -> None:
    for m in (message, mutate(message, data.draw)):
        assert data_message(m, verify) == data_message_by_construct(m, verify)


# --- the data block -----------------------------------------------------------------------------

LINE_PARTS = st.sampled_from(
    [
        "1.8.0",
        "C.1.0",
        "",
        "(",
        ")",
        "(0033402.264*kWh)",
        "(1)",
        "(2)",
        "*",
        "!",
        " ",
        "x",
        "\r\n",
        "\n",
        "()",
    ]
)


@given(st.lists(LINE_PARTS, max_size=30).map("".join))
@example("1.8.0(1)\r\n!\r\n")
@example("1.6.0(000.000*kW)(19-04-01,00:00)\r\n0.0.0(21005763) \r\n!\r\n")
@example("(1)\r\n!\r\n")
@example("!\r\n")
@settings(max_examples=1500)
def test_the_regular_block_fast_path_is_the_line_by_line_parse(text: str) -> None:
    for block in (text, text + "!\r\n", text + "\r\n!\r\n"):
        fast = parse_data_block(block)
        slow = parse_block_by_lines(block)
        assert fast.data_sets == slow.data_sets
        assert fast.leftovers() == slow.leftovers()
        assert fast == slow


@pytest.mark.parametrize("raw", REAL, ids=[p.stem for p in sorted(CAPTURES.glob("*.readout.bin"))])
def test_the_regular_block_fast_path_on_every_real_readout(raw: bytes) -> None:
    start = raw.find(b"\x02")
    end = max(raw.find(b"\x03"), raw.find(b"!\r\n") + 3)
    block = raw[start + 1 : end].decode("latin-1")
    assert parse_data_block(block) == parse_block_by_lines(block)


# --- the whole readout --------------------------------------------------------------------------


def outcome(fn: Any, raw: bytes, verify: bool) -> Any:
    try:
        r: Readout = fn(raw, verify_bcc=verify)
    except Me162Error as e:
        return (type(e), str(e))
    return (r.to_json(), r.bcc_received, r.bcc_computed, r.request, r.option_select, r.data)


@given(st.one_of(st.sampled_from(REAL), chunks), st.booleans(), st.data())
@settings(max_examples=800)
def test_decoding_a_readout_the_short_way_is_decoding_it_the_general_way(
    raw: bytes, verify: bool, data: st.DataObject
) -> None:
    for r in (raw, mutate(raw, data.draw), mutate(mutate(raw, data.draw), data.draw)):
        assert outcome(decode_readout, r, verify) == outcome(decode_any, r, verify)


@pytest.mark.parametrize("raw", REAL, ids=[p.stem for p in sorted(CAPTURES.glob("*.readout.bin"))])
def test_every_real_readout_decodes_the_same_both_ways(raw: bytes) -> None:
    for verify in (True, False):
        assert outcome(decode_readout, raw, verify) == outcome(decode_any, raw, verify)


def test_the_me162_readout_takes_the_short_way() -> None:
    raw = (CAPTURES / "ME162_1.readout.bin").read_bytes()
    assert _canonical(raw, True) is not None


def test_a_block_of_one_value_per_line_takes_the_shortest_way() -> None:
    """The ME162's block has no ")(": it is cut with the regex of fewer groups; a block with
    more values per set takes the other; the line-by-line parse agrees with both."""
    simple = "1.8.0(0033402.264*kWh)\r\nF.F(0000000)\r\n!\r\n"
    more = "1.6.0(000.000*kW)(19-04-01,00:00)\r\n!\r\n"
    for text, shortest in ((simple, True), (more, False)):
        block = parse_data_block(text)
        assert block._lines is None and block._simple is shortest
        assert block == parse_block_by_lines(text)
