/* axis.h: a trapezoidal motion profile, one 1 ms control tick at a time, in integers.
 *
 * Position in the axis' unit (nm for the advance, ucdeg = 1e-4 cdeg for the rotation),
 * velocity in units per tick, acceleration in units per tick². With these units every
 * speed the protocol can ask for is a whole number per tick (1 µm/s = 1 nm/tick,
 * 1 mrpm = 6 ucdeg/tick), so the profile needs no floating point and an idle axis costs
 * nothing: the tick steps an axis only while it is active. */
#ifndef ND_AXIS_H
#define ND_AXIS_H

#include <stdbool.h>
#include <stdint.h>

struct nd_axis {
    int64_t pos;
    int64_t target;
    int32_t vel;
    int32_t vmax;
    int32_t target_vel;
    int32_t accel;
    bool velocity_mode;
    bool active;
};

void nd_axis_init(struct nd_axis *a, int32_t accel);
/* Position mode: go to target cruising at vmax (> 0). */
void nd_axis_move_to(struct nd_axis *a, int64_t target, int32_t vmax);
/* Velocity mode: ramp to velocity (sign = direction) and keep going. */
void nd_axis_run_at(struct nd_axis *a, int32_t velocity);
/* Controlled stop: ramp down to rest. */
void nd_axis_decelerate(struct nd_axis *a);
/* Immediate stop (e-stop, safety cut-off): velocity zero this tick. */
void nd_axis_halt(struct nd_axis *a);
/* One tick. Returns true when a position move reached its target. */
bool nd_axis_step(struct nd_axis *a);

#endif
