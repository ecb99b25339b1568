"""The PIERCE procedure through the simulated cohort-2021 and the archetypes.

    .venv/bin/python benchmarks/cohort.py [--json] [--figure cohort.png] [--quick] [--jobs N]

Every lesion of cohort-2021 (18) and every archetype (6) is run with the default
profile, in-process on the virtual clock (sim://), under seven conditions: the
base seed, the load cell noise doubled, and five other seeds. Each run's safety
is judged by ``studies.judge`` — the sweep's judge, the only one — from
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
conditions), ``goal_met``, ``rows``, plus ``conditions`` (each with its punctures
noted and true, cohort and archetypes, and its false punctures) and ``cost``.
"""

from __future__ import annotations

import argparse
import json
import os
import sys
from typing import Any

import numpy as np

from studies import cohort

ARTICLE = {"needle_passage": "18/18", "adverse_events": 0}


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
    print()
    print(
        f"{'condition':<22} {'punctures noted/true':>21} {'archetypes':>11} {'false punctures':>16}"
    )
    for c, s in by_cond.items():
        false_runs = ", ".join(s["false_puncture_runs"])
        print(
            f"{c:<22} {s['cohort_punctures_noted']:>14}/{s['cohort_punctures_true']:<6} "
            f"{s['archetype_punctures_noted']:>5}/{s['archetype_punctures_true']:<5} "
            f"{s['false_punctures']:>16}" + (f" ({false_runs})" if false_runs else "")
        )
    print(
        "  noted: punctures the procedure noted, at most the simulator's count per run; false:"
        " noted beyond the truth (a crack while advancing counts as one)"
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

    tasks = cohort.build_tasks(ns.quick, ns.figure is not None)
    rows, baseline, matrix_wall_s = cohort.run_all(tasks, ns.jobs)
    conds = [c for c, _, _ in cohort.conditions(ns.quick)]
    by_cond = cohort.summarise(rows, conds)
    cst = cohort.cost(rows, baseline)
    figure = write_figure(rows, ns.figure) if ns.figure else None
    for r in rows:
        r.pop("_trace", None)
    base = by_cond[conds[0]]
    from firmware_host.procedure import load_profile

    edge = cohort.near_edge(load_profile(None).advance.force_ceiling_n)
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
