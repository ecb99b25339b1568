/* events.h: the numbered event log (protocol §8): 1, 2, 3 … since boot, the newest
 * ND_EVENT_LOG_SIZE kept so a host that lost an EVENT frame can fetch it with GET_EVENTS. */
#ifndef ND_EVENTS_H
#define ND_EVENTS_H

#include <stddef.h>
#include <stdint.h>

#include "needle_protocol.h"

struct nd_event_slot {
    uint64_t time_us;
    int32_t value;
    uint8_t code;
};

struct nd_events {
    struct nd_event_slot slots[ND_EVENT_LOG_SIZE];
    uint32_t last_number; /* 0: none yet */
};

void nd_events_init(struct nd_events *log);
/* Appends an event; returns its number. */
uint32_t nd_events_add(struct nd_events *log, uint64_t time_us, uint8_t code,
                          int32_t value);
/* Packs the stored events numbered from_number or later (from the oldest kept if
 * from_number is older), oldest first, at most max_count, up to up_to_number, as
 * EventRecords into out. Returns the count. */
uint8_t nd_events_pack(const struct nd_events *log, uint32_t from_number,
                          uint8_t max_count, uint32_t up_to_number, uint8_t *out);
/* Packs one event as an EVENT payload (number, time, code, value). */
size_t nd_events_pack_event(const struct nd_events *log, uint32_t number, uint8_t *out);

#endif
