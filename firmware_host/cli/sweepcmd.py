"""`sim sweep SWEEP.toml`: every combination of a sweep file, on local cores or Dask."""

from __future__ import annotations

import argparse
import sys
from pathlib import Path
from typing import Any

from firmware_host.cli.command import Command, add_number, int_in
from firmware_host.cli.exits import CliError, Exit
from firmware_host.cli.output import Output


def cmd_sim_sweep(ns: argparse.Namespace, out: Output) -> int:
    from rich.console import Console
    from rich.progress import (
        BarColumn,
        MofNCompleteColumn,
        Progress,
        TextColumn,
        TimeElapsedColumn,
        TimeRemainingColumn,
    )

    from studies.sweep import engines, report
    from studies.sweep.runner import run_sweep
    from studies.sweep.spec import load_sweep

    try:
        sweep = load_sweep(ns.sweep)
    except UnicodeDecodeError as exc:  # the decoder's message names no file
        raise CliError(
            f"{ns.sweep}: not UTF-8 text (byte {exc.object[exc.start]:#04x} at offset"
            f" {exc.start}) — a sweep file is TOML, saved as UTF-8"
        ) from None
    if ns.dask is not None:
        engines.parse_dask_address(ns.dask)  # a bad address: one line before anything runs
    workers = ns.jobs or engines.default_workers()
    out_dir = Path(ns.out) if ns.out else Path(f"{sweep.name}-results")
    engine = f"dask {ns.dask}" if ns.dask else f"{workers} local process(es)"
    err = Console(file=sys.stderr, highlight=False)
    show_bar = err.is_terminal and not out.json_mode
    bar = Progress(
        TextColumn("[bold]sweep"),
        BarColumn(),
        MofNCompleteColumn(),
        TextColumn("crossed {task.fields[crossed]} · violations {task.fields[bad]}"),
        TimeElapsedColumn(),
        TimeRemainingColumn(),
        console=err,
        disable=not show_bar,
    )
    task = bar.add_task("sweep", total=None, crossed=0, bad=0)
    counts = {"crossed": 0, "bad": 0, "done": 0, "total": 0}

    def on_start(to_run: int, total: int) -> None:
        counts["total"] = total
        if not out.json_mode:
            resumed = total - to_run
            err.print(
                f"sweep {sweep.name}: {total} runs on {engine} → {out_dir}"
                + (f" (resuming: {resumed} already in the table)" if resumed else "")
            )
        bar.update(task, total=to_run)

    def on_row(row: dict[str, Any]) -> None:
        counts["done"] += 1
        counts["crossed"] += row["outcome"] == "crossed"
        counts["bad"] += row["violations"] > 0
        bar.update(task, advance=1, crossed=counts["crossed"], bad=counts["bad"])

    csv_path = out_dir / "results.csv"
    made_dir, made_csv = not out_dir.exists(), not csv_path.exists()
    try:
        with bar:
            result = run_sweep(
                sweep,
                out_dir,
                workers=workers,
                dask=ns.dask,
                fresh=ns.fresh,
                figure=not ns.no_figure,
                on_start=on_start,
                on_row=on_row,
                dask_wait_s=ns.dask_wait_s,
                on_wait=lambda text: err.print(f"sweep {sweep.name}: {text}", soft_wrap=True),
            )
    except KeyboardInterrupt:
        raise CliError(
            f"interrupted: {counts['done']} new runs saved in {out_dir / 'results.csv'}; "
            "run the same command again to resume",
            Exit.SIGINT,
        ) from None
    except Exception:
        _leave_no_stray(out_dir, made_dir, csv_path, made_csv)
        raise
    payload = {
        "sweep": sweep.name,
        "runs": len(result.rows),
        "resumed": result.resumed,
        "ran": result.ran,
        "csv": str(result.csv_path),
        "parquet": str(result.parquet_path),
        "figure": None if result.figure_path is None else str(result.figure_path),
        "summary": result.summary,
    }
    if out.json_mode:
        out.emit(payload)
    else:
        for line in report.summary_lines(result.summary):
            out.line(line)
        out.line()
        out.line(
            f"{len(result.rows)} runs ({result.ran} run now, {result.resumed} resumed), "
            f"{result.summary['violations']} safety violations; table: {result.csv_path}, "
            f"{result.parquet_path}"
            + (f"; figure: {result.figure_path}" if result.figure_path else "")
        )
    return Exit.OK if result.summary["violations"] == 0 else Exit.SAFETY_STOP


def _leave_no_stray(out_dir: Path, made_dir: bool, csv_path: Path, made_csv: bool) -> None:
    """A sweep that failed before any run (no Dask scheduler, say) leaves nothing behind:
    a results table of this command's making with no rows, and its folder if empty."""
    try:
        if made_csv and csv_path.is_file():
            with csv_path.open(encoding="utf-8", errors="replace") as f:
                rows = sum(1 for _ in f) - 1  # less the header
            if rows <= 0:
                csv_path.unlink()
        if made_dir and out_dir.is_dir() and not any(out_dir.iterdir()):
            out_dir.rmdir()
    except OSError:
        pass  # the error being reported matters more than the tidying


def _sweep_arguments(p: argparse.ArgumentParser) -> None:
    p.add_argument("sweep", metavar="SWEEP.toml", help="the sweep file (docs/operator.md)")
    p.add_argument("--out", metavar="DIR", help="results folder (default: NAME-results)")
    p.add_argument(
        "--jobs", type=int_in(1, 1024, "--jobs"), help="local processes (default: all cores)"
    )
    p.add_argument(
        "--dask", metavar="ADDRESS", help="run on Dask: tcp://HOST:8786, or local:N workers"
    )
    add_number(
        p,
        "--dask-wait-s",
        1,
        86_400,
        60,
        "with a scheduler that has no worker yet: how long to wait for one (60 s)",
        metavar="S",
    )
    p.add_argument("--fresh", action="store_true", help="ignore the table already in --out")
    p.add_argument("--no-figure", action="store_true", help="skip the figure")


SIM_SWEEP = Command(
    "sweep",
    "run every combination of a sweep file (lesions × seeds × noise × profiles)",
    cmd_sim_sweep,
    _sweep_arguments,
    description="Run every combination of a sweep file as independent seeded in-process"
    " simulations, on local processes or a Dask cluster; write one results table (CSV,"
    " Parquet), a summary and a figure. Runs already in the table are not redone.",
)
