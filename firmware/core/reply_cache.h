/* reply_cache.h: exactly once (protocol §2). The replies to the last ND_REPLY_CACHE_SIZE
 * seqs, keyed by seq and the command's msg_id; a repeat is answered from here, byte for
 * byte, and nothing is executed again.
 *
 * RAM: a reply is at most STATUS's 72 bytes, except EVENT_LOG (up to 209): those are
 * stored as (first number, count, last number) and re-packed from the event log, which
 * gives the same bytes while the events are still among the newest 256 — a retransmit
 * comes within milliseconds, 256 events take far longer. 32 × 80 B instead of 32 × 216 B. */
#ifndef ND_REPLY_CACHE_H
#define ND_REPLY_CACHE_H

#include <stdbool.h>
#include <stdint.h>

#include "needle_protocol.h"

#define ND_CACHED_PAYLOAD_MAX ND_STATUS_PAYLOAD_BYTES

struct nd_cached_reply {
    uint32_t age;      /* insertion stamp: the smallest is replaced first; 0 = empty */
    uint16_t seq;
    uint8_t command_id;
    uint8_t reply_id;  /* ACK, NAK, IDENTITY, STATUS or EVENT_LOG */
    uint8_t len;
    uint8_t payload[ND_CACHED_PAYLOAD_MAX]; /* EVENT_LOG: u32 first, u8 count, u32 last */
};

struct nd_reply_cache {
    struct nd_cached_reply entries[ND_REPLY_CACHE_SIZE];
    uint32_t stamp;
};

void nd_reply_cache_clear(struct nd_reply_cache *c);
/* The stored reply to (seq, command_id), or NULL. */
const struct nd_cached_reply *nd_reply_cache_lookup(const struct nd_reply_cache *c,
                                                    uint16_t seq, uint8_t command_id);
/* Stores a reply (replacing an entry with the same seq, else the oldest). */
void nd_reply_cache_store(struct nd_reply_cache *c, uint16_t seq, uint8_t command_id,
                          uint8_t reply_id, const uint8_t *payload, uint8_t len);

#endif
