"""The generated artefacts (docs tables, vectors, C header) match the schema and work."""

from __future__ import annotations

import json
import shutil
import subprocess
from pathlib import Path

import pytest
from cobs import cobs

from protocol import BY_NAME, SCHEMA_HASH, StreamDecoder, codegen, encode, message_to_dict
from protocol.schema import HEADER_BYTES, MESSAGES, MSG_ID, Move, MoveMode

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


def _vectors() -> list[dict[str, object]]:
    data = json.loads(codegen.VECTORS_PATH.read_text())
    assert data["schema_hash"] == f"0x{SCHEMA_HASH:08X}"
    vectors: list[dict[str, object]] = data["vectors"]
    return vectors


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
    (void)argv;
    if (nd_crc32((const uint8_t *)"123456789", 9) != ND_CRC_CHECK) return 2;
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


def test_c_decodes_and_reframes_every_vector(c_program: Path) -> None:
    lines = [str(v["hex"]) for v in _vectors()]
    res = subprocess.run(
        [str(c_program), "reframe"],
        input="\n".join(lines) + "\n",
        capture_output=True,
        text=True,
        timeout=30,
    )
    assert res.returncode == 0
    assert res.stdout.split() == ["ok"] * len(lines)


def test_codegen_cli_writes_each_output(tmp_path: Path) -> None:
    header = tmp_path / "nd.h"
    assert codegen.main(["c", "-o", str(header)]) == 0
    assert header.read_text() == codegen.c_header()
    vec = tmp_path / "v.json"
    assert codegen.main(["vectors", "-o", str(vec)]) == 0
    assert vec.read_text() == codegen.vectors_json()
    doc = tmp_path / "p.md"
    doc.write_text(f"intro\n{codegen.BEGIN_MARK}\nold\n{codegen.END_MARK}\noutro\n")
    assert codegen.main(["docs", "-o", str(doc)]) == 0
    text = doc.read_text()
    assert codegen.generated_part(text) == codegen.docs_tables()
    assert text.startswith("intro\n") and text.endswith("outro\n")
