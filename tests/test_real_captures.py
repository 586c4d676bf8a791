"""Every real frame and identification from the published captures parses; the BCCs that
verify do, and the ones published wrong are rejected with the BCC error."""

from __future__ import annotations

from pathlib import Path

import pytest

from me162.protocol import (
    BccError,
    Command,
    DataMessage,
    Identification,
    OptionSelect,
    RequestMessage,
    decode_readout,
    parse_data_block,
)
from me162.protocol.capture import read_capture
from me162.protocol.line import check_and_strip_parity

CAPTURES = Path(__file__).resolve().parent.parent / "fixtures" / "captures"
LOGS = sorted(CAPTURES.glob("ME162_[1-9].capture.jsonl"))  # the session logs


def frames() -> list[tuple[str, int, bytes]]:
    out = []
    for path in LOGS:
        for n, e in enumerate(read_capture(path).data_events()):
            out.append((path.name.split(".")[0], n, e.data))
    return out


def test_the_logs_are_there() -> None:
    assert len(LOGS) == 9
    assert len(frames()) > 150


@pytest.mark.parametrize(("capture", "n", "raw"), frames(), ids=lambda v: str(v)[:24])
def test_every_logged_frame_parses_and_its_bcc_verifies(capture: str, n: int, raw: bytes) -> None:
    first = raw[0]
    if first == 0x01:
        c = Command.from_bytes(raw)
        assert c.command in "PRB"
    elif first == 0x02:
        DataMessage.from_bytes(raw)
    elif raw.startswith(b"/?"):
        RequestMessage.from_bytes(raw)
    elif first == 0x2F:
        assert Identification.from_bytes(raw).raw == "/ISK5ME162-0033"
    elif first == 0x06 and len(raw) > 1:
        assert OptionSelect.from_bytes(raw).z == "5"
    else:
        assert raw in (b"\x06", b"\x15")


def test_p0_and_r1_of_the_me162() -> None:
    all_frames = {raw for _, _, raw in frames()}
    assert b"\x01P0\x02()\x03`" in all_frames
    assert b"\x01R1\x021.8.0()\x03Z" in all_frames
    assert b"\x02(15:49:49)\x03\x06" in all_frames  # a BCC that is the ACK byte
    assert b"\x02(15:48:22)\x03\n" in all_frames  # a BCC that is LF
    assert b"\x15" in all_frames  # the NAK after the reader ACKed the P0


ME162_READOUTS = sorted(CAPTURES.glob("ME162_[0-9].readout.bin"))


@pytest.mark.parametrize("path", ME162_READOUTS, ids=lambda p: p.stem)
def test_me162_readouts_decode(path: Path) -> None:
    r = decode_readout(path.read_bytes())
    assert r.identification is not None and r.identification.raw == "/ISK5ME162-0033"
    assert r.bcc_present and r.bcc_valid and r.bcc_received == 0x4C
    assert [ds.address for _, ds in r.data.data_sets] == [
        "C.1.0", "0.0.0", "1.8.0", "1.8.1", "1.8.2", "2.8.0", "2.8.1", "2.8.2", "F.F",
    ]  # fmt: skip
    total = r.data.find("1.8.0")
    assert total is not None and total.unit == "kWh" and len(total.values[0].value) == 11
    assert r.data.end_seen


@pytest.mark.parametrize(
    ("name", "computed", "received"),
    [("ME162_14", 0x4C, 0x4B), ("MT171_1", 0x07, 0x10), ("KOHLER_TR_1", 0x4E, 0x7D)],
)
def test_published_wrong_bccs_are_rejected(name: str, computed: int, received: int) -> None:
    raw = (CAPTURES / f"{name}.readout.bin").read_bytes()
    with pytest.raises(BccError) as e:
        decode_readout(raw)
    assert (e.value.computed, e.value.received) == (computed, received)
    r = decode_readout(raw, verify_bcc=False)
    assert r.bcc_valid is False and r.data.data_sets


def test_mt174_readout_with_full_obis_codes() -> None:
    r = decode_readout((CAPTURES / "MT174_2.readout.bin").read_bytes())
    assert r.identification is not None and r.identification.reaction_time_ms == 20
    ds = r.data.find("1.8.0")
    assert ds is not None and ds.address == "1-0:1.8.0*255" and ds.value == "0000502.853"
    assert r.bcc_valid


@pytest.mark.parametrize("name", ["EBZ_DD3_1", "EASYMETER_Q3DA_1", "HAGER_EHZ_1"])
def test_mode_d_pushes_decode_without_bcc(name: str) -> None:
    r = decode_readout((CAPTURES / f"{name}.readout.bin").read_bytes())
    assert r.mode_d and not r.bcc_present and r.data.end_seen
    assert r.data.find("1.8.0") is not None


def test_negative_values_and_seven_decimals_of_the_easymeter() -> None:
    r = decode_readout((CAPTURES / "EASYMETER_Q3DA_1.readout.bin").read_bytes())
    power = r.data.find("1-0:21.7.255*255")
    assert power is not None and power.values[0].number() == -73.69


def test_parity_fragment_of_the_zmd_over_tcp() -> None:
    raw = (CAPTURES / "LGZ_ZMD_PARITY_1.readout.bin").read_bytes()
    assert any(b & 0x80 for b in raw)
    text = check_and_strip_parity(raw)
    block = parse_data_block(text)
    assert block.lines[1].raw == "7.8.0*00(0000.0000*kvarh)"
    assert block.lines[1].data_sets[0].unit == "kvarh"


# Identification lines of every capture, with what they mean, worked out by hand.
IDENTS = [
    ("/ISK5ME162-0033", "ISK", "C", 9600, 200, (), "ME162-0033"),
    ("/ISK5ME162-0012", "ISK", "C", 9600, 200, (), "ME162-0012"),
    ("/ISk5MT174-0002", "ISk", "C", 9600, 20, (), "MT174-0002"),
    ("/ISk5MT171-0033", "ISk", "C", 9600, 20, (), "MT171-0033"),
    ("/ISk5ME172-0000", "ISk", "C", 9600, 20, (), "ME172-0000"),
    ("/ISK5\\2MT372-3107", "ISK", "E", 9600, 200, ("2",), "MT372-3107"),
    ("/ISK5\\2M550T-1012", "ISK", "E", 9600, 200, ("2",), "M550T-1012"),
    ("/ISk5\\MT382-1003", "ISk", "C", 9600, 20, ("M",), "T382-1003"),
    ("/EBZ5DD3BZ06ETA_107", "EBZ", "C", 9600, 200, (), "DD3BZ06ETA_107"),
    ("/ESY5Q3DA1024 V3.03", "ESY", "C", 9600, 200, (), "Q3DA1024 V3.03"),
    ("/HAG5eHZ010C_EHZ1vA02", "HAG", "C", 9600, 200, (), "eHZ010C_EHZ1vA02"),
    ("/KMP5 KA6U001660297912", "KMP", "C", 9600, 200, (), " KA6U001660297912"),
    ("/LGZ4ZMF100AC.M27", "LGZ", "C", 4800, 200, (), "ZMF100AC.M27"),
    ("/LOG5LK13BE803339", "LOG", "C", 9600, 200, (), "LK13BE803339"),
    ("/LUGCUH50", "LUG", "B", 2400, 200, (), "UH50"),
    ("/ELS5\\@V9.30 ", "ELS", "C", 9600, 200, ("@",), "V9.30 "),
    ("/ACE0\\3k260V01.18", "ACE", "C", 300, 200, ("3",), "k260V01.18"),
    ("/LGZ5\\2ZMD4104407.B31", "LGZ", "E", 9600, 200, ("2",), "ZMD4104407.B31"),
    ("/MCS5\\@V0050710000051", "MCS", "C", 9600, 200, ("@",), "V0050710000051"),
    ("/EMH4\\@01LZQJL0013G", "EMH", "C", 4800, 200, ("@",), "01LZQJL0013G"),
    ("/EMH5\\@D4EM4TWII001--", "EMH", "C", 9600, 200, ("@",), "D4EM4TWII001--"),
    ("/APA5\\2NORAX30", "APA", "E", 9600, 200, ("2",), "NORAX30"),
    ("/KAM MC", "KAM", "A", 300, 200, (), "MC"),
]


@pytest.mark.parametrize(("line", "man", "mode", "baud", "tr", "enhanced", "ident"), IDENTS)
def test_identification_lines_of_the_captures(
    line: str, man: str, mode: str, baud: int, tr: int, enhanced: tuple[str, ...], ident: str
) -> None:
    i = Identification.from_line(line)
    assert (i.manufacturer, i.mode, i.baud, i.reaction_time_ms) == (man, mode, baud, tr)
    assert (i.enhanced, i.ident, i.raw) == (enhanced, ident, line)
    assert i.to_bytes() == line.encode("latin-1") + b"\r\n"
