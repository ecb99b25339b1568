/* commands.c: every valid frame from the host — exactly once (reply cache), the session
 * (HELLO, schema hash), and each command's checks and effect. The NAK order is protocol
 * §5's: NOT_ARMED / SCHEMA_MISMATCH (motion only), BAD_ARGUMENT, ESTOPPED, LATCHED_FAULT,
 * BUSY, NOT_HOMED, BEYOND_LIMIT. Stopping (STOP, ESTOP, ROTATE STOP) is never refused. */
#include "commands.h"

#include "device.h"
#include "link.h"
#include "nd_core.h"

#define D nd_dev
#ifdef ND_DEFECT_NO_REPEAT_DETECTION
#define REPEAT_DETECTION 0 /* planted: a repeated command is executed again */
#else
#define REPEAT_DETECTION 1
#endif
/* In a command handler (whose command id is `id`): answer and leave. */
#define REFUSE(reason, detail)       \
    do {                             \
        nak(id, (reason), (detail)); \
        return;                      \
    } while (0)
#define ACCEPT()  \
    do {          \
        ack(id);  \
        return;   \
    } while (0)
/* Field ranges (BAD_ARGUMENT) are the schema's: ND_<MESSAGE>_<FIELD>_MIN/_MAX from the
 * generated header, never numbers copied from the docs. */

/* The reply being built (one at a time: the core is never re-entered). */
static struct {
    uint8_t id;
    uint8_t len;
    uint8_t payload[ND_EVENT_LOG_MAX_PAYLOAD_BYTES];
    /* EVENT_LOG replies are cached as (first, count, last): see reply_cache.h */
    uint32_t events_first;
} R;

void nd_commands_init(void) { R.len = 0; }

static void ack(uint8_t command_id)
{
    struct nd_ack m;
    m.command_id = command_id;
    R.id = ND_ACK_ID;
    R.len = (uint8_t)nd_ack_pack(&m, R.payload);
    D.commands_executed++;
}

static void nak(uint8_t command_id, uint8_t reason, int32_t detail)
{
    struct nd_nak m;
#ifdef ND_DEFECT_NAK_REASON_SWAPPED
    /* planted: NOT_HOMED and BEYOND_LIMIT are reported as each other */
    if (reason == ND_NAK_REASON_NOT_HOMED) reason = ND_NAK_REASON_BEYOND_LIMIT;
    else if (reason == ND_NAK_REASON_BEYOND_LIMIT) reason = ND_NAK_REASON_NOT_HOMED;
#endif
    D.commands_naked++;
    m.command_id = command_id;
    m.reason = reason;
    m.detail = detail;
    R.id = ND_NAK_ID;
    R.len = (uint8_t)nd_nak_pack(&m, R.payload);
}

/* ------------------------------------------------------------ replies with data */

static void identity(void)
{
    const struct nd_board *b = D.board;
    struct nd_identity m;
    m.protocol_version = ND_PROTOCOL_VERSION;
    m.schema_hash = ND_SCHEMA_HASH;
    m.firmware_major = ND_FIRMWARE_MAJOR;
    m.firmware_minor = ND_FIRMWARE_MINOR;
    m.firmware_patch = ND_FIRMWARE_PATCH;
    memcpy(m.serial_number, b->serial_number, sizeof m.serial_number);
    m.simulated = b->simulated;
    m.capabilities = ND_CAPABILITIES_ROTATION | ND_CAPABILITIES_OSCILLATION |
                     ND_CAPABILITIES_LOAD_CELL | ND_CAPABILITIES_ENCODER |
                     b->extra_capabilities;
    m.travel_limit_um = b->travel_um;
    m.force_limit_mn = b->force_limit_mn;
    m.max_speed_um_s = b->max_speed_um_s;
    m.max_rate_mrpm = b->max_rate_mrpm;
    m.watchdog_ms = b->watchdog_ms;
    m.session_armed = D.schema_ok ? 1u : 0u;
    m.load_cell_sample_hz = D.lc.sample_hz;
    R.id = ND_IDENTITY_ID;
    R.len = (uint8_t)nd_identity_pack(&m, R.payload);
}

static void status(void)
{
    const struct nd_link_stats *l = nd_link_stats(&D.link);
    struct nd_status m;
    m.state = D.state;
    m.flags = nd_dev_flags();
    m.latched_faults = D.latched;
    m.device_time_us = D.now_us;
    m.depth_um = D.depth_um;
    m.commanded_depth_um = nd_um_from_nm(D.adv.pos);
    m.angle_cdeg = nd_cdeg_from_ucdeg(D.rot.pos);
    m.force_mn = D.force_mn;
    m.soft_depth_limit_um = D.soft_depth_limit_um;
    m.force_limit_mn = D.force_limit_mn;
    m.stall_force_mn = D.stall_force_mn;
    m.stall_time_ms = D.stall_time_ms;
    m.telemetry_rate_hz = D.telemetry_rate_hz;
    m.last_event_number = D.events.last_number;
    m.samples_sent = D.samples_sent;
    m.frames_ok = l->frames_ok;
    m.frames_bad = nd_link_frames_bad(&D.link);
    m.commands_executed = D.commands_executed;
    m.replies_replayed = D.replies_replayed;
    m.watchdog_trips = D.watchdog_trips;
    m.tick_overruns = D.tick_overruns;
    m.load_cell_rate_hz = D.lc_rate_hz;
    m.load_cell_samples = D.lc_samples;
    m.load_cell_stale_samples = D.lc_stale_samples;
    m.load_cell_saturated = D.lc_saturated;
    m.load_cell_fault = (D.latched & ND_FAULT_FLAGS_LOAD_CELL) ? D.lc_fault : 0u;
    m.load_cell_offset_mn = D.lc.offset_mn;
    m.drift_corner_mhz = D.lc.drift_corner_mhz;
    m.notch_hz = D.lc.notch_hz;
    m.lowpass_hz = D.lc.lowpass_hz;
    R.id = ND_STATUS_ID;
    R.len = (uint8_t)nd_status_pack(&m, R.payload);
}

static void event_log(uint32_t from, uint8_t max_count, uint32_t last)
{
    uint8_t n;
    nd_put_u32(R.payload, last);
    n = nd_events_pack(&D.events, from, max_count, last, R.payload + 5);
    R.payload[4] = n;
    R.id = ND_EVENT_LOG_ID;
    R.len = (uint8_t)(5u + (size_t)n * ND_EVENT_RECORD_BYTES);
    /* the first number actually sent (from may be older than the oldest kept) */
    R.events_first = n ? nd_get_u32(R.payload + 5) : from;
}

/* ------------------------------------------------------------ commands */

static void hello(const uint8_t *p)
{
    struct nd_hello m;
    nd_hello_unpack(&m, p, ND_HELLO_PAYLOAD_BYTES);
    D.session_open = true;
    D.schema_ok = m.protocol_version == ND_PROTOCOL_VERSION && m.schema_hash == ND_SCHEMA_HASH;
    D.wd_tripped = false;
#ifdef ND_DEFECT_HELLO_CLEARS_ESTOP
    D.latched &= (uint16_t)~ND_FAULT_FLAGS_ESTOP; /* mutant: a new session forgets the e-stop */
#endif
    nd_dev_update_state();
    D.commands_executed++;
    identity();
}

/* BYE: the host leaves in order, at rest; the watchdog has nothing to report then. */
static void bye(uint8_t id)
{
    if (D.adv.active || D.rot.active || D.homing) REFUSE(ND_NAK_REASON_BUSY, 0);
    D.session_open = false;
    D.schema_ok = false;
    nd_dev_update_state();
    ACCEPT();
}

/* The advance to rest: a HOME ends at once, a move brakes down its ramp (velocity
 * mode: no TARGET_REACHED). at_limit stays: the advance has not moved away from the
 * limit (protocol §5). */
static void advance_to_rest(void)
{
    if (D.homing) {
#ifndef ND_DEFECT_STOP_IGNORED_HOMING /* mutant: STOP ACKed, the homing goes on */
        D.homing = false;
        nd_axis_halt(&D.adv);
#endif
    } else if (D.adv.active) {
        nd_axis_decelerate(&D.adv);
    }
}

/* The rotation to rest down its ramp; an oscillation ends. */
static void rotation_to_rest(void)
{
    D.osc_amp_ucdeg = 0;
    if (D.rot.active) nd_axis_decelerate(&D.rot);
}

static void stop(uint8_t id)
{
    advance_to_rest();
    rotation_to_rest();
    nd_dev_update_state();
    ack(id);
}

/* The e-stop's effect: the ESTOP command's and a board's e-stop input's (nd_core_estop) */
static void estop_now(void)
{
#ifdef ND_DEFECT_ESTOP_DECELERATES
    /* mutant: e-stop handled like STOP, the axes ramp down instead of halting */
    nd_axis_decelerate(&D.adv);
    nd_axis_decelerate(&D.rot);
#else
    /* within this tick: both axes halt where they are */
    nd_axis_halt(&D.adv);
    nd_axis_halt(&D.rot);
#endif
    D.osc_amp_ucdeg = 0;
    D.homing = false;
    D.stall_ticks = 0;
    if (!(D.latched & ND_FAULT_FLAGS_ESTOP)) {
        D.homed = false; /* the stepper may have slipped: re-home */
        nd_dev_latch(ND_FAULT_FLAGS_ESTOP, ND_EVENT_CODE_ESTOP, 0);
    } else {
        nd_dev_update_state(); /* idempotent: a second ESTOP changes nothing */
    }
}

static void estop(uint8_t id)
{
    estop_now();
    ack(id);
}

void nd_core_estop(void) { estop_now(); }

static void clear_fault(uint8_t id)
{
    const uint16_t cleared = D.latched;
    D.latched = 0;
    D.lc_fault = ND_LOAD_CELL_FAULT_NONE;
    if (cleared) nd_dev_event(ND_EVENT_CODE_FAULT_CLEARED, cleared);
    nd_dev_update_state();
    ack(id);
}

static void set_limits(uint8_t id, const uint8_t *p)
{
    const struct nd_board *b = D.board;
    struct nd_set_limits m;
    nd_set_limits_unpack(&m, p, ND_SET_LIMITS_PAYLOAD_BYTES);
    /* each field in its range (detail: the value), then within its hard limit (detail:
     * the hard limit) */
    if (m.soft_depth_limit_um < ND_SET_LIMITS_SOFT_DEPTH_LIMIT_UM_MIN) REFUSE(ND_NAK_REASON_BAD_ARGUMENT, m.soft_depth_limit_um);
    if (m.force_limit_mn < ND_SET_LIMITS_FORCE_LIMIT_MN_MIN) REFUSE(ND_NAK_REASON_BAD_ARGUMENT, m.force_limit_mn);
    if (m.stall_force_mn < ND_SET_LIMITS_STALL_FORCE_MN_MIN) REFUSE(ND_NAK_REASON_BAD_ARGUMENT, m.stall_force_mn);
    if (m.stall_time_ms < ND_SET_LIMITS_STALL_TIME_MS_MIN ||
        m.stall_time_ms > ND_SET_LIMITS_STALL_TIME_MS_MAX)
        REFUSE(ND_NAK_REASON_BAD_ARGUMENT, m.stall_time_ms);
    if (m.soft_depth_limit_um > b->travel_um)
        REFUSE(ND_NAK_REASON_BEYOND_LIMIT, b->travel_um);
    if (m.force_limit_mn > b->force_limit_mn)
        REFUSE(ND_NAK_REASON_BEYOND_LIMIT, b->force_limit_mn);
    if (m.stall_force_mn > b->force_limit_mn)
        REFUSE(ND_NAK_REASON_BEYOND_LIMIT, b->force_limit_mn);
    D.soft_depth_limit_um = m.soft_depth_limit_um;
#ifndef ND_DEFECT_FORCE_LIMIT_IGNORED /* mutant: ACKed, never in force */
    D.force_limit_mn = m.force_limit_mn;
#endif
    D.stall_force_mn = m.stall_force_mn;
    D.stall_time_ms = m.stall_time_ms;
    /* a move in progress beyond the new limit is stopped there by the tick's check */
    nd_dev_set_limit_pos();
    ack(id);
}

/* Zeroing or refiltering the force under a moving advance would move what the force limit
 * and the stall cut-off compare against mid-motion: both wait for the advance at rest. */
static bool load_cell_may_change(uint8_t id)
{
    if (D.homing || D.adv.active) {
        nak(id, ND_NAK_REASON_BUSY, 0);
        return false;
    }
    if (D.latched & ND_FAULT_FLAGS_LOAD_CELL) {
        nak(id, ND_NAK_REASON_LATCHED_FAULT, D.latched);
        return false;
    }
    return true;
}

static void tare(uint8_t id)
{
    if (!load_cell_may_change(id)) return;
    nd_lc_tare(&D.lc);
    D.force_mn = nd_lc_output(&D.lc); /* the zero shows at once */
    D.force_abs_mn = nd_lc_absolute(&D.lc);
    ack(id);
}

static void set_load_cell(uint8_t id, const uint8_t *p)
{
    struct nd_set_load_cell m;
    nd_set_load_cell_unpack(&m, p, ND_SET_LOAD_CELL_PAYLOAD_BYTES);
    if (m.drift_corner_mhz > ND_SET_LOAD_CELL_DRIFT_CORNER_MHZ_MAX)
        REFUSE(ND_NAK_REASON_BAD_ARGUMENT, (int32_t)m.drift_corner_mhz);
    if (m.notch_hz > ND_SET_LOAD_CELL_NOTCH_HZ_MAX) REFUSE(ND_NAK_REASON_BAD_ARGUMENT, m.notch_hz);
    if (m.lowpass_hz > ND_SET_LOAD_CELL_LOWPASS_HZ_MAX)
        REFUSE(ND_NAK_REASON_BAD_ARGUMENT, m.lowpass_hz);
    if (!load_cell_may_change(id)) return;
    if (!nd_lc_configure(&D.lc, m.drift_corner_mhz, m.notch_hz, m.lowpass_hz))
        REFUSE(ND_NAK_REASON_BEYOND_LIMIT, D.lc.sample_hz);
    D.force_mn = nd_lc_output(&D.lc);
    D.force_abs_mn = nd_lc_absolute(&D.lc);
    ack(id);
}

static void set_telemetry(uint8_t id, const uint8_t *p)
{
    struct nd_set_telemetry m;
    nd_set_telemetry_unpack(&m, p, ND_SET_TELEMETRY_PAYLOAD_BYTES);
    if (m.rate_hz > ND_SET_TELEMETRY_RATE_HZ_MAX) REFUSE(ND_NAK_REASON_BAD_ARGUMENT, m.rate_hz);
    if (m.batch_samples < ND_SET_TELEMETRY_BATCH_SAMPLES_MIN ||
        m.batch_samples > ND_SET_TELEMETRY_BATCH_SAMPLES_MAX)
        REFUSE(ND_NAK_REASON_BAD_ARGUMENT, m.batch_samples);
    nd_dev_flush_batch();
    D.telemetry_rate_hz = m.rate_hz;
    D.batch_samples = m.batch_samples;
    D.sample_acc = (uint16_t)(1000u - m.rate_hz); /* first sample on the next tick */
    ack(id);
}

static void get_events(uint8_t id, const uint8_t *p)
{
    struct nd_get_events m;
    nd_get_events_unpack(&m, p, ND_GET_EVENTS_PAYLOAD_BYTES);
    if (m.max_count < ND_GET_EVENTS_MAX_COUNT_MIN || m.max_count > ND_GET_EVENTS_MAX_COUNT_MAX)
        REFUSE(ND_NAK_REASON_BAD_ARGUMENT, m.max_count);
    D.commands_executed++;
    event_log(m.from_number, m.max_count, D.events.last_number);
}

static void rotate_stop(uint8_t id)
{
    rotation_to_rest();
    nd_dev_update_state();
    ack(id);
}

/* ESTOPPED, LATCHED_FAULT, BUSY (homing): false if refused (the NAK is built). */
static bool state_allows(uint8_t id)
{
    if (D.latched & ND_FAULT_FLAGS_ESTOP) {
        nak(id, ND_NAK_REASON_ESTOPPED, 0);
        return false;
    }
    if (D.latched) {
        nak(id, ND_NAK_REASON_LATCHED_FAULT, D.latched);
        return false;
    }
    if (D.homing) {
        nak(id, ND_NAK_REASON_BUSY, 0);
        return false;
    }
    return true;
}

static void home(uint8_t id, const uint8_t *p)
{
    struct nd_home m;
    nd_home_unpack(&m, p, ND_HOME_PAYLOAD_BYTES);
    if (m.speed_um_s < ND_HOME_SPEED_UM_S_MIN || m.speed_um_s > ND_HOME_SPEED_UM_S_MAX)
        REFUSE(ND_NAK_REASON_BAD_ARGUMENT, (int32_t)m.speed_um_s);
    if (!state_allows(id)) return;
    if (D.adv.active) REFUSE(ND_NAK_REASON_BUSY, 0);
    if (m.speed_um_s > D.board->max_speed_um_s)
        REFUSE(ND_NAK_REASON_BEYOND_LIMIT, (int32_t)D.board->max_speed_um_s);
    D.homed = false;
    D.at_limit = false;
    D.homing = true;
    if (hal_home_switch()) {
        nd_dev_home_found();
        ACCEPT();
    }
    D.homing_start_nm = D.adv.pos;
    nd_dev_begin_follow();
    nd_axis_run_at(&D.adv, -(int32_t)m.speed_um_s); /* 1 µm/s = 1 nm per tick */
    nd_dev_update_state();
    ack(id);
}

static void move(uint8_t id, const uint8_t *p)
{
    const int64_t step = D.board->nm_per_microstep;
    struct nd_move m;
    int64_t base, target_nm, limit_steps;
    nd_move_unpack(&m, p, ND_MOVE_PAYLOAD_BYTES);
    if (m.mode != ND_MOVE_MODE_ABSOLUTE && m.mode != ND_MOVE_MODE_RELATIVE)
        REFUSE(ND_NAK_REASON_BAD_ARGUMENT, m.mode);
    if (m.speed_um_s < ND_MOVE_SPEED_UM_S_MIN || m.speed_um_s > ND_MOVE_SPEED_UM_S_MAX)
        REFUSE(ND_NAK_REASON_BAD_ARGUMENT, (int32_t)m.speed_um_s);
    if (!state_allows(id)) return;
    if (!D.homed) REFUSE(ND_NAK_REASON_NOT_HOMED, 0);
    if (m.speed_um_s > D.board->max_speed_um_s)
        REFUSE(ND_NAK_REASON_BEYOND_LIMIT, (int32_t)D.board->max_speed_um_s);
    /* RELATIVE is relative to the current target (a move replacing a move adds up) */
    base = (D.adv.active && !D.adv.velocity_mode) ? D.adv.target : D.adv.pos;
    target_nm = (int64_t)m.target_um * 1000 + (m.mode == ND_MOVE_MODE_RELATIVE ? base : 0);
    if (target_nm < 0) REFUSE(ND_NAK_REASON_BEYOND_LIMIT, 0);
    limit_steps = D.limit_pos_nm / step;
#ifdef ND_DEFECT_RELATIVE_LIMIT_ON_INCREMENT
    if (nd_floor_div((int64_t)m.target_um * 1000, step) > limit_steps) /* mutant: the step */
#else
    if (nd_floor_div(target_nm, step) > limit_steps)
#endif
        REFUSE(ND_NAK_REASON_BEYOND_LIMIT, D.soft_depth_limit_um);
    if (!D.adv.active) nd_dev_begin_follow();
    /* the target is kept in exact nm (relative moves add up exactly); only the motor's
     * output is quantised to microsteps, never beyond the limit's last step */
    nd_axis_move_to(&D.adv, target_nm < D.limit_pos_nm ? target_nm : D.limit_pos_nm,
                    (int32_t)m.speed_um_s);
    D.at_limit = false;
    nd_dev_update_state();
    if (!D.adv.active) nd_dev_event(ND_EVENT_CODE_TARGET_REACHED, nd_um_from_nm(D.adv.pos));
    ack(id);
}

static void rotate(uint8_t id, const uint8_t *p)
{
    struct nd_rotate m;
    int32_t speed;
    nd_rotate_unpack(&m, p, ND_ROTATE_PAYLOAD_BYTES);
    if (m.mode > ND_ROTATE_MODE_OSCILLATE) REFUSE(ND_NAK_REASON_BAD_ARGUMENT, m.mode);
    if (m.rate_mrpm < ND_ROTATE_RATE_MRPM_MIN || m.rate_mrpm > ND_ROTATE_RATE_MRPM_MAX)
        REFUSE(ND_NAK_REASON_BAD_ARGUMENT, m.rate_mrpm);
    /* no rate to turn at, or no amplitude to swing: detail = the angle (protocol §5) */
    if (m.mode != ND_ROTATE_MODE_CONTINUOUS &&
        (m.rate_mrpm == 0 || (m.mode == ND_ROTATE_MODE_OSCILLATE && m.angle_cdeg <= 0)))
        REFUSE(ND_NAK_REASON_BAD_ARGUMENT, m.angle_cdeg);
    if (!state_allows(id)) return;
    if (m.rate_mrpm > D.board->max_rate_mrpm || -m.rate_mrpm > D.board->max_rate_mrpm)
        REFUSE(ND_NAK_REASON_BEYOND_LIMIT, D.board->max_rate_mrpm);
    if (m.mode == ND_ROTATE_MODE_CONTINUOUS) {
        D.osc_amp_ucdeg = 0;
        nd_axis_run_at(&D.rot, m.rate_mrpm * ND_UCDEG_TICK_PER_MRPM);
        nd_dev_update_state();
        ACCEPT();
    }
    /* BY_ANGLE: the angle's sign is the direction; OSCILLATE: ± the amplitude about here,
     * first toward +. The rate's sign does not matter in either. */
    speed = (m.rate_mrpm < 0 ? -m.rate_mrpm : m.rate_mrpm) * ND_UCDEG_TICK_PER_MRPM;
    if (m.mode == ND_ROTATE_MODE_BY_ANGLE) {
        D.osc_amp_ucdeg = 0;
    } else {
        D.osc_center_ucdeg = D.rot.pos;
        D.osc_amp_ucdeg = (int64_t)m.angle_cdeg * ND_UCDEG_PER_CDEG;
    }
#ifdef ND_DEFECT_BY_ANGLE_32BIT /* mutant: the angle in ucdeg computed in 32 bits */
    nd_axis_move_to(&D.rot, D.rot.pos + (int32_t)((uint32_t)m.angle_cdeg * ND_UCDEG_PER_CDEG),
                    speed);
#else
    nd_axis_move_to(&D.rot, D.rot.pos + (int64_t)m.angle_cdeg * ND_UCDEG_PER_CDEG, speed);
#endif
    nd_dev_update_state();
    ack(id);
}

/* The advance alone to rest, the rotation untouched: a pause, not a target. */
static void move_stop(uint8_t id)
{
    advance_to_rest();
    nd_dev_update_state();
    ack(id);
}

/* HOME, MOVE, ROTATE: refused before a session or under a schema mismatch — but
 * stopping is always allowed: ROTATE STOP and MOVE STOP are ACKed before HELLO, under a
 * schema mismatch, latched, e-stopped, homing; their other fields are ignored (a stop
 * must never bounce). */
static void motion(uint8_t id, const uint8_t *p)
{
    if (id == ND_ROTATE_ID && p[ND_ROTATE_MODE_OFFSET] == ND_ROTATE_MODE_STOP) {
        rotate_stop(id);
        return;
    }
    if (id == ND_MOVE_ID && p[ND_MOVE_MODE_OFFSET] == ND_MOVE_MODE_STOP) {
        move_stop(id); /* the same for the advance alone */
        return;
    }
    if (!D.session_open) REFUSE(ND_NAK_REASON_NOT_ARMED, 0);
    if (!D.schema_ok) REFUSE(ND_NAK_REASON_SCHEMA_MISMATCH, 0);
    if (id == ND_HOME_ID) home(id, p);
    else if (id == ND_MOVE_ID) move(id, p);
    else rotate(id, p);
}

static void execute(uint8_t id, const uint8_t *p)
{
    switch (id) {
    case ND_HELLO_ID: hello(p); break;
    case ND_BYE_ID: bye(id); break;
    case ND_GET_STATUS_ID:
        D.commands_executed++;
        status();
        break;
    case ND_GET_EVENTS_ID: get_events(id, p); break;
    case ND_STOP_ID: stop(id); break;
    case ND_ESTOP_ID: estop(id); break;
    case ND_CLEAR_FAULT_ID: clear_fault(id); break;
    case ND_SET_LIMITS_ID: set_limits(id, p); break;
    case ND_SET_TELEMETRY_ID: set_telemetry(id, p); break;
    case ND_TARE_ID: tare(id); break;
    case ND_SET_LOAD_CELL_ID: set_load_cell(id, p); break;
    default: motion(id, p); break;
    }
}

/* The schema gives device->host messages ids from 0x81 (HEARTBEAT, both ways, is 0x02). */
static bool is_device_to_host(uint8_t id) { return id >= ND_IDENTITY_ID; }

/* ESTOP, STOP, MOVE STOP, ROTATE STOP: the commands that are never refused */
static bool is_stop(uint8_t id, const uint8_t *p)
{
    return id == ND_ESTOP_ID || id == ND_STOP_ID ||
           (id == ND_MOVE_ID && p[ND_MOVE_MODE_OFFSET] == ND_MOVE_MODE_STOP) ||
           (id == ND_ROTATE_ID && p[ND_ROTATE_MODE_OFFSET] == ND_ROTATE_MODE_STOP);
}

static void send_reply(uint16_t seq, uint8_t flags)
{
    nd_dev_send(R.id, flags, seq, R.payload, R.len);
}

static void store_reply(uint16_t seq, uint8_t command_id)
{
    uint8_t compact[9];
    if (R.id != ND_EVENT_LOG_ID) {
        nd_reply_cache_store(&D.cache, seq, command_id, R.id, R.payload, R.len);
        return;
    }
    nd_put_u32(compact, R.events_first);
    compact[4] = R.payload[4];
    nd_put_u32(compact + 5, nd_get_u32(R.payload));
    nd_reply_cache_store(&D.cache, seq, command_id, R.id, compact, sizeof compact);
}

static void replay(const struct nd_cached_reply *e, uint16_t seq)
{
    D.replies_replayed++;
    if (e->reply_id == ND_EVENT_LOG_ID) {
        event_log(nd_get_u32(e->payload), e->payload[4], nd_get_u32(e->payload + 5));
    } else {
        R.id = e->reply_id;
        R.len = e->len;
        memcpy(R.payload, e->payload, e->len);
    }
    send_reply(seq, ND_HEADER_FLAGS_REPLAYED);
}

void nd_commands_on_frame(uint8_t id, uint8_t flags, uint16_t seq, const uint8_t *payload,
                          size_t len)
{
    const struct nd_cached_reply *cached;
    (void)flags; /* RETRANSMIT or not, a repeat is recognised by its seq and id */
    (void)len;   /* the link checked it against the message */
    /* any valid frame shows the host alive: it re-arms the watchdog */
    D.last_host_us = D.now_us;
    D.wd_tripped = false;
    if (id == ND_HEARTBEAT_ID) return; /* unsequenced, no reply, whatever its seq */
    if (seq == 0) {
        /* a command without a seq (any id but HEARTBEAT's, a device->host id too): not
         * executed, not cached — it could never be retransmitted as itself. But stopping
         * is never refused: a stop malformed in its seq still stops, NAKed all the same. */
        if (is_stop(id, payload)) execute(id, payload);
        nak(id, ND_NAK_REASON_BAD_ARGUMENT, 0);
        send_reply(0, 0);
        return;
    }
    /* HELLO is never replayed: a new host process starts its seqs at 1 again and must not
     * get its predecessor's replies (HELLO is harmless to run twice) */
#ifdef ND_DEFECT_CACHE_ONLY_ON_RETRANSMIT
    if (!(flags & ND_HEADER_FLAGS_RETRANSMIT)) { /* mutant: a resend without the flag runs */
    } else
#endif
    if (REPEAT_DETECTION && id != ND_HELLO_ID) {
        cached = nd_reply_cache_lookup(&D.cache, seq, id);
        if (cached != NULL) {
            replay(cached, seq);
            return;
        }
    }
    if (is_device_to_host(id))
        nak(id, ND_NAK_REASON_UNKNOWN_MESSAGE, 0); /* not a command: refused, cached */
    else
        execute(id, payload);
    if (id == ND_HELLO_ID) nd_reply_cache_clear(&D.cache);
    store_reply(seq, id);
    send_reply(seq, 0);
}
