"""The cohort study: the PIERCE procedure through the simulated cohort-2021 and the
archetypes, each run judged by ``studies.judge`` from the simulator's truth
(``benchmarks/cohort.py`` prints it; ``tests/procedure/test_cohort_safety.py`` plants
faults in the procedure it runs). The conditions, one run (``run_one``), the baseline
with no procedure, the matrix of runs on local processes, and the summaries of the
rows: their outcomes by condition and their CPU cost against simulated time.
"""

from __future__ import annotations

import multiprocessing
import sys
import time
from dataclasses import dataclass
from typing import Any

import numpy as np

MARGIN_MM = 3.0
BASE_SEED = 1
OTHER_SEEDS = (2, 3, 4, 5, 6)
NEAR_EDGE_N = 1.0


@dataclass(frozen=True)
class Task:
    lesion: str
    kind: str  # cohort | archetype
    condition: str
    seed: int
    noise: float
    keep_trace: bool = False


def conditions(quick: bool) -> list[tuple[str, int, float]]:
    out = [(f"seed {BASE_SEED}", BASE_SEED, 1.0), (f"seed {BASE_SEED} noise x2", BASE_SEED, 2.0)]
    if not quick:
        out += [(f"seed {s}", s, 1.0) for s in OTHER_SEEDS]
    return out


def expected(lesion: str) -> str:
    return "stalled" if lesion == "uncrossable" else "crossed"


def near_edge(ceiling_n: float, within_n: float = NEAR_EDGE_N) -> dict[str, Any]:
    """The cohort lesions whose calcium floor (the hardest block's ``min_crack_force_n``)
    is within ``within_n`` of the force ceiling: how close the tuned cohort comes to the
    edge of what the procedure can cross."""
    from sim_device.families import features
    from sim_device.lesions import cohort

    floors = {les.name: features(les)["calcium_floor_n"] for les in cohort("cohort-2021")}
    near = sorted(n for n, f in floors.items() if abs(f - ceiling_n) <= within_n)
    known = [f for f in floors.values() if f == f]  # NaN: no calcium
    return {
        "ceiling_n": ceiling_n,
        "within_n": within_n,
        "count": len(near),
        "lesions": near,
        "of": len(floors),
        "hardest_floor_n": max(known) if known else None,
    }


def run_one(task: Task) -> dict[str, Any]:
    from firmware_host.client import NeedleDriver
    from firmware_host.procedure import load_profile, run_procedure
    from firmware_host.telemetry import TELEMETRY_DTYPE
    from sim_device.lesions import load_lesion
    from studies.judge import JudgeLimits, SafetyJudge

    lesion = load_lesion(task.lesion)
    profile = load_profile(None)
    target = round(lesion.end_mm + MARGIN_MM, 3)
    batches: list[Any] = []
    url = f"sim://?lesion={task.lesion}&seed={task.seed}&noise={task.noise:g}"
    wall0 = time.perf_counter()
    cpu0 = time.process_time()
    with NeedleDriver.open(url) as nd:
        unsubscribe = nd.telemetry.subscribe(batches.append)
        # The judge's limits: the profile file's and the device's hard ones, read now.
        limits = JudgeLimits.fixed(profile, nd.identity, target)
        with SafetyJudge(nd, limits) as judge:
            out = run_procedure(nd, profile, target_depth_mm=target, abort=judge.abort)
            wall_s = time.perf_counter() - wall0
            cpu_s = time.process_time() - cpu0
            end_t = nd.clock.monotonic()
            judge.watch_after()
        verdict = judge.close()
        unsubscribe()
    rows = np.concatenate(batches) if batches else np.empty(0, dtype=TELEMETRY_DTYPE)
    t0 = float(rows["host_time_s"][0]) if len(rows) else 0.0
    during = rows[rows["host_time_s"] <= end_t]
    row: dict[str, Any] = {
        "lesion": task.lesion,
        "kind": task.kind,
        "condition": task.condition,
        "length_mm": round(lesion.length_mm, 1),
        "target_mm": target,
        "expected": expected(task.lesion),
        "outcome": out.result.value,
        "reason": out.reason,
        "depth_mm": round(out.final_depth_mm, 3),
        "time_s": round(out.duration_s, 1),
        "peak_force_n": round(out.peak_force_n, 2),
        "peak_force_true_n": round(verdict.peak_force_true_n, 2),
        "holds": out.holds,
        "hold_time_s": round(out.hold_time_s, 1),
        "pecks": out.pecks,
        "cracks": out.cracks,
        "punctures": out.punctures,
        "stalls": out.stalls,
        "force_over_steps": verdict.force_over_steps,
        "force_over_samples": verdict.force_over_samples + verdict.force_over_events,
        "depth_over_steps": verdict.depth_over_steps + verdict.depth_over_samples,
        "loose_limit_steps": verdict.loose_limit_steps,
        "moved_after_end": verdict.moved_after_end,
        "violations": verdict.violations,
        "safety": verdict.safety,
        "true_cracks": int(judge.rig.cracks),
        "true_punctures": int(judge.rig.punctures),
        "sim_s": round(end_t - t0, 3),
        "wall_s": round(wall_s, 3),
        "cpu_s": round(cpu_s, 3),
    }
    if task.keep_trace:
        step = max(1, len(during) // 4000)
        row["_trace"] = {
            "t_s": (during["host_time_s"][::step] - t0).tolist(),
            "force_n": during["force_n"][::step].tolist(),
            "depth_mm": during["depth_mm"][::step].tolist(),
            "notes": [
                {"t_s": e.t_s + (out.clock_start_s - t0), "kind": e.kind, **e.fields}
                for e in out.events
                if e.kind != "device_event"
            ],
            "target": target,
            "soft": limits.depth_limit_mm,
            "force_limit": limits.force_limit_n,
        }
    return row


def baseline_cpu_per_sim_s(seconds: float = 30.0) -> float:
    """Baseline: CPU seconds per simulated second of the same host + simulator with no
    procedure — the needle advancing slowly and turning, 1 kHz telemetry decoded into
    the ring, the link pumped every 10 ms as the control loop does, the safety judge
    watching as it watches a benchmarked run. The ratio against
    it is what the procedure's own logic costs."""
    from firmware_host.client import NeedleDriver
    from firmware_host.procedure import load_profile
    from studies.judge import JudgeLimits, SafetyJudge

    with NeedleDriver.open("sim://?lesion=fibrous-cto&seed=1") as nd:
        nd.home()
        nd.set_telemetry(rate_hz=1000, batch_samples=10)
        nd.rotate_rpm(30.0)
        nd.move_to_mm(40.0, 0.5)
        # The judge watches every rig step of a benchmarked run: the baseline carries
        # it too, so the ratio is the procedure's own cost.
        with SafetyJudge(nd, JudgeLimits.fixed(load_profile(None), nd.identity, 40.0)):
            end = nd.clock.monotonic() + seconds
            t = time.process_time()
            while nd.clock.monotonic() < end:
                nd.wait_s(0.01)
            cpu = time.process_time() - t
    return cpu / seconds


def build_tasks(quick: bool, figure: bool) -> list[Task]:
    from sim_device.lesions import cohort, library

    cohort_names = [les.name for les in cohort("cohort-2021")]
    archetypes = sorted(n for n, les in library().items() if les.cohort is None)
    tasks = []
    for i, (cond, seed, noise) in enumerate(conditions(quick)):
        for name in cohort_names:
            tasks.append(Task(name, "cohort", cond, seed, noise, keep_trace=figure and i == 0))
        for name in archetypes:
            tasks.append(Task(name, "archetype", cond, seed, noise))
    return tasks


def summarise(rows: list[dict[str, Any]], conds: list[str]) -> dict[str, Any]:
    by_cond = {}
    for c in conds:
        rs = [r for r in rows if r["condition"] == c]
        coh = [r for r in rs if r["kind"] == "cohort"]
        unc = [r for r in rs if r["lesion"] == "uncrossable"]
        by_cond[c] = {
            "crossed": sum(r["outcome"] == "crossed" for r in coh),
            "total": len(coh),
            "archetypes_as_expected": sum(
                r["outcome"] == r["expected"] for r in rs if r["kind"] == "archetype"
            ),
            "archetypes": sum(r["kind"] == "archetype" for r in rs),
            "uncrossable": unc[0]["outcome"] if unc else None,
            "safety_violations": sum(r["violations"] for r in rs),
            # punctures: noted by the procedure (at most the truth, per run) against the
            # simulator's truth, in the cohort; and every run (cohort or archetype) that
            # noted more than the truth had — a false puncture
            "cohort_punctures_noted": sum(min(r["punctures"], r["true_punctures"]) for r in coh),
            "cohort_punctures_true": sum(r["true_punctures"] for r in coh),
            "archetype_punctures_noted": sum(
                min(r["punctures"], r["true_punctures"]) for r in rs if r["kind"] == "archetype"
            ),
            "archetype_punctures_true": sum(
                r["true_punctures"] for r in rs if r["kind"] == "archetype"
            ),
            "false_punctures": sum(max(0, r["punctures"] - r["true_punctures"]) for r in rs),
            "false_puncture_runs": sorted(
                r["lesion"] for r in rs if r["punctures"] > r["true_punctures"]
            ),
        }
    return by_cond


def cost(rows: list[dict[str, Any]], baseline: float) -> dict[str, Any]:
    """CPU time (this process's, so other load on the machine does not blur it) against
    simulated time. Linear means: CPU ≈ a·sim_s, and the CPU per simulated second does
    not grow with the lesion's length."""
    sim = np.array([r["sim_s"] for r in rows])
    cpu = np.array([r["cpu_s"] for r in rows])
    wall = np.array([r["wall_s"] for r in rows])
    length = np.array([r["length_mm"] for r in rows])
    per = cpu / sim
    a, b = np.polyfit(sim, cpu, 1)
    pred = a * sim + b
    r2 = 1.0 - float(np.sum((cpu - pred) ** 2) / max(np.sum((cpu - cpu.mean()) ** 2), 1e-12))
    slope_per_mm = float(np.polyfit(length, per, 1)[0])
    return {
        "cpu_per_sim_s_median": float(np.median(per)),
        "cpu_per_sim_s_min": float(per.min()),
        "cpu_per_sim_s_max": float(per.max()),
        "realtime_factor_cpu_median": float(1.0 / np.median(per)),
        "wall_per_sim_s_median": float(np.median(wall / sim)),
        "baseline_cpu_per_sim_s": baseline,
        "cost_ratio_vs_baseline": float(np.median(per) / baseline),
        "fit_cpu_s_per_sim_s": float(a),
        "fit_intercept_s": float(b),
        "fit_r2": r2,
        "cpu_per_sim_s_change_per_mm": slope_per_mm,
        "cpu_total_s": float(cpu.sum()),
    }


def run_all(tasks: list[Task], jobs: int) -> tuple[list[dict[str, Any]], float, float]:
    """Every task (longest lesions first, so a pool's tail is short) and the baseline, on
    ``jobs`` processes: the rows in the order of ``tasks``, the baseline's CPU per
    simulated second, and the matrix's wall time."""
    from sim_device.lesions import load_lesion

    order = sorted(tasks, key=lambda t: -load_lesion(t.lesion).end_mm)
    t0 = time.perf_counter()
    if jobs > 1:
        ctx = multiprocessing.get_context("fork" if sys.platform != "win32" else "spawn")
        with ctx.Pool(jobs) as pool:
            baseline_job = pool.apply_async(baseline_cpu_per_sim_s)
            rows = list(pool.imap_unordered(run_one, order, chunksize=1))
            baseline = baseline_job.get()
    else:
        baseline = baseline_cpu_per_sim_s()
        rows = [run_one(t) for t in order]
    matrix_wall_s = time.perf_counter() - t0
    key = {(t.lesion, t.condition): i for i, t in enumerate(tasks)}
    rows.sort(key=lambda r: key[(r["lesion"], r["condition"])])
    return rows, baseline, matrix_wall_s
