"""The BCC worked examples of the protocol reference (PROTOCOL.md section 3), byte for byte."""

from __future__ import annotations

import pytest

from me162.protocol import bcc_of_message, xor7
from me162.protocol.frames import Command, DataMessage, ErrorMessage

WORKED = [
    (b"\x01B0\x03", 0x71),
    (b"\x01R1\x021.8.0()\x03", 0x5A),
    (b"\x01R1\x022.8.0()\x03", 0x59),
    (b"\x01P0\x02()\x03", 0x60),
    (b"\x02(0033402.264*kWh)\x03", 0x54),
    (b"\x02(15:48:22)\x03", 0x0A),
    (b"\x02(15:49:49)\x03", 0x06),
    (
        b"\x02C.1.0(28342193)\r\n0.0.0(28342193)\r\n1.8.0(0033402.264*kWh)\r\n"
        b"1.8.1(0000000.000*kWh)\r\n1.8.2(0033402.264*kWh)\r\n2.8.0(0000013.465*kWh)\r\n"
        b"2.8.1(0000000.000*kWh)\r\n2.8.2(0000013.465*kWh)\r\nF.F(0000000)\r\n!\r\n\x03",
        0x4C,
    ),
    (b"\x01P0\x02(1234567)\x03", 0x50),
    (bytes.fromhex("01 57 32 02 43 30 30 33 28 39 31 30 33 32 34 30 39 32 32 33 39 29 03"), 0x1B),
    (b"\x02(ERROR)\x03", 0x5A),
    (b"\x01P1\x02(00000000)\x03", 0x61),
]


@pytest.mark.parametrize(("message", "expected"), WORKED)
def test_worked_examples(message: bytes, expected: int) -> None:
    assert bcc_of_message(message) == expected


def test_running_xor_of_r1_example() -> None:
    # PROTOCOL.md gives the running XOR 52, 63, 61, 50, 7E, 46, 68, 58, 70, 59, 5A.
    body = b"R1\x021.8.0()\x03"
    running, x = [], 0
    for c in body:
        x ^= c
        running.append(x)
    assert running == [0x52, 0x63, 0x61, 0x50, 0x7E, 0x46, 0x68, 0x58, 0x70, 0x59, 0x5A]


def test_le_e350_readout_bcc() -> None:
    # The worked example's first and last lines; only the XOR property matters: parity bits are ignored.
    assert xor7(b"\x81\x82") == xor7(b"\x01\x02")


def test_messages_built_with_the_worked_bccs() -> None:
    assert Command.break_().to_bytes() == b"\x01B0\x03q"
    assert Command.read("1.8.0").to_bytes() == b"\x01R1\x021.8.0()\x03Z"
    assert Command("P", "0", b"()").to_bytes() == b"\x01P0\x02()\x03`"
    assert DataMessage(b"(15:48:22)").to_bytes() == b"\x02(15:48:22)\x03\n"
    assert DataMessage(b"(15:49:49)").to_bytes() == b"\x02(15:49:49)\x03\x06"
    assert ErrorMessage("ERROR").to_bytes() == b"\x02(ERROR)\x03Z"
    assert Command.password("00000000").to_bytes() == b"\x01P1\x02(00000000)\x03a"


def test_bcc_may_be_a_control_byte_and_still_parses() -> None:
    msg = DataMessage.from_bytes(b"\x02(15:49:49)\x03\x06")
    assert msg.block == b"(15:49:49)" and msg.bcc == 0x06 and msg.bcc_valid
