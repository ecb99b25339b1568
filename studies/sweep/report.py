"""A sweep's results in brief: a summary per profile, crossing rates by calcium floor,
and one figure (matplotlib, Agg).

The figure: crossing rate against calcium floor, lesion length and calcium arc
(eccentricity), one line per profile; the distributions of duration and of the true
peak force (with the judge's force limit); every run the safety judge flagged drawn
as a red cross on every panel where it has a place.
"""

from __future__ import annotations

import itertools
import math
from collections import defaultdict
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import numpy as np


def _rate(rows: Sequence[dict[str, Any]]) -> float:
    return sum(r["outcome"] == "crossed" for r in rows) / len(rows) if rows else math.nan


def condition(row: dict[str, Any]) -> str:
    """What a summary line groups by: the profile, and the load cell part and its drift
    where a sweep varies them (a sweep of the ideal sensor groups by profile alone)."""
    label = str(row["profile"])
    part, drift = row.get("load_cell", "ideal"), row.get("drift", 1.0)
    if part != "ideal" or drift != 1.0:
        label += f" · {part}" + (f" drift×{drift:g}" if drift != 1.0 else "")
    return label


def summarise(rows: Sequence[dict[str, Any]]) -> dict[str, Any]:
    """Per profile: runs, outcomes, violations, peak true force, duration; crossing rate
    by calcium floor (rounded to 0.5 N)."""
    by_profile: dict[str, list[dict[str, Any]]] = defaultdict(list)
    for r in rows:
        by_profile[condition(r)].append(r)
    profiles = {}
    for name, rs in by_profile.items():
        floors: dict[float, list[dict[str, Any]]] = defaultdict(list)
        for r in rs:
            if not math.isnan(r["calcium_floor_n"]):
                floors[round(r["calcium_floor_n"] * 2) / 2].append(r)
        profiles[name] = {
            "runs": len(rs),
            "crossed": sum(r["outcome"] == "crossed" for r in rs),
            "stalled": sum(r["outcome"] == "stalled" for r in rs),
            "aborted": sum(r["outcome"] == "aborted" for r in rs),
            "fault": sum(r["outcome"] == "fault" for r in rs),
            "violations": sum(r["violations"] for r in rs),
            "runs_with_violations": sum(r["violations"] > 0 for r in rs),
            "peak_force_true_n": max(r["peak_force_true_n"] for r in rs),
            "duration_s_median": float(np.median([r["duration_s"] for r in rs])),
            "duration_s_max": max(r["duration_s"] for r in rs),
            "puncture_overshoot_mm_max": max(r.get("puncture_overshoot_mm", 0.0) for r in rs),
            "peak_wind_rev_median": float(np.median([r.get("peak_wind_rev", 0.0) for r in rs])),
            "crossing_rate_by_floor_n": {
                f: {"crossed": sum(r["outcome"] == "crossed" for r in g), "runs": len(g)}
                for f, g in sorted(floors.items())
            },
        }
    return {
        "runs": len(rows),
        "violations": sum(r["violations"] for r in rows),
        "profiles": profiles,
    }


def summary_lines(summary: dict[str, Any]) -> list[str]:
    lines = [
        f"{'profile':<34} {'runs':>5} {'crossed':>8} {'stalled':>8} {'fault':>6} "
        f"{'violations':>10} {'peak true N':>11} {'median s':>9} {'overshoot mm':>12} "
        f"{'wind rev':>8}"
    ]
    for name, s in summary["profiles"].items():
        lines.append(
            f"{name:<34} {s['runs']:>5} {s['crossed']:>8} {s['stalled']:>8} {s['fault']:>6} "
            f"{s['violations']:>10} {s['peak_force_true_n']:>11.2f} "
            f"{s['duration_s_median']:>9.1f} {s['puncture_overshoot_mm_max']:>12.2f} "
            f"{s['peak_wind_rev_median']:>8.2f}"
        )
    floors = sorted(
        {f for s in summary["profiles"].values() for f in s["crossing_rate_by_floor_n"]}
    )
    if floors:
        lines.append("")
        lines.append("crossed / runs by calcium floor (N):")
        lines.append(f"{'profile':<34} " + " ".join(f"{f:>6g}" for f in floors))
        for name, s in summary["profiles"].items():
            cells = []
            for f in floors:
                c = s["crossing_rate_by_floor_n"].get(f)
                cells.append(f"{c['crossed']}/{c['runs']}" if c else "-")
            lines.append(f"{name:<34} " + " ".join(f"{c:>6}" for c in cells))
    return lines


def _binned_rate(
    rows: Sequence[dict[str, Any]], key: str, bins: int
) -> tuple[list[float], list[float]]:
    values = [r[key] for r in rows if not math.isnan(r[key])]
    if not values:
        return [], []
    distinct = sorted(set(values))
    if len(distinct) <= bins:  # a grid: one point per value
        groups = {v: [r for r in rows if r[key] == v] for v in distinct}
        return distinct, [_rate(g) for g in groups.values()]
    edges = np.linspace(min(values), max(values), bins + 1)
    xs, ys = [], []
    for lo, hi in itertools.pairwise(edges):
        g = [r for r in rows if lo <= r[key] <= hi]
        if g:
            xs.append(float((lo + hi) / 2))
            ys.append(_rate(g))
    return xs, ys


def write_figure(rows: Sequence[dict[str, Any]], path: Path, title: str) -> Path:
    from matplotlib.backends.backend_agg import FigureCanvasAgg
    from matplotlib.figure import Figure

    fig = Figure(figsize=(15, 8.5), dpi=100, layout="constrained")
    FigureCanvasAgg(fig)
    axes = fig.subplots(2, 3)
    by_profile: dict[str, list[dict[str, Any]]] = defaultdict(list)
    for r in rows:
        by_profile[condition(r)].append(r)
    bad = [r for r in rows if r["violations"] > 0]
    for (key, label), ax in zip(
        [
            ("calcium_floor_n", "calcium floor (N)"),
            ("length_mm", "lesion length (mm)"),
            ("calcium_arc_deg", "calcium arc (°; 360 = concentric)"),
        ],
        axes[0],
        strict=True,
    ):
        for name, rs in by_profile.items():
            xs, ys = _binned_rate(rs, key, bins=12)
            ax.plot(xs, ys, marker="o", label=name)
        for r in bad:
            if not math.isnan(r[key]):
                ax.plot(r[key], 1.02, "x", color="red", ms=9, mew=2)
        ax.set_xlabel(label)
        ax.set_ylabel("crossing rate")
        ax.set_ylim(-0.05, 1.08)
        ax.grid(alpha=0.3)
    axes[0][0].legend(fontsize=8)
    ax_d, ax_f, ax_s = axes[1]
    for name, rs in by_profile.items():
        ax_d.hist([r["duration_s"] for r in rs], bins=30, alpha=0.5, label=name)
        ax_f.hist([r["peak_force_true_n"] for r in rs], bins=30, alpha=0.5, label=name)
    ax_d.set_xlabel("duration (s, simulated)")
    ax_d.set_ylabel("runs")
    ax_f.set_xlabel("peak true force (N)")
    limits = sorted({r["judge_force_limit_n"] for r in rows})
    for lim in limits:
        ax_f.axvline(lim, color="red", ls="--", lw=1, label=f"force limit {lim:g} N")
    for r in bad:
        ax_f.axvline(r["peak_force_true_n"], color="red", lw=2)
    ax_f.legend(fontsize=8)
    ax_d.legend(fontsize=8)
    # Outcome by floor and profile, violations as red crosses.
    for i, rs in enumerate(by_profile.values()):
        floors = [r["calcium_floor_n"] for r in rs]
        colours = ["tab:green" if r["outcome"] == "crossed" else "tab:gray" for r in rs]
        ax_s.scatter(floors, [r["peak_force_true_n"] + 0.05 * i for r in rs], c=colours, s=14)
    for r in bad:
        ax_s.plot(r["calcium_floor_n"], r["peak_force_true_n"], "x", color="red", ms=10, mew=2)
    ax_s.set_xlabel("calcium floor (N)")
    ax_s.set_ylabel("peak true force (N): green crossed, grey not")
    ax_s.grid(alpha=0.3)
    n_bad = len(bad)
    fig.suptitle(
        f"{title}: {len(rows)} runs, "
        + (f"{n_bad} with safety violations (red)" if n_bad else "no safety violation")
    )
    fig.savefig(path)
    return path
