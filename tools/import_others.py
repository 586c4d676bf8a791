"""Maintainer tool, part two: every capture that is not an ME162 session log becomes a
format-v1 capture with synthesized timing and an expected-values sidecar.

    python tools/import_others.py SOURCE_DIR

Published bytes are kept exactly (wrong BCCs, parity bits, echoes, junk, LF-only line ends);
only notations that stand for bytes are decoded (``\\x03``, ``<3>``, ``<\\r><\\n>``, hex
dumps), and each capture says which in ``provenance.conversion``.  Sources that are not a byte
stream at all (annotated or prose text, schematic placeholders, documentation) become captures
whose content is kept in notes, marked not replayable.  Timing is synthesized from the speeds
(``timing: synthesized``): none of these sources recorded any.
"""

from __future__ import annotations

import ast
import json
import re
import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))
from import_captures import split

from me162.protocol.bcc import xor7
from me162.protocol.datablock import DataBlock, parse_data_block
from me162.protocol.errors import ProtocolError
from me162.protocol.readout import decode_readout

Chunk = tuple[str, bytes, int]  # direction, bytes, baud


def raw_body(body: str) -> bytes:
    return body.encode("latin-1")


def py_literals(body: str, pattern: str = r"=\s*(b?'.*')\s*$") -> list[bytes]:
    out = []
    for line in body.splitlines():
        m = re.search(pattern, line.strip())
        if m:
            value = ast.literal_eval(m[1])
            out.append(value if isinstance(value, bytes) else value.encode("latin-1"))
    return out


def convert(name: str, header: dict[str, str], body: str) -> tuple[list[Chunk], str, list[str], str | None]:
    """(chunks, conversion, notes, why not replayable or None)."""
    push = "a push: the meter sends unasked, there is no request to answer"
    if name in ("AM550_DSMR5_1",):
        return [("m2r", raw_body(body), 115200)], "bytes as published (DSMR 5, 115200 8N1)", [], push
    if name in ("EASYMETER_Q3DA_1", "EBZ_DD3_1", "HAGER_EHZ_1", "KAMSTRUP_162_DSMR_1", "MT382_DSMR_1"):
        return [("m2r", raw_body(body), 9600)], "bytes as published", [], push
    if name == "EBZ_DD3_2":
        return (
            [("m2r", raw_body(body), 9600)],
            "bytes as published, including the 'EOM' line the reader added and the LF-only end",
            [],
            push,
        )
    if name in ("UH50_2", "UH50_T550_1"):
        return (
            [("m2r", raw_body(body), 2400)],
            "bytes as published (LF line ends, as the source stored them)",
            [],
            "a data block without the exchange that produced it",
        )
    if name == "ME172_1":
        data = raw_body(body)
        data = data[data.index(b"/ISk5") :]
        return (
            [("r2m", b"/?!\r\n", 300), ("m2r", data, 300)],
            "bytes from '---- Capture 1 ----' on (the author's regex notes before it dropped); the request /?! is the one the README says was sent, not captured",
            ["request synthesized from the README; the BCC byte after ETX is missing from the capture"],
            "the BCC byte is missing",
        )
    if name == "LGZ_E350_ZMF100AC_1":
        data = b"".join(bytes.fromhex(h) for h in re.findall(r'writes_hex\(fd, "([0-9a-f]+)"\)', body))
        return (
            [("m2r", data, 300)],
            "hex of the writes_hex() calls",
            ["CR became LF in the source's tty (0a 0a line ends); ETX and BCC not captured"],
            "ETX and BCC missing",
        )
    if name == "LGZ_ZMD_PARITY_1":
        data = b"".join(ast.literal_eval(ln.strip()) for ln in body.splitlines() if ln.startswith("b'"))
        return (
            [("m2r", data, 300)],
            "one Python bytes literal per line, joined; bit 7 carries the even parity (7E1 read as 8N1)",
            [],
            "a fragment of a readout",
        )
    if name in ("EMH_LZQJ_1", "METCOM_1"):
        chunks = [("m2r", b, 9600) for b in py_literals(body)]
        return (
            chunks,
            "Python string literals evaluated; each literal is one chunk; '<CR><LF>' and '^M' text artefacts of the source kept as published",
            [],
            "payloads of R5 replies without their commands",
        )
    if name in ("KOHLER_TR_1", "LUNA_TR_1", "MAKEL_TR_1", "VIKO_TR_1"):
        m = re.search(r"'''\n?(.*?)'''", body, re.S)
        text = m[1] if m else body
        data = text.replace("<3>", "\x03").encode("latin-1")
        if not data.startswith(b"\x02"):
            data = b"\x02" + data if b"\x03" in data else data
        return (
            [("m2r", data, 9600)],
            "triple-quoted simulator string as published (LF line ends, the simulator's indentation); '<3>' decoded as ETX; STX added where an ETX closes the block",
            [],
            "simulator data without the exchange",
        )
    if name == "MT171_1":
        lits = py_literals(body, r'=\s*(".*")\s*$')
        return (
            [
                ("r2m", b"/?!\r\n", 300),
                ("m2r", lits[0], 300),
                ("r2m", b"\x06000\r\n", 300),
                ("m2r", lits[1], 300),
            ],
            "Python string literals evaluated; the request and ACK 000 are the ones the script sends (not captured); the block has no STX, as published",
            ["test data edited by its author: the published BCC does not verify"],
            "the block's STX is missing and its BCC is wrong",
        )
    if name == "MT174_1":
        lines = [ln.strip() for ln in body.splitlines() if re.match(r"\s+\d", ln)]
        return (
            [("m2r", ("\r\n".join(lines) + "\r\n").encode(), 9600)],
            "docstring lines without their indentation, joined with CR LF (the reader had stripped STX, ident, '!' and ETX/BCC)",
            [],
            "a data block without the exchange",
        )
    if name == "MT174_2":
        lit = re.search(r"b'(.*)'", body.splitlines()[0])
        assert lit
        data = ast.literal_eval("b'" + lit[1] + "'")
        return (
            [("r2m", b"/?!\r\n", 9600), ("m2r", data, 9600)],
            "Python bytes literal evaluated; the request is the one the script sends at 9600 Bd (not captured)",
            [],
            None,
        )
    if name == "ME162_13":
        lits = [ast.literal_eval(x) for x in re.findall(r"(b'[^']*')", body)]
        ident = next(b for b in lits if b.startswith(b"/ISK"))
        block = b"".join(b for b in lits if b.startswith((b"\x02", b"0.0.0", b"1.8", b"2.8", b"F.F")))
        return (
            [
                ("r2m", b"/?!\r\n", 300),
                ("m2r", ident, 300),
                ("r2m", b"\x06050\r\n", 300),
                ("m2r", block, 9600),
            ],
            "bytes literals of an early emulator evaluated (no ETX, placeholder BCC 0xFE)",
            ["semi-synthetic: an emulator, not a meter"],
            "malformed frame (no ETX)",
        )
    if name == "ME162_14":
        lines = [ln.split("// ", 1)[1] for ln in body.splitlines() if "// " in ln and "<" in ln]
        text = "".join(lines).replace("<\\r><\\n>", "\r\n").replace("<2>", "\x02").replace("<3>", "\x03")
        return (
            [("r2m", b"/?!\r\n", 300), ("m2r", text.encode(), 300)],
            "marker notation decoded (<2> STX, <3> ETX, <\\r><\\n> CR LF); the request is the driver's",
            ["values zeroed by the author after the BCC was taken"],
            "template: the BCC does not verify",
        )
    if name in ("ME162_10", "ME162_11", "ME162_12"):
        payload = "".join(ln.strip() for ln in body.splitlines() if ln.startswith("      "))
        data = payload.replace("\\r\\n", "\r\n").encode()
        return (
            [("m2r", data, 9600)],
            "MQTT payload text: README indentation and wrapping removed, literal \\r\\n decoded (STX/ETX/BCC were stripped by the publisher)",
            [],
            "a payload re-published over MQTT",
        )
    if name == "LOGAREX_LK13BE_2":
        text = "\n".join(ln for ln in body.splitlines() if "<\\r><\\n>" in ln or ln.startswith("!"))
        data = text.replace("<\\r><\\n>\n", "\r\n").replace("<\\r><\\n>", "\r\n").encode("latin-1")
        return (
            [("m2r", data, 9600)],
            "angle notation <\\r><\\n> decoded inside the C comment; ident masked by the author",
            [],
            push,
        )
    if name == "IDENTS_smartmeter-obis_1":
        idents = [
            ast.literal_eval("'" + m + "'").encode("latin-1")
            for m in re.findall(r"Buffer\.from\('(/[^']*)'\)", body)
        ]
        return (
            [("m2r", i, 300) for i in idents],
            "the identification lines of the JavaScript tests (their data parts are synthetic and left out)",
            [],
            "identification lines only",
        )
    # not byte streams: keep the text as notes
    return [], "not a byte stream: the published text is kept in a note", [body], "not a recording of bytes"


def expected_for(chunks: list[Chunk]) -> dict[str, object]:
    m2r = b"".join(d for direction, d, _ in chunks if direction == "m2r")
    start = m2r.find(b"/")
    for candidate in (m2r[start:] if start >= 0 else m2r, m2r):
        try:
            r = decode_readout(candidate, verify_bcc=False)
        except ProtocolError:
            continue
        return {
            "identification": None if r.identification is None else r.identification.raw,
            "bcc": _bcc_verdict(m2r) if not r.bcc_present else ("valid" if r.bcc_valid else "mismatch"),
            "data_sets": _sets(r.data),
            "registers": {},
        }
    # not a whole readout: the data sets the lenient grammar finds, for what they are worth
    text = bytes(b & 0x7F for b in m2r).replace(b"\x02", b"").replace(b"\x03", b"")
    return {
        "identification": None,
        "bcc": _bcc_verdict(m2r),
        "data_sets": _sets(parse_data_block(text)),
        "registers": {},
        "decodable": False,
    }


def _sets(block: DataBlock) -> dict[str, str]:
    return {
        ds.address or f"(line {n})": "".join(v.to_text() for v in ds.values)[1:-1]
        for n, ds in block.data_sets
    }


def _bcc_verdict(m2r: bytes) -> str:
    """valid/mismatch for a block closed by ETX + BCC (from after STX, or after the ident line
    when the STX was lost), none when there is no ETX followed by a byte."""
    end = m2r.find(b"\x03")
    if end < 0 or end + 1 >= len(m2r):
        return "none"
    start = m2r.find(b"\x02")
    if start < 0 or start > end:
        ident_end = m2r.find(b"\r\n") + 2 if m2r.startswith(b"/") else 0
        start = ident_end - 1
    return "valid" if xor7(m2r[start + 1 : end + 1]) == m2r[end + 1] & 0x7F else "mismatch"


def main() -> None:
    src = Path(sys.argv[1])
    out = Path(__file__).resolve().parent.parent / "fixtures" / "captures"
    for path in sorted(src.glob("*.txt")):
        name = path.stem
        if re.fullmatch(r"ME162_[1-9]", name):
            continue
        header, body = split(path)
        chunks, conversion, notes, not_replayable = convert(name, header, body)
        source = header.get("source", "")
        commit = re.search(r"/blob/([0-9a-f]{7,40})/|@([0-9a-f]{7,40})|commit ([0-9a-f]{7,40})", source)
        url = re.search(r"https?://\S+", source)
        head = {
            "format": "me162-capture",
            "version": 1,
            "origin": "real",
            "meter": {"notes": header.get("meter", ""), "ident": header.get("ident", "")},
            "link": {},
            "line": {"baud": chunks[0][2] if chunks else 300, "bits": 7, "parity": "E", "stop": 1},
            "start": None,
            "timing": "synthesized",
            "redactions": [],
            "provenance": {
                "source": url[0].rstrip(").,;") if url else f"https://github.com/search?q={name}",
                "source_text": source,
                "commit": next((g for g in commit.groups() if g), None) if commit else None,
                "exchange": header.get("exchange", ""),
                "conversion": conversion,
                "timing": "none in the source: times are made up from the speeds (10 bits a character, 0.3 s reactions)",
            },
        }
        events: list[dict[str, object]] = []
        t = 0.0
        for text in notes:
            events.append({"t": 0.0, "type": "note", "text": text})
        for direction, data, baud in chunks:
            events.append(
                {"t": round(t, 6), "type": "data", "dir": direction, "hex": data.hex(), "baud": baud}
            )
            t += len(data) * 10 / baud + 0.3
        lines = [json.dumps(head, separators=(",", ":"), ensure_ascii=False)] + [
            json.dumps(e, separators=(",", ":"), ensure_ascii=False) for e in events
        ]
        (out / f"{name}.capture.jsonl").write_text("\n".join(lines) + "\n", encoding="utf-8")
        expected = expected_for(chunks)
        expected["replayable"] = not_replayable is None
        if not_replayable:
            expected["not_replayable_because"] = not_replayable
        (out / f"{name}.expected.json").write_text(
            json.dumps(expected, indent=1, ensure_ascii=False) + "\n", encoding="utf-8"
        )
        print(f"{name}: {len(chunks)} chunk(s), bcc {expected['bcc']}, replayable {expected['replayable']}")


if __name__ == "__main__":
    main()
