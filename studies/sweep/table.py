"""The results table: one row per run, written as CSV and Parquet, resumable.

While a sweep runs, every finished row is appended to ``results.csv`` at once (and
flushed), so an interrupted sweep loses only the runs in flight. At the end the
table is rewritten in the sweep's job order, as ``results.csv`` and
``results.parquet`` (pyarrow, with the column types below). Run again on the same
folder and the rows already there are kept, their runs not redone; a half-written
last line (the process killed mid-write) is dropped.
"""

from __future__ import annotations

import csv
import math
from collections.abc import Iterable
from pathlib import Path
from typing import Any

import pyarrow as pa
import pyarrow.csv as pacsv
import pyarrow.parquet as pq

CSV_NAME = "results.csv"
PARQUET_NAME = "results.parquet"

# Every column, in order, and its type. Inputs first, then the outcome, then the judge.
COLUMNS: dict[str, type] = {
    "run_id": str,
    "lesion": str,
    "family": str,
    "lesion_params": str,
    "seed": int,
    "noise": float,
    "load_cell": str,
    "drift": float,
    "profile": str,
    "profile_params": str,
    "target_mm": float,
    "length_mm": float,
    "calcium_floor_n": float,
    "calcium_arc_deg": float,
    "calcium_mm": float,
    "outcome": str,
    "reason": str,
    "depth_mm": float,
    "deepest_depth_mm": float,
    "duration_s": float,
    "peak_force_true_n": float,
    "peak_force_measured_n": float,
    "peak_depth_true_mm": float,
    "holds": int,
    "hold_time_s": float,
    "pecks": int,
    "cracks": int,
    "punctures": int,
    "true_cracks": int,
    "true_punctures": int,
    "load_cell_sample_hz": float,
    "escalations": int,
    "final_ceiling_n": float,
    "judge_force_limit_n": float,
    "judge_depth_limit_mm": float,
    "force_over_steps": int,
    "depth_over_steps": int,
    "moved_after_end": bool,
    "puncture_overshoot_mm": float,
    "peak_wind_rev": float,
    "violations": int,
    "safety": str,
}
_ARROW = {str: pa.string(), int: pa.int64(), float: pa.float64(), bool: pa.bool_()}
SCHEMA = pa.schema([(name, _ARROW[t]) for name, t in COLUMNS.items()])


def _parse(kind: type, text: str) -> Any:
    if kind is str:
        return text
    if kind is bool:
        if text not in ("True", "False", "true", "false"):
            raise ValueError(text)
        return text in ("True", "true")
    if kind is int:
        return int(text)
    return float(text) if text != "" else math.nan


def read_rows(path: Path) -> list[dict[str, Any]]:
    """The complete rows of a results CSV (a torn or foreign line is dropped)."""
    if not path.is_file():
        return []
    rows = []
    with path.open(newline="", encoding="utf-8") as f:
        reader = csv.DictReader(f)
        if reader.fieldnames is None or list(reader.fieldnames) != list(COLUMNS):
            return []
        for raw in reader:
            try:
                rows.append({k: _parse(t, raw[k]) for k, t in COLUMNS.items()})
            except (TypeError, ValueError):
                continue  # a torn last line: that run is redone
    return rows


class Journal:
    """``results.csv`` opened for appending finished rows one by one."""

    def __init__(self, folder: Path, keep: Iterable[dict[str, Any]]) -> None:
        folder.mkdir(parents=True, exist_ok=True)
        self.path = folder / CSV_NAME
        # Rewrite what is kept (drops a torn line), then append.
        self._file = self.path.open("w", newline="", encoding="utf-8")
        self._writer = csv.DictWriter(self._file, fieldnames=list(COLUMNS))
        self._writer.writeheader()
        for row in keep:
            self._writer.writerow(row)
        self._file.flush()

    def append(self, row: dict[str, Any]) -> None:
        self._writer.writerow({k: row[k] for k in COLUMNS})
        self._file.flush()

    def close(self) -> None:
        self._file.close()


def to_arrow(rows: list[dict[str, Any]]) -> pa.Table:
    return pa.Table.from_pylist([{k: r[k] for k in COLUMNS} for r in rows], schema=SCHEMA)


def write_table(folder: Path, rows: list[dict[str, Any]]) -> tuple[Path, Path]:
    """The final table (rows in job order) as CSV and Parquet."""
    table = to_arrow(rows)
    csv_path, parquet_path = folder / CSV_NAME, folder / PARQUET_NAME
    pacsv.write_csv(table, csv_path)
    pq.write_table(table, parquet_path)
    return csv_path, parquet_path


def read_table(path: Path) -> pa.Table:
    """A results table from its Parquet file."""
    return pq.read_table(path)
