/* needle_protocol.h: needle-driver protocol v1, generated from protocol/schema.py
 * by `python -m protocol.codegen c`. Do not edit: change the schema and regenerate.
 * The spec is docs/protocol.md. C99, header-only, no allocation, no dependencies. */
#ifndef NEEDLE_PROTOCOL_H
#define NEEDLE_PROTOCOL_H

#include <stddef.h>
#include <stdint.h>
#include <string.h>

#define ND_PROTOCOL_VERSION 1u
#define ND_SCHEMA_HASH 0x410F9B8Cu /* sent in HELLO and IDENTITY */
/* frame: COBS(header | payload | CRC-32 LE) 0x00; header = version u8, msg_id u8,
 * flags u8, seq u16 LE */
#define ND_HEADER_BYTES 5u
#define ND_CRC_BYTES 4u
#define ND_MAX_PAYLOAD_BYTES 250u
#define ND_MAX_RAW_FRAME_BYTES 259u
#define ND_MAX_ENCODED_FRAME_BYTES 261u /* without 0x00 */
#define ND_MAX_FRAME_BUFFER_BYTES 262u /* with 0x00 */
#define ND_COBS_DELIMITER 0x00u
/* CRC-32/ISO-HDLC: reflected in and out */
#define ND_CRC_POLY 0x04C11DB7u
#define ND_CRC_POLY_REFLECTED 0xEDB88320u
#define ND_CRC_INIT 0xFFFFFFFFu
#define ND_CRC_XOROUT 0xFFFFFFFFu
#define ND_CRC_CHECK 0xCBF43926u /* CRC of "123456789" */
/* CRC over (data | its CRC LE) of an intact frame: ND_CRC_GOOD_FRAME as nd_crc32()
 * returns it; ND_CRC_RESIDUE is the same before the final xorout (the CRC
 * catalogue's 'residue'). */
#define ND_CRC_RESIDUE 0xDEBB20E3u
#define ND_CRC_GOOD_FRAME 0x2144DF1Cu
#define ND_DEFAULT_WATCHDOG_MS 200u
#define ND_HOST_HEARTBEAT_MS 50u
#define ND_DEVICE_HEARTBEAT_MS 100u
#define ND_REPLY_CACHE_SIZE 32u
#define ND_EVENT_LOG_SIZE 256u
#define ND_USB_VID 0x1209u
#define ND_USB_PID 0x4E44u

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
    0x00000000u, 0x77073096u, 0xEE0E612Cu, 0x990951BAu, 0x076DC419u, 0x706AF48Fu,
    0xE963A535u, 0x9E6495A3u, 0x0EDB8832u, 0x79DCB8A4u, 0xE0D5E91Eu, 0x97D2D988u,
    0x09B64C2Bu, 0x7EB17CBDu, 0xE7B82D07u, 0x90BF1D91u, 0x1DB71064u, 0x6AB020F2u,
    0xF3B97148u, 0x84BE41DEu, 0x1ADAD47Du, 0x6DDDE4EBu, 0xF4D4B551u, 0x83D385C7u,
    0x136C9856u, 0x646BA8C0u, 0xFD62F97Au, 0x8A65C9ECu, 0x14015C4Fu, 0x63066CD9u,
    0xFA0F3D63u, 0x8D080DF5u, 0x3B6E20C8u, 0x4C69105Eu, 0xD56041E4u, 0xA2677172u,
    0x3C03E4D1u, 0x4B04D447u, 0xD20D85FDu, 0xA50AB56Bu, 0x35B5A8FAu, 0x42B2986Cu,
    0xDBBBC9D6u, 0xACBCF940u, 0x32D86CE3u, 0x45DF5C75u, 0xDCD60DCFu, 0xABD13D59u,
    0x26D930ACu, 0x51DE003Au, 0xC8D75180u, 0xBFD06116u, 0x21B4F4B5u, 0x56B3C423u,
    0xCFBA9599u, 0xB8BDA50Fu, 0x2802B89Eu, 0x5F058808u, 0xC60CD9B2u, 0xB10BE924u,
    0x2F6F7C87u, 0x58684C11u, 0xC1611DABu, 0xB6662D3Du, 0x76DC4190u, 0x01DB7106u,
    0x98D220BCu, 0xEFD5102Au, 0x71B18589u, 0x06B6B51Fu, 0x9FBFE4A5u, 0xE8B8D433u,
    0x7807C9A2u, 0x0F00F934u, 0x9609A88Eu, 0xE10E9818u, 0x7F6A0DBBu, 0x086D3D2Du,
    0x91646C97u, 0xE6635C01u, 0x6B6B51F4u, 0x1C6C6162u, 0x856530D8u, 0xF262004Eu,
    0x6C0695EDu, 0x1B01A57Bu, 0x8208F4C1u, 0xF50FC457u, 0x65B0D9C6u, 0x12B7E950u,
    0x8BBEB8EAu, 0xFCB9887Cu, 0x62DD1DDFu, 0x15DA2D49u, 0x8CD37CF3u, 0xFBD44C65u,
    0x4DB26158u, 0x3AB551CEu, 0xA3BC0074u, 0xD4BB30E2u, 0x4ADFA541u, 0x3DD895D7u,
    0xA4D1C46Du, 0xD3D6F4FBu, 0x4369E96Au, 0x346ED9FCu, 0xAD678846u, 0xDA60B8D0u,
    0x44042D73u, 0x33031DE5u, 0xAA0A4C5Fu, 0xDD0D7CC9u, 0x5005713Cu, 0x270241AAu,
    0xBE0B1010u, 0xC90C2086u, 0x5768B525u, 0x206F85B3u, 0xB966D409u, 0xCE61E49Fu,
    0x5EDEF90Eu, 0x29D9C998u, 0xB0D09822u, 0xC7D7A8B4u, 0x59B33D17u, 0x2EB40D81u,
    0xB7BD5C3Bu, 0xC0BA6CADu, 0xEDB88320u, 0x9ABFB3B6u, 0x03B6E20Cu, 0x74B1D29Au,
    0xEAD54739u, 0x9DD277AFu, 0x04DB2615u, 0x73DC1683u, 0xE3630B12u, 0x94643B84u,
    0x0D6D6A3Eu, 0x7A6A5AA8u, 0xE40ECF0Bu, 0x9309FF9Du, 0x0A00AE27u, 0x7D079EB1u,
    0xF00F9344u, 0x8708A3D2u, 0x1E01F268u, 0x6906C2FEu, 0xF762575Du, 0x806567CBu,
    0x196C3671u, 0x6E6B06E7u, 0xFED41B76u, 0x89D32BE0u, 0x10DA7A5Au, 0x67DD4ACCu,
    0xF9B9DF6Fu, 0x8EBEEFF9u, 0x17B7BE43u, 0x60B08ED5u, 0xD6D6A3E8u, 0xA1D1937Eu,
    0x38D8C2C4u, 0x4FDFF252u, 0xD1BB67F1u, 0xA6BC5767u, 0x3FB506DDu, 0x48B2364Bu,
    0xD80D2BDAu, 0xAF0A1B4Cu, 0x36034AF6u, 0x41047A60u, 0xDF60EFC3u, 0xA867DF55u,
    0x316E8EEFu, 0x4669BE79u, 0xCB61B38Cu, 0xBC66831Au, 0x256FD2A0u, 0x5268E236u,
    0xCC0C7795u, 0xBB0B4703u, 0x220216B9u, 0x5505262Fu, 0xC5BA3BBEu, 0xB2BD0B28u,
    0x2BB45A92u, 0x5CB36A04u, 0xC2D7FFA7u, 0xB5D0CF31u, 0x2CD99E8Bu, 0x5BDEAE1Du,
    0x9B64C2B0u, 0xEC63F226u, 0x756AA39Cu, 0x026D930Au, 0x9C0906A9u, 0xEB0E363Fu,
    0x72076785u, 0x05005713u, 0x95BF4A82u, 0xE2B87A14u, 0x7BB12BAEu, 0x0CB61B38u,
    0x92D28E9Bu, 0xE5D5BE0Du, 0x7CDCEFB7u, 0x0BDBDF21u, 0x86D3D2D4u, 0xF1D4E242u,
    0x68DDB3F8u, 0x1FDA836Eu, 0x81BE16CDu, 0xF6B9265Bu, 0x6FB077E1u, 0x18B74777u,
    0x88085AE6u, 0xFF0F6A70u, 0x66063BCAu, 0x11010B5Cu, 0x8F659EFFu, 0xF862AE69u,
    0x616BFFD3u, 0x166CCF45u, 0xA00AE278u, 0xD70DD2EEu, 0x4E048354u, 0x3903B3C2u,
    0xA7672661u, 0xD06016F7u, 0x4969474Du, 0x3E6E77DBu, 0xAED16A4Au, 0xD9D65ADCu,
    0x40DF0B66u, 0x37D83BF0u, 0xA9BCAE53u, 0xDEBB9EC5u, 0x47B2CF7Fu, 0x30B5FFE9u,
    0xBDBDF21Cu, 0xCABAC28Au, 0x53B39330u, 0x24B4A3A6u, 0xBAD03605u, 0xCDD70693u,
    0x54DE5729u, 0x23D967BFu, 0xB3667A2Eu, 0xC4614AB8u, 0x5D681B02u, 0x2A6F2B94u,
    0xB40BBE37u, 0xC30C8EA1u, 0x5A05DF1Bu, 0x2D02EF8Du,
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

/* ------------------------------------------------------------ enums */
/* HeaderFlags: flags (bits) */
#define ND_HEADER_FLAGS_RETRANSMIT 0x01u
#define ND_HEADER_FLAGS_REPLAYED 0x02u

/* NakReason: values */
#define ND_NAK_REASON_BAD_ARGUMENT 0x01u
#define ND_NAK_REASON_NOT_HOMED 0x02u
#define ND_NAK_REASON_NOT_ARMED 0x03u
#define ND_NAK_REASON_BEYOND_LIMIT 0x04u
#define ND_NAK_REASON_BUSY 0x05u
#define ND_NAK_REASON_ESTOPPED 0x06u
#define ND_NAK_REASON_LATCHED_FAULT 0x07u
#define ND_NAK_REASON_UNKNOWN_MESSAGE 0x08u
#define ND_NAK_REASON_SCHEMA_MISMATCH 0x09u

/* DeviceState: values */
#define ND_DEVICE_STATE_UNHOMED 0x00u
#define ND_DEVICE_STATE_HOMING 0x01u
#define ND_DEVICE_STATE_READY 0x02u
#define ND_DEVICE_STATE_MOVING 0x03u
#define ND_DEVICE_STATE_STALLED 0x04u
#define ND_DEVICE_STATE_LIMIT 0x05u
#define ND_DEVICE_STATE_FAULT 0x06u
#define ND_DEVICE_STATE_ESTOPPED 0x07u

/* FaultFlags: flags (bits) */
#define ND_FAULT_FLAGS_WATCHDOG 0x01u
#define ND_FAULT_FLAGS_STALL 0x02u
#define ND_FAULT_FLAGS_FORCE_LIMIT 0x04u
#define ND_FAULT_FLAGS_ESTOP 0x08u
#define ND_FAULT_FLAGS_TRAVEL_LIMIT 0x10u
#define ND_FAULT_FLAGS_ENCODER 0x20u
#define ND_FAULT_FLAGS_LOAD_CELL 0x40u
#define ND_FAULT_FLAGS_OVERRUN 0x80u

/* SampleFlags: flags (bits) */
#define ND_SAMPLE_FLAGS_HOMED 0x01u
#define ND_SAMPLE_FLAGS_ADVANCING 0x02u
#define ND_SAMPLE_FLAGS_ROTATING 0x04u
#define ND_SAMPLE_FLAGS_AT_LIMIT 0x08u
#define ND_SAMPLE_FLAGS_STALL 0x10u
#define ND_SAMPLE_FLAGS_FAULT 0x20u
#define ND_SAMPLE_FLAGS_ESTOP 0x40u
#define ND_SAMPLE_FLAGS_ARMED 0x80u

/* EventCode: values */
#define ND_EVENT_CODE_LIMIT_REACHED 0x01u
#define ND_EVENT_CODE_STALL 0x02u
#define ND_EVENT_CODE_FORCE_OVER_LIMIT 0x03u
#define ND_EVENT_CODE_WATCHDOG_TRIP 0x04u
#define ND_EVENT_CODE_ESTOP 0x05u
#define ND_EVENT_CODE_FAULT 0x06u
#define ND_EVENT_CODE_HOMED 0x07u
#define ND_EVENT_CODE_TARGET_REACHED 0x08u
#define ND_EVENT_CODE_FAULT_CLEARED 0x09u
#define ND_EVENT_CODE_BOOT 0x0Au
#define ND_EVENT_CODE_SESSION_ENDED 0x0Bu

/* MoveMode: values */
#define ND_MOVE_MODE_ABSOLUTE 0x00u
#define ND_MOVE_MODE_RELATIVE 0x01u
#define ND_MOVE_MODE_STOP 0x02u

/* RotateMode: values */
#define ND_ROTATE_MODE_STOP 0x00u
#define ND_ROTATE_MODE_CONTINUOUS 0x01u
#define ND_ROTATE_MODE_BY_ANGLE 0x02u
#define ND_ROTATE_MODE_OSCILLATE 0x03u

/* Capabilities: flags (bits) */
#define ND_CAPABILITIES_ROTATION 0x01u
#define ND_CAPABILITIES_OSCILLATION 0x02u
#define ND_CAPABILITIES_LOAD_CELL 0x04u
#define ND_CAPABILITIES_ENCODER 0x08u
#define ND_CAPABILITIES_USB_BULK 0x10u
#define ND_CAPABILITIES_FAULT_INJECTION 0x20u

/* ForceFlags: flags (bits) */
#define ND_FORCE_FLAGS_FRESH 0x01u

/* LoadCellFault: values */
#define ND_LOAD_CELL_FAULT_NONE 0x00u
#define ND_LOAD_CELL_FAULT_NO_READING 0x01u
#define ND_LOAD_CELL_FAULT_TIMEOUT 0x02u
#define ND_LOAD_CELL_FAULT_SATURATED 0x03u
#define ND_LOAD_CELL_FAULT_STUCK 0x04u

/* ------------------------------------------------------------ records */
/* TelemetrySample: One sample inside TELEMETRY.  23 bytes packed. */
#define ND_TELEMETRY_SAMPLE_BYTES 23u
struct nd_telemetry_sample {
    uint32_t time_us;
    int32_t depth_um;
    int32_t commanded_depth_um;
    int32_t angle_cdeg;
    int32_t force_mn;
    uint8_t state;
    uint8_t flags;
    uint8_t force_flags;
};
static inline void nd_telemetry_sample_pack(const struct nd_telemetry_sample *r, uint8_t *out)
{
    nd_put_u32(out + 0, r->time_us);
    nd_put_i32(out + 4, r->depth_um);
    nd_put_i32(out + 8, r->commanded_depth_um);
    nd_put_i32(out + 12, r->angle_cdeg);
    nd_put_i32(out + 16, r->force_mn);
    nd_put_u8(out + 20, r->state);
    nd_put_u8(out + 21, r->flags);
    nd_put_u8(out + 22, r->force_flags);
}
static inline void nd_telemetry_sample_unpack(struct nd_telemetry_sample *r, const uint8_t *in)
{
    r->time_us = nd_get_u32(in + 0);
    r->depth_um = nd_get_i32(in + 4);
    r->commanded_depth_um = nd_get_i32(in + 8);
    r->angle_cdeg = nd_get_i32(in + 12);
    r->force_mn = nd_get_i32(in + 16);
    r->state = nd_get_u8(in + 20);
    r->flags = nd_get_u8(in + 21);
    r->force_flags = nd_get_u8(in + 22);
}

/* EventRecord: One event inside EVENT_LOG.  17 bytes packed. */
#define ND_EVENT_RECORD_BYTES 17u
struct nd_event_record {
    uint32_t number;
    uint64_t time_us;
    uint8_t code;
    int32_t value;
};
static inline void nd_event_record_pack(const struct nd_event_record *r, uint8_t *out)
{
    nd_put_u32(out + 0, r->number);
    nd_put_u64(out + 4, r->time_us);
    nd_put_u8(out + 12, r->code);
    nd_put_i32(out + 13, r->value);
}
static inline void nd_event_record_unpack(struct nd_event_record *r, const uint8_t *in)
{
    r->number = nd_get_u32(in + 0);
    r->time_us = nd_get_u64(in + 4);
    r->code = nd_get_u8(in + 12);
    r->value = nd_get_i32(in + 13);
}

/* ------------------------------------------------------------ messages */
/* 0x01 HELLO (host->device): Opens a session. The device answers IDENTITY and arms motion when the hashes match. */
#define ND_HELLO_ID 0x01u
#define ND_HELLO_PROTOCOL_VERSION_OFFSET 0u
#define ND_HELLO_SCHEMA_HASH_OFFSET 1u
#define ND_HELLO_PAYLOAD_BYTES 5u
struct nd_hello {
    uint8_t protocol_version;
    uint32_t schema_hash;
};
/* Writes the payload; returns its length in bytes. */
static inline size_t nd_hello_pack(const struct nd_hello *m, uint8_t *out)
{
    nd_put_u8(out + 0, m->protocol_version);
    nd_put_u32(out + 1, m->schema_hash);
    return 5u;
}
/* Reads a payload of len bytes; returns 0 if its length is wrong. */
static inline int nd_hello_unpack(struct nd_hello *m, const uint8_t *in, size_t len)
{
    if (len != 5u) return 0;
    m->protocol_version = nd_get_u8(in + 0);
    m->schema_hash = nd_get_u32(in + 1);
    return 1;
}

/* 0x02 HEARTBEAT (both): Keeps the link alive (sent with seq 0; receivers ignore its seq; no reply). The host sends one at least every 50 ms; the device sends one when it has sent nothing else for 100 ms, from boot on. */
#define ND_HEARTBEAT_ID 0x02u
#define ND_HEARTBEAT_UPTIME_MS_OFFSET 0u
#define ND_HEARTBEAT_PAYLOAD_BYTES 4u
struct nd_heartbeat {
    uint32_t uptime_ms;
};
/* Writes the payload; returns its length in bytes. */
static inline size_t nd_heartbeat_pack(const struct nd_heartbeat *m, uint8_t *out)
{
    nd_put_u32(out + 0, m->uptime_ms);
    return 4u;
}
/* Reads a payload of len bytes; returns 0 if its length is wrong. */
static inline int nd_heartbeat_unpack(struct nd_heartbeat *m, const uint8_t *in, size_t len)
{
    if (len != 4u) return 0;
    m->uptime_ms = nd_get_u32(in + 0);
    return 1;
}

/* 0x03 HOME (host->device): Drive the advance axis back to the homing switch; position 0 is set there. */
#define ND_HOME_ID 0x03u
#define ND_HOME_SPEED_UM_S_OFFSET 0u
#define ND_HOME_SPEED_UM_S_MIN 1u
#define ND_HOME_SPEED_UM_S_MAX 20000u
#define ND_HOME_PAYLOAD_BYTES 4u
struct nd_home {
    uint32_t speed_um_s;
};
/* Writes the payload; returns its length in bytes. */
static inline size_t nd_home_pack(const struct nd_home *m, uint8_t *out)
{
    nd_put_u32(out + 0, m->speed_um_s);
    return 4u;
}
/* Reads a payload of len bytes; returns 0 if its length is wrong. */
static inline int nd_home_unpack(struct nd_home *m, const uint8_t *in, size_t len)
{
    if (len != 4u) return 0;
    m->speed_um_s = nd_get_u32(in + 0);
    return 1;
}

/* 0x04 MOVE (host->device): Advance (or retract) the needle to a depth, with a trapezoidal profile. */
#define ND_MOVE_ID 0x04u
#define ND_MOVE_MODE_OFFSET 0u
#define ND_MOVE_TARGET_UM_OFFSET 1u
#define ND_MOVE_SPEED_UM_S_OFFSET 5u
#define ND_MOVE_SPEED_UM_S_MIN 1u
#define ND_MOVE_SPEED_UM_S_MAX 20000u
#define ND_MOVE_PAYLOAD_BYTES 9u
struct nd_move {
    uint8_t mode;
    int32_t target_um;
    uint32_t speed_um_s;
};
/* Writes the payload; returns its length in bytes. */
static inline size_t nd_move_pack(const struct nd_move *m, uint8_t *out)
{
    nd_put_u8(out + 0, m->mode);
    nd_put_i32(out + 1, m->target_um);
    nd_put_u32(out + 5, m->speed_um_s);
    return 9u;
}
/* Reads a payload of len bytes; returns 0 if its length is wrong. */
static inline int nd_move_unpack(struct nd_move *m, const uint8_t *in, size_t len)
{
    if (len != 9u) return 0;
    m->mode = nd_get_u8(in + 0);
    m->target_um = nd_get_i32(in + 1);
    m->speed_um_s = nd_get_u32(in + 5);
    return 1;
}

/* 0x05 ROTATE (host->device): Rotate the needle: continuously, by an angle, or oscillating. */
#define ND_ROTATE_ID 0x05u
#define ND_ROTATE_MODE_OFFSET 0u
#define ND_ROTATE_RATE_MRPM_OFFSET 1u
#define ND_ROTATE_ANGLE_CDEG_OFFSET 5u
#define ND_ROTATE_RATE_MRPM_MIN -600000
#define ND_ROTATE_RATE_MRPM_MAX 600000
#define ND_ROTATE_PAYLOAD_BYTES 9u
struct nd_rotate {
    uint8_t mode;
    int32_t rate_mrpm;
    int32_t angle_cdeg;
};
/* Writes the payload; returns its length in bytes. */
static inline size_t nd_rotate_pack(const struct nd_rotate *m, uint8_t *out)
{
    nd_put_u8(out + 0, m->mode);
    nd_put_i32(out + 1, m->rate_mrpm);
    nd_put_i32(out + 5, m->angle_cdeg);
    return 9u;
}
/* Reads a payload of len bytes; returns 0 if its length is wrong. */
static inline int nd_rotate_unpack(struct nd_rotate *m, const uint8_t *in, size_t len)
{
    if (len != 9u) return 0;
    m->mode = nd_get_u8(in + 0);
    m->rate_mrpm = nd_get_i32(in + 1);
    m->angle_cdeg = nd_get_i32(in + 5);
    return 1;
}

/* 0x06 STOP (host->device): Decelerate both axes to rest (controlled stop; no fault latched). */
#define ND_STOP_ID 0x06u
#define ND_STOP_PAYLOAD_BYTES 0u
struct nd_stop {
    uint8_t unused_; /* no fields */
};
/* Writes the payload; returns its length in bytes. */
static inline size_t nd_stop_pack(const struct nd_stop *m, uint8_t *out)
{
    (void)m; (void)out;
    return 0u;
}
/* Reads a payload of len bytes; returns 0 if its length is wrong. */
static inline int nd_stop_unpack(struct nd_stop *m, const uint8_t *in, size_t len)
{
    if (len != 0u) return 0;
    (void)m; (void)in;
    return 1;
}

/* 0x07 ESTOP (host->device): Emergency stop: both axes halt within one control tick; ESTOP latches. Idempotent. */
#define ND_ESTOP_ID 0x07u
#define ND_ESTOP_PAYLOAD_BYTES 0u
struct nd_estop {
    uint8_t unused_; /* no fields */
};
/* Writes the payload; returns its length in bytes. */
static inline size_t nd_estop_pack(const struct nd_estop *m, uint8_t *out)
{
    (void)m; (void)out;
    return 0u;
}
/* Reads a payload of len bytes; returns 0 if its length is wrong. */
static inline int nd_estop_unpack(struct nd_estop *m, const uint8_t *in, size_t len)
{
    if (len != 0u) return 0;
    (void)m; (void)in;
    return 1;
}

/* 0x08 CLEAR_FAULT (host->device): Clear latched faults (and e-stop). After a stall or e-stop the device is unhomed. */
#define ND_CLEAR_FAULT_ID 0x08u
#define ND_CLEAR_FAULT_PAYLOAD_BYTES 0u
struct nd_clear_fault {
    uint8_t unused_; /* no fields */
};
/* Writes the payload; returns its length in bytes. */
static inline size_t nd_clear_fault_pack(const struct nd_clear_fault *m, uint8_t *out)
{
    (void)m; (void)out;
    return 0u;
}
/* Reads a payload of len bytes; returns 0 if its length is wrong. */
static inline int nd_clear_fault_unpack(struct nd_clear_fault *m, const uint8_t *in, size_t len)
{
    if (len != 0u) return 0;
    (void)m; (void)in;
    return 1;
}

/* 0x09 SET_LIMITS (host->device): Tighten the device's limits. Each must lie within the hard limits in IDENTITY. */
#define ND_SET_LIMITS_ID 0x09u
#define ND_SET_LIMITS_SOFT_DEPTH_LIMIT_UM_OFFSET 0u
#define ND_SET_LIMITS_FORCE_LIMIT_MN_OFFSET 4u
#define ND_SET_LIMITS_STALL_FORCE_MN_OFFSET 8u
#define ND_SET_LIMITS_STALL_TIME_MS_OFFSET 12u
#define ND_SET_LIMITS_SOFT_DEPTH_LIMIT_UM_MIN 0
#define ND_SET_LIMITS_SOFT_DEPTH_LIMIT_UM_MAX 2147483647
#define ND_SET_LIMITS_FORCE_LIMIT_MN_MIN 1
#define ND_SET_LIMITS_FORCE_LIMIT_MN_MAX 2147483647
#define ND_SET_LIMITS_STALL_FORCE_MN_MIN 1
#define ND_SET_LIMITS_STALL_FORCE_MN_MAX 2147483647
#define ND_SET_LIMITS_STALL_TIME_MS_MIN 1u
#define ND_SET_LIMITS_STALL_TIME_MS_MAX 10000u
#define ND_SET_LIMITS_PAYLOAD_BYTES 14u
struct nd_set_limits {
    int32_t soft_depth_limit_um;
    int32_t force_limit_mn;
    int32_t stall_force_mn;
    uint16_t stall_time_ms;
};
/* Writes the payload; returns its length in bytes. */
static inline size_t nd_set_limits_pack(const struct nd_set_limits *m, uint8_t *out)
{
    nd_put_i32(out + 0, m->soft_depth_limit_um);
    nd_put_i32(out + 4, m->force_limit_mn);
    nd_put_i32(out + 8, m->stall_force_mn);
    nd_put_u16(out + 12, m->stall_time_ms);
    return 14u;
}
/* Reads a payload of len bytes; returns 0 if its length is wrong. */
static inline int nd_set_limits_unpack(struct nd_set_limits *m, const uint8_t *in, size_t len)
{
    if (len != 14u) return 0;
    m->soft_depth_limit_um = nd_get_i32(in + 0);
    m->force_limit_mn = nd_get_i32(in + 4);
    m->stall_force_mn = nd_get_i32(in + 8);
    m->stall_time_ms = nd_get_u16(in + 12);
    return 1;
}

/* 0x0A SET_TELEMETRY (host->device): Configure the telemetry stream (0 Hz = off). */
#define ND_SET_TELEMETRY_ID 0x0Au
#define ND_SET_TELEMETRY_RATE_HZ_OFFSET 0u
#define ND_SET_TELEMETRY_BATCH_SAMPLES_OFFSET 2u
#define ND_SET_TELEMETRY_RATE_HZ_MIN 0u
#define ND_SET_TELEMETRY_RATE_HZ_MAX 1000u
#define ND_SET_TELEMETRY_BATCH_SAMPLES_MIN 1u
#define ND_SET_TELEMETRY_BATCH_SAMPLES_MAX 10u
#define ND_SET_TELEMETRY_PAYLOAD_BYTES 3u
struct nd_set_telemetry {
    uint16_t rate_hz;
    uint8_t batch_samples;
};
/* Writes the payload; returns its length in bytes. */
static inline size_t nd_set_telemetry_pack(const struct nd_set_telemetry *m, uint8_t *out)
{
    nd_put_u16(out + 0, m->rate_hz);
    nd_put_u8(out + 2, m->batch_samples);
    return 3u;
}
/* Reads a payload of len bytes; returns 0 if its length is wrong. */
static inline int nd_set_telemetry_unpack(struct nd_set_telemetry *m, const uint8_t *in, size_t len)
{
    if (len != 3u) return 0;
    m->rate_hz = nd_get_u16(in + 0);
    m->batch_samples = nd_get_u8(in + 2);
    return 1;
}

/* 0x0B GET_STATUS (host->device): Ask for a STATUS reply. */
#define ND_GET_STATUS_ID 0x0Bu
#define ND_GET_STATUS_PAYLOAD_BYTES 0u
struct nd_get_status {
    uint8_t unused_; /* no fields */
};
/* Writes the payload; returns its length in bytes. */
static inline size_t nd_get_status_pack(const struct nd_get_status *m, uint8_t *out)
{
    (void)m; (void)out;
    return 0u;
}
/* Reads a payload of len bytes; returns 0 if its length is wrong. */
static inline int nd_get_status_unpack(struct nd_get_status *m, const uint8_t *in, size_t len)
{
    if (len != 0u) return 0;
    (void)m; (void)in;
    return 1;
}

/* 0x0C GET_EVENTS (host->device): Ask for stored events from a number on (to recover a gap): EVENT_LOG reply. */
#define ND_GET_EVENTS_ID 0x0Cu
#define ND_GET_EVENTS_FROM_NUMBER_OFFSET 0u
#define ND_GET_EVENTS_MAX_COUNT_OFFSET 4u
#define ND_GET_EVENTS_MAX_COUNT_MIN 1u
#define ND_GET_EVENTS_MAX_COUNT_MAX 12u
#define ND_GET_EVENTS_PAYLOAD_BYTES 5u
struct nd_get_events {
    uint32_t from_number;
    uint8_t max_count;
};
/* Writes the payload; returns its length in bytes. */
static inline size_t nd_get_events_pack(const struct nd_get_events *m, uint8_t *out)
{
    nd_put_u32(out + 0, m->from_number);
    nd_put_u8(out + 4, m->max_count);
    return 5u;
}
/* Reads a payload of len bytes; returns 0 if its length is wrong. */
static inline int nd_get_events_unpack(struct nd_get_events *m, const uint8_t *in, size_t len)
{
    if (len != 5u) return 0;
    m->from_number = nd_get_u32(in + 0);
    m->max_count = nd_get_u8(in + 4);
    return 1;
}

/* 0x0D BYE (host->device): End this host's session in order: ACK, then motion is NOT_ARMED until a HELLO, and nothing is logged (a host that only goes silent ends it through the watchdog, logged SESSION_ENDED). While anything moves or homes: NAK BUSY, the session goes on. */
#define ND_BYE_ID 0x0Du
#define ND_BYE_PAYLOAD_BYTES 0u
struct nd_bye {
    uint8_t unused_; /* no fields */
};
/* Writes the payload; returns its length in bytes. */
static inline size_t nd_bye_pack(const struct nd_bye *m, uint8_t *out)
{
    (void)m; (void)out;
    return 0u;
}
/* Reads a payload of len bytes; returns 0 if its length is wrong. */
static inline int nd_bye_unpack(struct nd_bye *m, const uint8_t *in, size_t len)
{
    if (len != 0u) return 0;
    (void)m; (void)in;
    return 1;
}

/* 0x0E TARE (host->device): Zero the load cell here: the mean of its last 8 raw conversions becomes the offset subtracted from every reading, and the filters restart from zero. The device also tares at the end of every HOME (the needle at the switch, out of tissue). Refused BUSY while the advance moves or homes, LATCHED_FAULT while LOAD_CELL is latched. */
#define ND_TARE_ID 0x0Eu
#define ND_TARE_PAYLOAD_BYTES 0u
struct nd_tare {
    uint8_t unused_; /* no fields */
};
/* Writes the payload; returns its length in bytes. */
static inline size_t nd_tare_pack(const struct nd_tare *m, uint8_t *out)
{
    (void)m; (void)out;
    return 0u;
}
/* Reads a payload of len bytes; returns 0 if its length is wrong. */
static inline int nd_tare_unpack(struct nd_tare *m, const uint8_t *in, size_t len)
{
    if (len != 0u) return 0;
    (void)m; (void)in;
    return 1;
}

/* 0x0F SET_LOAD_CELL (host->device): Configure the load cell's filter chain, run on every fresh conversion: tare offset, drift high-pass (continuous tare), mains notch, low-pass; 0 turns a filter off (all off at boot). Refused BUSY while the advance moves or homes, BEYOND_LIMIT (detail: the nominal sample rate, Hz) when a frequency is not below half the sample rate. */
#define ND_SET_LOAD_CELL_ID 0x0Fu
#define ND_SET_LOAD_CELL_DRIFT_CORNER_MHZ_OFFSET 0u
#define ND_SET_LOAD_CELL_NOTCH_HZ_OFFSET 4u
#define ND_SET_LOAD_CELL_LOWPASS_HZ_OFFSET 5u
#define ND_SET_LOAD_CELL_DRIFT_CORNER_MHZ_MIN 0u
#define ND_SET_LOAD_CELL_DRIFT_CORNER_MHZ_MAX 10000u
#define ND_SET_LOAD_CELL_NOTCH_HZ_MIN 0u
#define ND_SET_LOAD_CELL_NOTCH_HZ_MAX 100u
#define ND_SET_LOAD_CELL_LOWPASS_HZ_MIN 0u
#define ND_SET_LOAD_CELL_LOWPASS_HZ_MAX 1000u
#define ND_SET_LOAD_CELL_PAYLOAD_BYTES 7u
struct nd_set_load_cell {
    uint32_t drift_corner_mhz;
    uint8_t notch_hz;
    uint16_t lowpass_hz;
};
/* Writes the payload; returns its length in bytes. */
static inline size_t nd_set_load_cell_pack(const struct nd_set_load_cell *m, uint8_t *out)
{
    nd_put_u32(out + 0, m->drift_corner_mhz);
    nd_put_u8(out + 4, m->notch_hz);
    nd_put_u16(out + 5, m->lowpass_hz);
    return 7u;
}
/* Reads a payload of len bytes; returns 0 if its length is wrong. */
static inline int nd_set_load_cell_unpack(struct nd_set_load_cell *m, const uint8_t *in, size_t len)
{
    if (len != 7u) return 0;
    m->drift_corner_mhz = nd_get_u32(in + 0);
    m->notch_hz = nd_get_u8(in + 4);
    m->lowpass_hz = nd_get_u16(in + 5);
    return 1;
}

/* 0x81 IDENTITY (device->host): Reply to HELLO. */
#define ND_IDENTITY_ID 0x81u
#define ND_IDENTITY_PROTOCOL_VERSION_OFFSET 0u
#define ND_IDENTITY_SCHEMA_HASH_OFFSET 1u
#define ND_IDENTITY_FIRMWARE_MAJOR_OFFSET 5u
#define ND_IDENTITY_FIRMWARE_MINOR_OFFSET 6u
#define ND_IDENTITY_FIRMWARE_PATCH_OFFSET 7u
#define ND_IDENTITY_SERIAL_NUMBER_OFFSET 8u
#define ND_IDENTITY_SIMULATED_OFFSET 24u
#define ND_IDENTITY_CAPABILITIES_OFFSET 25u
#define ND_IDENTITY_TRAVEL_LIMIT_UM_OFFSET 29u
#define ND_IDENTITY_FORCE_LIMIT_MN_OFFSET 33u
#define ND_IDENTITY_MAX_SPEED_UM_S_OFFSET 37u
#define ND_IDENTITY_MAX_RATE_MRPM_OFFSET 41u
#define ND_IDENTITY_WATCHDOG_MS_OFFSET 45u
#define ND_IDENTITY_SESSION_ARMED_OFFSET 47u
#define ND_IDENTITY_LOAD_CELL_SAMPLE_HZ_OFFSET 48u
#define ND_IDENTITY_SIMULATED_MIN 0u
#define ND_IDENTITY_SIMULATED_MAX 1u
#define ND_IDENTITY_SESSION_ARMED_MIN 0u
#define ND_IDENTITY_SESSION_ARMED_MAX 1u
#define ND_IDENTITY_PAYLOAD_BYTES 50u
struct nd_identity {
    uint8_t protocol_version;
    uint32_t schema_hash;
    uint8_t firmware_major;
    uint8_t firmware_minor;
    uint8_t firmware_patch;
    char serial_number[16]; /* NUL-padded, maybe unterminated */
    uint8_t simulated;
    uint32_t capabilities;
    int32_t travel_limit_um;
    int32_t force_limit_mn;
    uint32_t max_speed_um_s;
    int32_t max_rate_mrpm;
    uint16_t watchdog_ms;
    uint8_t session_armed;
    uint16_t load_cell_sample_hz;
};
/* Writes the payload; returns its length in bytes. */
static inline size_t nd_identity_pack(const struct nd_identity *m, uint8_t *out)
{
    nd_put_u8(out + 0, m->protocol_version);
    nd_put_u32(out + 1, m->schema_hash);
    nd_put_u8(out + 5, m->firmware_major);
    nd_put_u8(out + 6, m->firmware_minor);
    nd_put_u8(out + 7, m->firmware_patch);
    memcpy(out + 8, m->serial_number, 16);
    nd_put_u8(out + 24, m->simulated);
    nd_put_u32(out + 25, m->capabilities);
    nd_put_i32(out + 29, m->travel_limit_um);
    nd_put_i32(out + 33, m->force_limit_mn);
    nd_put_u32(out + 37, m->max_speed_um_s);
    nd_put_i32(out + 41, m->max_rate_mrpm);
    nd_put_u16(out + 45, m->watchdog_ms);
    nd_put_u8(out + 47, m->session_armed);
    nd_put_u16(out + 48, m->load_cell_sample_hz);
    return 50u;
}
/* Reads a payload of len bytes; returns 0 if its length is wrong. */
static inline int nd_identity_unpack(struct nd_identity *m, const uint8_t *in, size_t len)
{
    if (len != 50u) return 0;
    m->protocol_version = nd_get_u8(in + 0);
    m->schema_hash = nd_get_u32(in + 1);
    m->firmware_major = nd_get_u8(in + 5);
    m->firmware_minor = nd_get_u8(in + 6);
    m->firmware_patch = nd_get_u8(in + 7);
    memcpy(m->serial_number, in + 8, 16);
    m->simulated = nd_get_u8(in + 24);
    m->capabilities = nd_get_u32(in + 25);
    m->travel_limit_um = nd_get_i32(in + 29);
    m->force_limit_mn = nd_get_i32(in + 33);
    m->max_speed_um_s = nd_get_u32(in + 37);
    m->max_rate_mrpm = nd_get_i32(in + 41);
    m->watchdog_ms = nd_get_u16(in + 45);
    m->session_armed = nd_get_u8(in + 47);
    m->load_cell_sample_hz = nd_get_u16(in + 48);
    return 1;
}

/* 0x82 ACK (device->host): The command with this frame's seq was accepted (and executed once). */
#define ND_ACK_ID 0x82u
#define ND_ACK_COMMAND_ID_OFFSET 0u
#define ND_ACK_PAYLOAD_BYTES 1u
struct nd_ack {
    uint8_t command_id;
};
/* Writes the payload; returns its length in bytes. */
static inline size_t nd_ack_pack(const struct nd_ack *m, uint8_t *out)
{
    nd_put_u8(out + 0, m->command_id);
    return 1u;
}
/* Reads a payload of len bytes; returns 0 if its length is wrong. */
static inline int nd_ack_unpack(struct nd_ack *m, const uint8_t *in, size_t len)
{
    if (len != 1u) return 0;
    m->command_id = nd_get_u8(in + 0);
    return 1;
}

/* 0x83 NAK (device->host): The command with this frame's seq was refused; nothing was executed. */
#define ND_NAK_ID 0x83u
#define ND_NAK_COMMAND_ID_OFFSET 0u
#define ND_NAK_REASON_OFFSET 1u
#define ND_NAK_DETAIL_OFFSET 2u
#define ND_NAK_PAYLOAD_BYTES 6u
struct nd_nak {
    uint8_t command_id;
    uint8_t reason;
    int32_t detail;
};
/* Writes the payload; returns its length in bytes. */
static inline size_t nd_nak_pack(const struct nd_nak *m, uint8_t *out)
{
    nd_put_u8(out + 0, m->command_id);
    nd_put_u8(out + 1, m->reason);
    nd_put_i32(out + 2, m->detail);
    return 6u;
}
/* Reads a payload of len bytes; returns 0 if its length is wrong. */
static inline int nd_nak_unpack(struct nd_nak *m, const uint8_t *in, size_t len)
{
    if (len != 6u) return 0;
    m->command_id = nd_get_u8(in + 0);
    m->reason = nd_get_u8(in + 1);
    m->detail = nd_get_i32(in + 2);
    return 1;
}

/* 0x84 STATUS (device->host): Reply to GET_STATUS: the device's whole state in one frame. */
#define ND_STATUS_ID 0x84u
#define ND_STATUS_STATE_OFFSET 0u
#define ND_STATUS_FLAGS_OFFSET 1u
#define ND_STATUS_LATCHED_FAULTS_OFFSET 2u
#define ND_STATUS_DEVICE_TIME_US_OFFSET 4u
#define ND_STATUS_DEPTH_UM_OFFSET 12u
#define ND_STATUS_COMMANDED_DEPTH_UM_OFFSET 16u
#define ND_STATUS_ANGLE_CDEG_OFFSET 20u
#define ND_STATUS_FORCE_MN_OFFSET 24u
#define ND_STATUS_SOFT_DEPTH_LIMIT_UM_OFFSET 28u
#define ND_STATUS_FORCE_LIMIT_MN_OFFSET 32u
#define ND_STATUS_STALL_FORCE_MN_OFFSET 36u
#define ND_STATUS_STALL_TIME_MS_OFFSET 40u
#define ND_STATUS_TELEMETRY_RATE_HZ_OFFSET 42u
#define ND_STATUS_LAST_EVENT_NUMBER_OFFSET 44u
#define ND_STATUS_SAMPLES_SENT_OFFSET 48u
#define ND_STATUS_FRAMES_OK_OFFSET 52u
#define ND_STATUS_FRAMES_BAD_OFFSET 56u
#define ND_STATUS_COMMANDS_EXECUTED_OFFSET 60u
#define ND_STATUS_REPLIES_REPLAYED_OFFSET 64u
#define ND_STATUS_WATCHDOG_TRIPS_OFFSET 68u
#define ND_STATUS_TICK_OVERRUNS_OFFSET 72u
#define ND_STATUS_LOAD_CELL_RATE_HZ_OFFSET 76u
#define ND_STATUS_LOAD_CELL_SAMPLES_OFFSET 78u
#define ND_STATUS_LOAD_CELL_STALE_SAMPLES_OFFSET 82u
#define ND_STATUS_LOAD_CELL_SATURATED_OFFSET 86u
#define ND_STATUS_LOAD_CELL_FAULT_OFFSET 90u
#define ND_STATUS_LOAD_CELL_OFFSET_MN_OFFSET 91u
#define ND_STATUS_DRIFT_CORNER_MHZ_OFFSET 95u
#define ND_STATUS_NOTCH_HZ_OFFSET 99u
#define ND_STATUS_LOWPASS_HZ_OFFSET 100u
#define ND_STATUS_PAYLOAD_BYTES 102u
struct nd_status {
    uint8_t state;
    uint8_t flags;
    uint16_t latched_faults;
    uint64_t device_time_us;
    int32_t depth_um;
    int32_t commanded_depth_um;
    int32_t angle_cdeg;
    int32_t force_mn;
    int32_t soft_depth_limit_um;
    int32_t force_limit_mn;
    int32_t stall_force_mn;
    uint16_t stall_time_ms;
    uint16_t telemetry_rate_hz;
    uint32_t last_event_number;
    uint32_t samples_sent;
    uint32_t frames_ok;
    uint32_t frames_bad;
    uint32_t commands_executed;
    uint32_t replies_replayed;
    uint32_t watchdog_trips;
    uint32_t tick_overruns;
    uint16_t load_cell_rate_hz;
    uint32_t load_cell_samples;
    uint32_t load_cell_stale_samples;
    uint32_t load_cell_saturated;
    uint8_t load_cell_fault;
    int32_t load_cell_offset_mn;
    uint32_t drift_corner_mhz;
    uint8_t notch_hz;
    uint16_t lowpass_hz;
};
/* Writes the payload; returns its length in bytes. */
static inline size_t nd_status_pack(const struct nd_status *m, uint8_t *out)
{
    nd_put_u8(out + 0, m->state);
    nd_put_u8(out + 1, m->flags);
    nd_put_u16(out + 2, m->latched_faults);
    nd_put_u64(out + 4, m->device_time_us);
    nd_put_i32(out + 12, m->depth_um);
    nd_put_i32(out + 16, m->commanded_depth_um);
    nd_put_i32(out + 20, m->angle_cdeg);
    nd_put_i32(out + 24, m->force_mn);
    nd_put_i32(out + 28, m->soft_depth_limit_um);
    nd_put_i32(out + 32, m->force_limit_mn);
    nd_put_i32(out + 36, m->stall_force_mn);
    nd_put_u16(out + 40, m->stall_time_ms);
    nd_put_u16(out + 42, m->telemetry_rate_hz);
    nd_put_u32(out + 44, m->last_event_number);
    nd_put_u32(out + 48, m->samples_sent);
    nd_put_u32(out + 52, m->frames_ok);
    nd_put_u32(out + 56, m->frames_bad);
    nd_put_u32(out + 60, m->commands_executed);
    nd_put_u32(out + 64, m->replies_replayed);
    nd_put_u32(out + 68, m->watchdog_trips);
    nd_put_u32(out + 72, m->tick_overruns);
    nd_put_u16(out + 76, m->load_cell_rate_hz);
    nd_put_u32(out + 78, m->load_cell_samples);
    nd_put_u32(out + 82, m->load_cell_stale_samples);
    nd_put_u32(out + 86, m->load_cell_saturated);
    nd_put_u8(out + 90, m->load_cell_fault);
    nd_put_i32(out + 91, m->load_cell_offset_mn);
    nd_put_u32(out + 95, m->drift_corner_mhz);
    nd_put_u8(out + 99, m->notch_hz);
    nd_put_u16(out + 100, m->lowpass_hz);
    return 102u;
}
/* Reads a payload of len bytes; returns 0 if its length is wrong. */
static inline int nd_status_unpack(struct nd_status *m, const uint8_t *in, size_t len)
{
    if (len != 102u) return 0;
    m->state = nd_get_u8(in + 0);
    m->flags = nd_get_u8(in + 1);
    m->latched_faults = nd_get_u16(in + 2);
    m->device_time_us = nd_get_u64(in + 4);
    m->depth_um = nd_get_i32(in + 12);
    m->commanded_depth_um = nd_get_i32(in + 16);
    m->angle_cdeg = nd_get_i32(in + 20);
    m->force_mn = nd_get_i32(in + 24);
    m->soft_depth_limit_um = nd_get_i32(in + 28);
    m->force_limit_mn = nd_get_i32(in + 32);
    m->stall_force_mn = nd_get_i32(in + 36);
    m->stall_time_ms = nd_get_u16(in + 40);
    m->telemetry_rate_hz = nd_get_u16(in + 42);
    m->last_event_number = nd_get_u32(in + 44);
    m->samples_sent = nd_get_u32(in + 48);
    m->frames_ok = nd_get_u32(in + 52);
    m->frames_bad = nd_get_u32(in + 56);
    m->commands_executed = nd_get_u32(in + 60);
    m->replies_replayed = nd_get_u32(in + 64);
    m->watchdog_trips = nd_get_u32(in + 68);
    m->tick_overruns = nd_get_u32(in + 72);
    m->load_cell_rate_hz = nd_get_u16(in + 76);
    m->load_cell_samples = nd_get_u32(in + 78);
    m->load_cell_stale_samples = nd_get_u32(in + 82);
    m->load_cell_saturated = nd_get_u32(in + 86);
    m->load_cell_fault = nd_get_u8(in + 90);
    m->load_cell_offset_mn = nd_get_i32(in + 91);
    m->drift_corner_mhz = nd_get_u32(in + 95);
    m->notch_hz = nd_get_u8(in + 99);
    m->lowpass_hz = nd_get_u16(in + 100);
    return 1;
}

/* 0x85 TELEMETRY (device->host): A batch of consecutive samples. first_sample_number counts every sample the device produced since boot, so the host knows exactly how many it lost. */
#define ND_TELEMETRY_ID 0x85u
#define ND_TELEMETRY_FIRST_SAMPLE_NUMBER_OFFSET 0u
#define ND_TELEMETRY_SAMPLES_OFFSET 4u
#define ND_TELEMETRY_MIN_PAYLOAD_BYTES 5u
#define ND_TELEMETRY_MAX_PAYLOAD_BYTES 235u
struct nd_telemetry {
    uint32_t first_sample_number;
    uint8_t samples_count; /* 0..10 */
    struct nd_telemetry_sample samples[10];
};
/* Writes the payload; returns its length in bytes. */
static inline size_t nd_telemetry_pack(const struct nd_telemetry *m, uint8_t *out)
{
    size_t i, count;
    nd_put_u32(out + 0, m->first_sample_number);
    count = m->samples_count > 10u ? 10u : m->samples_count; /* never overrun */
    out[4] = (uint8_t)count;
    for (i = 0; i < count; ++i)
        nd_telemetry_sample_pack(&m->samples[i], out + 5u + i * 23u);
    return 5u + count * 23u;
}
/* Reads a payload of len bytes; returns 0 if its length is wrong. */
static inline int nd_telemetry_unpack(struct nd_telemetry *m, const uint8_t *in, size_t len)
{
    size_t i;
    if (len < 5u) return 0;
    m->first_sample_number = nd_get_u32(in + 0);
    m->samples_count = in[4];
    if (m->samples_count > 10u || len != 5u + (size_t)m->samples_count * 23u) return 0;
    for (i = 0; i < m->samples_count; ++i)
        nd_telemetry_sample_unpack(&m->samples[i], in + 5u + i * 23u);
    return 1;
}

/* 0x86 EVENT (device->host): Something happened. Numbers run 1, 2, 3 … with no gaps: a gap means a lost frame, recovered with GET_EVENTS. */
#define ND_EVENT_ID 0x86u
#define ND_EVENT_NUMBER_OFFSET 0u
#define ND_EVENT_TIME_US_OFFSET 4u
#define ND_EVENT_CODE_OFFSET 12u
#define ND_EVENT_VALUE_OFFSET 13u
#define ND_EVENT_PAYLOAD_BYTES 17u
struct nd_event {
    uint32_t number;
    uint64_t time_us;
    uint8_t code;
    int32_t value;
};
/* Writes the payload; returns its length in bytes. */
static inline size_t nd_event_pack(const struct nd_event *m, uint8_t *out)
{
    nd_put_u32(out + 0, m->number);
    nd_put_u64(out + 4, m->time_us);
    nd_put_u8(out + 12, m->code);
    nd_put_i32(out + 13, m->value);
    return 17u;
}
/* Reads a payload of len bytes; returns 0 if its length is wrong. */
static inline int nd_event_unpack(struct nd_event *m, const uint8_t *in, size_t len)
{
    if (len != 17u) return 0;
    m->number = nd_get_u32(in + 0);
    m->time_us = nd_get_u64(in + 4);
    m->code = nd_get_u8(in + 12);
    m->value = nd_get_i32(in + 13);
    return 1;
}

/* 0x87 EVENT_LOG (device->host): Reply to GET_EVENTS: stored events from the asked number on (the device keeps the newest 256). */
#define ND_EVENT_LOG_ID 0x87u
#define ND_EVENT_LOG_LAST_EVENT_NUMBER_OFFSET 0u
#define ND_EVENT_LOG_EVENTS_OFFSET 4u
#define ND_EVENT_LOG_MIN_PAYLOAD_BYTES 5u
#define ND_EVENT_LOG_MAX_PAYLOAD_BYTES 209u
struct nd_event_log {
    uint32_t last_event_number;
    uint8_t events_count; /* 0..12 */
    struct nd_event_record events[12];
};
/* Writes the payload; returns its length in bytes. */
static inline size_t nd_event_log_pack(const struct nd_event_log *m, uint8_t *out)
{
    size_t i, count;
    nd_put_u32(out + 0, m->last_event_number);
    count = m->events_count > 12u ? 12u : m->events_count; /* never overrun */
    out[4] = (uint8_t)count;
    for (i = 0; i < count; ++i)
        nd_event_record_pack(&m->events[i], out + 5u + i * 17u);
    return 5u + count * 17u;
}
/* Reads a payload of len bytes; returns 0 if its length is wrong. */
static inline int nd_event_log_unpack(struct nd_event_log *m, const uint8_t *in, size_t len)
{
    size_t i;
    if (len < 5u) return 0;
    m->last_event_number = nd_get_u32(in + 0);
    m->events_count = in[4];
    if (m->events_count > 12u || len != 5u + (size_t)m->events_count * 17u) return 0;
    for (i = 0; i < m->events_count; ++i)
        nd_event_record_unpack(&m->events[i], in + 5u + i * 17u);
    return 1;
}

#endif /* NEEDLE_PROTOCOL_H */
