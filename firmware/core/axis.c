/* axis.c: see axis.h. The same profile as sim_device/motion.py, in integers. */
#include "axis.h"

void nd_axis_init(struct nd_axis *a, int32_t accel)
{
    a->pos = 0;
    a->target = 0;
    a->vel = 0;
    a->vmax = 0;
    a->target_vel = 0;
    a->accel = accel;
    a->velocity_mode = false;
    a->active = false;
}

void nd_axis_move_to(struct nd_axis *a, int64_t target, int32_t vmax)
{
    a->target = target;
    a->vmax = vmax < 0 ? -vmax : vmax;
    a->velocity_mode = false;
    a->active = target != a->pos || a->vel != 0;
}

void nd_axis_run_at(struct nd_axis *a, int32_t velocity)
{
    a->target_vel = velocity;
    a->velocity_mode = true;
    a->active = velocity != 0 || a->vel != 0;
}

void nd_axis_decelerate(struct nd_axis *a) { nd_axis_run_at(a, 0); }

void nd_axis_halt(struct nd_axis *a)
{
    a->vel = 0;
    a->target = a->pos;
    a->target_vel = 0;
    a->active = false;
}

static bool step_velocity(struct nd_axis *a)
{
    int32_t vel = a->vel;
    const int32_t tv = a->target_vel;
    if (vel < tv) {
        vel = (tv - vel > a->accel) ? vel + a->accel : tv;
    } else if (vel > tv) {
        vel = (vel - tv > a->accel) ? vel - a->accel : tv;
    }
    a->vel = vel;
    a->pos += vel;
    if (vel == 0 && tv == 0) a->active = false;
    return false;
}

bool nd_axis_step(struct nd_axis *a)
{
    int64_t d, dist, speed, brake, new_pos;
    int32_t dir;
    const int64_t acc = a->accel;
    if (a->velocity_mode) return step_velocity(a);
    d = a->target - a->pos;
    if (d == 0 && a->vel == 0) {
        a->active = false;
        return true;
    }
    dir = d > 0 ? 1 : -1;
    if ((int64_t)a->vel * dir < 0) {
        /* moving away from the target: brake first */
        speed = (int64_t)a->vel + dir * acc;
    } else {
        speed = a->vel < 0 ? -(int64_t)a->vel : a->vel;
        dist = d < 0 ? -d : d;
        /* brake when the distance to go is within the stopping distance */
        brake = speed * speed / (2 * acc) + speed / 2;
        if (dist <= brake) {
            /* creep in at half a tick's acceleration, never above the cruise speed */
            int64_t floor_speed = acc / 2 < a->vmax ? acc / 2 : a->vmax;
            if (floor_speed < 1) floor_speed = 1;
            speed = speed - acc > floor_speed ? speed - acc : floor_speed;
        } else {
            speed = speed + acc < a->vmax ? speed + acc : a->vmax;
        }
        speed = dir * speed;
    }
    new_pos = a->pos + speed;
    if ((a->target - new_pos) * dir <= 0) {
        /* arrived (or would overshoot): settle exactly on the target */
        a->pos = a->target;
        a->vel = 0;
        a->active = false;
        return true;
    }
    a->pos = new_pos;
    a->vel = (int32_t)speed;
    return false;
}
