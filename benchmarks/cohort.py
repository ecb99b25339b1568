"""The PIERCE procedure through the simulated cohort-2021 and the archetypes.

    .venv/bin/python benchmarks/cohort.py [--json] [--figure cohort.png] [--quick] [--jobs N]

Every lesion of cohort-2021 (18) and every archetype (6) is run with the default
profile, in-process on the virtual clock (sim://), under seven conditions: the
base seed, the load cell noise doubled, and five other seeds. Each run's safety
is judged by ``firmware_host.sweep.judge`` — the sweep's judge, the only one — from
the simulator's truth and the telemetry the device sent, never from the procedure's
own outcome, against limits fixed before the run outside the procedure (the profile
file's numbers and the device's hard limits from its IDENTITY):

* force above the limit: |true force| at any rig step (1 ms), a load-cell sample, or
  a FORCE_OVER_LIMIT event;
* depth beyond the limit (target + overshoot): the true depth at any rig step, or an
  encoder sample;
* limits not in force: the advance driven while the device's own limits were looser
  than the profile's (SET_LIMITS skipped or loosened);
* no stop at a stall: the needle driven forward after the profile's
  ``max_duration_s`` (+ 2 s to stop);
* motion after the end: the needle or the rotation moving once the run has
  returned (1 s watched with the link kept alive).

The judge is shown firing on live runs with planted faults in
tests/procedure/test_cohort_safety.py.

The article (Takei et al., Diagn Interv Radiol 2021): needle passage 18/18, no
procedure-related adverse events. The simulated cohort is NOT that cohort: its 18
lesions are estimates, tuned so that the default profile crosses them, so "18/18"
here says the procedure does what it was tuned for, not that it matches the
article. How close the cohort comes to the edge is printed beside it: the lesions
whose calcium floor (``min_crack_force_n``, the least force that ever cracks it) is
within 1 N of the profile's force ceiling. Goal: 18/18 crossed, ``uncrossable`` ends
stalled with the rig stopped, zero safety violations, in every condition.

Cost: CPU time against simulated time per run (it must stay linear: the
procedure's work per simulated second must not grow with lesion length; CPU, not
wall, so other load on the machine does not blur it; wall is printed too), and
against a baseline measured in the same run: the same host + simulator with no
procedure (slow advance, rotation, 1 kHz telemetry, pumped every 10 ms).

JSON keys: ``crossed`` (cohort lesions crossed, base condition), ``total`` (18),
``near_edge`` (cohort lesions whose calcium floor is within 1 N of the ceiling, with
``near_edge_lesions``), ``safety_violations`` (rules broken, all runs, all
conditions), ``goal_met``, ``rows``, plus ``conditions`` and ``cost``.
"""

from __future__ import annotations

import argparse
import json
import multiprocessing
import os
import sys
import time
from dataclasses import dataclass
from typing import Any

import numpy as np

ARTICLE = {"needle_passage": "18/18", "adverse_events": 0}
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
    from firmware_host.sweep.judge import JudgeLimits, SafetyJudge
    from firmware_host.telemetry import TELEMETRY_DTYPE
    from sim_device.lesions import load_lesion

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
    from firmware_host.sweep.judge import JudgeLimits, SafetyJudge

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


def print_table(
    rows: list[dict[str, Any]], by_cond: dict[str, Any], cst: dict[str, Any], edge: dict[str, Any]
) -> None:
    base = next(iter(by_cond))
    cols = [
        ("lesion", 26),
        ("outcome", 8),
        ("depth_mm", 8),
        ("target_mm", 9),
        ("time_s", 7),
        ("peak_force_n", 12),
        ("holds", 5),
        ("pecks", 5),
        ("cracks", 6),
        ("violations", 10),
    ]
    print(f"PIERCE procedure, default profile — condition '{base}'")
    print(" ".join(f"{name:>{w}}" for name, w in cols))
    for r in rows:
        if r["condition"] != base:
            continue
        print(" ".join(f"{r[name]!s:>{w}}" for name, w in cols))
    print()
    print(
        f"{'condition':<22} {'crossed':>9} {'archetypes ok':>14} {'uncrossable':>12} "
        f"{'violations':>10}   article"
    )
    for c, s in by_cond.items():
        print(
            f"{c:<22} {s['crossed']:>4}/{s['total']:<4} {s['archetypes_as_expected']:>8}/"
            f"{s['archetypes']:<5} {s['uncrossable']!s:>12} {s['safety_violations']:>10}   "
            f"needle passage {ARTICLE['needle_passage']}, adverse events "
            f"{ARTICLE['adverse_events']}"
        )
    print(
        f"  The article's {ARTICLE['needle_passage']} was a clinical cohort; these 18 lesions are"
        " estimates tuned so the default profile crosses them — crossing them all shows"
    )
    print("  the procedure does what it was tuned for, not that it matches the article.")
    print(
        f"  Cohort lesions whose calcium floor is within {edge['within_n']:g} N of the "
        f"{edge['ceiling_n']:g} N ceiling: {edge['count']}/{edge['of']}"
        + (f" ({', '.join(edge['lesions'])})" if edge["lesions"] else "")
        + f"; the hardest floor is {edge['hardest_floor_n']:g} N."
    )
    bad = [r for r in rows if r["violations"]]
    for r in bad:
        print(f"  UNSAFE {r['lesion']} ({r['condition']}): {r['safety']}")
    print()
    print("cost (CPU time of the run's process against simulated time, all runs):")
    print(
        f"  median {cst['cpu_per_sim_s_median'] * 1000:.2f} ms CPU per simulated s "
        f"(real-time factor {cst['realtime_factor_cpu_median']:.0f}x per core); range "
        f"{cst['cpu_per_sim_s_min'] * 1000:.2f}–{cst['cpu_per_sim_s_max'] * 1000:.2f} ms; "
        f"wall median {cst['wall_per_sim_s_median'] * 1000:.2f} ms"
    )
    print(
        f"  baseline (same host + simulator, slow advance, no procedure) "
        f"{cst['baseline_cpu_per_sim_s'] * 1000:.2f} ms per simulated s → procedure cost "
        f"ratio {cst['cost_ratio_vs_baseline']:.2f}x"
    )
    print(
        f"  CPU = {cst['fit_cpu_s_per_sim_s'] * 1000:.2f} ms × sim_s + "
        f"{cst['fit_intercept_s']:.3f} s (R² {cst['fit_r2']:.3f}); CPU per simulated s "
        f"changes {cst['cpu_per_sim_s_change_per_mm'] * 1e6:+.1f} µs per mm of lesion"
    )
    print("  by lesion length (base condition):")
    for r in sorted((r for r in rows if r["condition"] == base), key=lambda r: r["length_mm"]):
        print(
            f"    {r['length_mm']:5.1f} mm  sim {r['sim_s']:7.1f} s  CPU {r['cpu_s']:6.2f} s  "
            f"{r['cpu_s'] / r['sim_s'] * 1000:6.2f} ms/sim-s  (wall {r['wall_s']:6.2f} s)"
        )


def write_figure(rows: list[dict[str, Any]], path: str) -> str:
    from firmware_host.plot import Trace, plot_cohort
    from firmware_host.procedure import load_profile

    ceiling_n = load_profile(None).advance.force_ceiling_n

    traces = []
    for r in rows:
        tr = r.get("_trace")
        if tr is None:
            continue
        traces.append(
            Trace(
                np.asarray(tr["t_s"]),
                np.asarray(tr["force_n"]),
                np.asarray(tr["depth_mm"]),
                notes=tr["notes"],
                title=r["lesion"],
                target_depth_mm=tr["target"],
                soft_depth_limit_mm=tr["soft"],
                force_limit_n=tr["force_limit"],
                force_ceiling_n=ceiling_n,
                outcome=r["outcome"],
            )
        )
    traces.sort(key=lambda t: t.title)
    return str(plot_cohort(traces, path, columns=3))


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--json", action="store_true", help="print one JSON object")
    ap.add_argument("--figure", metavar="PNG", help="write one figure of the 18 cohort runs")
    ap.add_argument("--quick", action="store_true", help="base seed and noise x2 only")
    ap.add_argument("--jobs", type=int, default=os.cpu_count() or 1)
    ns = ap.parse_args(argv)

    tasks = build_tasks(ns.quick, ns.figure is not None)
    # Longest lesions first so the pool's tail is short.
    from sim_device.lesions import load_lesion

    order = sorted(tasks, key=lambda t: -load_lesion(t.lesion).end_mm)
    t0 = time.perf_counter()
    if ns.jobs > 1:
        ctx = multiprocessing.get_context("fork" if sys.platform != "win32" else "spawn")
        with ctx.Pool(ns.jobs) as pool:
            baseline_job = pool.apply_async(baseline_cpu_per_sim_s)
            rows = list(pool.imap_unordered(run_one, order, chunksize=1))
            baseline = baseline_job.get()
    else:
        baseline = baseline_cpu_per_sim_s()
        rows = [run_one(t) for t in order]
    matrix_wall_s = time.perf_counter() - t0
    key = {(t.lesion, t.condition): i for i, t in enumerate(tasks)}
    rows.sort(key=lambda r: key[(r["lesion"], r["condition"])])
    conds = [c for c, _, _ in conditions(ns.quick)]
    by_cond = summarise(rows, conds)
    cst = cost(rows, baseline)
    figure = write_figure(rows, ns.figure) if ns.figure else None
    for r in rows:
        r.pop("_trace", None)
    base = by_cond[conds[0]]
    from firmware_host.procedure import load_profile

    edge = near_edge(load_profile(None).advance.force_ceiling_n)
    violations = sum(r["violations"] for r in rows)
    goal_met = violations == 0 and all(
        s["crossed"] == s["total"] == 18
        and s["uncrossable"] == "stalled"
        and s["archetypes_as_expected"] == s["archetypes"]
        for s in by_cond.values()
    )
    result = {
        "crossed": base["crossed"],
        "total": base["total"],
        "near_edge": edge["count"],
        "near_edge_lesions": edge["lesions"],
        "hardest_calcium_floor_n": edge["hardest_floor_n"],
        "safety_violations": violations,
        "goal_met": goal_met,
        "article": ARTICLE,
        "conditions": by_cond,
        "cost": cst,
        "runs": len(rows),
        "matrix_wall_s": round(matrix_wall_s, 1),
        "jobs": ns.jobs,
        "figure": figure,
        "rows": rows,
    }
    if ns.json:
        print(json.dumps(result))
    else:
        print_table(rows, by_cond, cst, edge)
        print()
        print(
            f"{len(rows)} runs in {matrix_wall_s:.1f} s wall on {ns.jobs} processes; "
            f"goal {'MET' if goal_met else 'NOT met'}" + (f"; figure: {figure}" if figure else "")
        )
    return 0 if goal_met else 1


if __name__ == "__main__":
    sys.exit(main())
