/* bench.c: see bench.h. The physics is deliberately small: what a bench with a phantom
 * septum and a solid block in front of the needle does to the sensors, so the whole
 * firmware (limits, force cut-off, stall by following error, homing) runs for real. */
#include "bench.h"

#include "../core/hal.h"

#ifdef ND_FAULT_HOOKS
/* the single-fault campaign's hooks (faults/fault_hooks.h): the posix port's build only,
 * never the Cortex-M3 image; armed by the port (nd-firmware --fault) */
struct nd_fault_hooks nd_bench_fault;
#define HOOK(call) call
#else
#define HOOK(call)
#endif

#define ENCODER_COUNT_NM 100

static struct {
    struct nd_bench_config cfg;
    int64_t carriage_nm;    /* true depth of the carriage (and needle) */
    int64_t lost_nm;        /* motor steps lost against the load: motor − carriage */
    int64_t last_motor_nm;  /* the last advance command */
    int64_t angle_ucdeg;
    int64_t turn_ucdeg_tick; /* the last rotation command's step: the rate, per 1 ms tick */
    int32_t force_mn;       /* true axial force */
    int steps_lost;         /* the last forward command lost steps: the load beat the thrust */
    int punctured;          /* the septum gave way and has not sealed yet */
    uint32_t rng;
    uint32_t lc_acc;        /* conversions due: + lc_sample_hz per 1 ms tick, one per 1000 */
} B;

void nd_bench_defaults(struct nd_bench_config *c)
{
    c->start_depth_nm = 5000000;
    c->membrane_depth_nm = 20000000;
    c->membrane_mn_per_mm = 2000;
    c->membrane_break_mn = 3000;
    c->membrane_friction_mn = 300;
    c->block_depth_nm = 40000000;
    c->block_mn_per_mm = 2000000; /* 2 N/µm: the thrust is reached within 5 µm */
    c->thrust_mn = 10000;
    c->noise_mn = 20;
    c->rail_mn = 50000;
    c->lc_sample_hz = 80;
    c->lc_silent_backward_mrpm = 100000;
    c->seed = 1;
}

void nd_bench_board(struct nd_board *b, const struct nd_bench_config *cfg,
                    const char *serial_number)
{
    static const struct nd_board bench_board = {
        .serial_number = "",
        .simulated = 1,
        .travel_um = 150000,
        .force_limit_mn = 40000,
        .max_speed_um_s = 20000,
        .max_rate_mrpm = 120000,
        .watchdog_ms = 200,
        .nm_per_microstep = 625,
        .default_stall_force_mn = 9000,
        .load_cell_rail_mn = 50000,
        .load_cell_stuck_samples = 0, /* the bench model's noise may be set to 0 */
        .load_cell_sample_hz = 80,
        .extra_capabilities = 0,
        /* 200 ms: the host link's own watchdog; a board's timer is
         * never that late, a loaded desktop or emulator host may be */
        .max_late_ticks = 200,
        .hw_watchdog_ms = 1000,
        /* the core's 5 µm: the bench's carriage follows its command exactly until the
         * thrust is reached, and its encoder counts 100 nm */
        .stall_following_error_nm = 5000,
    };
    unsigned i;
    *b = bench_board;
    b->load_cell_rail_mn = cfg->rail_mn;
    b->load_cell_sample_hz = cfg->lc_sample_hz;
    for (i = 0; i < sizeof b->serial_number && serial_number[i] != '\0'; ++i)
        b->serial_number[i] = serial_number[i];
}

static int64_t mul_per_mm(int64_t depth_nm, int32_t mn_per_mm)
{
    return depth_nm * mn_per_mm / 1000000;
}

/* The force resisting the needle at a carriage depth (+ = resisting the advance). */
static int64_t force_at(int64_t c_nm, int moving_forward)
{
    const struct nd_bench_config *k = &B.cfg;
    int64_t f = 0;
    if (k->membrane_depth_nm >= 0 && c_nm > k->membrane_depth_nm) {
        if (!B.punctured) {
            f += mul_per_mm(c_nm - k->membrane_depth_nm, k->membrane_mn_per_mm);
        } else {
            /* the septum grips the shaft: friction against the motion */
            f += moving_forward ? k->membrane_friction_mn : -k->membrane_friction_mn;
        }
    }
    if (k->block_depth_nm >= 0 && c_nm > k->block_depth_nm)
        f += mul_per_mm(c_nm - k->block_depth_nm, k->block_mn_per_mm);
    return f;
}

void nd_bench_init(const struct nd_bench_config *cfg)
{
    B.cfg = *cfg;
    B.carriage_nm = cfg->start_depth_nm;
    B.lost_nm = 0;
    B.last_motor_nm = 0;
    B.angle_ucdeg = 0;
    B.turn_ucdeg_tick = 0;
    B.punctured = 0;
    B.rng = cfg->seed ? cfg->seed : 1u;
    B.lc_acc = 1000u; /* a conversion is ready at boot */
    B.force_mn = (int32_t)force_at(B.carriage_nm, 0);
}

void nd_bench_mcu_reset(void)
{
    /* the rig stays where it is; the motor's and the encoder's counts restart from here */
    B.cfg.start_depth_nm = B.carriage_nm;
    B.lost_nm = 0;
    B.last_motor_nm = 0;
    B.angle_ucdeg = 0;
}

void hal_advance_command_nm(int64_t motor_nm)
{
    int forward;
    int64_t want, f;
    HOOK(motor_nm = nd_fault_advance(&nd_bench_fault, hal_time_us(), motor_nm));
    forward = motor_nm > B.last_motor_nm;
    want = B.cfg.start_depth_nm + motor_nm - B.lost_nm;
    B.last_motor_nm = motor_nm;
    B.steps_lost = 0;
    if (forward) {
        /* the stepper pushes until the load reaches its thrust; beyond it, steps are lost
         * (the carriage stays where the force equals the thrust) */
        int64_t lo = B.carriage_nm, hi = want;
        if (force_at(want, 1) > B.cfg.thrust_mn) {
            while (hi - lo > 1) { /* bisect: force_at grows with depth */
                const int64_t mid = lo + (hi - lo) / 2;
                if (force_at(mid, 1) > B.cfg.thrust_mn) hi = mid;
                else lo = mid;
            }
            B.lost_nm += want - lo;
            want = lo;
            B.steps_lost = 1;
        }
    }
    B.carriage_nm = want;
    f = force_at(want, forward);
    if (!B.punctured && B.cfg.membrane_depth_nm >= 0 && f > B.cfg.membrane_break_mn &&
        want > B.cfg.membrane_depth_nm) {
        B.punctured = 1; /* the septum gives way: the force drops to its grip */
        f = force_at(want, forward);
    }
    if (B.punctured && want <= B.cfg.membrane_depth_nm) B.punctured = 0; /* it seals */
    if (!forward && want <= B.cfg.membrane_depth_nm) f = force_at(want, 0);
    B.force_mn = (int32_t)f;
}

void hal_rotate_command_ucdeg(int64_t angle_ucdeg)
{
    HOOK(angle_ucdeg = nd_fault_rotate(&nd_bench_fault, hal_time_us(), angle_ucdeg));
    B.turn_ucdeg_tick = angle_ucdeg - B.angle_ucdeg;
    B.angle_ucdeg = angle_ucdeg;
}

bool hal_encoder_read_nm(int64_t *position_nm)
{
    const int64_t rel = B.carriage_nm - B.cfg.start_depth_nm;
    /* whole encoder counts, rounded toward −∞ */
    int64_t q = rel / ENCODER_COUNT_NM;
    if (rel % ENCODER_COUNT_NM != 0 && rel < 0) q--;
    *position_nm = q * ENCODER_COUNT_NM;
#ifdef ND_FAULT_HOOKS
    return nd_fault_encoder(&nd_bench_fault, hal_time_us(), position_nm, true);
#else
    return true;
#endif
}

static uint32_t xorshift32(void)
{
    uint32_t x = B.rng;
    x ^= x << 13;
    x ^= x >> 17;
    x ^= x << 5;
    B.rng = x;
    return x;
}

enum nd_lc_read hal_load_cell_read_mn(int32_t *force_mn)
{
    /* noise: the sum of four uniforms in ±noise·√3/2 is near-Gaussian, σ ≈ noise */
    int32_t noise = 0, f;
    int i;
    /* the core calls once per 1 ms tick: a conversion completes every 1000/rate calls */
    B.lc_acc += B.cfg.lc_sample_hz;
    if (B.lc_acc < 1000u) return ND_LC_NONE;
    B.lc_acc -= 1000u;
    /* 1 mrpm = 6 ucdeg per tick (hal.h) */
    if (B.cfg.lc_silent_backward_mrpm > 0 &&
        -B.turn_ucdeg_tick > (int64_t)B.cfg.lc_silent_backward_mrpm * 6)
        return ND_LC_NONE; /* the slip ring has lost contact: nothing arrives */
    if (B.cfg.noise_mn > 0) {
        const int32_t span = B.cfg.noise_mn * 173 / 100; /* √3 · σ per uniform, ×2 /2 */
        for (i = 0; i < 4; ++i) noise += (int32_t)(xorshift32() % (uint32_t)(2 * span + 1)) - span;
        noise /= 2;
    }
    f = B.force_mn + noise;
    /* an amplifier clips at its full scale: it reads the rail, not the force */
    *force_mn = f > B.cfg.rail_mn ? B.cfg.rail_mn : f < -B.cfg.rail_mn ? -B.cfg.rail_mn : f;
#ifdef ND_FAULT_HOOKS
    if (!nd_fault_load_cell(&nd_bench_fault, hal_time_us(), force_mn, true, B.cfg.rail_mn))
        return ND_LC_FAULT;
#endif
    return ND_LC_NEW;
}

bool hal_home_switch(void) { return B.carriage_nm <= 0; }

/* The posix and Cortex-M3 boards wire no driver stall output: their stall is the
 * encoder's following error (and the force held at the threshold). The RP2040 harness
 * makes a TMC2209's DIAG of nd_bench_steps_lost(). */
bool hal_advance_driver_stalled(void) { return false; }

int nd_bench_steps_lost(void) { return B.steps_lost; }

int64_t nd_bench_carriage_nm(void) { return B.carriage_nm; }
int32_t nd_bench_true_force_mn(void) { return B.force_mn; }
