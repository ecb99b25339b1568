"""One sweep run: a seeded in-process simulator, the PIERCE procedure, and a safety
judgement from the simulator's truth.

The judge never trusts the procedure or the load cell. Its limits are fixed before
the run, outside the procedure: the profile's numbers (``[limits] force_limit_n``,
the soft depth limit = target + ``[target] overshoot_limit_mm``) and the device's
hard limits read from its IDENTITY (force, travel) — the lower of each pair. Every
rig step (1 ms) of the run and of one second watched afterwards is checked
(``sim_device.truth.TruthMonitor``): |true force| above the force limit, the needle's
true depth beyond the depth limit, and any motion after the run has returned.
"""

from __future__ import annotations

import dataclasses
from dataclasses import dataclass
from typing import Any

from sim_device.lesions import Lesion

WATCH_AFTER_S = 1.0


@dataclass(frozen=True)
class Job:
    """Everything one run needs (picklable: it travels to a worker process or machine)."""

    run_id: str
    lesion: Lesion
    profile_data: dict[str, Any]
    seed: int
    noise: float
    target_mm: float
    inputs: dict[str, Any]  # the table's input columns


def run_job(job: Job) -> dict[str, Any]:
    """Run one job and return its table row (inputs + outcome + safety judgement)."""
    from firmware_host.client import NeedleDriver
    from firmware_host.procedure import run_procedure
    from firmware_host.procedure.profile import profile_from_dict
    from sim_device.lesions import registered
    from sim_device.truth import TruthMonitor

    profile = profile_from_dict(job.profile_data, source=f"run {job.run_id}")
    # Registered in memory under a name unique to this run (a worker needs no file).
    lesion = dataclasses.replace(job.lesion, name=f"sweep-{job.run_id}")
    with registered(lesion) as name:
        url = f"sim://?lesion={name}&seed={job.seed}&noise={job.noise!r}"
        with NeedleDriver.open(url) as nd:
            ident = nd.identity
            force_limit_n = min(profile.limits.force_limit_n, ident.force_limit_n)
            depth_limit_mm = min(
                job.target_mm + profile.target.overshoot_limit_mm, ident.travel_limit_mm
            )
            rig = nd.link.transport.port.device.rig  # type: ignore[attr-defined]
            truth = TruthMonitor(rig, force_limit_n=force_limit_n, depth_limit_mm=depth_limit_mm)
            try:
                out = run_procedure(nd, profile, target_depth_mm=job.target_mm)
                depth0, angle0 = rig.needle_depth_mm, rig.angle_deg
                nd.wait_s(WATCH_AFTER_S)
                moved_after = rig.needle_depth_mm != depth0 or rig.angle_deg != angle0
            finally:
                truth.detach()
            true_cracks = int(rig.cracks)
    verdicts = []
    if truth.force_over_steps:
        verdicts.append(
            f"true force above {force_limit_n:g} N for {truth.force_over_steps} rig steps"
        )
    if truth.depth_over_steps:
        verdicts.append(
            f"true depth beyond {depth_limit_mm:g} mm for {truth.depth_over_steps} rig steps"
        )
    if moved_after:
        verdicts.append("moved after the run ended")
    return {
        **job.inputs,
        "outcome": out.result.value,
        "reason": out.reason,
        "depth_mm": round(out.final_depth_mm, 4),
        "deepest_depth_mm": round(out.deepest_depth_mm, 4),
        "duration_s": round(out.duration_s, 3),
        "peak_force_true_n": round(truth.peak_force_n, 4),
        "peak_force_measured_n": round(out.peak_force_n, 4),
        "peak_depth_true_mm": round(truth.peak_depth_mm, 4),
        "holds": out.holds,
        "hold_time_s": round(out.hold_time_s, 3),
        "pecks": out.pecks,
        "cracks": out.cracks,
        "true_cracks": true_cracks,
        "escalations": out.escalations,
        "final_ceiling_n": out.force_ceiling_n,
        "judge_force_limit_n": force_limit_n,
        "judge_depth_limit_mm": round(depth_limit_mm, 4),
        "force_over_steps": truth.force_over_steps,
        "depth_over_steps": truth.depth_over_steps,
        "moved_after_end": moved_after,
        "violations": len(verdicts),
        "safety": "; ".join(verdicts) if verdicts else "ok",
    }
