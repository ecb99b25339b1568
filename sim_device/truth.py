"""Watch the simulated rig's truth at every step: the needle's true force and depth.

A safety judge must not trust what it judges. The procedure acts on the load cell
(noisy, low-passed) and the encoder; this monitor sees what the rig really did — the
true force on the needle and the needle's true depth after every ``Rig.step`` (every
1 ms control tick, and every idle stretch) — and counts the steps beyond the limits
it was given before the run.

Given the firmware too (``firmware=``), it also watches what the device would have
done about it: the steps where the advance was driven (homing aside) while the
device's limits in force were looser than the ones given here (a host that never set
them leaves the device guarding nothing but its hard limits), and the forward
advance of the needle later than ``forward_deadline_s`` after the run's first motion.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any


class TruthMonitor:
    """Wraps ``rig.step`` (an instance attribute, so only this rig is watched) until
    ``detach()``. ``force_limit_n`` applies to |true force|, ``depth_limit_mm`` to the
    needle's true depth. With ``firmware``: ``stall_force_n``/``stall_time_s`` are the
    loosest stall cut-off the device may run with; ``forward_deadline_s`` (from the
    first motion that is not homing) bounds forward advance — beyond it every forward
    µm adds to ``late_advance_mm`` and ``on_late_advance`` is called."""

    def __init__(
        self,
        rig: Any,
        *,
        force_limit_n: float,
        depth_limit_mm: float,
        firmware: Any = None,
        stall_force_n: float | None = None,
        stall_time_s: float | None = None,
        forward_deadline_s: float | None = None,
        on_late_advance: Callable[[], None] | None = None,
    ) -> None:
        self.rig = rig
        self.force_limit_n = force_limit_n
        self.depth_limit_mm = depth_limit_mm
        self.steps = 0
        self.peak_force_n = 0.0
        self.peak_depth_mm = float(rig.needle_depth_mm)
        self.force_over_steps = 0
        self.depth_over_steps = 0
        self.loose_limit_steps = 0
        self.late_advance_mm = 0.0
        self.motion_start_us: int | None = None
        # Overshoot after a puncture: how far the tip went from where it stood the step
        # before a cap gave way (the lurch through it, then the advance) until the load
        # cell's next fresh sample — the first moment the host can know.
        self.punctures_seen = int(getattr(rig, "punctures", 0))
        self.peak_puncture_overshoot_mm = 0.0
        self._overshoot_from_mm: float | None = None
        inner = rig.step
        fw = firmware
        # The device's limits are integers (µm, mN, ms); anything above these is looser.
        max_depth_um = depth_limit_mm * 1000.0 + 0.5
        max_force_mn = force_limit_n * 1000.0 + 0.5
        max_stall_mn = float("inf") if stall_force_n is None else stall_force_n * 1000.0 + 0.5
        max_stall_ms = float("inf") if stall_time_s is None else stall_time_s * 1000.0 + 0.5
        deadline_us = None if forward_deadline_s is None else forward_deadline_s * 1e6

        def step(dt_s: float, motor_depth_mm: float, angle_deg: float) -> None:
            before_mm = rig.needle_depth_mm
            tip_before_mm = rig.tip_depth_mm
            inner(dt_s, motor_depth_mm, angle_deg)
            force = abs(rig.true_force_n)
            depth = rig.needle_depth_mm
            self.steps += 1
            if rig.punctures != self.punctures_seen:
                self.punctures_seen = rig.punctures
                if self._overshoot_from_mm is None:
                    self._overshoot_from_mm = tip_before_mm
            if self._overshoot_from_mm is not None:
                overshoot = rig.tip_depth_mm - self._overshoot_from_mm
                if overshoot > self.peak_puncture_overshoot_mm:
                    self.peak_puncture_overshoot_mm = overshoot
                if getattr(rig, "load_cell_fresh", True):
                    self._overshoot_from_mm = None
            if force > self.peak_force_n:
                self.peak_force_n = force
            if depth > self.peak_depth_mm:
                self.peak_depth_mm = depth
            if force > self.force_limit_n:
                self.force_over_steps += 1
            if depth > self.depth_limit_mm:
                self.depth_over_steps += 1
            if fw is None:
                return
            driven = fw.adv.active and not fw.homing
            if driven and (
                fw.soft_depth_limit_um > max_depth_um
                or fw.force_limit_mn > max_force_mn
                or fw.stall_force_mn > max_stall_mn
                or fw.stall_time_ms > max_stall_ms
            ):
                self.loose_limit_steps += 1
            if self.motion_start_us is None:
                if driven or fw.rot.active:
                    self.motion_start_us = fw.clock.now_us
            elif (
                deadline_us is not None
                and depth > before_mm
                and fw.clock.now_us - self.motion_start_us > deadline_us
            ):
                self.late_advance_mm += depth - before_mm
                if on_late_advance is not None:
                    on_late_advance()

        rig.step = step

    def detach(self) -> None:
        """Stop watching (the rig's own step again)."""
        self.rig.__dict__.pop("step", None)
