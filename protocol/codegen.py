"""Everything derived from the schema for people outside this Python package.

    python -m protocol.codegen c        [-o FILE]   C99 header for the firmware side
    python -m protocol.codegen docs     [-o FILE]   message tables into docs/protocol.md
    python -m protocol.codegen vectors  [-o FILE]   protocol/vectors.json (test frames)
    python -m protocol.codegen canonical [-o FILE]  the canonical schema JSON (hash input)

Each output is a pure function of protocol.schema (``c_header()``, ``docs_tables()``,
``vectors_json()``), so tests regenerate them and compare with what is checked in.
"""

from __future__ import annotations

import argparse
import enum
import json
import random
import re
import sys
from pathlib import Path
from typing import Any

from protocol import schema as s
from protocol.codec import encode, frame_body, message_to_dict
from protocol.fields import Array, FieldSpec, Int, Str, record_dtype

PACKAGE_DIR = Path(__file__).resolve().parent
DOCS_PATH = PACKAGE_DIR.parent / "docs" / "protocol.md"
VECTORS_PATH = PACKAGE_DIR / "vectors.json"
BEGIN_MARK = "<!-- BEGIN GENERATED TABLES (python -m protocol.codegen docs) -->"
END_MARK = "<!-- END GENERATED TABLES -->"
REGENERATE = {
    "docs": "python -m protocol.codegen docs",
    "vectors": "python -m protocol.codegen vectors",
}


def _snake(name: str) -> str:
    """SetLimits -> set_limits, EStop -> estop."""
    return re.sub(r"(?<=[a-z0-9])(?=[A-Z])", "_", name).lower()


def wire_name(cls: type[Any]) -> str:
    """HELLO, SET_LIMITS, ESTOP, EVENT_LOG: the message's name in the spec and in C."""
    return _snake(cls.__name__).upper()


def _c_name(cls: type[Any]) -> str:
    return "nd_" + wire_name(cls).lower()


def valid_extremes(spec: FieldSpec) -> tuple[int, int]:
    """The smallest and largest value the encoder accepts for an integer field."""
    if spec.enum is not None:
        values = [int(m.value) for m in spec.enum.enum_type]
        if spec.enum.is_flags:
            mask = 0
            for v in values:
                mask |= v
            return 0, mask
        return min(values), max(values)
    return spec.lo, spec.hi


# ---------------------------------------------------------------- C header


def _c_int_literal(value: int, c_type: str) -> str:
    if c_type.startswith("u"):
        return f"{value}u" if value < 2**32 else f"{value}ull"
    return str(value)


def _c_field_decl(spec: FieldSpec) -> str:
    if isinstance(spec.wire, Int):
        return f"    {spec.wire.c_type} {spec.name};"
    if isinstance(spec.wire, Str):
        return f"    char {spec.name}[{spec.wire.size_bytes}]; /* NUL-padded, maybe unterminated */"
    rec = _c_name(spec.wire.record)
    return (
        f"    uint8_t {spec.name}_count; /* 0..{spec.wire.max_count} */\n"
        f"    struct {rec} {spec.name}[{spec.wire.max_count}];"
    )


def _c_pack_lines(specs: tuple[FieldSpec, ...], src: str) -> tuple[list[str], list[str], int]:
    """Lines that put/get each field at its offset; returns (pack, unpack, fixed bytes)."""
    pack: list[str] = []
    unpack: list[str] = []
    off = 0
    for spec in specs:
        if isinstance(spec.wire, Int):
            bits = spec.wire.size_bytes * 8
            kind = "i" if spec.wire.name.startswith("i") else "u"
            pack.append(f"    nd_put_{kind}{bits}(out + {off}, {src}->{spec.name});")
            unpack.append(f"    {src}->{spec.name} = nd_get_{kind}{bits}(in + {off});")
            off += spec.wire.size_bytes
        elif isinstance(spec.wire, Str):
            n = spec.wire.size_bytes
            pack.append(f"    memcpy(out + {off}, {src}->{spec.name}, {n});")
            unpack.append(f"    memcpy({src}->{spec.name}, in + {off}, {n});")
            off += n
    return pack, unpack, off


def _c_record(rec: type[Any]) -> list[str]:
    name = _c_name(rec)
    specs = s.fields_of(rec)
    size = int(record_dtype(rec).itemsize)
    pack, unpack, _ = _c_pack_lines(specs, "r")
    lines = [f"/* {rec.__name__}: {rec.__doc__}  {size} bytes packed. */"]
    lines.append(f"#define {name.upper()}_BYTES {size}u")
    lines.append(f"struct {name} {{")
    lines += [_c_field_decl(f) for f in specs]
    lines.append("};")
    lines.append(
        f"static inline void {name}_pack(const struct {name} *r, uint8_t *out)\n{{\n"
        + "\n".join(pack)
        + "\n}"
    )
    lines.append(
        f"static inline void {name}_unpack(struct {name} *r, const uint8_t *in)\n{{\n"
        + "\n".join(unpack)
        + "\n}"
    )
    return lines


def _c_message(cls: type[Any]) -> list[str]:
    name = _c_name(cls)
    up = name.upper()
    specs = s.fields_of(cls)
    fixed, per_record = s.payload_size_bytes(cls)
    pack, unpack, scalar_bytes = _c_pack_lines(specs, "m")
    arrays = [f for f in specs if isinstance(f.wire, Array)]
    doc = " ".join((cls.__doc__ or "").split())
    lines = [
        f"/* 0x{s.MSG_ID[cls]:02X} {wire_name(cls)} ({s.DIRECTION[cls].value}): {doc} */",
        f"#define {up}_ID 0x{s.MSG_ID[cls]:02X}u",
    ]
    off = 0
    for f in specs:
        lines.append(f"#define {up}_{f.name.upper()}_OFFSET {off}u")
        if isinstance(f.wire, Int | Str):
            off += f.wire.size_bytes
        else:
            off += 1
    for f in specs:
        # the schema's range of a field narrower than its type: the device checks it
        # (NAK BAD_ARGUMENT) with these, not with numbers copied from the docs
        if f.range is not None and isinstance(f.wire, Int):
            c_type = f.wire.c_type
            lines.append(f"#define {up}_{f.name.upper()}_MIN {_c_int_literal(f.lo, c_type)}")
            lines.append(f"#define {up}_{f.name.upper()}_MAX {_c_int_literal(f.hi, c_type)}")
    if arrays:
        arr = arrays[0]
        assert isinstance(arr.wire, Array)
        lines.append(f"#define {up}_MIN_PAYLOAD_BYTES {fixed}u")
        lines.append(f"#define {up}_MAX_PAYLOAD_BYTES {fixed + per_record * arr.wire.max_count}u")
    else:
        lines.append(f"#define {up}_PAYLOAD_BYTES {fixed}u")
    body = [_c_field_decl(f) for f in specs] or ["    uint8_t unused_; /* no fields */"]
    lines.append(f"struct {name} {{\n" + "\n".join(body) + "\n};")
    # pack: returns the payload length written to out (at most ND_MAX_PAYLOAD_BYTES)
    p = list(pack)
    u = list(unpack)
    if arrays:
        arr = arrays[0]
        assert isinstance(arr.wire, Array)
        rec = _c_name(arr.wire.record)
        n = arr.name
        mx = arr.wire.max_count
        p += [
            f"    count = m->{n}_count > {mx}u ? {mx}u : m->{n}_count; /* never overrun */",
            f"    out[{scalar_bytes}] = (uint8_t)count;",
            "    for (i = 0; i < count; ++i)",
            f"        {rec}_pack(&m->{n}[i], out + {fixed}u + i * {per_record}u);",
            f"    return {fixed}u + count * {per_record}u;",
        ]
        u += [
            f"    m->{n}_count = in[{scalar_bytes}];",
            f"    if (m->{n}_count > {arr.wire.max_count}u ||"
            f" len != {fixed}u + (size_t)m->{n}_count * {per_record}u) return 0;",
            f"    for (i = 0; i < m->{n}_count; ++i)",
            f"        {rec}_unpack(&m->{n}[i], in + {fixed}u + i * {per_record}u);",
            "    return 1;",
        ]
        p.insert(0, "    size_t i, count;")
        u.insert(0, "    size_t i;")
        u.insert(1, f"    if (len < {fixed}u) return 0;")
    else:
        if not specs:
            p.insert(0, "    (void)m; (void)out;")
            u.insert(0, "    (void)m; (void)in;")
        p.append(f"    return {fixed}u;")
        u.insert(0, f"    if (len != {fixed}u) return 0;")
        u.append("    return 1;")
    lines.append(
        "/* Writes the payload; returns its length in bytes. */\n"
        f"static inline size_t {name}_pack(const struct {name} *m, uint8_t *out)\n{{\n"
        + "\n".join(p)
        + "\n}"
    )
    lines.append(
        "/* Reads a payload of len bytes; returns 0 if its length is wrong. */\n"
        f"static inline int {name}_unpack(struct {name} *m, const uint8_t *in, size_t len)\n{{\n"
        + "\n".join(u)
        + "\n}"
    )
    return lines


_C_HELPERS = r"""
/* ------------------------------------------------------------ little-endian access */
static inline void nd_put_u8(uint8_t *p, uint8_t v) { p[0] = v; }
static inline void nd_put_u16(uint8_t *p, uint16_t v)
{
    p[0] = (uint8_t)v; p[1] = (uint8_t)(v >> 8);
}
static inline void nd_put_u32(uint8_t *p, uint32_t v)
{
    p[0] = (uint8_t)v; p[1] = (uint8_t)(v >> 8);
    p[2] = (uint8_t)(v >> 16); p[3] = (uint8_t)(v >> 24);
}
static inline void nd_put_u64(uint8_t *p, uint64_t v)
{
    nd_put_u32(p, (uint32_t)v); nd_put_u32(p + 4, (uint32_t)(v >> 32));
}
static inline void nd_put_i16(uint8_t *p, int16_t v) { nd_put_u16(p, (uint16_t)v); }
static inline void nd_put_i32(uint8_t *p, int32_t v) { nd_put_u32(p, (uint32_t)v); }
static inline uint8_t nd_get_u8(const uint8_t *p) { return p[0]; }
static inline uint16_t nd_get_u16(const uint8_t *p)
{
    return (uint16_t)(p[0] | (p[1] << 8));
}
static inline uint32_t nd_get_u32(const uint8_t *p)
{
    return (uint32_t)p[0] | ((uint32_t)p[1] << 8) | ((uint32_t)p[2] << 16) | ((uint32_t)p[3] << 24);
}
static inline uint64_t nd_get_u64(const uint8_t *p)
{
    return (uint64_t)nd_get_u32(p) | ((uint64_t)nd_get_u32(p + 4) << 32);
}
/* intN_t is two's complement by C99 7.18.1.1, so copying the bits is exact. */
static inline int16_t nd_get_i16(const uint8_t *p)
{
    uint16_t u = nd_get_u16(p); int16_t v; memcpy(&v, &u, 2); return v;
}
static inline int32_t nd_get_i32(const uint8_t *p)
{
    uint32_t u = nd_get_u32(p); int32_t v; memcpy(&v, &u, 4); return v;
}

/* ------------------------------------------------------------ CRC-32/ISO-HDLC */
/* Reflected, poly 0x04C11DB7 (0xEDB88320 reflected), init and xorout 0xFFFFFFFF:
 * the same as zlib's crc32(). Bitwise by default: small, ~8 cycles/bit. Define
 * ND_CRC32_TABLE for a 1 KiB table, about 8x faster (a board with the flash to spare, the
 * simulator). Start with crc = 0 and feed chunks: crc = nd_crc32_update(crc, p, n). */
#ifdef ND_CRC32_TABLE
static const uint32_t nd_crc32_table[256] = {
@CRC_TABLE@
};
static inline uint32_t nd_crc32_update(uint32_t crc, const uint8_t *p, size_t n)
{
    size_t i;
    crc = ~crc;
    for (i = 0; i < n; ++i) crc = nd_crc32_table[(crc ^ p[i]) & 0xFFu] ^ (crc >> 8);
    return ~crc;
}
#else
static inline uint32_t nd_crc32_update(uint32_t crc, const uint8_t *p, size_t n)
{
    size_t i;
    int bit;
    crc = ~crc;
    for (i = 0; i < n; ++i) {
        crc ^= p[i];
        for (bit = 0; bit < 8; ++bit)
            crc = (crc >> 1) ^ (ND_CRC_POLY_REFLECTED & (0u - (crc & 1u)));
    }
    return ~crc;
}
#endif
static inline uint32_t nd_crc32(const uint8_t *p, size_t n) { return nd_crc32_update(0u, p, n); }

/* ------------------------------------------------------------ COBS */
/* Encodes n bytes into out (room for n + 1 + (n - 1) / 254 bytes, n >= 1); no delimiter
 * added. Returns the encoded length. The minimal form (as the Python cobs package): a
 * 0xFF block that ends the input is not followed by an empty 0x01 block, so 254 non-zero
 * bytes encode to FF + 254 bytes (255, not 256). */
static inline size_t nd_cobs_encode(const uint8_t *in, size_t n, uint8_t *out)
{
    size_t code_at = 0, o = 1, i;
    uint8_t code = 1;
    for (i = 0; i < n; ++i) {
        if (in[i] == 0) {
            out[code_at] = code;
            code = 1;
            code_at = o++;
            continue;
        }
        out[o++] = in[i];
        if (++code == 0xFF && i + 1 < n) { /* a full block, and more input follows */
            out[code_at] = code;
            code = 1;
            code_at = o++;
        }
    }
    out[code_at] = code;
    return o;
}
/* Decodes n COBS bytes (no delimiter) into out (room for n bytes). Accepts both forms
 * of a full block at the end (FF + 254 bytes, with or without a final 01).
 * Returns the decoded length, or (size_t)-1 if the input is not valid COBS. */
static inline size_t nd_cobs_decode(const uint8_t *in, size_t n, uint8_t *out)
{
    size_t i = 0, o = 0, k;
    while (i < n) {
        uint8_t code = in[i++];
        if (code == 0 || i + (size_t)code - 1u > n) return (size_t)-1;
        for (k = 1; k < code; ++k) {
            if (in[i] == 0) return (size_t)-1;
            out[o++] = in[i++];
        }
        if (code != 0xFF && i < n) out[o++] = 0;
    }
    return o;
}

/* ------------------------------------------------------------ frames */
/* Builds a whole frame (COBS(header | payload | CRC-32 LE) then 0x00) from a payload
 * written by one of the nd_*_pack functions. out needs ND_MAX_FRAME_BUFFER_BYTES.
 * Returns the number of bytes to send, or 0 if the payload is too long. */
static inline size_t nd_frame_encode(uint8_t msg_id, uint8_t flags, uint16_t seq,
                                     const uint8_t *payload, size_t payload_len, uint8_t *out)
{
    uint8_t raw[ND_MAX_RAW_FRAME_BYTES];
    uint32_t crc;
    size_t n;
    if (payload_len > ND_MAX_PAYLOAD_BYTES) return 0;
    raw[0] = ND_PROTOCOL_VERSION;
    raw[1] = msg_id;
    raw[2] = flags;
    nd_put_u16(raw + 3, seq);
    if (payload_len) memcpy(raw + ND_HEADER_BYTES, payload, payload_len);
    crc = nd_crc32(raw, ND_HEADER_BYTES + payload_len);
    nd_put_u32(raw + ND_HEADER_BYTES + payload_len, crc);
    n = nd_cobs_encode(raw, ND_HEADER_BYTES + payload_len + ND_CRC_BYTES, out);
    out[n++] = 0x00;
    return n;
}
/* Checks one received frame (the bytes between two 0x00, delimiter excluded) and
 * decodes it into raw (room for ND_MAX_ENCODED_FRAME_BYTES). Returns the payload
 * length (payload at raw + ND_HEADER_BYTES), or -1 if it is to be dropped:
 * oversize, bad COBS, too short, CRC failure, or another protocol version. */
static inline int nd_frame_decode(const uint8_t *frame, size_t n, uint8_t *raw)
{
    size_t len;
    if (n > ND_MAX_ENCODED_FRAME_BYTES) return -1;
    len = nd_cobs_decode(frame, n, raw);
    if (len == (size_t)-1 || len < ND_HEADER_BYTES + ND_CRC_BYTES) return -1;
    if (len > ND_MAX_RAW_FRAME_BYTES) return -1;
    if (nd_crc32(raw, len) != ND_CRC_GOOD_FRAME) return -1;
    if (raw[0] != ND_PROTOCOL_VERSION) return -1;
    return (int)(len - ND_HEADER_BYTES - ND_CRC_BYTES);
}
"""


def _c_enum(e: type[enum.IntEnum] | type[enum.IntFlag]) -> list[str]:
    prefix = "ND_" + _snake(e.__name__).upper()
    kind = "flags (bits)" if issubclass(e, enum.IntFlag) else "values"
    lines = [f"/* {e.__name__}: {kind} */"]
    for m in e:
        assert m.name is not None
        lines.append(f"#define {prefix}_{m.name} 0x{int(m.value):02X}u")
    return lines


def _crc32_table_c() -> str:
    """The reflected CRC-32 byte table, as C initialiser lines (six values a line)."""
    table = []
    for byte in range(256):
        crc = byte
        for _ in range(8):
            crc = (crc >> 1) ^ (0xEDB88320 if crc & 1 else 0)
        table.append(f"0x{crc:08X}u")
    return "\n".join("    " + ", ".join(table[i : i + 6]) + "," for i in range(0, 256, 6))


def c_header() -> str:
    """The C99 header (a string): ids, structs with pack/unpack, enums, CRC and COBS."""
    residue_std = s.CRC_RESIDUE ^ 0xFFFFFFFF  # the residue before the final xorout
    out = [
        "/* needle_protocol.h: needle-driver protocol v1, generated from protocol/schema.py",
        " * by `python -m protocol.codegen c`. Do not edit: change the schema and regenerate.",
        " * The spec is docs/protocol.md. C99, header-only, no allocation, no dependencies. */",
        "#ifndef NEEDLE_PROTOCOL_H",
        "#define NEEDLE_PROTOCOL_H",
        "",
        "#include <stddef.h>",
        "#include <stdint.h>",
        "#include <string.h>",
        "",
        f"#define ND_PROTOCOL_VERSION {s.PROTOCOL_VERSION}u",
        f"#define ND_SCHEMA_HASH 0x{s.SCHEMA_HASH:08X}u /* sent in HELLO and IDENTITY */",
        "/* frame: COBS(header | payload | CRC-32 LE) 0x00; header = version u8, msg_id u8,",
        " * flags u8, seq u16 LE */",
        f"#define ND_HEADER_BYTES {s.HEADER_BYTES}u",
        f"#define ND_CRC_BYTES {s.CRC_BYTES}u",
        f"#define ND_MAX_PAYLOAD_BYTES {s.MAX_PAYLOAD_BYTES}u",
        f"#define ND_MAX_RAW_FRAME_BYTES {s.MAX_RAW_FRAME_BYTES}u",
        f"#define ND_MAX_ENCODED_FRAME_BYTES {s.MAX_ENCODED_FRAME_BYTES}u /* without 0x00 */",
        f"#define ND_MAX_FRAME_BUFFER_BYTES {s.MAX_ENCODED_FRAME_BYTES + 1}u /* with 0x00 */",
        "#define ND_COBS_DELIMITER 0x00u",
        f"/* {s.CRC_NAME}: reflected in and out */",
        f"#define ND_CRC_POLY 0x{s.CRC_POLY:08X}u",
        "#define ND_CRC_POLY_REFLECTED 0xEDB88320u",
        f"#define ND_CRC_INIT 0x{s.CRC_INIT:08X}u",
        f"#define ND_CRC_XOROUT 0x{s.CRC_XOROUT:08X}u",
        f'#define ND_CRC_CHECK 0x{s.CRC_CHECK:08X}u /* CRC of "123456789" */',
        "/* CRC over (data | its CRC LE) of an intact frame: ND_CRC_GOOD_FRAME as nd_crc32()",
        " * returns it; ND_CRC_RESIDUE is the same before the final xorout (the CRC",
        " * catalogue's 'residue'). */",
        f"#define ND_CRC_RESIDUE 0x{residue_std:08X}u",
        f"#define ND_CRC_GOOD_FRAME 0x{s.CRC_RESIDUE:08X}u",
        f"#define ND_DEFAULT_WATCHDOG_MS {s.DEFAULT_WATCHDOG_MS}u",
        f"#define ND_HOST_HEARTBEAT_MS {s.HOST_HEARTBEAT_MS}u",
        f"#define ND_DEVICE_HEARTBEAT_MS {s.DEVICE_HEARTBEAT_MS}u",
        f"#define ND_REPLY_CACHE_SIZE {s.REPLY_CACHE_SIZE}u",
        f"#define ND_EVENT_LOG_SIZE {s.EVENT_LOG_SIZE}u",
        f"#define ND_USB_VID 0x{s.USB_VID:04X}u",
        f"#define ND_USB_PID 0x{s.USB_PID:04X}u",
        _C_HELPERS.replace("@CRC_TABLE@", _crc32_table_c()),
        "/* ------------------------------------------------------------ enums */",
    ]
    for e in s.ENUMS:
        out += [*_c_enum(e), ""]
    out.append("/* ------------------------------------------------------------ records */")
    for rec in s.RECORDS:
        out += [*_c_record(rec), ""]
    out.append("/* ------------------------------------------------------------ messages */")
    for m in s.MESSAGES:
        out += [*_c_message(m), ""]
    out.append("#endif /* NEEDLE_PROTOCOL_H */")
    return "\n".join(out) + "\n"


# ---------------------------------------------------------------- docs tables


def _allowed(spec: FieldSpec) -> str:
    if isinstance(spec.wire, Str):
        return "ASCII"
    if isinstance(spec.wire, Array):
        return f"0..{spec.wire.max_count} records"
    if spec.enum is not None:
        kind = "bits of" if spec.enum.is_flags else "one of"
        return f"{kind} `{spec.enum.enum_type.__name__}`"
    if spec.range is not None:
        return f"{spec.range.lo} … {spec.range.hi}"
    return "any"


def _field_table(cls: type[Any]) -> list[str]:
    rows = ["| offset | field | type | bytes | allowed | meaning |", "|---:|---|---|---:|---|---|"]
    off = 0
    for f in s.fields_of(cls):
        if isinstance(f.wire, Array):
            rec = f.wire.record
            size = int(record_dtype(rec).itemsize)
            rows.append(
                f"| {off} | {f.name}_count | u8 | 1 | 0 … {f.wire.max_count} | "
                f"number of records that follow |"
            )
            rows.append(
                f"| {off + 1} | {f.name} | {rec.__name__}[count] | {size} × count | "
                f"see {rec.__name__} | {f.doc} |"
            )
            off += 1
            continue
        assert isinstance(f.wire, Int | Str)
        rows.append(
            f"| {off} | {f.name} | {f.wire.name} | {f.wire.size_bytes} | {_allowed(f)} | {f.doc} |"
        )
        off += f.wire.size_bytes
    return rows


def docs_tables() -> str:
    """The generated part of docs/protocol.md (markdown, markers excluded)."""
    out = [
        "### Constants",
        "",
        "| name | value |",
        "|---|---|",
        f"| protocol version | {s.PROTOCOL_VERSION} |",
        f"| schema hash | `0x{s.SCHEMA_HASH:08X}` |",
        f"| header | {s.HEADER_BYTES} bytes: version u8, msg_id u8, flags u8, seq u16 |",
        f"| max payload | {s.MAX_PAYLOAD_BYTES} bytes |",
        f"| max raw frame (header + payload + CRC) | {s.MAX_RAW_FRAME_BYTES} bytes |",
        f"| max COBS-encoded frame, without the 0x00 | {s.MAX_ENCODED_FRAME_BYTES} bytes |",
        f"| default watchdog | {s.DEFAULT_WATCHDOG_MS} ms |",
        f"| host heartbeat period | {s.HOST_HEARTBEAT_MS} ms |",
        f"| device heartbeat when otherwise silent | {s.DEVICE_HEARTBEAT_MS} ms |",
        f"| reply cache | last {s.REPLY_CACHE_SIZE} seqs |",
        f"| event log kept by the device | newest {s.EVENT_LOG_SIZE} events |",
        "",
        "### Message index",
        "",
        "| id | message | direction | payload bytes | reply |",
        "|---:|---|---|---:|---|",
    ]
    for m in s.MESSAGES:
        fixed, per_record = s.payload_size_bytes(m)
        arrays = [f for f in s.fields_of(m) if isinstance(f.wire, Array)]
        size = str(fixed)
        if arrays:
            assert isinstance(arrays[0].wire, Array)
            size = f"{fixed} + {per_record} × n (n ≤ {arrays[0].wire.max_count})"
        reply = s.reply_name(m)
        reply_text = "—"
        if reply == "Ack":
            reply_text = "ACK or NAK"
        elif reply is not None:
            reply_text = f"{wire_name(s.BY_NAME[reply])} or NAK"
        anchor = f"#0x{s.MSG_ID[m]:02x}-{wire_name(m).lower()}"
        out.append(
            f"| 0x{s.MSG_ID[m]:02X} | [{wire_name(m)}]({anchor}) "
            f"| {s.DIRECTION[m].value} | {size} | {reply_text} |"
        )
    out.append("")
    out.append("### Messages")
    out.append("")
    for m in s.MESSAGES:
        out.append(f"#### 0x{s.MSG_ID[m]:02X} {wire_name(m)}")
        out.append("")
        doc = " ".join((m.__doc__ or "").split())
        out.append(f"{s.DIRECTION[m].value}. {doc}")
        out.append("")
        if s.fields_of(m):
            out += _field_table(m)
        else:
            out.append("Empty payload (0 bytes).")
        out.append("")
    out.append("### Records")
    out.append("")
    for rec in s.RECORDS:
        rec_bytes = int(record_dtype(rec).itemsize)
        doc = " ".join((rec.__doc__ or "").split())
        out.append(f"#### {rec.__name__} ({rec_bytes} bytes)")
        out.append("")
        out.append(doc)
        out.append("")
        out += _field_table(rec)
        out.append("")
    out.append("### Enums and flags")
    out.append("")
    for e in s.ENUMS:
        kind = "flag bits" if issubclass(e, enum.IntFlag) else "values"
        doc = " ".join((e.__dict__.get("__doc__") or "").split())
        out.append(f"#### {e.__name__} ({kind})")
        out.append("")
        if doc:
            out.append(doc)
            out.append("")
        meanings = s.MEANINGS.get(e, {})
        if meanings:
            out.append("| name | value | meaning |")
            out.append("|---|---:|---|")
        else:
            out.append("| name | value |")
            out.append("|---|---:|")
        for member in e:
            assert member.name is not None
            row = f"| {member.name} | 0x{int(member.value):02X} ({int(member.value)}) |"
            if meanings:
                row += f" {meanings.get(member.name, '')} |"
            out.append(row)
        out.append("")
    out += _worked_examples()
    return "\n".join(out).rstrip() + "\n"


def _worked_examples() -> list[str]:
    out = [
        "### Worked example frames",
        "",
        "From protocol/vectors.json (which holds more: every message at its lowest, highest",
        "and random values, and COBS edge cases). *raw* is header | payload | CRC-32 LE,",
        "before COBS; *wire* is what travels: the leading 0x00 (§1), COBS(raw), the closing",
        "0x00. In vectors.json each frame has `raw` (header | payload | CRC), `hex` (COBS(raw)",
        "and the closing 0x00, no leading 0x00) and `wire` (`00` + `hex`, as sent).",
        "",
    ]
    from cobs import cobs

    for name, cls, fields, seq, flags in _examples():
        frame = encode(build_message(cls, fields), seq, flags)
        raw = cobs.decode(frame[:-1])
        hdr, payload, crc = raw[: s.HEADER_BYTES], raw[s.HEADER_BYTES : -s.CRC_BYTES], raw[-4:]
        shown = {
            k: (f"[{len(v)} records]" if isinstance(v, list) else v) for k, v in fields.items()
        }
        out += [
            f"**{name}**: {wire_name(cls)} seq={seq} flags=0x{flags:02X} {shown}",
            "",
            "```",
            f"header  {hdr.hex(' ')}",
            f"payload {payload.hex(' ') or '(none)'}",
            f"crc     {crc.hex(' ')}   (CRC-32 = 0x{int.from_bytes(crc, 'little'):08X})",
            f"wire    00 {frame.hex(' ')}",
            "```",
            "",
        ]
    return out


def splice_docs(text: str, tables: str) -> str:
    """text with the part between the markers replaced by tables."""
    start = text.index(BEGIN_MARK) + len(BEGIN_MARK)
    end = text.index(END_MARK)
    return text[:start] + "\n\n" + tables + "\n" + text[end:]


def generated_part(text: str) -> str | None:
    """The tables currently between the markers of a docs file (None: no markers)."""
    if BEGIN_MARK not in text or END_MARK not in text:
        return None
    start = text.index(BEGIN_MARK) + len(BEGIN_MARK)
    return text[start : text.index(END_MARK)].strip("\n") + "\n"


# ---------------------------------------------------------------- test vectors


def _records_bytes(spec: FieldSpec, records: list[dict[str, int]]) -> bytes:
    assert isinstance(spec.wire, Array)
    dtype = record_dtype(spec.wire.record)
    rows = [tuple(r[name] for name in dtype.names) for r in records]
    if not rows:
        return b""
    import numpy as np

    return bytes(np.array(rows, dtype=dtype).tobytes())


def build_message(cls: type[s.Message], fields: dict[str, Any]) -> s.Message:
    """A message from plain field values (records as lists of dicts), as in vectors.json."""
    values: list[Any] = []
    for spec in s.fields_of(cls):
        v = fields[spec.name]
        values.append(_records_bytes(spec, v) if isinstance(spec.wire, Array) else v)
    msg: s.Message = cls(*values)
    return msg


def _edge_fields(cls: type[Any], pick: int) -> dict[str, Any]:
    """All fields at their lowest (pick=0) or highest (pick=1) accepted value."""
    out: dict[str, Any] = {}
    for spec in s.fields_of(cls):
        if isinstance(spec.wire, Int):
            out[spec.name] = valid_extremes(spec)[pick]
        elif isinstance(spec.wire, Str):
            out[spec.name] = "" if pick == 0 else "Z" * spec.wire.size_bytes
        else:
            count = 0 if pick == 0 else spec.wire.max_count
            rec = _edge_fields(spec.wire.record, pick)
            out[spec.name] = [dict(rec) for _ in range(count)]
    return out


def random_fields(cls: type[Any], rng: random.Random) -> dict[str, Any]:
    """Valid random values for every field of a message or record (records: 1..max)."""
    out: dict[str, Any] = {}
    for spec in s.fields_of(cls):
        if isinstance(spec.wire, Int):
            if spec.enum is not None and not spec.enum.is_flags:
                out[spec.name] = rng.choice([int(m.value) for m in spec.enum.enum_type])
            elif spec.enum is not None:
                out[spec.name] = rng.randint(*valid_extremes(spec)) & valid_extremes(spec)[1]
            else:
                out[spec.name] = rng.randint(spec.lo, spec.hi)
        elif isinstance(spec.wire, Str):
            out[spec.name] = "ND-" + "".join(rng.choice("0123456789ABCDEF") for _ in range(8))
        else:
            count = rng.randint(1, spec.wire.max_count)
            out[spec.name] = [random_fields(spec.wire.record, rng) for _ in range(count)]
    return out


def _examples() -> list[tuple[str, type[Any], dict[str, Any], int, int]]:
    """Hand-picked readable examples (used as the worked examples in the spec)."""
    sample = {
        "time_us": 1_000_000,
        "depth_um": 12_500,
        "commanded_depth_um": 12_600,
        "angle_cdeg": 36_000,
        "force_mn": 850,
        "state": int(s.DeviceState.MOVING),
        "flags": int(s.SampleFlags.HOMED | s.SampleFlags.ADVANCING | s.SampleFlags.ARMED),
        "force_flags": int(s.ForceFlags.FRESH),
    }
    sample2 = dict(sample, time_us=1_001_000, depth_um=12_510, force_mn=861, force_flags=0)
    return [
        ("hello", s.Hello, {"protocol_version": 1, "schema_hash": s.SCHEMA_HASH}, 1, 0),
        ("heartbeat", s.Heartbeat, {"uptime_ms": 1234}, 0, 0),
        ("move_relative_500um", s.Move, {"mode": 1, "target_um": 500, "speed_um_s": 200}, 7, 0),
        (
            "move_retransmit",
            s.Move,
            {"mode": 1, "target_um": 500, "speed_um_s": 200},
            7,
            int(s.HeaderFlags.RETRANSMIT),
        ),
        # Payload bytes 00 00 00 00 00 00 01 00 00: zeros everywhere, COBS must carry them.
        ("move_zeros_in_payload", s.Move, {"mode": 0, "target_um": 0, "speed_um_s": 256}, 8, 0),
        ("ack_move", s.Ack, {"command_id": s.MSG_ID[s.Move]}, 7, 0),
        ("ack_replayed", s.Ack, {"command_id": s.MSG_ID[s.Move]}, 7, int(s.HeaderFlags.REPLAYED)),
        (
            "nak_not_homed",
            s.Nak,
            {"command_id": s.MSG_ID[s.Move], "reason": int(s.NakReason.NOT_HOMED), "detail": 0},
            9,
            0,
        ),
        (
            "telemetry_2_samples",
            s.Telemetry,
            {"first_sample_number": 1000, "samples": [sample, sample2]},
            0,
            0,
        ),
        (
            "event_force_over_limit",
            s.Event,
            {
                "number": 3,
                "time_us": 5_000_000,
                "code": int(s.EventCode.FORCE_OVER_LIMIT),
                "value": 2500,
            },
            0,
            0,
        ),
        ("seq_max", s.GetStatus, {}, 0xFFFF, 0),
    ]


def vectors() -> list[dict[str, Any]]:
    """Named example frames: hand-picked ones, then per message lowest, highest, random."""
    cases = _examples()
    rng = random.Random(20261128)
    for m in s.MESSAGES:
        base = wire_name(m).lower()
        # HEARTBEAT, TELEMETRY and EVENT are unsequenced: always seq 0 (protocol §2)
        unsequenced = m in s.UNSEQUENCED
        cases.append((f"{base}_min", m, _edge_fields(m, 0), 0 if unsequenced else 1, 0))
        cases.append((f"{base}_max", m, _edge_fields(m, 1), 0 if unsequenced else 0xFFFF, 0))
        fields = random_fields(m, rng)
        seq = 0 if unsequenced else rng.randint(1, 0xFFFF)
        cases.append((f"{base}_random", m, fields, seq, 0))
    out = []
    for name, cls, fields, seq, flags in cases:
        msg = build_message(cls, fields)
        frame = encode(msg, seq, flags)
        out.append(
            {
                "name": name,
                "message": wire_name(cls),
                "msg_id": s.MSG_ID[cls],
                "seq": seq,
                "flags": flags,
                "fields": message_to_dict(msg),
                "hex": frame.hex(),
                "raw": _raw_of(frame).hex(),
                "wire": "00" + frame.hex(),
            }
        )
    return out


def _raw_of(frame: bytes) -> bytes:
    """header | payload | CRC of a frame (COBS-decoded, delimiter dropped)."""
    from cobs import cobs

    raw: bytes = cobs.decode(frame[:-1])
    return raw


FRAMING_TEST_ID = 0x7F  # not assigned to any message: framing vectors only


def _nonzero_payload(n: int) -> bytearray:
    return bytearray((i % 255) + 1 for i in range(n))


def _body_with_nonzero_crc(header: bytes, payload: bytearray, tweak_at: int) -> bytes:
    """header + payload, the byte at tweak_at changed until no CRC byte is 0x00."""
    import zlib

    for v in range(1, 256):
        payload[tweak_at] = v
        body = header + bytes(payload)
        if 0 not in (zlib.crc32(body) & 0xFFFFFFFF).to_bytes(4, "little"):
            return body
    raise AssertionError("no tweak gives a CRC without 0x00")  # pragma: no cover


def framing_vectors() -> list[dict[str, Any]]:
    """COBS edge cases: raw frames with runs of 254 (and more) non-zero bytes. No message of
    this schema is long enough for one, so these carry the unassigned id 0x7F: a receiver
    decodes them (COBS, CRC) and then drops them as *unknown id*."""
    tid = FRAMING_TEST_ID
    cases: list[tuple[str, str, bytes]] = [
        (
            "cobs_run_254_whole_frame",
            "raw is 254 non-zero bytes: COBS gives FF + the 254 bytes (255 bytes)",
            _body_with_nonzero_crc(bytes([1, tid, 1, 1, 1]), _nonzero_payload(245), 244),
        ),
        (
            "cobs_run_254_at_frame_end",
            "a 0x00, then 254 non-zero bytes to the end of raw: the last block is FF + 254 "
            "bytes, with no 01 after it",
            _body_with_nonzero_crc(bytes([1, tid, 0, 5, 0]), _nonzero_payload(250), 249),
        ),
        (
            "cobs_run_254_then_zero",
            "254 non-zero bytes, a 0x00, then 4 more bytes: FF + 254 bytes, 01, 05 + 4 bytes",
            _body_with_nonzero_crc(
                bytes([1, tid, 1, 1, 1]), _nonzero_payload(249) + bytearray(1), 248
            ),
        ),
        (
            "cobs_run_259",
            "259 non-zero bytes (the longest raw frame): FF + 254 bytes, then 06 + 5 bytes",
            _body_with_nonzero_crc(bytes([1, tid, 1, 1, 1]), _nonzero_payload(250), 249),
        ),
    ]
    out: list[dict[str, Any]] = []
    for name, about, body in cases:
        frame = frame_body(body)
        raw = _raw_of(frame)
        out.append(
            {
                "name": name,
                "about": about,
                "minimal": True,
                "raw": raw.hex(),
                "hex": frame.hex(),
                "wire": "00" + frame.hex(),
            }
        )
        if name == "cobs_run_254_at_frame_end":
            # the same raw frame with an empty final block: decoders accept it too
            loose = frame[:-1] + b"\x01\x00"
            out.append(
                {
                    "name": name + "_nonminimal",
                    "about": "the same raw frame with an empty final 01 block: never sent "
                    "(encoders produce the minimal form), but decoders must accept it",
                    "minimal": False,
                    "raw": raw.hex(),
                    "hex": loose.hex(),
                    "wire": "00" + loose.hex(),
                }
            )
    return out


def vectors_json() -> str:
    doc = {
        "about": (
            "needle-driver protocol v1 test vectors, generated by "
            "`python -m protocol.codegen vectors`. Per frame: raw = header | payload | "
            "CRC-32 LE (before COBS); hex = COBS(raw) and the closing 0x00 (no leading "
            "0x00); wire = 00 + hex, the bytes a sender puts on the line (docs/protocol.md "
            "§1). framing_vectors: COBS edge cases with the unassigned msg_id 0x7F "
            "(receivers drop them as unknown id after COBS and CRC); minimal = false marks "
            "an encoding decoders must accept but encoders never produce."
        ),
        "protocol_version": s.PROTOCOL_VERSION,
        "schema_hash": f"0x{s.SCHEMA_HASH:08X}",
        "vectors": vectors(),
        "framing_vectors": framing_vectors(),
    }
    return json.dumps(doc, indent=1, ensure_ascii=True) + "\n"


# ---------------------------------------------------------------- CLI


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m protocol.codegen", description=__doc__)
    parser.add_argument("what", choices=["c", "docs", "vectors", "canonical"])
    parser.add_argument(
        "-o",
        "--output",
        help="c, canonical: output file (default stdout); docs: the markdown file whose "
        "generated "
        f"part is replaced (default {DOCS_PATH}); vectors: default {VECTORS_PATH}",
    )
    args = parser.parse_args(argv)
    if args.what in ("c", "canonical"):
        text = c_header() if args.what == "c" else s.canonical_json() + "\n"
        if args.output:
            Path(args.output).write_text(text)
        else:
            sys.stdout.write(text)
        return 0
    if args.what == "docs":
        path = Path(args.output) if args.output else DOCS_PATH
        try:
            old = path.read_text()
        except OSError as exc:
            print(f"error: cannot read {path}: {exc.strerror}", file=sys.stderr)
            return 1
        if generated_part(old) is None:
            print(f"error: {path} has no {BEGIN_MARK} … {END_MARK} markers", file=sys.stderr)
            return 1
        path.write_text(splice_docs(old, docs_tables()))
        print(f"wrote tables into {path}")
        return 0
    path = Path(args.output) if args.output else VECTORS_PATH
    path.write_text(vectors_json())
    print(f"wrote {path}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
