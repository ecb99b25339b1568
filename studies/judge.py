"""The safety judge of a simulated PIERCE run — one judge for the sweep's jobs and the
cohort benchmark.

It never trusts the procedure under test, nor what the device was told. Its limits are
fixed before the run, outside the procedure (``JudgeLimits.fixed``): the profile
file's numbers and the device's hard limits read from its IDENTITY, the lower of each
pair. It then watches, with the simulator's truth at every rig step (1 ms;
``sim_device.truth.TruthMonitor``) and the device's own reports:

* force: |true force| above the force limit at any rig step; a load-cell sample the
  device sent above it; a FORCE_OVER_LIMIT event;
* depth: the needle's true depth beyond the depth limit (target + overshoot) at any
  rig step; an encoder sample the device sent beyond it;
* limits not in force: the advance driven (homing aside) while the device's own limits
  — soft depth, force, stall force, stall time — were looser than the profile's (a
  procedure that skipped SET_LIMITS leaves the device guarding only its hard limits:
  one more fault away from harm, even if this run was lucky);
* no stop at a stall: the needle driven forward more than ``LATE_ADVANCE_MM`` later
  than the profile's ``[stall] max_duration_s`` (+ ``OVERRUN_GRACE_S`` to stop) after
  the first motion — a procedure that ignores its stall policy pushes on for ever, so
  the judge then ends the run through the ``abort`` event it hands the procedure;
* motion after the end: the needle or the rotation moving once the run has returned
  (``WATCH_AFTER_S`` watched with the link kept alive);
* overshoot after a puncture: how far the tip went from where it stood when a cap gave
  way (its lurch through the cap, then the advance) until the load cell's next fresh
  sample — what a slow sensor adds — beyond the profile's ``[target]
  overshoot_limit_mm``.

Only for an in-process simulator (``sim://``): the truth is the simulated rig's.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from typing import Any

import numpy as np

# a sample with no valid load-cell reading is no force at all, so no force above a limit:
# the device latches LOAD_CELL for it (the single-fault campaign counts those)
from firmware_host.procedure.drift import NO_READING_N

WATCH_AFTER_S = 1.0
OVERRUN_GRACE_S = 2.0  # time to notice max_duration_s (a control period) and brake
LATE_ADVANCE_MM = 0.05


@dataclass(frozen=True)
class JudgeLimits:
    """What the judge holds a run to, fixed before it starts."""

    force_limit_n: float
    depth_limit_mm: float
    stall_force_n: float
    stall_time_s: float
    max_duration_s: float
    puncture_overshoot_mm: float = 2.0  # the profile's [target] overshoot_limit_mm

    @classmethod
    def fixed(cls, profile: Any, identity: Any, target_mm: float) -> JudgeLimits:
        """From the profile file (a ``Profile``) and the device's IDENTITY."""
        return cls(
            force_limit_n=min(profile.limits.force_limit_n, identity.force_limit_n),
            depth_limit_mm=min(
                target_mm + profile.target.overshoot_limit_mm, identity.travel_limit_mm
            ),
            stall_force_n=min(profile.limits.stall_force_n, identity.force_limit_n),
            stall_time_s=profile.limits.stall_time_s,
            max_duration_s=profile.stall.max_duration_s,
            puncture_overshoot_mm=profile.target.overshoot_limit_mm,
        )


@dataclass(frozen=True)
class Verdict:
    """One run's judgement: counts per rule and the findings in words."""

    limits: JudgeLimits
    force_over_steps: int  # rig steps with |true force| above the limit
    force_over_samples: int  # load-cell samples the device sent above it
    force_over_events: int  # FORCE_OVER_LIMIT events
    depth_over_steps: int  # rig steps with the true depth beyond the limit
    depth_over_samples: int  # encoder samples the device sent beyond it
    loose_limit_steps: int  # rig steps driven with the device's limits looser
    late_advance_mm: float  # forward advance after max_duration_s + grace
    moved_after_end: bool
    peak_force_true_n: float
    peak_depth_true_mm: float
    findings: tuple[str, ...]
    puncture_overshoot_mm: float = 0.0  # the largest, over the run's punctures
    peak_wind_rev: float = 0.0  # the most turns the tissue held twisted (not judged)

    @property
    def violations(self) -> int:
        """How many rules the run broke (0: safe)."""
        return len(self.findings)

    @property
    def safety(self) -> str:
        return "; ".join(self.findings) if self.findings else "ok"


def measured_over(rows: Any, limits: JudgeLimits) -> tuple[int, int]:
    """(load-cell samples above the force limit, encoder samples beyond the depth limit)
    in telemetry rows (``TELEMETRY_DTYPE``)."""
    if len(rows) == 0:
        return 0, 0
    force_n = rows["force_n"]
    over = (np.abs(force_n) > limits.force_limit_n) & (force_n != NO_READING_N)
    force = int(np.count_nonzero(over))
    depth = int(np.count_nonzero(rows["depth_mm"] > limits.depth_limit_mm + 1e-9))
    return force, depth


def findings(
    limits: JudgeLimits,
    *,
    force_over_steps: int,
    force_over_samples: int,
    force_over_events: int,
    depth_over_steps: int,
    depth_over_samples: int,
    loose_limit_steps: int,
    late_advance_mm: float,
    moved_after_end: bool,
    puncture_overshoot_mm: float = 0.0,
) -> tuple[str, ...]:
    """The rules broken, one line each."""
    out = []
    f, d = limits.force_limit_n, limits.depth_limit_mm
    if force_over_steps:
        out.append(f"true force above {f:g} N for {force_over_steps} rig steps")
    if force_over_samples or force_over_events:
        out.append(
            f"load cell above {f:g} N: {force_over_samples} samples, "
            f"{force_over_events} FORCE_OVER_LIMIT events"
        )
    if depth_over_steps:
        out.append(f"true depth beyond {d:g} mm for {depth_over_steps} rig steps")
    if depth_over_samples:
        out.append(f"encoder beyond {d:g} mm for {depth_over_samples} samples")
    if loose_limit_steps:
        out.append(
            f"advance driven for {loose_limit_steps} rig steps with the device's limits "
            f"looser than {d:g} mm / {f:g} N / stall {limits.stall_force_n:g} N "
            f"{limits.stall_time_s:g} s"
        )
    if late_advance_mm > LATE_ADVANCE_MM:
        out.append(
            f"advanced {late_advance_mm:.2f} mm after max_duration_s "
            f"{limits.max_duration_s:g} s + {OVERRUN_GRACE_S:g} s"
        )
    if moved_after_end:
        out.append("moved after the run ended")
    if puncture_overshoot_mm > limits.puncture_overshoot_mm:
        out.append(
            f"tip {puncture_overshoot_mm:.2f} mm past where a cap gave way before the next "
            f"fresh load-cell sample (limit {limits.puncture_overshoot_mm:g} mm)"
        )
    return tuple(out)


class SafetyJudge:
    """Watch one run on an open in-process ``sim://`` NeedleDriver::

        limits = JudgeLimits.fixed(profile, nd.identity, target_mm)
        with SafetyJudge(nd, limits) as judge:
            outcome = run_procedure(nd, profile, target_depth_mm=target_mm, abort=judge.abort)
            judge.watch_after()
        verdict = judge.verdict

    Create it before the procedure starts (it reads the device's event numbering then)."""

    def __init__(self, nd: Any, limits: JudgeLimits) -> None:
        from firmware_host.procedure.homing import AbortEvent
        from sim_device.truth import TruthMonitor

        self.nd = nd
        self.limits = limits
        self.firmware: Any = nd.link.transport.port.device
        self.rig: Any = self.firmware.rig
        self.abort = AbortEvent()
        self.moved_after_end = False
        self.verdict: Verdict | None = None
        self._first_event = int(nd.status().counters.last_event_number)
        self._batches: list[Any] = []
        self._unsubscribe = nd.telemetry.subscribe(self._batches.append)
        # the tissue's twist, a truth figure of rotation's cost (Lin & Huang 2020)
        if hasattr(self.rig, "track_winding"):
            self.rig.track_winding()
        self.truth = TruthMonitor(
            self.rig,
            force_limit_n=limits.force_limit_n,
            depth_limit_mm=limits.depth_limit_mm,
            firmware=self.firmware,
            stall_force_n=limits.stall_force_n,
            stall_time_s=limits.stall_time_s,
            forward_deadline_s=(
                limits.max_duration_s + OVERRUN_GRACE_S
                if math.isfinite(limits.max_duration_s)
                else None
            ),
            on_late_advance=self._late_advance,
        )

    def _late_advance(self) -> None:
        if self.truth.late_advance_mm > LATE_ADVANCE_MM and not self.abort.is_set():
            self.abort.set_because("the safety judge: still advancing after max_duration_s")

    def watch_after(self, seconds: float = WATCH_AFTER_S) -> None:
        """After the run has returned: keep the link alive ``seconds``; nothing may move."""
        rig = self.rig
        depth0, angle0 = rig.needle_depth_mm, rig.angle_deg
        self.nd.wait_s(seconds)
        self.moved_after_end = rig.needle_depth_mm != depth0 or rig.angle_deg != angle0

    def close(self) -> Verdict:
        """Stop watching and judge (idempotent)."""
        if self.verdict is not None:
            return self.verdict
        from firmware_host.errors import NeedleDriverError
        from firmware_host.telemetry import TELEMETRY_DTYPE

        self.truth.detach()
        self._unsubscribe()
        try:
            events = self.nd.events()
        except NeedleDriverError:
            events = []
        over_events = sum(
            1
            for e in events
            if e.number > self._first_event
            and getattr(e.code, "name", str(e.code)) == "FORCE_OVER_LIMIT"
        )
        rows = (
            np.concatenate(self._batches) if self._batches else np.empty(0, dtype=TELEMETRY_DTYPE)
        )
        force_samples, depth_samples = measured_over(rows, self.limits)
        t = self.truth
        counts: dict[str, Any] = {
            "force_over_steps": t.force_over_steps,
            "force_over_samples": force_samples,
            "force_over_events": over_events,
            "depth_over_steps": t.depth_over_steps,
            "depth_over_samples": depth_samples,
            "loose_limit_steps": t.loose_limit_steps,
            "late_advance_mm": t.late_advance_mm,
            "moved_after_end": self.moved_after_end,
            "puncture_overshoot_mm": t.peak_puncture_overshoot_mm,
        }
        self.verdict = Verdict(
            limits=self.limits,
            peak_force_true_n=t.peak_force_n,
            peak_depth_true_mm=t.peak_depth_mm,
            peak_wind_rev=float(getattr(self.rig, "peak_wind_rev", 0.0)),
            findings=findings(self.limits, **counts),
            **counts,
        )
        return self.verdict

    def __enter__(self) -> SafetyJudge:
        return self

    def __exit__(self, exc_type: type[BaseException] | None, *_: object) -> None:
        if exc_type is None:
            self.close()
        else:
            self.truth.detach()
            self._unsubscribe()
