/* device.c: the 1 ms control tick — motion, sensors, safety, watchdog, telemetry,
 * heartbeat — and the state every other part reads. Behaviour: docs/protocol.md §4–§8;
 * the Python simulator (sim_device/firmware.py) does the same, so the HIL suite holds
 * both to one contract.
 *
 * Planted defects for the HIL suite (docs/firmware.md): build with -DND_DEFECT_<NAME>. */
#include "device.h"

#include "link.h"
#include "nd_core.h"

static struct nd_device the_device;
struct nd_device *nd_current = &the_device;
#define D nd_dev

/* Planted defects (a build flag each, for the HIL suite to catch; docs/firmware.md) */
#ifdef ND_DEFECT_WATCHDOG_DISABLED
#define WATCHDOG_ENABLED 0 /* planted: host silence never stops motion */
#else
#define WATCHDOG_ENABLED 1
#endif
#ifdef ND_DEFECT_STALL_CUTOFF_DISABLED
#define STALL_CUTOFF_ENABLED 0 /* planted: a stalled advance is never cut off */
#else
#define STALL_CUTOFF_ENABLED 1
#endif

#define F_OTHER                                                                        \
    ((uint16_t)~(ND_FAULT_FLAGS_STALL | ND_FAULT_FLAGS_ESTOP)) /* FAULT bit in samples */

int64_t nd_floor_div(int64_t a, int64_t b)
{
    int64_t q = a / b;
    if ((a % b != 0) && ((a < 0) != (b < 0))) q--;
    return q;
}

static int32_t clip_i32(int64_t v)
{
    return v < INT32_MIN ? INT32_MIN : v > INT32_MAX ? INT32_MAX : (int32_t)v;
}

int32_t nd_um_from_nm(int64_t nm) { return clip_i32(nd_floor_div(nm + 500, 1000)); }

/* The angle on the wire wraps modulo 2^32 centidegrees (≈ 59,650 turns) instead of
 * clipping: a clipped angle froze while the needle turned on, and every "rotation at rest"
 * check took it for still (issue 17). Differences of two readings, taken modulo 2^32, stay
 * right across the wrap. */
int32_t nd_cdeg_from_ucdeg(int64_t ucdeg)
{
    const uint32_t u =
        (uint32_t)(uint64_t)nd_floor_div(ucdeg + ND_UCDEG_PER_CDEG / 2, ND_UCDEG_PER_CDEG);
    return u <= (uint32_t)INT32_MAX ? (int32_t)u : -(int32_t)(UINT32_MAX - u) - 1;
}

/* The motor's coordinate for an advance position: on a whole microstep. */
static int64_t motor_nm(void)
{
    const int64_t step = D.board->nm_per_microstep;
    return D.motor_origin_nm + nd_floor_div(D.adv.pos + step / 2, step) * step;
}

/* ------------------------------------------------------------ output */

void nd_dev_send(uint8_t msg_id, uint8_t flags, uint16_t seq, const uint8_t *payload,
                 size_t len)
{
    nd_link_send(&D.link, msg_id, flags, seq, payload, len);
    D.last_tx_us = D.now_us;
}

void nd_dev_event(uint8_t code, int32_t value)
{
    uint8_t payload[ND_EVENT_PAYLOAD_BYTES];
    uint32_t number = nd_events_add(&D.events, D.now_us, code, value);
    nd_dev_send(ND_EVENT_ID, 0, 0, payload, nd_events_pack_event(&D.events, number, payload));
}

void nd_dev_flush_batch(void)
{
    uint8_t payload[ND_TELEMETRY_MAX_PAYLOAD_BYTES];
    const uint8_t n = D.batch_count;
    if (n == 0) return;
#ifdef ND_DEFECT_TELEMETRY_COUNTER_STUCK
    nd_put_u32(payload, 0); /* planted: first_sample_number never advances */
#else
    nd_put_u32(payload, D.batch_first);
#endif
    payload[4] = n;
    memcpy(payload + 5, D.batch, (size_t)n * ND_TELEMETRY_SAMPLE_BYTES);
    nd_dev_send(ND_TELEMETRY_ID, 0, 0, payload, 5u + (size_t)n * ND_TELEMETRY_SAMPLE_BYTES);
    D.batch_count = 0;
}

/* ------------------------------------------------------------ state */

void nd_dev_update_state(void)
{
    const uint16_t latched = D.latched;
    uint8_t flags = 0;
    if (latched & ND_FAULT_FLAGS_ESTOP) D.state = ND_DEVICE_STATE_ESTOPPED;
    else if (latched & ND_FAULT_FLAGS_STALL) D.state = ND_DEVICE_STATE_STALLED;
    else if (latched) D.state = ND_DEVICE_STATE_FAULT;
    else if (D.homing) D.state = ND_DEVICE_STATE_HOMING;
    else if (!D.homed) D.state = ND_DEVICE_STATE_UNHOMED;
    else if (D.at_limit && !D.adv.active) D.state = ND_DEVICE_STATE_LIMIT;
    else if (D.adv.active || D.rot.active) D.state = ND_DEVICE_STATE_MOVING;
    else D.state = ND_DEVICE_STATE_READY;
    if (D.homed) flags |= ND_SAMPLE_FLAGS_HOMED;
    if (D.at_limit) flags |= ND_SAMPLE_FLAGS_AT_LIMIT;
    if (latched & ND_FAULT_FLAGS_STALL) flags |= ND_SAMPLE_FLAGS_STALL;
    if (latched & F_OTHER) flags |= ND_SAMPLE_FLAGS_FAULT;
    if (latched & ND_FAULT_FLAGS_ESTOP) flags |= ND_SAMPLE_FLAGS_ESTOP;
    if (D.session_open && D.schema_ok) flags |= ND_SAMPLE_FLAGS_ARMED;
    D.flags_base = flags;
}

uint8_t nd_dev_flags(void)
{
    uint8_t flags = D.flags_base;
    if (D.adv.active) flags |= ND_SAMPLE_FLAGS_ADVANCING;
    if (D.rot.active) flags |= ND_SAMPLE_FLAGS_ROTATING;
    return flags;
}

/* Latch a fault. Every latched fault stops both axes: the advance at once (every caller
 * has halted it already), the rotation here, down its ramp (e-stop and the watchdog have
 * halted it at once). A needle left spinning in a lesion after a force or stall fault is
 * what a safety cut-off exists to prevent. */
void nd_dev_latch(uint16_t fault, uint8_t code, int32_t value)
{
#ifndef ND_DEFECT_FAULT_LEAVES_ROTATION /* mutant: the needle goes on turning */
    D.osc_amp_ucdeg = 0;
    if (D.rot.active) nd_axis_decelerate(&D.rot);
#endif
    D.latched |= fault;
    nd_dev_event(code, value);
    nd_dev_update_state();
}

void nd_dev_stop_advance(void)
{
    if (D.adv.active) {
        nd_axis_halt(&D.adv);
        nd_dev_update_state();
    }
    D.stall_ticks = 0;
}

void nd_dev_set_limit_pos(void)
{
    const int64_t step = D.board->nm_per_microstep;
    int64_t steps = (int64_t)D.soft_depth_limit_um * 1000 / step;
#ifdef ND_DEFECT_LIMIT_OFF_BY_ONE_STEP
    steps += 1; /* planted: the advance may go one microstep beyond the soft limit */
#endif
    D.limit_pos_nm = steps * step;
}

void nd_dev_begin_follow(void)
{
    D.follow_motor0_nm = D.adv.pos;
    D.follow_enc0_nm = D.depth_nm;
    D.stall_ticks = 0;
}

void nd_dev_home_found(void)
{
    int64_t enc_nm = 0;
    nd_axis_halt(&D.adv);
    /* zero both coordinates here: the motor's count and the encoder's reading */
    D.motor_origin_nm = motor_nm();
    if (hal_encoder_read_nm(&enc_nm)) D.enc_zero_nm = enc_nm;
#ifdef ND_DEFECT_HOME_OFFSET
    D.enc_zero_nm -= 50000; /* mutant: depth 0 is 50 µm away from the switch */
#endif
    D.adv.pos = 0;
    D.adv.target = 0;
    D.depth_nm = 0;
    D.depth_um = 0;
    D.homing = false;
    D.homed = true;
    D.at_limit = false;
    /* the needle at the switch, out of tissue: its force is zero here */
#ifndef ND_DEFECT_NO_TARE_AT_HOME /* mutant: homing leaves the offset as it was */
    if (!(D.latched & ND_FAULT_FLAGS_LOAD_CELL)) {
        nd_lc_tare(&D.lc);
        D.force_mn = nd_lc_output(&D.lc);
        D.force_abs_mn = nd_lc_absolute(&D.lc);
    }
#endif
    nd_dev_event(ND_EVENT_CODE_HOMED, 0);
    nd_dev_update_state();
}

/* ------------------------------------------------------------ sensors and safety */

/* Latch LOAD_CELL for a reason (LoadCellFault); the force is invalid until cleared. */
static void load_cell_fault(uint8_t reason)
{
    D.force_mn = ND_FORCE_INVALID_MN;
    D.force_abs_mn = ND_FORCE_INVALID_MN;
    if (D.latched & ND_FAULT_FLAGS_LOAD_CELL) return;
    D.lc_fault = reason;
    nd_dev_stop_advance();
    nd_dev_latch(ND_FAULT_FLAGS_LOAD_CELL, ND_EVENT_CODE_FAULT, ND_FAULT_FLAGS_LOAD_CELL);
}

/* One conversion: counted, checked (rail, stuck), tared and filtered. */
static void load_cell_conversion(int32_t raw_mn)
{
    const int32_t rail = D.board->load_cell_rail_mn;
    D.lc_samples++;
    D.lc_window_count++;
    D.lc_fresh_us = D.now_us;
    D.lc_fresh_unsent = true;
    /* a noisy reading that repeats exactly, conversion after conversion, is frozen */
    if (raw_mn != D.lc_last_mn) {
        D.lc_last_mn = raw_mn;
        D.lc_same_count = 0;
    } else if (D.lc_same_count < UINT16_MAX) {
        D.lc_same_count++;
    }
#ifndef ND_DEFECT_SATURATION_IGNORED /* mutant: a clipped reading passes as a force */
    if (raw_mn >= rail || raw_mn <= -rail) {
        D.lc_saturated++;
        load_cell_fault(ND_LOAD_CELL_FAULT_SATURATED);
        return;
    }
#else
    (void)rail;
#endif
    if (D.board->load_cell_stuck_samples &&
        D.lc_same_count >= D.board->load_cell_stuck_samples) {
        load_cell_fault(ND_LOAD_CELL_FAULT_STUCK);
        return;
    }
    D.force_mn = nd_lc_filter(&D.lc, raw_mn);
    D.force_abs_mn = nd_lc_absolute(&D.lc);
    if (D.latched & ND_FAULT_FLAGS_LOAD_CELL) D.force_mn = D.force_abs_mn = ND_FORCE_INVALID_MN;
}

static void read_load_cell(void)
{
    int32_t raw_mn = 0;
    const enum nd_lc_read r = hal_load_cell_read_mn(&raw_mn);
    if (r == ND_LC_NEW) {
        load_cell_conversion(raw_mn);
    } else if (r == ND_LC_FAULT) {
        load_cell_fault(ND_LOAD_CELL_FAULT_NO_READING);
#ifndef ND_DEFECT_SENSOR_WATCHDOG_DISABLED /* mutant: a silent load cell goes unnoticed */
    } else if (D.now_us - D.lc_fresh_us > D.lc_timeout_us) {
        load_cell_fault(ND_LOAD_CELL_FAULT_TIMEOUT); /* held too long: no longer a force */
#endif
    }
    /* the measured rate: conversions counted over each whole second */
    if (D.now_us - D.lc_window_us >= 1000000u) {
        D.lc_rate_hz = D.lc_window_count;
        D.lc_window_count = 0;
        D.lc_window_us = D.now_us;
    }
}

void nd_dev_lc_resync(void)
{
    D.lc_fresh_us = D.now_us;
    D.lc_window_us = D.now_us;
    D.lc_window_count = 0;
}

static void read_encoder(void)
{
    int64_t enc_nm;
    if (hal_encoder_read_nm(&enc_nm)) {
        D.depth_nm = enc_nm - D.enc_zero_nm;
        D.depth_um = nd_um_from_nm(D.depth_nm);
        if (D.depth_um == ND_DEPTH_INVALID_UM) D.depth_um = INT32_MIN + 1;
    } else {
        D.depth_um = ND_DEPTH_INVALID_UM;
    }
}

static void read_sensors(void)
{
    read_encoder();
    read_load_cell();
    /* every tick, so that a pulse latched while nothing moved is not taken for a stall of
     * the next move */
    D.adv_driver_stalled = hal_advance_driver_stalled();
}

/* The force the limits compare: the reported one or the one before the drift high-pass,
 * whichever is larger — a continuous tare must not take a steady force out of their
 * sight (it removes drift of mN per minute; the limits are newtons). */
static int32_t limit_force_mn(void)
{
    const int64_t f = D.force_mn, a = D.force_abs_mn;
    if (D.force_mn == ND_FORCE_INVALID_MN) return ND_FORCE_INVALID_MN;
#ifdef ND_DEFECT_DRIFT_FILTER_BLINDS_LIMIT /* mutant: the limits see the filtered force */
    (void)a;
    return (int32_t)f;
#else
    return (int32_t)((a < 0 ? -a : a) > (f < 0 ? -f : f) ? a : f);
#endif
}

static void sensor_safety(void)
{
    const int32_t f = limit_force_mn();
    if (f == ND_FORCE_INVALID_MN) {
        /* latched where it was found (load_cell_fault) */
#ifdef ND_DEFECT_FORCE_LIMIT_PUSH_ONLY
    } else if (f > D.force_limit_mn && /* mutant: a pulling force is never limited */
#else
    } else if ((f > D.force_limit_mn || -f > D.force_limit_mn) &&
#endif
               !(D.latched & ND_FAULT_FLAGS_FORCE_LIMIT)) {
        nd_dev_stop_advance();
        nd_dev_latch(ND_FAULT_FLAGS_FORCE_LIMIT, ND_EVENT_CODE_FORCE_OVER_LIMIT, f);
    }
    if (D.depth_um == ND_DEPTH_INVALID_UM && !(D.latched & ND_FAULT_FLAGS_ENCODER)) {
        nd_dev_stop_advance();
        D.homed = false;
        nd_dev_latch(ND_FAULT_FLAGS_ENCODER, ND_EVENT_CODE_FAULT, ND_FAULT_FLAGS_ENCODER);
    }
}

static void homing_check(void)
{
    if (hal_home_switch()) {
        nd_dev_home_found();
    } else if (D.homing_start_nm - D.adv.pos >
               (int64_t)D.board->travel_um * 1000 + ND_HOMING_MARGIN_NM) {
        nd_dev_stop_advance();
        D.homing = false;
        nd_dev_latch(ND_FAULT_FLAGS_TRAVEL_LIMIT, ND_EVENT_CODE_FAULT,
                     ND_FAULT_FLAGS_TRAVEL_LIMIT);
    }
}

static void stall(void)
{
    nd_dev_stop_advance();
    D.homing = false;
    D.homed = false; /* steps were lost: the position is no longer known */
    nd_dev_latch(ND_FAULT_FLAGS_STALL, ND_EVENT_CODE_STALL, D.depth_um);
}

static void stall_check(void)
{
    int64_t motor_moved, enc_moved, error;
    const int64_t error_limit_nm = D.board->stall_following_error_nm > 0
                                       ? D.board->stall_following_error_nm
                                       : ND_STALL_FOLLOWING_ERROR_NM;
    /* the driver saw the motor stall (DIAG): steps are being lost, whatever the encoder
     * shows yet — it reads the carriage a tick late, and a board whose stepper lags its
     * command under load needs a following-error limit of several encoder counts */
    if (D.adv_driver_stalled) {
        stall();
        return;
    }
    /* force held at the stall threshold while advancing */
    const int32_t force_mn = limit_force_mn();
    if (D.adv.vel > 0 && force_mn != ND_FORCE_INVALID_MN && force_mn >= D.stall_force_mn
#ifdef ND_DEFECT_STALL_FORCE_OFF_ROTATING
        && !D.rot.active /* mutant: the force-held stall is off while the needle turns */
#endif
    ) {
        if (++D.stall_ticks >= D.stall_time_ms) {
            stall();
            return;
        }
    } else {
        D.stall_ticks = 0;
    }
    /* advance commanded, encoder not following (steps lost) */
    motor_moved = D.adv.pos - D.follow_motor0_nm;
    enc_moved = D.depth_nm - D.follow_enc0_nm;
    error = motor_moved >= 0 ? motor_moved - enc_moved : enc_moved - motor_moved;
    if (error > error_limit_nm) stall();
}

static void hit_limit(int64_t pos_before)
{
    /* the advance went beyond the limit this tick: stop it at the limit (or where it was,
     * if a limit tightened below the needle put it beyond already) */
    D.adv.pos = D.limit_pos_nm > pos_before ? D.limit_pos_nm : pos_before;
    nd_axis_halt(&D.adv);
    D.at_limit = true;
    nd_dev_event(ND_EVENT_CODE_LIMIT_REACHED, nd_um_from_nm(D.limit_pos_nm));
    nd_dev_update_state();
}

static void watchdog_trip(void)
{
    const int32_t silent_ms = (int32_t)((D.now_us - D.last_host_us) / 1000u);
    D.wd_tripped = true;
    if (!(D.adv.active || D.rot.active || D.homing)) {
        /* silent with both axes at rest: the session ends, nothing latched — how every
         * host's session ends when it simply stops talking; a clean exit leaves no
         * fault (protocol §4). Motion is NOT_ARMED until the next HELLO. */
        D.session_open = false;
        D.schema_ok = false;
        nd_dev_event(ND_EVENT_CODE_SESSION_ENDED, silent_ms);
        nd_dev_update_state();
        return;
    }
    /* silent while something moves: stop all motion at once and latch WATCHDOG, so the
     * next host learns that its predecessor went away mid-motion */
    D.watchdog_trips++;
    nd_axis_halt(&D.adv);
    nd_axis_halt(&D.rot);
    D.osc_amp_ucdeg = 0;
    D.homing = false;
    D.stall_ticks = 0;
    nd_dev_latch(ND_FAULT_FLAGS_WATCHDOG, ND_EVENT_CODE_WATCHDOG_TRIP, silent_ms);
}

/* The main loop was away longer than the board allows (a hung driver, a descheduled
 * process): the ticks it missed ran no safety check, and replaying them would jump the
 * motors through the whole backlog unchecked. They are dropped — device time still
 * advances by them, so it stays the wall clock's and the gap shows in telemetry — and
 * whatever moved halts, latching OVERRUN. */
static void loop_overrun(uint64_t dropped)
{
    D.ticks += dropped;
    D.tick_overruns += (uint32_t)dropped;
    /* the load cell was not read in the dropped ticks: not its silence (the sensor
     * watchdog counts from here, its rate window restarts) */
    D.lc_fresh_us = D.ticks * ND_TICK_US;
    D.lc_window_us = D.lc_fresh_us;
    D.lc_window_count = 0;
    if (!(D.adv.active || D.rot.active || D.homing)) return;
    nd_axis_halt(&D.adv);
    nd_axis_halt(&D.rot);
    D.osc_amp_ucdeg = 0;
    D.homing = false;
    D.stall_ticks = 0;
    nd_dev_latch(ND_FAULT_FLAGS_OVERRUN, ND_EVENT_CODE_FAULT, ND_FAULT_FLAGS_OVERRUN);
}

void nd_core_late_ticks(uint64_t late)
{
    if (D.board->max_late_ticks && late > D.board->max_late_ticks) {
        loop_overrun(late);
    } else {
        D.tick_overruns += (uint32_t)late;
    }
}

void nd_core_run_ticks(void)
{
    const uint64_t due = hal_time_us() / ND_TICK_US - D.ticks_base;
    if (due <= D.ticks) return;
    /* every due tick but the newest starts a period or more late */
    nd_core_late_ticks(due - D.ticks - 1);
    while (D.ticks < due) nd_core_tick();
}

uint64_t nd_core_next_tick_us(void) { return (D.ticks_base + D.ticks + 1u) * ND_TICK_US; }

/* ------------------------------------------------------------ telemetry */

static void take_sample(void)
{
    struct nd_telemetry_sample s;
    if (D.batch_count == 0) D.batch_first = D.samples_sent;
    s.time_us = (uint32_t)D.now_us;
    s.depth_um = D.depth_um;
    s.commanded_depth_um = nd_um_from_nm(D.adv.pos);
    s.angle_cdeg = nd_cdeg_from_ucdeg(D.rot.pos);
    s.force_mn = D.force_mn;
    s.state = D.state;
    s.flags = nd_dev_flags();
#ifdef ND_DEFECT_FRESH_BIT_ALWAYS /* mutant: every sample claims a fresh force */
    D.lc_fresh_unsent = true;
#endif
    s.force_flags = D.lc_fresh_unsent ? ND_FORCE_FLAGS_FRESH : 0u;
    if (!D.lc_fresh_unsent) D.lc_stale_samples++;
    D.lc_fresh_unsent = false;
    nd_telemetry_sample_pack(&s, D.batch + (size_t)D.batch_count * ND_TELEMETRY_SAMPLE_BYTES);
    D.samples_sent++;
    if (++D.batch_count >= D.batch_samples) nd_dev_flush_batch();
}

/* ------------------------------------------------------------ the tick */

static void step_axes(void)
{
    if (D.adv.active) {
        const int64_t before = D.adv.pos;
        const bool arrived = nd_axis_step(&D.adv);
        if (D.adv.pos > D.limit_pos_nm && D.adv.pos > before && D.homed)
            hit_limit(before);
        else if (arrived && !D.homing)
            nd_dev_event(ND_EVENT_CODE_TARGET_REACHED, nd_um_from_nm(D.adv.pos));
    }
    if (D.rot.active && nd_axis_step(&D.rot) && D.osc_amp_ucdeg) {
        /* oscillation: turn around at each end */
        const int64_t c = D.osc_center_ucdeg, a = D.osc_amp_ucdeg;
        nd_axis_move_to(&D.rot, D.rot.target > c ? c - a : c + a, D.rot.vmax);
    }
    hal_advance_command_nm(motor_nm());
    hal_rotate_command_ucdeg(D.rot.pos);
}

void nd_core_tick_move(void)
{
    D.tick_t0_us = hal_time_us();
    nd_core_poll(); /* commands update the state themselves */
    D.adv_was_active = D.adv.active;
    D.rot_was_active = D.rot.active;
    D.ticks++;
    D.now_us = D.ticks * ND_TICK_US;
    step_axes();
}

/* The longest tick so far, for the port's report (nd_core_stats): a diagnostic, kept
 * apart from the safety checks — none of them reads it, and the wire does not carry it. */
static void note_tick_time(void)
{
    const uint64_t spent = hal_time_us() - D.tick_t0_us;
    if (spent > D.max_tick_us) D.max_tick_us = (uint32_t)spent;
}

void nd_core_tick_sense(void)
{
    read_sensors();
    {
        const int32_t f = limit_force_mn();
        if (f == ND_FORCE_INVALID_MN || f > D.force_limit_mn || f < -D.force_limit_mn ||
            D.depth_um == ND_DEPTH_INVALID_UM)
            sensor_safety();
    }
    if (D.adv.active) {
        if (D.homing) homing_check();
        if (D.adv.active && STALL_CUTOFF_ENABLED) stall_check();
    } else {
        D.stall_ticks = 0;
    }
    if (WATCHDOG_ENABLED && D.session_open && !D.wd_tripped &&
        D.now_us - D.last_host_us >= (uint64_t)D.board->watchdog_ms * 1000u)
        watchdog_trip();
    /* an axis that came to rest (or halted) this tick: once, before the sample */
    if (D.adv_was_active != D.adv.active || D.rot_was_active != D.rot.active)
        nd_dev_update_state();

    if (D.telemetry_rate_hz) {
        D.sample_acc = (uint16_t)(D.sample_acc + D.telemetry_rate_hz);
        if (D.sample_acc >= 1000u) {
            D.sample_acc = (uint16_t)(D.sample_acc - 1000u);
            take_sample();
        }
    }
    if (D.now_us - D.last_tx_us >= (uint64_t)ND_DEVICE_HEARTBEAT_MS * 1000u) {
        uint8_t payload[ND_HEARTBEAT_PAYLOAD_BYTES];
        struct nd_heartbeat hb;
        hb.uptime_ms = (uint32_t)(D.now_us / 1000u);
        nd_dev_send(ND_HEARTBEAT_ID, 0, 0, payload, nd_heartbeat_pack(&hb, payload));
    }
    note_tick_time();
    hal_watchdog_kick(); /* a tick completed: the loop is alive */
}

void nd_core_tick(void)
{
    nd_core_tick_move();
    nd_core_tick_sense();
}

uint64_t nd_core_idle_until_us(void)
{
    uint64_t until;
    if (D.adv.active || D.rot.active || D.homing || D.telemetry_rate_hz) return 0u;
    until = D.last_tx_us + (uint64_t)ND_DEVICE_HEARTBEAT_MS * 1000u;
    if (WATCHDOG_ENABLED && D.session_open && !D.wd_tripped) {
        const uint64_t wd = D.last_host_us + (uint64_t)D.board->watchdog_ms * 1000u;
        if (wd < until) until = wd;
    }
    return until;
}

void nd_core_poll(void)
{
    uint8_t buf[64];
    size_t n;
    while ((n = hal_serial_read(buf, sizeof buf)) > 0) nd_link_feed(&D.link, buf, n);
}

void nd_dev_init(const struct nd_board *board, nd_frame_handler on_frame)
{
    memset(&D, 0, sizeof D);
    D.board = board;
    nd_axis_init(&D.adv, ND_ADVANCE_ACCEL_NM_TICK2);
    nd_axis_init(&D.rot, ND_ROTATE_ACCEL_UCDEG_TICK2);
    nd_events_init(&D.events);
    nd_reply_cache_clear(&D.cache);
    nd_link_init(&D.link, on_frame);
    D.soft_depth_limit_um = board->travel_um;
    D.force_limit_mn = board->force_limit_mn;
    D.stall_force_mn = board->default_stall_force_mn;
    D.stall_time_ms = ND_DEFAULT_STALL_TIME_MS;
    D.batch_samples = ND_MAX_BATCH_SAMPLES;
    nd_dev_set_limit_pos();
    /* the encoder reads 0 at boot: depth counts from here until the device is homed */
    if (!hal_encoder_read_nm(&D.enc_zero_nm)) D.enc_zero_nm = 0;
    hal_advance_command_nm(0);
    hal_rotate_command_ucdeg(0);
    {
        /* the load cell: its watchdog allows two nominal periods, rounded up */
        const uint32_t hz = board->load_cell_sample_hz ? board->load_cell_sample_hz : 1000u;
        int32_t raw_mn = 0;
        D.lc_timeout_us = (2000000u + hz - 1u) / hz;
        if (hal_load_cell_read_mn(&raw_mn) != ND_LC_NEW) raw_mn = 0;
        nd_lc_init(&D.lc, (uint16_t)hz, raw_mn);
        D.lc_last_mn = raw_mn;
        D.lc_fresh_us = 0; /* boot: the first conversion is due within two periods */
        D.force_mn = raw_mn; /* checked (rail, stuck) from the first tick on */
        D.force_abs_mn = raw_mn;
    }
    read_encoder();
    nd_dev_update_state();
    nd_dev_event(ND_EVENT_CODE_BOOT, 0);
    D.ticks_base = hal_time_us() / ND_TICK_US;
    if (board->hw_watchdog_ms) hal_watchdog_start(board->hw_watchdog_ms);
}

void nd_core_stats(struct nd_core_stats *out)
{
    const struct nd_link_stats *l = nd_link_stats(&D.link);
    out->frames_ok = l->frames_ok;
    out->frames_bad = nd_link_frames_bad(&D.link);
    out->commands_executed = D.commands_executed;
    out->replies_replayed = D.replies_replayed;
    out->watchdog_trips = D.watchdog_trips;
    out->samples_sent = D.samples_sent;
    out->frames_dropped_tx = l->tx_dropped;
    out->ticks = (uint32_t)D.ticks; /* the statistics' count: modulo 2^32 */
    out->max_tick_us = D.max_tick_us;
    out->tick_overruns = D.tick_overruns;
}
