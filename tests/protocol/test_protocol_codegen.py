"""The generated artefacts (docs tables, vectors, C header) match the schema and work."""

from __future__ import annotations

import json
import shutil
import subprocess
from pathlib import Path

import pytest
from cobs import cobs

from protocol import (
    BY_NAME,
    SCHEMA_HASH,
    StreamDecoder,
    canonical_json,
    codegen,
    encode,
    frame_body,
    message_to_dict,
)
from protocol.schema import HEADER_BYTES, MESSAGES, MSG_ID, UNSEQUENCED, Move, MoveMode

GCC = shutil.which("gcc") or shutil.which("cc")
CFLAGS = ["-std=c99", "-Wall", "-Wextra", "-Werror", "-pedantic"]


def test_docs_tables_are_up_to_date() -> None:
    text = codegen.DOCS_PATH.read_text()
    current = codegen.generated_part(text)
    assert current is not None, f"{codegen.DOCS_PATH} lost its generated-table markers"
    assert current == codegen.docs_tables(), (
        f"docs/protocol.md is stale: run `{codegen.REGENERATE['docs']}`"
    )


def test_docs_cover_every_message() -> None:
    text = codegen.DOCS_PATH.read_text()
    for m in MESSAGES:
        assert f"#### 0x{MSG_ID[m]:02X} {codegen.wire_name(m)}" in text


def test_vectors_file_is_up_to_date() -> None:
    assert codegen.VECTORS_PATH.read_text() == codegen.vectors_json(), (
        f"protocol/vectors.json is stale: run `{codegen.REGENERATE['vectors']}`"
    )


def _vectors(key: str = "vectors") -> list[dict[str, object]]:
    data = json.loads(codegen.VECTORS_PATH.read_text())
    assert data["schema_hash"] == f"0x{SCHEMA_HASH:08X}"
    vectors: list[dict[str, object]] = data[key]
    return vectors


def test_vectors_show_raw_and_the_leading_delimiter() -> None:
    for v in _vectors() + _vectors("framing_vectors"):
        frame = bytes.fromhex(str(v["hex"]))
        assert frame[-1] == 0 and 0 not in frame[:-1], v["name"]
        assert v["wire"] == "00" + str(v["hex"]), v["name"]
        assert cobs.decode(frame[:-1]).hex() == v["raw"], v["name"]


def test_unsequenced_vectors_carry_seq_0() -> None:
    unsequenced = {codegen.wire_name(m) for m in UNSEQUENCED}
    assert unsequenced == {"HEARTBEAT", "TELEMETRY", "EVENT"}
    seen = [v for v in _vectors() if v["message"] in unsequenced]
    assert len(seen) >= 9
    assert all(v["seq"] == 0 for v in seen), [v["name"] for v in seen if v["seq"] != 0]
    sequenced = [v for v in _vectors() if v["message"] not in unsequenced]
    assert all(v["seq"] != 0 for v in sequenced)


def test_worked_examples_print_both_delimiters() -> None:
    text = codegen.DOCS_PATH.read_text()
    wires = [line for line in text.splitlines() if line.startswith("wire    ")]
    assert len(wires) >= 10
    assert all(line.startswith("wire    00 ") and line.endswith(" 00") for line in wires)


@pytest.mark.parametrize("n", [1, 2, 253, 254, 255, 256, 507, 508, 509, 259, 1000])
def test_cobs_length_formula(n: int) -> None:
    """Encoded length n + 1 + floor((n - 1) / 254), exact without 0x00 in the data, an
    upper bound with (protocol §1); the minimal form: no empty block after a full one."""
    assert len(cobs.encode(bytes([0x55]) * n)) == n + 1 + (n - 1) // 254
    for zero_at in (0, n // 2, n - 1):
        data = bytearray([0x55]) * n
        data[zero_at] = 0
        assert len(cobs.encode(bytes(data))) <= n + 1 + (n - 1) // 254
    assert cobs.encode(b"\x01" * 254) == b"\xff" + b"\x01" * 254
    # decoders accept the non-minimal form with an empty final block
    assert cobs.decode(b"\xff" + b"\x01" * 254 + b"\x01") == b"\x01" * 254


def test_framing_vectors_runs_of_254() -> None:
    vectors = {str(v["name"]): v for v in _vectors("framing_vectors")}
    whole = vectors["cobs_run_254_whole_frame"]
    assert len(bytes.fromhex(str(whole["raw"]))) == 254
    assert str(whole["hex"]).startswith("ff") and len(bytes.fromhex(str(whole["hex"]))) == 256
    at_end = bytes.fromhex(str(vectors["cobs_run_254_at_frame_end"]["raw"]))
    assert at_end[-255] == 0 and 0 not in at_end[-254:]
    then_zero = bytes.fromhex(str(vectors["cobs_run_254_then_zero"]["raw"]))
    assert 0 not in then_zero[:254] and then_zero[254] == 0
    for v in vectors.values():
        frame = bytes.fromhex(str(v["hex"]))
        raw = bytes.fromhex(str(v["raw"]))
        if v["minimal"]:
            assert frame_body(raw[:-4]) == frame, v["name"]
        dec = StreamDecoder()
        assert dec.feed(frame) == []
        assert dec.stats.unknown_id == 1 and dec.stats.frames_bad == 1, v["name"]


def test_every_vector_decodes_to_its_fields() -> None:
    for v in _vectors():
        frame = bytes.fromhex(str(v["hex"]))
        dec = StreamDecoder()
        frames = dec.feed(frame)
        assert len(frames) == 1, v["name"]
        f = frames[0]
        assert (f.seq, f.flags) == (v["seq"], v["flags"]), v["name"]
        assert codegen.wire_name(type(f.message)) == v["message"]
        assert message_to_dict(f.message) == v["fields"], v["name"]
        cls = BY_NAME[type(f.message).__name__]
        rebuilt = codegen.build_message(cls, dict(v["fields"]))
        assert encode(rebuilt, f.seq, f.flags) == frame


def test_vectors_cover_every_message_with_edges_and_zero_bytes() -> None:
    vectors = _vectors()
    names = {str(v["name"]) for v in vectors}
    for m in MESSAGES:
        base = codegen.wire_name(m).lower()
        assert {f"{base}_min", f"{base}_max", f"{base}_random"} <= names
    payloads = [cobs.decode(bytes.fromhex(str(v["hex"]))[:-1])[HEADER_BYTES:-4] for v in vectors]
    assert any(p.count(0) >= 4 for p in payloads)


# ---------------------------------------------------------------- C header

C_PROGRAM = r"""
#include <stdio.h>
#include <stdlib.h>
#include "needle_protocol.h"

static int from_hex(const char *s, uint8_t *out, size_t cap)
{
    size_t n = 0;
    unsigned v;
    while (s[0] && s[1] && s[0] != '\n') {
        if (n == cap || sscanf(s, "%2x", &v) != 1) return -1;
        out[n++] = (uint8_t)v;
        s += 2;
    }
    return (int)n;
}

int main(int argc, char **argv)
{
    uint8_t payload[ND_MAX_PAYLOAD_BYTES], frame[ND_MAX_FRAME_BUFFER_BYTES];
    uint8_t raw[ND_MAX_FRAME_BUFFER_BYTES], again[ND_MAX_FRAME_BUFFER_BYTES];
    char line[1024];
    size_t n, i;
    if (nd_crc32((const uint8_t *)"123456789", 9) != ND_CRC_CHECK) return 2;
    if (argc > 1 && strcmp(argv[1], "decode") == 0) { /* print each frame's raw bytes */
        while (fgets(line, sizeof line, stdin)) {
            int len = from_hex(line, frame, sizeof frame), plen;
            if (len < 2) { puts("bad"); continue; }
            plen = nd_frame_decode(frame, (size_t)len - 1, raw);
            if (plen < 0) { puts("bad"); continue; }
            for (i = 0; i < (size_t)plen + ND_HEADER_BYTES + ND_CRC_BYTES; ++i)
                printf("%02x", raw[i]);
            printf("\n");
        }
        return 0;
    }
    if (argc > 1) { /* re-frame every vector read from stdin; print ok/bad per line */
        while (fgets(line, sizeof line, stdin)) {
            int len = from_hex(line, frame, sizeof frame), plen;
            if (len < 2) { puts("bad"); continue; }
            plen = nd_frame_decode(frame, (size_t)len - 1, raw);
            if (plen < 0) { puts("bad"); continue; }
            n = nd_frame_encode(raw[1], raw[2], nd_get_u16(raw + 3), raw + ND_HEADER_BYTES,
                                (size_t)plen, again);
            puts(n == (size_t)len && memcmp(again, frame, n) == 0 ? "ok" : "bad");
        }
        return 0;
    }
    {
        struct nd_move m, back;
        m.mode = ND_MOVE_MODE_RELATIVE;
        m.target_um = -500;
        m.speed_um_s = 256;
        n = nd_move_pack(&m, payload);
        if (n != ND_MOVE_PAYLOAD_BYTES || !nd_move_unpack(&back, payload, n)) return 3;
        if (back.target_um != -500 || back.speed_um_s != 256) return 4;
        n = nd_frame_encode(ND_MOVE_ID, 0, 0xBEEF, payload, n, frame);
        for (i = 0; i < n; ++i) printf("%02x", frame[i]);
        printf("\n");
    }
    return 0;
}
"""


@pytest.fixture(scope="module")
def c_program(tmp_path_factory: pytest.TempPathFactory) -> Path:
    if GCC is None:
        pytest.skip("no C compiler (gcc/cc) on PATH: cannot check the generated C header")
    d = tmp_path_factory.mktemp("c")
    (d / "needle_protocol.h").write_text(codegen.c_header())
    (d / "main.c").write_text(C_PROGRAM)
    exe = d / "nd_test"
    res = subprocess.run(
        [GCC, *CFLAGS, "-o", str(exe), str(d / "main.c")], capture_output=True, text=True
    )
    assert res.returncode == 0, res.stderr
    return exe


def test_c_header_compiles_alone_with_strict_warnings(tmp_path: Path) -> None:
    if GCC is None:
        pytest.skip("no C compiler (gcc/cc) on PATH: cannot check the generated C header")
    header = tmp_path / "needle_protocol.h"
    header.write_text(codegen.c_header())
    res = subprocess.run(
        [GCC, *CFLAGS, "-fsyntax-only", "-x", "c", str(header)], capture_output=True, text=True
    )
    assert res.returncode == 0, res.stderr
    assert f"#define ND_SCHEMA_HASH 0x{SCHEMA_HASH:08X}u" in header.read_text()


def test_frame_built_in_c_is_accepted_by_python(c_program: Path) -> None:
    res = subprocess.run([str(c_program)], capture_output=True, text=True, timeout=30)
    assert res.returncode == 0, f"C self-check failed with {res.returncode}"
    frame = bytes.fromhex(res.stdout.strip())
    frames = StreamDecoder().feed(frame)
    assert [(f.seq, f.flags, f.message) for f in frames] == [
        (0xBEEF, 0, Move(MoveMode.RELATIVE, -500, 256))
    ]
    assert frame == encode(Move(MoveMode.RELATIVE, -500, 256), seq=0xBEEF)


def _run_c(c_program: Path, mode: str, lines: list[str]) -> list[str]:
    res = subprocess.run(
        [str(c_program), mode],
        input="\n".join(lines) + "\n",
        capture_output=True,
        text=True,
        timeout=30,
    )
    assert res.returncode == 0
    return res.stdout.split()


def test_c_decodes_and_reframes_every_vector(c_program: Path) -> None:
    """Every minimal frame (messages, and the COBS runs of 254) decodes and is encoded
    again byte for byte by the C header; every frame, the non-minimal one too, decodes
    to its raw bytes."""
    framing = _vectors("framing_vectors")
    minimal = [str(v["hex"]) for v in _vectors() + framing if v.get("minimal", True)]
    assert len(minimal) > len(_vectors())
    assert _run_c(c_program, "reframe", minimal) == ["ok"] * len(minimal)
    every = _vectors() + framing
    raws = _run_c(c_program, "decode", [str(v["hex"]) for v in every])
    assert raws == [str(v["raw"]) for v in every]


def test_codegen_cli_writes_each_output(tmp_path: Path) -> None:
    header = tmp_path / "nd.h"
    assert codegen.main(["c", "-o", str(header)]) == 0
    assert header.read_text() == codegen.c_header()
    canonical = tmp_path / "canonical.json"
    assert codegen.main(["canonical", "-o", str(canonical)]) == 0
    assert canonical.read_text() == canonical_json() + "\n"
    vec = tmp_path / "v.json"
    assert codegen.main(["vectors", "-o", str(vec)]) == 0
    assert vec.read_text() == codegen.vectors_json()
    doc = tmp_path / "p.md"
    doc.write_text(f"intro\n{codegen.BEGIN_MARK}\nold\n{codegen.END_MARK}\noutro\n")
    assert codegen.main(["docs", "-o", str(doc)]) == 0
    text = doc.read_text()
    assert codegen.generated_part(text) == codegen.docs_tables()
    assert text.startswith("intro\n") and text.endswith("outro\n")
