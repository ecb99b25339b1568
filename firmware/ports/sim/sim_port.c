/* ports/sim: see sim_port.h. The HAL functions read and write the current nd_sim. */
#include "sim_port.h"

#include <math.h>
#include <pthread.h>
#include <string.h>

#include "../../core/nd_core.h"

/* The core has one state pointer and some scratch buffers, and cffi releases the GIL
 * around every call: two threads running two devices (a Dask worker's threads, a server)
 * would run the core at once on one pointer. Every entry point holds this lock while the
 * core runs; uncontended it costs a few tens of nanoseconds. */
static pthread_mutex_t core_lock = PTHREAD_MUTEX_INITIALIZER;
static struct nd_sim *cur; /* the device being run (set by every entry point) */

static void select_device(struct nd_sim *s)
{
    pthread_mutex_lock(&core_lock);
    cur = s;
    nd_current = &s->dev;
}

static void release(void) { pthread_mutex_unlock(&core_lock); }

/* ------------------------------------------------------------ the HAL */

size_t hal_serial_read(uint8_t *buf, size_t max)
{
    size_t n = cur->rx_len < max ? cur->rx_len : max;
    if (n) {
        memcpy(buf, cur->rx, n);
        cur->rx += n;
        cur->rx_len -= n;
    }
    return n;
}

size_t hal_serial_tx_room(void) { return ND_SIM_TX_BYTES - cur->tx_len; }

void hal_serial_write(const uint8_t *data, size_t n)
{
    memcpy(cur->tx + cur->tx_len, data, n);
    cur->tx_len += n;
}

/* the control tick is the clock (the core counts its ticks): no time passes within one */
uint64_t hal_time_us(void) { return cur->dev.now_us; }
/* The simulator runs every tick itself, in virtual time: no loop to hang, no watchdog. */
void hal_watchdog_start(uint32_t timeout_ms) { (void)timeout_ms; }
void hal_watchdog_kick(void) {}

void hal_advance_command_nm(int64_t motor_nm)
{
    motor_nm = nd_fault_advance(&cur->fault, cur->dev.now_us, motor_nm);
    cur->motor_mm = cur->motor_origin_mm + (double)motor_nm * 1e-6;
}

void hal_rotate_command_ucdeg(int64_t angle_ucdeg)
{
    angle_ucdeg = nd_fault_rotate(&cur->fault, cur->dev.now_us, angle_ucdeg);
    cur->angle_deg = cur->angle_origin_deg + (double)angle_ucdeg * 1e-6;
}

bool hal_encoder_read_nm(int64_t *position_nm)
{
    *position_nm = cur->encoder_nm;
    return nd_fault_encoder(&cur->fault, cur->dev.now_us, position_nm, cur->encoder_ok);
}

enum nd_lc_read hal_load_cell_read_mn(int32_t *force_mn)
{
    if (cur->load_cell_cut || !cur->load_cell_fresh) return ND_LC_NONE;
    if (!cur->load_cell_ok) return ND_LC_FAULT;
    *force_mn = cur->load_cell_mn;
    return nd_fault_load_cell(&cur->fault, cur->dev.now_us, force_mn, true,
                              cur->board.load_cell_rail_mn)
               ? ND_LC_NEW
               : ND_LC_FAULT;
}

bool hal_home_switch(void) { return cur->home_switch; }

/* The simulated rig has no stepper driver with a stall output: its stall is the
 * following error (and the force held at the threshold). */
bool hal_advance_driver_stalled(void) { return false; }

/* ------------------------------------------------------------ the simulator's side */

/* A reading the rig model gives as a double: rounded half to even (as Python's round),
 * invalid if NaN, infinite or beyond what the HAL's integer can hold. */
static bool to_int64(double x, double lo, double hi, int64_t *out)
{
    if (!(x > lo && x < hi)) return false; /* NaN fails both */
    *out = (int64_t)nearbyint(x);
    return true;
}

static void set_sensors(struct nd_sim *s, double encoder_mm, double load_cell_n,
                        bool home_switch, bool load_cell_fresh)
{
    s->load_cell_fresh = load_cell_fresh;
    int64_t v = 0;
    s->encoder_ok = to_int64((encoder_mm - s->encoder_origin_mm) * 1e6, -9.0e15, 9.0e15, &v);
    s->encoder_nm = v;
    s->load_cell_ok = to_int64(load_cell_n * 1000.0, (double)INT32_MIN, (double)INT32_MAX, &v);
    s->load_cell_mn = (int32_t)v;
    s->home_switch = home_switch;
}

void nd_sim_init(struct nd_sim *s, double motor_origin_mm, double encoder_mm,
                 double load_cell_n, bool home_switch)
{
    select_device(s);
    s->motor_origin_mm = motor_origin_mm;
    s->encoder_origin_mm = encoder_mm;
    s->motor_mm = motor_origin_mm;
    s->angle_deg = s->angle_origin_deg;
    s->rx = NULL;
    s->rx_len = 0;
    s->tx_len = 0;
    nd_fault_arm(&s->fault, ND_FAULT_NONE, 0, 0);
    s->load_cell_cut = false;
    set_sensors(s, encoder_mm, load_cell_n, home_switch, true);
    nd_core_init(&s->board);
    release();
}

void nd_sim_feed(struct nd_sim *s, const uint8_t *data, size_t n)
{
    select_device(s);
    s->rx = data;
    s->rx_len = n;
    nd_core_poll();
    s->rx = NULL;
    s->rx_len = 0;
    release();
}

double nd_sim_move(struct nd_sim *s)
{
    double motor_mm;
    uint32_t late_ms;
    select_device(s);
    /* a late control loop (the fault hook): judged by the core as any board's main loop
     * is (beyond the board's bound: dropped, the motion halted, OVERRUN latched); within
     * the bound the simulated loop does not run the late ticks again — its clock has run
     * on while it did not, and the rig has not moved meanwhile either */
    late_ms = nd_fault_overrun_ms(&s->fault, s->dev.now_us);
    if (late_ms) {
        const uint64_t ticks = s->dev.ticks;
        nd_core_late_ticks(late_ms);
        if (s->dev.ticks == ticks) s->dev.ticks += late_ms;
        s->dev.now_us = s->dev.ticks * ND_TICK_US;
    }
    nd_core_tick_move();
    motor_mm = s->motor_mm;
    release();
    return motor_mm;
}

uint32_t nd_sim_sense(struct nd_sim *s, double encoder_mm, double load_cell_n,
                      bool home_switch, bool load_cell_fresh)
{
    uint32_t out;
    select_device(s);
    set_sensors(s, encoder_mm, load_cell_n, home_switch, load_cell_fresh);
    nd_core_tick_sense();
    out = (uint32_t)s->tx_len | (nd_core_idle_until_us() ? ND_SIM_IDLE : 0u);
    release();
    return out;
}

uint64_t nd_sim_idle_until_us(struct nd_sim *s)
{
    uint64_t until;
    select_device(s);
    until = nd_core_idle_until_us();
    release();
    return until;
}

void nd_sim_skip(struct nd_sim *s, uint32_t ticks)
{
    select_device(s);
    s->dev.ticks += ticks;
    s->dev.now_us = s->dev.ticks * ND_TICK_US;
    nd_dev_lc_resync(); /* the skipped ticks' conversions are not missing: none was read */
    release();
}

size_t nd_sim_take(struct nd_sim *s, uint8_t *out, size_t max)
{
    size_t n = s->tx_len < max ? s->tx_len : max;
    memcpy(out, s->tx, n);
    memmove(s->tx, s->tx + n, s->tx_len - n);
    s->tx_len -= n;
    return n;
}

void nd_sim_fault_arm(struct nd_sim *s, uint8_t kind, uint64_t at_us, int64_t param)
{
    nd_fault_arm(&s->fault, kind, at_us, param);
}

void nd_sim_stats(struct nd_sim *s, struct nd_core_stats *out)
{
    select_device(s);
    nd_core_stats(out);
    release();
}
