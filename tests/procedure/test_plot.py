"""Plots from run folders written by the real Recorder (synthetic telemetry, no device)."""

from __future__ import annotations

from pathlib import Path

import numpy as np

from firmware_host.plot import Trace, load_run, plot_cohort, plot_run
from firmware_host.recorder import Recorder
from firmware_host.telemetry import TELEMETRY_DTYPE

PNG_MAGIC = b"\x89PNG\r\n\x1a\n"


def _rows(t_s: np.ndarray, force_n: np.ndarray, depth_mm: np.ndarray) -> np.ndarray:
    rows = np.zeros(len(t_s), dtype=TELEMETRY_DTYPE)
    rows["sample_number"] = np.arange(len(t_s))
    rows["host_time_s"] = t_s
    rows["device_time_s"] = t_s
    rows["force_n"] = force_n
    rows["depth_mm"] = depth_mm
    rows["commanded_depth_mm"] = depth_mm
    rows["state"] = 3
    return rows


def _write_run(folder: Path, finished: bool = True) -> None:
    t = np.arange(0.0, 20.0, 0.001)
    depth = np.minimum(t * 2.0, 30.0)
    force = np.where((t > 5) & (t < 9), 8.0, 1.0) + np.random.default_rng(0).normal(0, 0.05, t.size)
    rec = Recorder(
        folder,
        None,
        profile={"name": "pierce", "advance": {"force_ceiling_n": 8.0}},
        extra_meta={"target_depth_mm": 30.0, "start_host_time_s": 0.0},
    )
    rec.write_rows(_rows(t, force, depth))
    # Notes with explicit times, as the procedure writes them through note().
    rec._now_s = lambda: 5.0  # type: ignore[method-assign]
    rec.note("hold_start", depth_mm=10.0, force_n=8.0)
    rec._now_s = lambda: 9.0  # type: ignore[method-assign]
    rec.note("crack", depth_mm=10.0, force_n=5.0)
    rec.note("hold_end", why="crack")
    rec._now_s = lambda: 12.0  # type: ignore[method-assign]
    rec.note("peck", depth_mm=24.0, force_n=1.0)
    if finished:
        rec.close(outcome="crossed", soft_depth_limit_mm=32.0, force_limit_n=15.0)
    else:
        rec.flush()


def test_load_run_reads_signals_notes_and_limits(tmp_path: Path) -> None:
    _write_run(tmp_path / "run")
    trace = load_run(tmp_path / "run")
    assert len(trace.t_s) == 20_000
    assert trace.t_s[0] == 0.0
    assert trace.holds() == [(5.0, 9.0)]
    assert [n["kind"] for n in trace.notes] == ["hold_start", "crack", "hold_end", "peck"]
    assert trace.target_depth_mm == 30.0
    assert trace.soft_depth_limit_mm == 32.0
    assert trace.force_ceiling_n == 8.0
    assert trace.force_limit_n == 15.0
    assert trace.outcome == "crossed"
    assert "pierce" in trace.title


def test_plot_run_writes_a_png(tmp_path: Path) -> None:
    _write_run(tmp_path / "run")
    png = plot_run(tmp_path / "run")
    assert png == tmp_path / "run" / "plot.png"
    data = png.read_bytes()
    assert data.startswith(PNG_MAGIC)
    width, height = int.from_bytes(data[16:20], "big"), int.from_bytes(data[20:24], "big")
    assert width > 1000 and height > 500


def test_a_killed_run_still_plots(tmp_path: Path) -> None:
    _write_run(tmp_path / "run", finished=False)
    with (tmp_path / "run" / "telemetry.csv").open("a") as f:
        f.write("12.5,12.5,3")  # a line cut short by SIGKILL
    trace = load_run(tmp_path / "run")
    assert trace.outcome == "unfinished"
    assert trace.holds() == [(5.0, 9.0)]
    assert plot_run(tmp_path / "run", tmp_path / "x.png").stat().st_size > 10_000


def test_cohort_figure_has_one_panel_per_run(tmp_path: Path) -> None:
    t = np.linspace(0, 10, 500)
    traces = [
        Trace(t, np.sin(t) + i, t * 3, title=f"lesion-{i}", outcome="crossed" if i else "stalled")
        for i in range(5)
    ]
    png = plot_cohort(traces, tmp_path / "cohort.png", columns=3)
    assert png.read_bytes().startswith(PNG_MAGIC)
