/* bench.h: a small bench model behind the HAL's actuator and sensor functions, shared by
 * the posix and the Cortex-M3 ports (it implements hal_advance_command_nm,
 * hal_rotate_command_ucdeg, hal_encoder_read_nm, hal_load_cell_read_mn and
 * hal_home_switch; the port implements the serial link and the clock).
 *
 * What it models, along the carriage's depth (0 at the homing switch):
 *  - ideal steppers: the carriage follows the advance command exactly, unless the force
 *    against it exceeds the stepper's thrust: then steps are lost (the carriage stays,
 *    the encoder stops, the motor count runs on: the core's following-error stall);
 *  - an encoder on the carriage (100 nm counts), a home switch at depth <= 0;
 *  - a load cell: the force below plus noise (a seeded PRNG), quantised to 1 mN, clipped at
 *    its rail (the core latches SATURATED there), converting at its own rate (80 samples/s
 *    by default, an HX711 at its fast setting: the core holds the last conversion between
 *    two), its signal through a slip ring that loses contact while the needle turns
 *    backward faster than 100 rpm: no conversion arrives then (the bench fault the
 *    suite's sensor-watchdog test provokes; nothing else turns backward that fast);
 *  - a phantom membrane at membrane_depth: a self-sealing septum that loads the needle
 *    elastically and gives way (punctures) above membrane_break_mn; once punctured it only
 *    grips the shaft (friction) until the needle is withdrawn behind it, when it seals;
 *  - a solid block at block_depth: very stiff, so the force reaches the thrust within a
 *    few micrometres and the advance stalls against it.
 * Integer arithmetic only (the Cortex-M3 has no FPU).
 */
#ifndef ND_BENCH_H
#define ND_BENCH_H

#include <stdint.h>

#include "../core/hal.h"

struct nd_bench_config {
    int64_t start_depth_nm;           /* where the carriage stands at power-up */
    int64_t membrane_depth_nm;        /* < 0: no membrane */
    int32_t membrane_mn_per_mm;       /* septum stiffness before it gives way */
    int32_t membrane_break_mn;        /* force at which it punctures */
    int32_t membrane_friction_mn;     /* grip on the shaft once punctured */
    int64_t block_depth_nm;           /* < 0: no block */
    int32_t block_mn_per_mm;          /* block stiffness */
    int32_t thrust_mn;                /* stepper thrust: beyond it steps are lost */
    int32_t noise_mn;                 /* load cell noise, about one standard deviation */
    int32_t rail_mn;                  /* load cell full scale: readings clip here */
    uint16_t lc_sample_hz;            /* load cell conversions per second (<= 1000) */
    int32_t lc_silent_backward_mrpm;  /* 0: none; turning backward faster: no conversion */
    uint32_t seed;                    /* noise seed (0 is replaced by 1) */
};

/* The bench every port uses unless told otherwise: membrane at 20 mm giving way at
 * 3 N (2 N/mm), block at 40 mm, thrust 10 N, noise 20 mN, carriage at 5 mm, the load
 * cell at 80 samples/s with its rail at 50 N, silent while turning backward > 100 rpm. */
void nd_bench_defaults(struct nd_bench_config *cfg);
void nd_bench_init(const struct nd_bench_config *cfg);
/* The MCU reset (its watchdog fired) while the rig stays put: the motor's and the
 * encoder's counts restart from where the carriage stands, as a real board's would. */
void nd_bench_mcu_reset(void);

/* The board every port of the bench model declares (one source for its IDENTITY): 150 mm
 * of travel, 40 N hard force limit, 20 mm/s, 120 rpm, a 200 ms watchdog, 625 nm per
 * microstep, stall at 9 N until SET_LIMITS, the load cell's rail and rate the bench
 * config's and no stuck-reading check (its noise may be set to 0); a main loop may
 * catch up 200 late ticks (then OVERRUN), the MCU watchdog resets after 1 s; simulated.
 * The port's serial number (up to 16 characters, NUL-padded) is the only other
 * difference. */
void nd_bench_board(struct nd_board *board, const struct nd_bench_config *cfg,
                    const char *serial_number);

#ifdef ND_FAULT_HOOKS
#include "../faults/fault_hooks.h"
/* The bench's fault hooks, between the core and this model (posix port only). */
extern struct nd_fault_hooks nd_bench_fault;
#endif

/* 1 when the last advance command lost steps (the load beyond the stepper's thrust):
 * what a stepper driver's stall output (a TMC2209's DIAG) reports; the RP2040 harness
 * puts it on the DIAG pin. */
int nd_bench_steps_lost(void);

/* For a port's own diagnostics (not used by the core). */
int64_t nd_bench_carriage_nm(void);
int32_t nd_bench_true_force_mn(void);

#endif /* ND_BENCH_H */
