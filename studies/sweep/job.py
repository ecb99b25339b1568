"""One sweep run: a seeded in-process simulator, the PIERCE procedure, and a safety
judgement from the simulator's truth.

The judge (``studies.judge``, the cohort benchmark's too) never trusts the
procedure or the load cell. Its limits are fixed before the run, outside the
procedure: the profile's numbers and the device's hard limits read from its IDENTITY —
the lower of each pair. Every rig step (1 ms) of the run and of one second watched
afterwards is checked against the simulator's truth; see that module for the rules.
"""

from __future__ import annotations

import dataclasses
from dataclasses import dataclass
from typing import Any

from sim_device.lesions import Lesion


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
    load_cell: str = ""  # a load cell part ("": the lesion's, else ideal)
    drift: float = 1.0  # the part's drift multiplier


def run_job(job: Job) -> dict[str, Any]:
    """Run one job and return its table row (inputs + outcome + safety judgement)."""
    from firmware_host.client import NeedleDriver
    from firmware_host.procedure import run_procedure
    from firmware_host.procedure.profile import profile_from_dict
    from sim_device.lesions import registered
    from studies.judge import JudgeLimits, SafetyJudge

    profile = profile_from_dict(job.profile_data, source=f"run {job.run_id}")
    # Registered in memory under a name unique to this run (a worker needs no file).
    lesion = dataclasses.replace(job.lesion, name=f"sweep-{job.run_id}")
    with registered(lesion) as name:
        url = f"sim://?lesion={name}&seed={job.seed}&noise={job.noise!r}&drift={job.drift!r}"
        if job.load_cell:
            url += f"&load_cell={job.load_cell}"
        with NeedleDriver.open(url) as nd:
            limits = JudgeLimits.fixed(profile, nd.identity, job.target_mm)
            with SafetyJudge(nd, limits) as judge:
                out = run_procedure(nd, profile, target_depth_mm=job.target_mm, abort=judge.abort)
                judge.watch_after()
            verdict = judge.close()
            true_cracks = int(judge.rig.cracks)
            true_punctures = int(judge.rig.punctures)
            sensor_hz = float(judge.rig.load_cell_sample_hz)  # the part the rig simulated
    return {
        **job.inputs,
        "outcome": out.result.value,
        "reason": out.reason,
        "depth_mm": round(out.final_depth_mm, 4),
        "deepest_depth_mm": round(out.deepest_depth_mm, 4),
        "duration_s": round(out.duration_s, 3),
        "peak_force_true_n": round(verdict.peak_force_true_n, 4),
        "peak_force_measured_n": round(out.peak_force_n, 4),
        "peak_depth_true_mm": round(verdict.peak_depth_true_mm, 4),
        "holds": out.holds,
        "hold_time_s": round(out.hold_time_s, 3),
        "pecks": out.pecks,
        "cracks": out.cracks,
        "punctures": out.punctures,
        "true_cracks": true_cracks,
        "true_punctures": true_punctures,
        "load_cell_sample_hz": sensor_hz,
        "escalations": out.escalations,
        "final_ceiling_n": out.force_ceiling_n,
        "judge_force_limit_n": limits.force_limit_n,
        "judge_depth_limit_mm": round(limits.depth_limit_mm, 4),
        "force_over_steps": verdict.force_over_steps,
        "depth_over_steps": verdict.depth_over_steps,
        "moved_after_end": verdict.moved_after_end,
        "puncture_overshoot_mm": round(verdict.puncture_overshoot_mm, 4),
        "peak_wind_rev": round(verdict.peak_wind_rev, 4),
        "violations": verdict.violations,
        "safety": verdict.safety,
    }
