"""The virtual meter's behaviour, driven on virtual time through its link (no I/O)."""

from __future__ import annotations

from pathlib import Path

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from me162.protocol import Command, DataMessage, OptionSelect, decode_readout, parse_data_block
from me162.protocol.line import LineSettings
from tests.simhelp import Bench

CAPTURES = Path(__file__).resolve().parent.parent / "fixtures" / "captures"
IDENT = b"/ISK5ME162-0033\r\n"


def readout(b: Bench) -> bytes:
    return b.read_until(b"\x03", extra=1, limit=20)


def ack(b: Bench, option: str, *, switch: int | None = None) -> None:
    end = b.send(OptionSelect(*option).to_bytes(), gap=0.05)
    if switch:
        b.baud(switch, at=end)


def test_readout_is_byte_identical_to_the_real_captures() -> None:
    real = (CAPTURES / "ME162_1.readout.bin").read_bytes()
    b = Bench()
    assert b.sign_on() == IDENT
    ack(b, "050", switch=9600)
    assert IDENT + readout(b) == real


def test_a_meter_that_serves_for_long_keeps_a_minute_of_its_speed_history() -> None:
    """A meter served for days must not copy its whole history at every transmission: after
    a hundred readouts (about twelve minutes) it keeps the last minute of its UART's speeds,
    and the hundredth readout is still the real meter's."""
    real = (CAPTURES / "ME162_1.readout.bin").read_bytes()
    b = Bench()
    sizes = []
    for _ in range(100):
        b.baud(300)
        assert b.sign_on() == IDENT
        ack(b, "050", switch=9600)
        assert IDENT + readout(b) == real
        b.wait(5.0)
        sizes.append(len(b.meter._speeds))
    span = b.meter._speeds[-1][0] - b.meter._speeds[1][0]
    assert max(sizes[20:]) == max(sizes[:30]) and span <= 60.0, (sizes, span)


@pytest.mark.parametrize("capture", ["ME162_2", "ME162_3", "ME162_4"])
def test_readout_matches_other_captures_given_their_values(capture: str) -> None:
    real = (CAPTURES / f"{capture}.readout.bin").read_bytes()
    values = decode_readout(real).data
    b = Bench()
    for direction, reg in (("import", "1.8.2"), ("export", "2.8.2")):
        ds = values.find(reg)
        assert ds is not None and ds.value is not None
        b.meter.registers.set_energy(direction, 2, float(ds.value))
    b.sign_on()
    ack(b, "050", switch=9600)
    assert IDENT + readout(b) == real


def test_identification_comes_after_the_reaction_time() -> None:
    b = Bench()
    end = b.send(b"/?!\r\n")
    b.link.advance(end + 5)
    ident_tx = next(e for e in b.link.events if e.kind == "data" and e.dir == "m2r")
    assert 0.22 <= ident_tx.t - end <= 0.32 and ident_tx.baud == 300


@pytest.mark.parametrize("address", ["28342193", "028342193", "00028342193"])
def test_request_with_own_address_leading_zeros_ignored(address: str) -> None:
    assert Bench().sign_on(f"/?{address}!\r\n".encode()) == IDENT


@pytest.mark.parametrize(
    "request_bytes",
    [
        b"/?12345678!\r\n",
        b"/?2834219!\r\n",
        b"/?28342193\r\n",
        b"/?abc-1!\r\n",
        b"/!\r\n",
        b"?!\r\n",
        b"/?" + b"1" * 33 + b"!\r\n",
    ],
)
def test_foreign_address_or_garbage_gets_silence(request_bytes: bytes) -> None:
    b = Bench()
    b.send(request_bytes)
    assert b.wait(5.0) == b""
    assert b.sign_on() == IDENT  # and the meter still answers a proper sign-on


def test_mode_c_switches_to_the_offered_speed_after_the_ack() -> None:
    b = Bench()
    b.sign_on()
    ack(b, "050", switch=9600)
    data = readout(b)
    assert DataMessage.from_bytes(data).bcc_valid
    tx = [e for e in b.link.events if e.kind == "data" and e.dir == "m2r"][-1]
    assert tx.baud == 9600 and tx.detail == "readout"
    assert b.meter.uart_baud(b.t + 1) == 300  # back to 300 Bd for the next sign-on
    b.baud(300)
    assert b.sign_on() == IDENT


@pytest.mark.parametrize(
    ("option", "why"),
    [
        ("040", "Z=4 is not"),
        ("000", ""),
        ("150", "unsupported V/Y"),
        ("052", "unsupported V/Y"),
        ("252", "unsupported"),
    ],
)
def test_other_options_give_the_readout_at_300(option: str, why: str) -> None:
    b = Bench()
    b.sign_on()
    ack(b, option)
    data = readout(b)
    assert DataMessage.from_bytes(data).bcc_valid
    tx = [e for e in b.link.events if e.kind == "data" and e.dir == "m2r"][-1]
    assert tx.baud == 300
    if why:
        assert any(why in d for d in b.meter_events("fallback"))


def test_no_ack_gives_the_readout_at_300_after_t_t() -> None:
    b = Bench()
    b.sign_on()
    ident_end = b.t
    data = readout(b)
    assert DataMessage.from_bytes(data).bcc_valid
    tx = [e for e in b.link.events if e.kind == "data" and e.dir == "m2r"][-1]
    assert tx.baud == 300
    assert 1.5 < tx.t - ident_end <= 2.2 + 0.4 + 0.1


def test_switching_before_the_ack_left_the_wire_loses_it() -> None:
    b = Bench()
    b.sign_on()
    b.send(OptionSelect("0", "5", "0").to_bytes()[:0], gap=0.05)
    start = b.t
    b.link.reader_write(OptionSelect("0", "5", "0").to_bytes(), start)
    b.baud(9600, at=start + 0.04)  # 1.2 of the 6 characters are out
    data = b.read_until(b"\x03", extra=1, limit=12)
    assert not data.startswith(b"\x02C.1.0")  # the 300 Bd fallback readout, read at 9600: garbage
    assert b"\x00" in data
    assert not b.meter_events("option")


def test_reading_at_the_wrong_speed_gives_garbage() -> None:
    b = Bench()
    b.baud(1200)
    b.send(b"/?!\r\n")
    assert b.wait(3.0) == b""  # the meter cannot read a 1200 Bd request
    b.baud(300)
    b.sign_on()
    ack(b, "050", switch=4800)
    data = readout(b)
    assert data and not data.startswith(b"\x02C.1.0")


def test_programming_session_like_the_real_me162() -> None:
    b = Bench()
    b.sign_on()
    ack(b, "051", switch=9600)
    assert b.read_until(b"\x03", extra=1) == b"\x01P0\x02()\x03`"
    b.send(Command.read("1.8.0").to_bytes(), gap=0.03)
    assert b.read_until(b"\x03", extra=1) == b"\x02(0033402.264*kWh)\x03T"
    b.send(Command.read("1.7.0").to_bytes(), gap=0.03)
    assert b.read_until(b"\x03", extra=1) == b"\x02(ERROR)\x03Z"
    b.send(Command.read("0.9.2").to_bytes(), gap=0.03)
    assert b.read_until(b"\x03", extra=1)[:11] == b"\x02(26.06.21)"
    b.send(Command.write("0.9.1", "10:00:00").to_bytes(), gap=0.03)
    assert b.read_until(b"\x03", extra=1) == b"\x02(ERROR)\x03Z"
    b.send(Command.break_().to_bytes(), gap=0.03)
    assert b.wait(1.0) == b""
    b.baud(300)
    assert b.sign_on() == IDENT


def test_time_register_follows_the_meter_clock() -> None:
    b = Bench()
    b.sign_on()
    ack(b, "051", switch=9600)
    b.read_until(b"\x03", extra=1)
    b.send(Command.read("0.9.1").to_bytes(), gap=0.03)
    reply = b.read_until(b"\x03", extra=1)
    hh, mm, ss = (int(x) for x in reply[2:10].decode().split(":"))
    assert (hh, mm) == (12, 0) and abs(ss - b.t) <= 1.0


def test_bcc_error_and_garbled_command_get_nak_and_nak_repeats() -> None:
    b = Bench()
    b.sign_on()
    ack(b, "051", switch=9600)
    b.read_until(b"\x03", extra=1)
    b.send(b"\x01R1\x021.8.0()\x03X", gap=0.03)  # wrong BCC
    assert b.read_until(b"\x15") == b"\x15"
    b.send(Command.read("2.8.0").to_bytes(), gap=0.03)
    first = b.read_until(b"\x03", extra=1)
    b.send(b"\x15", gap=0.03)  # the reader asks for a repeat
    assert b.read_until(b"\x03", extra=1) == first
    b.send(b"\x01Q1\x02x()\x03" + bytes([0x51 ^ 0x31 ^ 0x02 ^ 0x78 ^ 0x28 ^ 0x29 ^ 0x03]), gap=0.03)
    assert b.read_until(b"\x15") == b"\x15"  # unknown command letter


def test_quirk_an_ack_after_p0_spoils_the_next_r1() -> None:
    b = Bench()
    b.sign_on()
    ack(b, "051", switch=9600)
    b.read_until(b"\x03", extra=1)
    b.send(b"\x06", gap=0.03)
    b.send(Command.read("1.8.0").to_bytes())
    assert b.read_until(b"\x15") == b"\x15"
    b.send(Command.read("1.8.0").to_bytes(), gap=0.03)
    assert b.read_until(b"\x03", extra=1) == b"\x02(0033402.264*kWh)\x03T"


def test_quirk_programming_at_300_gives_the_readout() -> None:
    b = Bench()
    b.sign_on()
    ack(b, "001")
    data = readout(b)
    assert DataMessage.from_bytes(data).bcc_valid
    assert any("programming at 300" in d for d in b.meter_events("fallback"))


def test_deaf_after_a_session_left_without_b0_until_the_inactivity_timeout() -> None:
    b = Bench()
    b.sign_on()
    ack(b, "051", switch=9600)
    b.read_until(b"\x03", extra=1)
    b.baud(300)  # the reader restarts without B0
    b.send(b"/?!\r\n", gap=1.0)
    assert b.wait(5.0) == b""
    b.wait(60.0)  # past the inactivity timeout
    assert b.meter_events("timeout")
    assert b.sign_on() == IDENT


def test_b0_sent_at_the_session_speed_ends_a_left_session() -> None:
    b = Bench()
    b.sign_on()
    ack(b, "051", switch=9600)
    b.read_until(b"\x03", extra=1)
    b.send(Command.break_().to_bytes(), gap=2.0)
    b.baud(300)
    assert b.sign_on() == IDENT


def test_password_partial_blocks_and_write_on_the_mt174() -> None:
    b = Bench("mt174")
    assert b.sign_on() == b"/ISk5MT174-0002\r\n"
    ack(b, "051", switch=9600)
    assert b.read_until(b"\x03", extra=1) == Command.password("00000000", "0").to_bytes()
    b.send(Command.read("1.8.0").to_bytes(), gap=0.03)
    assert b.read_until(b"\x03", extra=1) == b"\x02(ERROR)\x03Z"  # no password yet
    b.send(Command.password("00000000").to_bytes(), gap=0.03)
    assert b.read_until(b"\x06") == b"\x06"
    b.send(Command.read("1.8.0").to_bytes(), gap=0.03)
    msg = DataMessage.from_bytes(b.read_until(b"\x03", extra=1))
    assert msg.block.startswith(b"1.8.0(0692930.505*kWh)")
    b.send(Command.write("1-0:0.9.1*255", "101010").to_bytes(), gap=0.03)
    assert b.read_until(b"\x06") == b"\x06"
    # R3: a long register in partial blocks of 64 bytes is not needed; read a short one with R3
    b.send(Command.read("0-0:C.1.0*255", partial_blocks=True).to_bytes(), gap=0.03)
    assert DataMessage.from_bytes(b.read_until(b"\x03", extra=1)).block == b"0-0:C.1.0*255(62807889)"


def test_partial_blocks_with_ack_and_nak() -> None:
    b = Bench("mt174")
    object.__setattr__(b.meter.profile, "partial_block_size", 8)
    b.sign_on()
    ack(b, "051", switch=9600)
    b.read_until(b"\x03", extra=1)
    b.send(Command.password("00000000").to_bytes(), gap=0.03)
    b.read_until(b"\x06")
    b.send(Command.read("1-0:1.8.0*255", partial_blocks=True).to_bytes(), gap=0.03)
    first = b.read_until(b"\x04", extra=1)
    assert DataMessage.from_bytes(first).partial and len(DataMessage.from_bytes(first).block) == 8
    b.send(b"\x15", gap=0.02)
    assert b.read_until(b"\x04", extra=1) == first  # NAK: the same block again
    blocks = [DataMessage.from_bytes(first).block]
    for _ in range(10):
        b.send(b"\x06", gap=0.02)
        b.wait(0.3)
        # the block the meter sent in answer to the ACK
        raw = next(e.data for e in reversed(b.link.events) if e.kind == "data" and e.dir == "m2r")
        msg = DataMessage.from_bytes(raw)
        blocks.append(msg.block)
        if not msg.partial:
            break
    assert b"".join(blocks) == b"1-0:1.8.0*255(0692930.505*kWh)"
    assert len(blocks) == 4


def test_mode_d_pushes_without_being_asked() -> None:
    b = Bench("ebz_dd3")
    b.baud(9600)
    data = b.wait(3.5)
    telegrams = data.split(b"/EBZ5DD3BZ06ETA_107\r\n\r\n")
    assert len(telegrams) >= 4 and telegrams[0] == b""
    r = decode_readout(b"/EBZ5DD3BZ06ETA_107\r\n\r\n" + telegrams[1])
    assert r.mode_d and r.data.find("1.8.0") is not None


def test_modes_a_and_b_from_profile_files() -> None:
    a = Bench("mode_a")
    a.send(b"/?!\r\n")
    data = a.read_until(b"\x03", extra=1)
    r = decode_readout(data)
    assert r.identification is not None and r.identification.mode == "A" and r.bcc_valid
    b = Bench("mode_b")
    assert b.sign_on() == b"/LUGCUH50\r\n"
    b.baud(2400)
    msg = DataMessage.from_bytes(b.read_until(b"\x03", extra=1))
    assert msg.block == b"6.8(0029.055*MWh)9.21(64030874)\r\n!\r\n"


def test_registers_move_consistently_and_a_seed_reproduces_them() -> None:
    def read_all(seed: int, after: float) -> dict[str, float]:
        b = Bench(seed=seed, moving=True)
        b.wait(after)
        block = parse_data_block(b.meter.readout_block())
        return {ds.address or "": float(ds.values[0].value) for _, ds in block.data_sets if ds.unit == "kWh"}

    first, later, next_day = read_all(7, 5.0), read_all(7, 65.0), read_all(7, 86400.0)
    assert first == read_all(7, 5.0)
    assert later != first  # two reads a minute apart differ
    assert read_all(8, 65.0) != later  # another seed, another household
    assert later["1.8.0"] >= first["1.8.0"] and later["2.8.0"] >= first["2.8.0"]
    assert next_day["1.8.0"] > later["1.8.0"] + 1.0  # a day of household load is imported ...
    assert next_day["2.8.0"] > later["2.8.0"] + 1.0  # ... and a midsummer day of solar exported
    for regs in (first, later, next_day):
        assert abs(regs["1.8.0"] - regs["1.8.1"] - regs["1.8.2"]) < 0.0015
        assert abs(regs["2.8.0"] - regs["2.8.1"] - regs["2.8.2"]) < 0.0015


@settings(max_examples=60, deadline=None)
@given(st.binary(max_size=120), st.sampled_from([300, 1200, 9600]))
def test_garbage_never_breaks_the_meter(junk: bytes, baud: int) -> None:
    b = Bench()
    b.baud(baud)
    b.send(junk)
    b.wait(3.0)
    b.baud(300)
    b.wait(65.0)  # whatever state the junk left, the inactivity timeout ends it
    assert b.sign_on() == IDENT


def test_a_flood_during_the_readout_is_ignored() -> None:
    b = Bench()
    b.sign_on()
    ack(b, "050", switch=9600)
    b.send(b"\xff" * 50, gap=0.35)
    data = readout(b)
    assert DataMessage.from_bytes(data[data.index(b"\x02") :]).bcc_valid


def test_parity_bit_link_carries_7e1_in_bit_7() -> None:
    from me162.protocol.line import add_parity, strip_parity

    b = Bench(parity_bit=True)
    b.configure(LineSettings(300, 8, "N", 1))
    b.send(add_parity(b"/?!\r\n"))
    got = b.read_until(add_parity(b"\r\n"))
    assert got == add_parity(IDENT) and strip_parity(got) == IDENT
    b.wait(10.0)  # the fallback readout
    b.send(b"/?!\r\n", gap=1.0)  # without the parity bit: parity errors, no answer
    assert b.wait(3.0) == b""
