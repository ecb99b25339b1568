"""Pictures of PIERCE runs (matplotlib, Agg backend: no display needed).

``plot_run(run_dir, out_png)`` draws one recorded run: force and depth against
time (holds shaded, pecks, cracks, punctures and stalls marked, where the rig was
stopped marked, the ceiling, the force limit, the target and the soft depth limit
drawn), force against depth beside it, and the run's figures under the title (port or
lesion, SIMULATED, outcome and why, peak force, holds, cracks, duration).
``plot_cohort(traces, out_png)`` draws many runs in one figure (the cohort benchmark's
picture). Both take a ``Trace``; ``load_run`` makes one from
a run folder (docs/recording.md), and ``Trace.from_rows`` from telemetry rows
held in memory.
"""

from __future__ import annotations

import json
import math
from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
import numpy.typing as npt

Floats = npt.NDArray[np.float64]

# Marker style per procedure note kind: (marker, colour, label).
_MARKS: dict[str, tuple[str, str, str]] = {
    "peck": ("v", "tab:purple", "peck"),
    "crack": ("x", "tab:green", "crack"),
    "puncture": ("o", "tab:olive", "puncture"),
    "stall": ("X", "tab:red", "stall"),
    "escalate": ("^", "tab:brown", "escalation"),
}


# Drops of the force (the procedure notes them on its filtered force, up to ~50 ms after
# the fall): marked on the raw trace at the peak just before the note.
_DROP_KINDS = frozenset({"crack", "puncture"})
_DROP_LOOKBACK_S = 0.15
# Where the run ended with the rig stopped: (marker, colour, label).
_STOP_MARK = ("s", "black", "rig stopped")

# Device events drawn as red dotted lines (the routine ones — HOMED, TARGET_REACHED —
# are left out).
_DEVICE_ALARMS = frozenset(
    {"STALL", "FORCE_OVER_LIMIT", "LIMIT_REACHED", "WATCHDOG_TRIP", "ESTOP", "FAULT"}
)


class RunFolderError(ValueError):
    """A run folder that cannot be drawn (no samples, a damaged file): one line."""


@dataclass
class Trace:
    """One run's signals and notes, on one time axis (seconds from the run's start)."""

    t_s: Floats
    force_n: Floats
    depth_mm: Floats
    notes: list[dict[str, Any]] = field(default_factory=list)  # each has t_s and kind
    title: str = ""
    target_depth_mm: float | None = None
    soft_depth_limit_mm: float | None = None
    force_ceiling_n: float | None = None
    force_limit_n: float | None = None
    outcome: str = ""
    # The run's figures, one short line under the title (empty for a bare trace).
    caption: str = ""

    @classmethod
    def from_rows(cls, rows: Any, t0_s: float | None = None, **kw: Any) -> Trace:
        """From telemetry rows (firmware_host.telemetry.TELEMETRY_DTYPE or alike)."""
        t = np.asarray(rows["host_time_s"], dtype=np.float64)
        start = float(t[0]) if t0_s is None and len(t) else (t0_s or 0.0)
        return cls(
            t_s=t - start,
            force_n=np.asarray(rows["force_n"], dtype=np.float64),
            depth_mm=np.asarray(rows["depth_mm"], dtype=np.float64),
            **kw,
        )

    def ceiling_steps(self) -> tuple[list[float], list[float]]:
        """The ceiling in force over time: (times, levels) for a post-step line, from
        the profile's ceiling and every ``escalate`` note's ``force_ceiling_n``."""
        start = float(self.t_s[0]) if len(self.t_s) else 0.0
        end = float(self.t_s[-1]) if len(self.t_s) else 0.0
        level = self.force_ceiling_n if self.force_ceiling_n is not None else math.nan
        xs, ys = [start], [level]
        for n in self.notes:
            if n["kind"] == "escalate" and "force_ceiling_n" in n:
                xs.append(float(n["t_s"]))
                ys.append(float(n["force_ceiling_n"]))
        xs.append(max(end, xs[-1]))
        ys.append(ys[-1])
        return xs, ys

    def drop_point(self, t_s: float) -> tuple[float, float]:
        """Where a noted force drop happened on the raw trace: the highest raw sample in
        the short window before the note (the note comes when the filtered force has
        fallen, after the fact)."""
        if not len(self.t_s):
            return t_s, math.nan
        lo = int(np.searchsorted(self.t_s, t_s - _DROP_LOOKBACK_S, side="left"))
        hi = int(np.searchsorted(self.t_s, t_s, side="right"))
        if hi <= lo:
            i = min(max(hi - 1, 0), len(self.t_s) - 1)
        else:
            i = lo + int(np.argmax(self.force_n[lo:hi]))
        return float(self.t_s[i]), float(self.force_n[i])

    def marks(self) -> list[tuple[str, float, float, float]]:
        """What the plot marks: (kind, t_s, force_n, depth_mm) for every peck, crack,
        puncture, stall, escalation, and where the rig was stopped when the run did not
        cross (aborted, stalled, fault)."""
        out: list[tuple[str, float, float, float]] = []
        for n in self.notes:
            kind = n["kind"]
            x = float(n["t_s"])
            if kind in _DROP_KINDS:
                x, y_f = self.drop_point(x)
            elif kind == "stopped" and self.outcome == "crossed":
                continue  # a run that crossed stops at its target: nothing to point out
            elif kind in _MARKS or kind == "stopped":
                y_f = float(n.get("force_n", self._at(x, self.force_n)))
            else:
                continue
            y_d = float(n.get("depth_mm", self._at(x, self.depth_mm)))
            out.append((kind, x, y_f, y_d))
        return out

    def _at(self, x: float, values: Floats) -> float:
        return float(np.interp(x, self.t_s, values)) if len(self.t_s) else 0.0

    def holds(self) -> list[tuple[float, float]]:
        """(start, end) of every hold; a hold still open at the end closes there."""
        spans: list[tuple[float, float]] = []
        start: float | None = None
        for n in self.notes:
            if n["kind"] == "hold_start":
                start = float(n["t_s"])
            elif n["kind"] == "hold_end" and start is not None:
                spans.append((start, float(n["t_s"])))
                start = None
        if start is not None and len(self.t_s):
            spans.append((start, float(self.t_s[-1])))
        return spans


def load_run(run_dir: str | Path) -> Trace:
    """Read a run folder written by firmware_host.recorder (docs/recording.md).

    Works on a folder whose run was killed (no end in meta.json, a last line cut
    short): whatever was recorded is drawn."""
    from firmware_host import recorder  # lazy: plotting a folder needs no link code

    folder = Path(run_dir)
    try:
        rows = recorder.read_telemetry(folder)
    except (UnicodeDecodeError, ValueError) as exc:
        raise RunFolderError(f"{folder}: {recorder.TELEMETRY_FILE} is damaged ({exc})") from None
    if not len(rows):
        raise RunFolderError(
            f"{folder}: {recorder.TELEMETRY_FILE} holds no samples (the run recorded nothing)"
        )
    meta_file = folder / recorder.META_FILE
    meta: dict[str, Any] = {}
    if meta_file.exists():
        try:
            meta = _dict(json.loads(meta_file.read_text(encoding="utf-8")))
        except (UnicodeDecodeError, json.JSONDecodeError) as exc:
            raise RunFolderError(f"{meta_file} is damaged: not JSON ({exc})") from None
    first_t = float(rows["host_time_s"][0]) if len(rows) else 0.0
    t0 = float(meta.get("start_host_time_s", first_t))
    notes: list[dict[str, Any]] = []
    for e in recorder.read_events(folder):
        t = e.get("host_time_s")
        if not isinstance(t, int | float):
            continue
        if e.get("source") == "device":
            kind = f"device:{e.get('code', '?')}"
        else:
            kind = str(e.get("kind", "?"))
        notes.append({**e, "kind": kind, "t_s": float(t) - t0})
    notes.sort(key=lambda n: n["t_s"])
    summary = _dict(meta.get("summary"))
    profile = _dict(meta.get("profile"))
    title = str(meta.get("title") or folder.name)
    if profile.get("name"):
        title += f" ({profile['name']})"
    outcome = str(summary.get("outcome", "" if summary else "unfinished"))
    return Trace.from_rows(
        rows,
        t0_s=t0,
        notes=notes,
        title=title,
        target_depth_mm=_num(summary, "target_depth_mm") or _num(meta, "target_depth_mm"),
        soft_depth_limit_mm=_num(summary, "soft_depth_limit_mm"),
        force_ceiling_n=_num(_dict(profile.get("advance")), "force_ceiling_n"),
        force_limit_n=_num(summary, "force_limit_n")
        or _num(_dict(profile.get("limits")), "force_limit_n"),
        outcome=outcome,
        caption=_caption(meta, summary, outcome),
    )


def _caption(meta: dict[str, Any], summary: dict[str, Any], outcome: str) -> str:
    """The run's figures for the plot: where it ran, why it ended, what it took."""
    from firmware_host.simulation import simulated_label

    simulation = meta.get("simulation")
    where = str(meta.get("port") or "")
    if isinstance(simulation, dict) and simulation.get("lesion"):
        where = f"lesion {simulation['lesion']}"
    parts = [where] if where else []
    label = simulated_label(simulation if isinstance(simulation, dict) else None)
    if label:
        parts.append("SIMULATED" if simulation and simulation.get("lesion") else label)
    if outcome:
        reason = summary.get("reason")
        parts.append(f"{outcome}: {reason}" if reason else outcome)
    figures = [
        ("peak force", "peak_force_n", "{:.2f} N"),
        ("holds", "holds", "{}"),
        ("cracks", "cracks", "{}"),
        ("punctures", "punctures", "{}"),
        ("pecks", "pecks", "{}"),
        ("duration", "duration_s", "{:.1f} s"),
    ]
    for name, key, fmt in figures:
        v = summary.get(key)
        if isinstance(v, int | float) and not isinstance(v, bool):
            parts.append(f"{name} {fmt.format(v)}")
    return " · ".join(parts)


def _dict(value: Any) -> dict[str, Any]:
    return value if isinstance(value, dict) else {}


def _num(d: dict[str, Any], key: str) -> float | None:
    v = d.get(key)
    return float(v) if isinstance(v, int | float) and not isinstance(v, bool) else None


def _figure(width_in: float, height_in: float) -> Any:
    # Agg, explicitly: no display, no global pyplot state (safe from threads and tests).
    from matplotlib.backends.backend_agg import FigureCanvasAgg
    from matplotlib.figure import Figure

    fig = Figure(figsize=(width_in, height_in), dpi=110, layout="constrained")
    FigureCanvasAgg(fig)
    return fig


def _decimate(trace: Trace, max_points: int = 6000) -> tuple[Floats, Floats, Floats]:
    """Every n-th sample plus each window's max force, so peaks survive thinning."""
    n = len(trace.t_s)
    if n <= max_points:
        return trace.t_s, trace.force_n, trace.depth_mm
    step = math.ceil(n / max_points)
    m = n // step * step
    f = trace.force_n[:m].reshape(-1, step).max(axis=1)
    return trace.t_s[:m:step], f, trace.depth_mm[:m:step]


def _time_axes(ax_f: Any, ax_d: Any, trace: Trace, *, legend: bool = True) -> None:
    t, f, d = _decimate(trace)
    for a, b in trace.holds():
        for ax in (ax_f, ax_d):
            ax.axvspan(a, b, color="tab:orange", alpha=0.18, lw=0)
    ax_f.plot(t, f, color="tab:blue", lw=0.6, label="force")
    if trace.force_ceiling_n is not None:
        # The ceiling in force: a step up at every escalation note. It acts on the
        # filtered force (the profile's force_filter_s), checked every control period, and
        # the advance brakes after: the raw force held at a hold sits a little above it.
        xs, ys = trace.ceiling_steps()
        ax_f.step(
            xs, ys, where="post", color="tab:orange", ls="--", lw=1,
            label="ceiling (on the filtered force)",
        )  # fmt: skip
    if trace.force_limit_n is not None:
        ax_f.axhline(trace.force_limit_n, color="tab:red", ls=":", lw=1, label="force limit")
    ax_d.plot(t, d, color="black", lw=0.9, label="depth")
    if trace.target_depth_mm is not None:
        ax_d.axhline(trace.target_depth_mm, color="tab:green", ls="--", lw=1, label="target")
    if trace.soft_depth_limit_mm is not None:
        ax_d.axhline(trace.soft_depth_limit_mm, color="tab:red", ls=":", lw=1, label="soft limit")
    seen: set[str] = set()
    for kind, x, y_f, y_d in trace.marks():
        marker, colour, label = _MARKS.get(kind, _STOP_MARK)
        lab = label if label not in seen else None
        seen.add(label)
        ax_f.plot([x], [y_f], marker=marker, color=colour, ms=7, ls="none", label=lab)
        ax_d.plot([x], [y_d], marker=marker, color=colour, ms=7, ls="none")
    for n in trace.notes:
        code = n["kind"].removeprefix("device:")
        if n["kind"].startswith("device:") and code in _DEVICE_ALARMS:
            x = float(n["t_s"])
            lab = f"device {code}" if code not in seen else None
            seen.add(code)
            for ax in (ax_f, ax_d):
                ax.axvline(x, color="tab:red", ls=":", lw=1.2, label=lab if ax is ax_f else None)
    if trace.holds():
        ax_f.axvspan(0, 0, color="tab:orange", alpha=0.18, lw=0, label="hold")
    ax_f.set_ylabel("force (N)")
    ax_d.set_ylabel("depth (mm)")
    ax_d.set_xlabel("time (s)")
    ax_f.grid(alpha=0.3)
    ax_d.grid(alpha=0.3)
    if legend:
        ax_f.legend(loc="upper left", fontsize=7, ncol=3, framealpha=0.8)
        ax_d.legend(loc="lower right", fontsize=7, framealpha=0.8)


def plot_trace(trace: Trace, out_png: str | Path) -> Path:
    """One run: force and depth against time (left), force against depth (right)."""
    fig = _figure(12.0, 6.0)
    grid = fig.add_gridspec(2, 2, width_ratios=(2.2, 1.0))
    ax_f = fig.add_subplot(grid[0, 0])
    ax_d = fig.add_subplot(grid[1, 0], sharex=ax_f)
    ax_fd = fig.add_subplot(grid[:, 1])
    _time_axes(ax_f, ax_d, trace)
    t, f, d = _decimate(trace)
    sc = ax_fd.scatter(d, f, c=t, s=1.5, cmap="viridis", rasterized=True)
    fig.colorbar(sc, ax=ax_fd, label="time (s)", shrink=0.8)
    if trace.force_ceiling_n is not None:
        for level_n in sorted(set(trace.ceiling_steps()[1])):
            ax_fd.axhline(level_n, color="tab:orange", ls="--", lw=1)
    if trace.force_limit_n is not None:
        ax_fd.axhline(trace.force_limit_n, color="tab:red", ls=":", lw=1)
    if trace.target_depth_mm is not None:
        ax_fd.axvline(trace.target_depth_mm, color="tab:green", ls="--", lw=1)
    ax_fd.set_xlabel("depth (mm)")
    ax_fd.set_ylabel("force (N)")
    ax_fd.set_title("force against depth", fontsize=10)
    ax_fd.grid(alpha=0.3)
    title = trace.title + (f" — {trace.outcome}" if trace.outcome else "")
    if trace.caption:
        title += "\n" + trace.caption
    fig.suptitle(title, fontsize=11)
    out = Path(out_png)
    out.parent.mkdir(parents=True, exist_ok=True)
    fig.savefig(out)
    return out


def plot_run(run_dir: str | Path, out_png: str | Path | None = None) -> Path:
    """Picture of a recorded run folder; by default ``<run_dir>/plot.png``."""
    out = Path(out_png) if out_png is not None else Path(run_dir) / "plot.png"
    return plot_trace(load_run(run_dir), out)


def plot_cohort(traces: Sequence[Trace], out_png: str | Path, columns: int = 3) -> Path:
    """Many runs, one small force+depth panel each (holds shaded, marks as in plot_run)."""
    rows = max(1, math.ceil(len(traces) / columns))
    fig = _figure(5.0 * columns, 2.6 * rows)
    outer = fig.add_gridspec(rows, columns)
    for i, trace in enumerate(traces):
        cell = outer[i // columns, i % columns].subgridspec(2, 1, hspace=0.0)
        ax_f = fig.add_subplot(cell[0])
        ax_d = fig.add_subplot(cell[1], sharex=ax_f)
        _time_axes(ax_f, ax_d, trace, legend=False)
        ax_f.tick_params(labelbottom=False, labelsize=7)
        ax_d.tick_params(labelsize=7)
        for ax in (ax_f, ax_d):
            ax.yaxis.label.set_size(7)
            ax.xaxis.label.set_size(7)
        colour = "tab:green" if trace.outcome == "crossed" else "tab:red"
        ax_f.set_title(f"{trace.title}: {trace.outcome}", fontsize=8, color=colour)
    out = Path(out_png)
    out.parent.mkdir(parents=True, exist_ok=True)
    fig.savefig(out)
    return out
