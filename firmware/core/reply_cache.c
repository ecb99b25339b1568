/* reply_cache.c: see reply_cache.h. A linear search over 32 entries: a few hundred
 * cycles per command, no pointers to keep consistent. */
#include "reply_cache.h"

#include <string.h>

void nd_reply_cache_clear(struct nd_reply_cache *c)
{
    unsigned i;
    for (i = 0; i < ND_REPLY_CACHE_SIZE; ++i) c->entries[i].age = 0;
    c->stamp = 0;
}

static struct nd_cached_reply *find(struct nd_reply_cache *c, uint16_t seq)
{
    unsigned i;
    for (i = 0; i < ND_REPLY_CACHE_SIZE; ++i)
        if (c->entries[i].age != 0 && c->entries[i].seq == seq) return &c->entries[i];
    return NULL;
}

const struct nd_cached_reply *nd_reply_cache_lookup(const struct nd_reply_cache *c,
                                                    uint16_t seq, uint8_t command_id)
{
    const struct nd_cached_reply *e = find((struct nd_reply_cache *)c, seq);
    return (e != NULL && e->command_id == command_id) ? e : NULL;
}

void nd_reply_cache_store(struct nd_reply_cache *c, uint16_t seq, uint8_t command_id,
                          uint8_t reply_id, const uint8_t *payload, uint8_t len)
{
    struct nd_cached_reply *e = find(c, seq);
    unsigned i;
    if (e == NULL) {
        /* an empty slot, else the oldest */
        e = &c->entries[0];
        for (i = 0; i < ND_REPLY_CACHE_SIZE; ++i) {
            if (c->entries[i].age < e->age) e = &c->entries[i];
            if (e->age == 0) break;
        }
#ifdef ND_DEFECT_REPLY_CACHE_ONE_ENTRY
        e = &c->entries[0]; /* mutant: every reply overwrites the one before */
#endif
    }
    if (len > ND_CACHED_PAYLOAD_MAX) len = ND_CACHED_PAYLOAD_MAX; /* callers never do */
    e->age = ++c->stamp;
    e->seq = seq;
    e->command_id = command_id;
    e->reply_id = reply_id;
    e->len = len;
    memcpy(e->payload, payload, len);
}
