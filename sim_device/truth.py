"""Watch the simulated rig's truth at every step: the needle's true force and depth.

A safety judge must not trust what it judges. The procedure acts on the load cell
(noisy, low-passed) and the encoder; this monitor sees what the rig really did — the
true force on the needle and the needle's true depth after every ``Rig.step`` (every
1 ms control tick, and every idle stretch) — and counts the steps beyond the limits
it was given before the run.
"""

from __future__ import annotations

from typing import Any


class TruthMonitor:
    """Wraps ``rig.step`` (an instance attribute, so only this rig is watched) until
    ``detach()``. ``force_limit_n`` applies to |true force|, ``depth_limit_mm`` to the
    needle's true depth."""

    def __init__(self, rig: Any, *, force_limit_n: float, depth_limit_mm: float) -> None:
        self.rig = rig
        self.force_limit_n = force_limit_n
        self.depth_limit_mm = depth_limit_mm
        self.steps = 0
        self.peak_force_n = 0.0
        self.peak_depth_mm = float(rig.needle_depth_mm)
        self.force_over_steps = 0
        self.depth_over_steps = 0
        inner = rig.step

        def step(dt_s: float, motor_depth_mm: float, angle_deg: float) -> None:
            inner(dt_s, motor_depth_mm, angle_deg)
            force = abs(rig.true_force_n)
            depth = rig.needle_depth_mm
            self.steps += 1
            if force > self.peak_force_n:
                self.peak_force_n = force
            if depth > self.peak_depth_mm:
                self.peak_depth_mm = depth
            if force > self.force_limit_n:
                self.force_over_steps += 1
            if depth > self.depth_limit_mm:
                self.depth_over_steps += 1

        rig.step = step

    def detach(self) -> None:
        """Stop watching (the rig's own step again)."""
        self.rig.__dict__.pop("step", None)
