"""Sweep throughput: runs per second on 1 and 2 local processes and on a 2-worker Dask
LocalCluster, in one run, and the cost of a 10⁴-run sweep.

    .venv/bin/python benchmarks/sweep.py [--sweep sweeps/example.toml] [--json]

The same jobs (the example sweep's 40 runs by default) run three times: in this
process (the baseline: one core, no pool, no pickling), on a pool of 2 local
processes, and on a Dask LocalCluster of 2 single-threaded worker processes. Each
time is wall-clock from the first job submitted to the last row back, start-up of
the pool or the cluster included. Printed: runs/s, the ratio to the single process,
and the floor it cannot beat — 2 workers can at best halve the wall time (ratio 2.0),
and the longest run bounds it too. The three tables must be identical (checked).

The 10⁴-run extrapolation uses the CPU time per run measured in the single-process
pass (this process's CPU time, so other load on the machine does not inflate it):
core-hours for 10⁴ runs of the same mix, and the wall time on 1, 2, 8 and 64 cores
at perfect scaling, and at the 2-process efficiency measured here. The machine's load
average is printed with every figure: on a shared machine a 2-worker engine gets less
than 2 idle cores.
"""

from __future__ import annotations

import argparse
import json
import os
import sys
import time
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parents[1]
RUNS_10K = 10_000


def timed(fn: Any) -> tuple[list[dict[str, Any]], float, float]:
    """(rows, wall s, the machine's 1-minute load average at the end)."""
    rows: list[dict[str, Any]] = []
    t0 = time.perf_counter()
    fn(rows.append)
    return rows, time.perf_counter() - t0, os.getloadavg()[0]


def main(argv: list[str] | None = None) -> int:
    from studies.sweep import engines, table
    from studies.sweep.job import run_job
    from studies.sweep.spec import load_sweep

    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--sweep", default=str(ROOT / "sweeps" / "example.toml"))
    ap.add_argument("--json", action="store_true")
    ns = ap.parse_args(argv)
    jobs = load_sweep(ns.sweep).jobs
    order = sorted(jobs, key=lambda j: -float(j.inputs["length_mm"]))
    n = len(jobs)

    # 1 process, in this process: CPU time per run too.
    cpu0 = time.process_time()
    load0 = os.getloadavg()[0]
    one, wall_1, load_1 = timed(lambda on_row: [on_row(run_job(j)) for j in order])
    cpu_per_run_s = (time.process_time() - cpu0) / n
    two, wall_2, load_2 = timed(lambda on_row: engines.run_local(order, 2, on_row))
    dsk, wall_d, load_d = timed(lambda on_row: engines.run_dask(order, "local:2", on_row))

    def tab(rows: list[dict[str, Any]]) -> Any:
        by_id = {r["run_id"]: r for r in rows}
        return table.to_arrow([by_id[j.run_id] for j in jobs])

    same = tab(one).equals(tab(two)) and tab(one).equals(tab(dsk))
    differences = [
        f"{engine}: {r['lesion']} {r['profile']} seed {r['seed']} noise {r['noise']}: "
        + ", ".join(f"{c} {r[c]!r} vs {o[c]!r}" for c in r if r[c] != o[c])
        for engine, rows in (("2 processes", two), ("dask", dsk))
        for o in rows
        for r in one
        if r["run_id"] == o["run_id"] and r != o
    ]
    sim_s = sum(r["duration_s"] for r in one)
    eff_2 = wall_1 / wall_2 / 2.0
    core_h = cpu_per_run_s * RUNS_10K / 3600.0
    result = {
        "runs": n,
        "cores": engines.default_workers(),
        "load_avg_before": load0,
        "simulated_s_total": round(sim_s, 1),
        "engines": {
            "1 process": {
                "wall_s": wall_1,
                "runs_per_s": n / wall_1,
                "ratio": 1.0,
                "load_avg": load_1,
            },
            "2 processes": {
                "wall_s": wall_2,
                "runs_per_s": n / wall_2,
                "ratio": wall_1 / wall_2,
                "load_avg": load_2,
            },
            "dask LocalCluster 2 workers": {
                "wall_s": wall_d,
                "runs_per_s": n / wall_d,
                "ratio": wall_1 / wall_d,
                "load_avg": load_d,
            },
        },
        "ratio_floor_2_workers": 2.0,
        "tables_identical": same,
        "differences": differences,
        "cpu_per_run_s": cpu_per_run_s,
        "cpu_per_simulated_s_ms": 1000.0 * cpu_per_run_s * n / sim_s,
        "runs_10k": {
            "core_hours": core_h,
            "wall_h_perfect": {c: core_h / c for c in (1, 2, 8, 64)},
            "wall_h_at_measured_2_process_efficiency": {
                c: core_h / (c * eff_2) for c in (2, 8, 64)
            },
        },
    }
    if ns.json:
        print(json.dumps(result))
        return 0 if same else 1
    print(
        f"{n} runs of {Path(ns.sweep).name} ({sim_s:.0f} s simulated in all) on "
        f"{result['cores']} cores, load average before {load0:.1f} (other work on the "
        "machine slows the parallel engines most), wall time:"
    )
    for name, e in result["engines"].items():
        print(
            f"  {name:<30} {e['wall_s']:6.1f} s  {e['runs_per_s']:5.2f} runs/s  "
            f"x{e['ratio']:.2f} vs 1 process  (load average after: {e['load_avg']:.1f})"
        )
    print(
        "  floor: 2 workers can at best halve the wall time (x2.00); start-up of the pool"
        " and the cluster is included above"
    )
    print(f"  tables identical across the three engines: {same}")
    for line in differences:
        print(f"    differs: {line}")
    print(
        f"CPU per run {cpu_per_run_s:.2f} s ({result['cpu_per_simulated_s_ms']:.1f} ms per"
        f" simulated s); 10^4 runs of this mix = {core_h:.1f} core-hours:"
    )
    print(
        "  at perfect scaling "
        + ", ".join(
            f"{c} cores {h * 60:.0f} min" for c, h in result["runs_10k"]["wall_h_perfect"].items()
        )
    )
    print(
        f"  at the measured 2-process efficiency ({eff_2 * 100:.0f} %) "
        + ", ".join(
            f"{c} cores {h * 60:.0f} min"
            for c, h in result["runs_10k"]["wall_h_at_measured_2_process_efficiency"].items()
        )
    )
    return 0 if same else 1


if __name__ == "__main__":
    sys.exit(main())
