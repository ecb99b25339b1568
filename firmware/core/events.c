/* events.c: see events.h. A ring indexed by (number - 1) mod size. */
#include "events.h"

#define SLOT(log, number) (&(log)->slots[((number) - 1u) % ND_EVENT_LOG_SIZE])

void nd_events_init(struct nd_events *log) { log->last_number = 0; }

uint32_t nd_events_add(struct nd_events *log, uint64_t time_us, uint8_t code,
                          int32_t value)
{
    struct nd_event_slot *s;
    log->last_number++;
    s = SLOT(log, log->last_number);
    s->time_us = time_us;
    s->code = code;
    s->value = value;
    return log->last_number;
}

static void pack_record(const struct nd_events *log, uint32_t number, uint8_t *out)
{
    const struct nd_event_slot *s = SLOT(log, number);
    struct nd_event_record r;
    r.number = number;
    r.time_us = s->time_us;
    r.code = s->code;
    r.value = s->value;
    nd_event_record_pack(&r, out);
}

uint8_t nd_events_pack(const struct nd_events *log, uint32_t from_number,
                          uint8_t max_count, uint32_t up_to_number, uint8_t *out)
{
    uint32_t oldest, n;
    uint8_t count = 0;
#ifdef ND_DEFECT_EVENT_LOG_EMPTY
    return 0; /* mutant: GET_EVENTS answers with no records */
#endif
    if (log->last_number == 0) return 0;
    oldest = log->last_number > ND_EVENT_LOG_SIZE ? log->last_number - ND_EVENT_LOG_SIZE + 1u
                                                  : 1u;
#ifdef ND_DEFECT_EVENT_OLDEST_OFF_BY_ONE
    if (oldest > 1u) oldest--; /* mutant: a record overwritten is sent as the oldest */
#endif
    if (up_to_number > log->last_number) up_to_number = log->last_number;
    n = from_number < oldest ? oldest : from_number;
    for (; n <= up_to_number && count < max_count; ++n, ++count)
        pack_record(log, n, out + (size_t)count * ND_EVENT_RECORD_BYTES);
    return count;
}

size_t nd_events_pack_event(const struct nd_events *log, uint32_t number, uint8_t *out)
{
    /* EVENT's payload is one EventRecord, byte for byte */
    pack_record(log, number, out);
    return ND_EVENT_RECORD_BYTES;
}
