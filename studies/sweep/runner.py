"""Run a sweep into a results folder: resume what is there, run the rest on an engine,
write the table (job order), the summary and the figure."""

from __future__ import annotations

import json
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from studies.sweep import engines, report, table
from studies.sweep.spec import Sweep

FIGURE_NAME = "sweep.png"
SUMMARY_NAME = "summary.json"


@dataclass
class SweepResult:
    rows: list[dict[str, Any]]
    resumed: int  # rows found in the folder and kept
    ran: int
    csv_path: Path
    parquet_path: Path
    figure_path: Path | None
    summary: dict[str, Any]


def run_sweep(
    sweep: Sweep,
    out_dir: Path,
    *,
    workers: int = 1,
    dask: str | None = None,
    dask_processes: bool = True,
    fresh: bool = False,
    figure: bool = True,
    on_start: Callable[[int, int], None] | None = None,
    on_row: Callable[[dict[str, Any]], None] | None = None,
    dask_wait_s: float = engines.WORKER_WAIT_S,
    on_wait: Callable[[str], None] | None = None,
) -> SweepResult:
    """``on_start(to_run, total)`` once before the first job, ``on_row(row)`` per finished
    run. Rows already in ``out_dir``'s table for jobs of this sweep are kept (unless
    ``fresh``) and their runs not redone."""
    wanted = {j.run_id for j in sweep.jobs}
    kept = [] if fresh else table.read_rows(out_dir / table.CSV_NAME)
    kept = [r for r in kept if r["run_id"] in wanted]
    done = {r["run_id"]: r for r in kept}
    todo = [j for j in sweep.jobs if j.run_id not in done]
    if on_start is not None:
        on_start(len(todo), len(sweep.jobs))
    journal = table.Journal(out_dir, done.values())

    def finished(row: dict[str, Any]) -> None:
        journal.append(row)
        done[row["run_id"]] = row
        if on_row is not None:
            on_row(row)

    try:
        # Longest lesions first, so the pool's tail is short.
        order = sorted(todo, key=lambda j: -float(j.inputs["length_mm"]))
        if dask is not None:
            engines.run_dask(
                order,
                dask,
                finished,
                processes=dask_processes,
                worker_wait_s=dask_wait_s,
                on_wait=on_wait,
            )
        else:
            engines.run_local(order, workers, finished)
    finally:
        journal.close()
    rows = [done[j.run_id] for j in sweep.jobs]
    csv_path, parquet_path = table.write_table(out_dir, rows)
    summary = report.summarise(rows)
    (out_dir / SUMMARY_NAME).write_text(json.dumps(summary, indent=1) + "\n", encoding="utf-8")
    fig = report.write_figure(rows, out_dir / FIGURE_NAME, sweep.name) if figure else None
    return SweepResult(rows, len(kept), len(todo), csv_path, parquet_path, fig, summary)
