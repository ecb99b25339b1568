/* fault_hooks.h: one single fault injected between the core and its HAL, from a scheduled
 * device time on — the single-fault campaign's hooks (docs/safety/README.md, "The
 * single-fault campaign"; studies/campaign.py).
 *
 * A port that has them passes every sensor reading and actuator command through these
 * functions; the core never knows. The same hooks serve the simulator's port (ports/sim,
 * always: it is never a production image) and the posix port's bench model (bench.c,
 * built with -DND_FAULT_HOOKS); the Cortex-M3 production image is built without them.
 * No heap, no floating point, like the core.
 */
#ifndef ND_FAULT_HOOKS_H
#define ND_FAULT_HOOKS_H

#include <stdbool.h>
#include <stdint.h>

enum nd_fault_kind {
    ND_FAULT_NONE = 0,
    ND_FAULT_LOADCELL_STUCK = 1,        /* the reading freezes at its value then */
    ND_FAULT_LOADCELL_DISCONNECTED = 2, /* no valid reading (open bridge) */
    ND_FAULT_LOADCELL_SATURATED = 3,    /* the amplifier pinned at its rail */
    ND_FAULT_LOADCELL_DRIFT = 4,        /* offset drifting by param mN per second */
    ND_FAULT_ENCODER_LOST = 5,          /* no valid reading (unplugged) */
    ND_FAULT_ENCODER_JUMP = 6,          /* the reading jumps by param nm (missed counts) */
    ND_FAULT_MOTOR_STALLED = 7,         /* the advance motor stops turning; its count runs on */
    ND_FAULT_DRIVER_DISABLED = 8,       /* the drivers' enable drops: neither axis turns */
    ND_FAULT_TICK_OVERRUN = 9,          /* the control loop late by param ms, once */
    ND_FAULT_KINDS = 10
};

struct nd_fault_hooks {
    uint8_t kind;    /* enum nd_fault_kind; ND_FAULT_NONE: every hook passes through */
    uint64_t at_us;  /* device time from which the fault acts */
    int64_t param;   /* drift mN/s, jump nm, overrun ms (see the kinds) */
    /* state, from the first hook call at or after at_us */
    bool fired;
    uint64_t fired_us;
    int32_t held_mn;       /* the stuck reading */
    int64_t frozen_adv_nm; /* where a stalled motor stands */
    int64_t frozen_rot_ucdeg;
    bool adv_frozen;
    bool rot_frozen;
    bool overrun_done;
};

/* Schedule one fault (replacing any other); kind ND_FAULT_NONE disarms. */
void nd_fault_arm(struct nd_fault_hooks *f, uint8_t kind, uint64_t at_us, int64_t param);

/* The hooks, each given the device time now and what the HAL read or is commanded. */
bool nd_fault_load_cell(struct nd_fault_hooks *f, uint64_t now_us, int32_t *force_mn, bool ok,
                        int32_t rail_mn);
bool nd_fault_encoder(struct nd_fault_hooks *f, uint64_t now_us, int64_t *position_nm, bool ok);
int64_t nd_fault_advance(struct nd_fault_hooks *f, uint64_t now_us, int64_t motor_nm);
int64_t nd_fault_rotate(struct nd_fault_hooks *f, uint64_t now_us, int64_t angle_ucdeg);
/* How late the loop is at this tick, in ms (once, at the first tick at or after at_us). */
uint32_t nd_fault_overrun_ms(struct nd_fault_hooks *f, uint64_t now_us);

#endif /* ND_FAULT_HOOKS_H */
