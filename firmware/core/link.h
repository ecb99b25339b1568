/* link.h: framing (protocol §1) — bytes in, valid frames out; frames out with a leading
 * 0x00. Every received chunk lands in exactly one counter. */
#ifndef ND_LINK_H
#define ND_LINK_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "needle_protocol.h"

struct nd_link_stats {
    uint32_t frames_ok;
    uint32_t crc_failures;
    uint32_t malformed;
    uint32_t oversize;
    uint32_t unknown_id;
    uint32_t tx_dropped; /* frames not sent: no room in the transmit buffer */
};

/* Called for every valid frame (good COBS, CRC, version, known id, right length). */
typedef void (*nd_frame_handler)(uint8_t msg_id, uint8_t flags, uint16_t seq,
                                 const uint8_t *payload, size_t len);

/* The receiver's state between calls (one per device). */
struct nd_link {
    uint8_t chunk[ND_MAX_ENCODED_FRAME_BYTES]; /* COBS bytes since the last 0x00 */
    size_t len;
    bool oversize; /* the chunk outgrew the buffer: dropped at its 0x00 */
    nd_frame_handler handler;
    struct nd_link_stats stats;
};

void nd_link_init(struct nd_link *l, nd_frame_handler handler);
/* Feeds received bytes; calls the handler for each valid frame they complete. */
void nd_link_feed(struct nd_link *l, const uint8_t *data, size_t n);
/* Sends 0x00 COBS(header | payload | CRC) 0x00 if it fits whole in the transmit buffer;
 * returns false (and counts it) if not. */
bool nd_link_send(struct nd_link *l, uint8_t msg_id, uint8_t flags, uint16_t seq,
                  const uint8_t *payload, size_t len);
const struct nd_link_stats *nd_link_stats(const struct nd_link *l);
uint32_t nd_link_frames_bad(const struct nd_link *l);

#endif
