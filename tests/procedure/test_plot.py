"""Plots from run folders written by the real Recorder (synthetic telemetry, no device)."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest

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


def test_a_crack_is_marked_on_the_raw_trace_at_the_drop_not_after_it(tmp_path: Path) -> None:
    """The procedure notes a drop when its filtered force has fallen (here 40 ms after
    the raw peak): the mark goes on the raw trace at the peak before the note."""
    t = np.arange(0.0, 2.0, 0.001)
    force = np.where(t < 1.0, 8.0 * t, 1.0)  # rises to ~8 N, falls at 1.0 s
    trace = Trace(t, force, t, notes=[{"kind": "crack", "t_s": 1.04, "force_n": 5.0}])
    ((kind, x, y_f, _),) = trace.marks()
    assert kind == "crack"
    assert x == pytest.approx(0.999, abs=0.002) and y_f == pytest.approx(8.0, abs=0.02)


def test_the_plot_carries_the_runs_figures_and_where_the_rig_stopped(tmp_path: Path) -> None:
    folder = tmp_path / "run"
    t = np.arange(0.0, 10.0, 0.001)
    rec = Recorder(folder, None, extra_meta={"start_host_time_s": 0.0})
    rec.meta["simulation"] = {"lesion": "dense-calcified-cto", "seed": 3}
    rec.write_rows(_rows(t, np.ones_like(t), t))
    rec._now_s = lambda: 7.5  # type: ignore[method-assign]
    rec.note("stopped", depth_mm=7.5)
    rec.close(
        outcome="aborted",
        reason="aborted by the operator",
        peak_force_n=9.25,
        holds=2,
        cracks=3,
        punctures=1,
        duration_s=7.5,
    )
    trace = load_run(folder)
    for text in ("lesion dense-calcified-cto", "SIMULATED", "aborted: aborted by the operator"):
        assert text in trace.caption, trace.caption
    for text in ("peak force 9.25 N", "holds 2", "cracks 3", "punctures 1", "duration 7.5 s"):
        assert text in trace.caption, trace.caption
    assert ("stopped", 7.5) in [(k, x) for k, x, _, _ in trace.marks()]
    assert plot_run(folder).stat().st_size > 10_000
