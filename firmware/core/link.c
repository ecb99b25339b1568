/* link.c: see link.h. The receive rules are protocol §1 "Receiving", in its order. */
#include "link.h"

#include "hal.h"

/* Scratch for one frame at a time (the core is never re-entered); what must survive
 * between calls (the chunk being received, the counters) is the caller's struct nd_link
 * (the device's), so a host running several devices in one process keeps each apart. */
static struct {
    uint8_t raw[ND_MAX_ENCODED_FRAME_BYTES];
    uint8_t out[1u + ND_MAX_FRAME_BUFFER_BYTES];
} S;

void nd_link_init(struct nd_link *l, nd_frame_handler handler)
{
    l->len = 0;
    l->oversize = false;
    l->handler = handler;
}

/* 1: the payload length fits the message; 0: it does not; -1: the id is not known. */
static int length_ok(uint8_t msg_id, const uint8_t *payload, size_t len)
{
    size_t fixed, record, max_count;
    switch (msg_id) {
    case ND_HELLO_ID: return len == ND_HELLO_PAYLOAD_BYTES;
    case ND_HEARTBEAT_ID: return len == ND_HEARTBEAT_PAYLOAD_BYTES;
    case ND_HOME_ID: return len == ND_HOME_PAYLOAD_BYTES;
    case ND_MOVE_ID: return len == ND_MOVE_PAYLOAD_BYTES;
    case ND_ROTATE_ID: return len == ND_ROTATE_PAYLOAD_BYTES;
    case ND_STOP_ID: return len == ND_STOP_PAYLOAD_BYTES;
    case ND_ESTOP_ID: return len == ND_ESTOP_PAYLOAD_BYTES;
    case ND_CLEAR_FAULT_ID: return len == ND_CLEAR_FAULT_PAYLOAD_BYTES;
    case ND_SET_LIMITS_ID: return len == ND_SET_LIMITS_PAYLOAD_BYTES;
    case ND_SET_TELEMETRY_ID: return len == ND_SET_TELEMETRY_PAYLOAD_BYTES;
    case ND_BYE_ID: return len == ND_BYE_PAYLOAD_BYTES;
    case ND_GET_STATUS_ID: return len == ND_GET_STATUS_PAYLOAD_BYTES;
    case ND_GET_EVENTS_ID: return len == ND_GET_EVENTS_PAYLOAD_BYTES;
    case ND_TARE_ID: return len == ND_TARE_PAYLOAD_BYTES;
    case ND_SET_LOAD_CELL_ID: return len == ND_SET_LOAD_CELL_PAYLOAD_BYTES;
    case ND_IDENTITY_ID: return len == ND_IDENTITY_PAYLOAD_BYTES;
    case ND_ACK_ID: return len == ND_ACK_PAYLOAD_BYTES;
    case ND_NAK_ID: return len == ND_NAK_PAYLOAD_BYTES;
    case ND_STATUS_ID: return len == ND_STATUS_PAYLOAD_BYTES;
    case ND_EVENT_ID: return len == ND_EVENT_PAYLOAD_BYTES;
    case ND_TELEMETRY_ID:
        fixed = ND_TELEMETRY_MIN_PAYLOAD_BYTES;
        record = ND_TELEMETRY_SAMPLE_BYTES;
        max_count = (ND_TELEMETRY_MAX_PAYLOAD_BYTES - fixed) / record;
        break;
    case ND_EVENT_LOG_ID:
        fixed = ND_EVENT_LOG_MIN_PAYLOAD_BYTES;
        record = ND_EVENT_RECORD_BYTES;
        max_count = (ND_EVENT_LOG_MAX_PAYLOAD_BYTES - fixed) / record;
        break;
    default: return -1;
    }
    /* a fixed part ending in a u8 record count, then exactly that many records */
    if (len < fixed || payload[fixed - 1u] > max_count) return 0;
    return len == fixed + payload[fixed - 1u] * record;
}

static void chunk_done(struct nd_link *l)
{
    size_t n;
    int ok;
    const uint8_t *payload;
    if (l->oversize) {
        l->stats.oversize++;
        return;
    }
    if (l->len == 0) return; /* two delimiters in a row: the leading 0x00, not an error */
    n = nd_cobs_decode(l->chunk, l->len, S.raw);
    if (n == (size_t)-1 || n < ND_HEADER_BYTES + ND_CRC_BYTES) {
        l->stats.malformed++;
        return;
    }
    if (nd_crc32(S.raw, n) != ND_CRC_GOOD_FRAME
#ifdef ND_DEFECT_CRC_SKIPPED_FOR_MOVE
        && S.raw[1] != ND_MOVE_ID /* mutant: a corrupted MOVE is taken as sent */
#endif
    ) {
        l->stats.crc_failures++;
        return;
    }
    n -= ND_HEADER_BYTES + ND_CRC_BYTES;
    payload = S.raw + ND_HEADER_BYTES;
    ok = length_ok(S.raw[1], payload, n);
    if (ok < 0) {
        l->stats.unknown_id++;
        return;
    }
    if (S.raw[0] != ND_PROTOCOL_VERSION || ok == 0) {
        l->stats.malformed++;
        return;
    }
    l->stats.frames_ok++;
    l->handler(S.raw[1], S.raw[2], nd_get_u16(S.raw + 3), payload, n);
}

void nd_link_feed(struct nd_link *l, const uint8_t *data, size_t n)
{
    size_t i;
    for (i = 0; i < n; ++i) {
        const uint8_t b = data[i];
        if (b == ND_COBS_DELIMITER) {
            chunk_done(l);
            l->len = 0;
            l->oversize = false;
        } else if (l->len < sizeof l->chunk) {
            l->chunk[l->len++] = b;
        } else {
            l->oversize = true;
        }
    }
}

bool nd_link_send(struct nd_link *l, uint8_t msg_id, uint8_t flags, uint16_t seq,
                  const uint8_t *payload, size_t len)
{
    size_t n;
    /* a 0x00 before every frame (protocol §1): noise on the line ends as a chunk of its
     * own instead of costing this frame its CRC */
    S.out[0] = ND_COBS_DELIMITER;
    n = 1u + nd_frame_encode(msg_id, flags, seq, payload, len, S.out + 1);
    if (n == 1u || hal_serial_tx_room() < n) {
        l->stats.tx_dropped++;
        return false;
    }
    hal_serial_write(S.out, n);
    return true;
}

const struct nd_link_stats *nd_link_stats(const struct nd_link *l) { return &l->stats; }

uint32_t nd_link_frames_bad(const struct nd_link *l)
{
    return l->stats.crc_failures + l->stats.malformed + l->stats.oversize + l->stats.unknown_id;
}
