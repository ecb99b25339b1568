/* fault_hooks.c: see fault_hooks.h. */
#include "fault_hooks.h"

void nd_fault_arm(struct nd_fault_hooks *f, uint8_t kind, uint64_t at_us, int64_t param)
{
    f->kind = kind < ND_FAULT_KINDS ? kind : ND_FAULT_NONE;
    f->at_us = at_us;
    f->param = param;
    f->fired = false;
    f->fired_us = 0;
    f->held_mn = 0;
    f->frozen_adv_nm = 0;
    f->frozen_rot_ucdeg = 0;
    f->adv_frozen = false;
    f->rot_frozen = false;
    f->overrun_done = false;
}

/* Is this fault acting now? Notes the moment it first did. */
static bool acting(struct nd_fault_hooks *f, uint8_t kind, uint64_t now_us)
{
    if (f->kind != kind || now_us < f->at_us) return false;
    if (!f->fired) {
        f->fired = true;
        f->fired_us = now_us;
    }
    return true;
}

bool nd_fault_load_cell(struct nd_fault_hooks *f, uint64_t now_us, int32_t *force_mn, bool ok,
                        int32_t rail_mn)
{
    if (f->kind == ND_FAULT_LOADCELL_STUCK) {
        const bool first = !f->fired;
        if (acting(f, ND_FAULT_LOADCELL_STUCK, now_us)) {
            if (first) f->held_mn = *force_mn;
            *force_mn = f->held_mn;
        }
    } else if (acting(f, ND_FAULT_LOADCELL_DISCONNECTED, now_us)) {
        return false;
    } else if (acting(f, ND_FAULT_LOADCELL_SATURATED, now_us)) {
        *force_mn = rail_mn;
    } else if (acting(f, ND_FAULT_LOADCELL_DRIFT, now_us)) {
        /* whole mN: param mN/s over the time since it began (64-bit: no overflow) */
        const int64_t drift = f->param * (int64_t)(now_us - f->fired_us) / 1000000;
        const int64_t v = (int64_t)*force_mn + drift;
        *force_mn = v > INT32_MAX ? INT32_MAX : (v < INT32_MIN + 1 ? INT32_MIN + 1 : (int32_t)v);
    }
    return ok;
}

bool nd_fault_encoder(struct nd_fault_hooks *f, uint64_t now_us, int64_t *position_nm, bool ok)
{
    if (acting(f, ND_FAULT_ENCODER_LOST, now_us)) return false;
    if (acting(f, ND_FAULT_ENCODER_JUMP, now_us)) *position_nm += f->param;
    return ok;
}

int64_t nd_fault_advance(struct nd_fault_hooks *f, uint64_t now_us, int64_t motor_nm)
{
    if (acting(f, ND_FAULT_MOTOR_STALLED, now_us) || acting(f, ND_FAULT_DRIVER_DISABLED, now_us)) {
        if (!f->adv_frozen) {
            f->adv_frozen = true;
            f->frozen_adv_nm = motor_nm;
        }
        return f->frozen_adv_nm; /* the motor stands; the core's count goes on */
    }
    return motor_nm;
}

int64_t nd_fault_rotate(struct nd_fault_hooks *f, uint64_t now_us, int64_t angle_ucdeg)
{
    if (acting(f, ND_FAULT_DRIVER_DISABLED, now_us)) {
        if (!f->rot_frozen) {
            f->rot_frozen = true;
            f->frozen_rot_ucdeg = angle_ucdeg;
        }
        return f->frozen_rot_ucdeg;
    }
    return angle_ucdeg;
}

uint32_t nd_fault_overrun_ms(struct nd_fault_hooks *f, uint64_t now_us)
{
    if (f->overrun_done || !acting(f, ND_FAULT_TICK_OVERRUN, now_us)) return 0u;
    f->overrun_done = true;
    return f->param > 0 ? (uint32_t)f->param : 0u;
}
