"""A sweep's results in brief: a summary per profile, crossing rates by calcium floor,
and one figure (matplotlib, Agg).

The figure: crossing rate against calcium floor, lesion length and calcium arc
(eccentricity), one line per profile; the distributions of duration and of the true
peak force (with the judge's force limit); every run the safety judge flagged drawn
as a red cross on every panel where it has a place.

Profiles often give the same rates (every lesion crossed), so their lines coincide. Each
profile has its own hollow marker and dash, and the first drawn is the widest: a line
beneath another still shows around it. The histograms are outlines for the same reason.
Calcium floors are table columns one per value when there are few (labelled with the
fewest decimals that keep them apart), equal ranges when there are many — and the
table says which.
"""

from __future__ import annotations

import itertools
import math
from collections import defaultdict
from collections.abc import Sequence
from pathlib import Path
from typing import TYPE_CHECKING, Any

import numpy as np

if TYPE_CHECKING:
    from matplotlib.figure import Figure


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


# More distinct calcium floors than this: the table bins them into as many equal ranges.
FLOOR_COLUMNS_MAX = 8


def _labels(values: Sequence[float]) -> list[str]:
    """Each value with the fewest decimals (up to 6) that keep distinct values distinct."""
    for decimals in range(7):
        labels = [_trimmed(v, decimals) for v in values]
        if len(set(labels)) == len(set(values)):
            return labels
    return [repr(v) for v in values]


def _trimmed(value: float, decimals: int) -> str:
    text = f"{value:.{decimals}f}"
    return text.rstrip("0").rstrip(".") if "." in text else text


def floor_columns(rows: Sequence[dict[str, Any]]) -> list[dict[str, Any]]:
    """The calcium floor columns of a sweep: {label, from_n, to_n} each, ascending; one
    per distinct floor up to FLOOR_COLUMNS_MAX, else that many equal ranges."""
    values = sorted({r["calcium_floor_n"] for r in rows if not math.isnan(r["calcium_floor_n"])})
    if len(values) <= FLOOR_COLUMNS_MAX:
        return [
            {"label": label, "from_n": v, "to_n": v}
            for label, v in zip(_labels(values), values, strict=True)
        ]
    edges = [float(e) for e in np.linspace(values[0], values[-1], FLOOR_COLUMNS_MAX + 1)]
    names = _labels(edges)
    return [
        {"label": f"{names[i]}–{names[i + 1]}", "from_n": edges[i], "to_n": edges[i + 1]}
        for i in range(FLOOR_COLUMNS_MAX)
    ]


def _column_of(floor_n: float, columns: Sequence[dict[str, Any]]) -> str:
    for c in columns:  # a range holds its upper edge; the first range its lower too
        if floor_n <= c["to_n"]:
            return str(c["label"])
    return str(columns[-1]["label"])


def summarise(rows: Sequence[dict[str, Any]]) -> dict[str, Any]:
    """Per profile: runs, outcomes, violations, peak true force, duration; crossing rate
    by calcium floor (the columns of floor_columns, keyed by their labels)."""
    by_profile: dict[str, list[dict[str, Any]]] = defaultdict(list)
    for r in rows:
        by_profile[condition(r)].append(r)
    columns = floor_columns(rows)
    profiles = {}
    for name, rs in by_profile.items():
        floors: dict[str, list[dict[str, Any]]] = {c["label"]: [] for c in columns}
        for r in rs:
            if not math.isnan(r["calcium_floor_n"]):
                floors[_column_of(r["calcium_floor_n"], columns)].append(r)
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
                for f, g in floors.items()
                if g
            },
        }
    return {
        "runs": len(rows),
        "violations": sum(r["violations"] for r in rows),
        "calcium_floor_columns": columns,
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
    columns = summary.get("calcium_floor_columns", [])
    if columns:
        floors = [str(c["label"]) for c in columns]
        binned = any(c["from_n"] != c["to_n"] for c in columns)
        lines.append("")
        lines.append(
            f"crossed / runs by calcium floor (N), binned into {len(floors)} equal ranges:"
            if binned
            else "crossed / runs by calcium floor (N), one column per floor:"
        )
        width = max(6, *(len(f) for f in floors))
        lines.append(f"{'profile':<34} " + " ".join(f"{f:>{width}}" for f in floors))
        for name, s in summary["profiles"].items():
            cells = []
            for f in floors:
                c = s["crossing_rate_by_floor_n"].get(f)
                cells.append(f"{c['crossed']}/{c['runs']}" if c else "-")
            lines.append(f"{name:<34} " + " ".join(f"{c:>{width}}" for c in cells))
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


_MARKERS = ("o", "s", "^", "D", "v", "P", "X", "h")
_DASHES = ("-", "--", "-.", ":")


def _style(i: int) -> dict[str, Any]:
    """Profile i's look: its own marker and dash; each later one narrower and drawn
    above, so a line beneath a coinciding one still shows around it."""
    return {
        "marker": _MARKERS[i % len(_MARKERS)],
        "ls": _DASHES[i % len(_DASHES)],
        "lw": max(0.8, 3.2 - 0.4 * i),
        "ms": max(4.0, 12.0 - 1.6 * i),
        "color": f"C{i % 10}",
        "zorder": 3 + i,
    }


def write_figure(rows: Sequence[dict[str, Any]], path: Path, title: str) -> Path:
    figure(rows, title).savefig(path)
    return path


def figure(rows: Sequence[dict[str, Any]], title: str) -> Figure:
    """The sweep's figure (its objects: what the tests read)."""
    from matplotlib.backends.backend_agg import FigureCanvasAgg
    from matplotlib.figure import Figure
    from matplotlib.ticker import MaxNLocator

    fig = Figure(figsize=(15, 9), dpi=100, layout="constrained")
    FigureCanvasAgg(fig)
    axes = fig.subplots(2, 3)
    by_profile: dict[str, list[dict[str, Any]]] = defaultdict(list)
    for r in rows:
        by_profile[condition(r)].append(r)
    styles = [_style(i) for i in range(len(by_profile))]
    bad = [r for r in rows if r["violations"] > 0]
    rate_bins = 12
    for (key, label), ax in zip(
        [
            ("calcium_floor_n", "calcium floor (N)"),
            ("length_mm", "lesion length (mm)"),
            ("calcium_arc_deg", "calcium arc (°; 360 = concentric)"),
        ],
        axes[0],
        strict=True,
    ):
        for (name, rs), st in zip(by_profile.items(), styles, strict=True):
            xs, ys = _binned_rate(rs, key, bins=rate_bins)
            ax.plot(
                xs,
                ys,
                label=name,
                marker=st["marker"],
                ls=st["ls"],
                lw=st["lw"],
                ms=st["ms"],
                fillstyle="none",
                mew=1.6,
                color=st["color"],
                zorder=st["zorder"],
            )
        for r in bad:
            if not math.isnan(r[key]):
                ax.plot(r[key], 1.02, "x", color="red", ms=9, mew=2, zorder=20)
        values = {r[key] for r in rows if not math.isnan(r[key])}
        binned = len(values) > rate_bins
        ax.set_xlabel(label[:-1] + f"; {rate_bins} equal bins)" if binned else label)
        ax.set_ylabel("crossing rate (crossed / runs)")
        ax.set_ylim(-0.05, 1.08)
        ax.grid(alpha=0.3)
    ax_d, ax_f, ax_s = axes[1]
    for ax, key in ((ax_d, "duration_s"), (ax_f, "peak_force_true_n")):
        # shared bins, outlines only: a filled bar hides the profile drawn before it
        edges = np.histogram_bin_edges([r[key] for r in rows], bins=30)
        for (name, rs), st in zip(by_profile.items(), styles, strict=True):
            ax.hist(
                [r[key] for r in rs],
                bins=edges,
                histtype="step",
                lw=st["lw"],
                ls=st["ls"],
                color=st["color"],
                zorder=st["zorder"],
                label=name,
            )
        ax.set_ylabel("runs (count)")
        ax.yaxis.set_major_locator(MaxNLocator(integer=True))
    ax_d.set_xlabel("duration (s, simulated)")
    ax_f.set_xlabel("peak true force (N)")
    limits = sorted({r["judge_force_limit_n"] for r in rows})
    for lim in limits:
        ax_f.axvline(lim, color="red", ls="--", lw=1, label=f"force limit {lim:g} N")
    for r in bad:
        ax_f.axvline(r["peak_force_true_n"], color="red", lw=2)
    ax_f.legend(
        handles=[h for h in ax_f.get_legend_handles_labels()[0] if h.get_label() not in by_profile],
        fontsize=8,
    )
    # Peak force by floor: the profile is the marker (largest first), the outcome the
    # colour; values as they are (no offset to pull coinciding profiles apart).
    for (name, rs), st in zip(by_profile.items(), styles, strict=True):
        ax_s.scatter(
            [r["calcium_floor_n"] for r in rs],
            [r["peak_force_true_n"] for r in rs],
            marker=st["marker"],
            s=st["ms"] ** 2,
            facecolors="none",
            edgecolors=["tab:green" if r["outcome"] == "crossed" else "tab:gray" for r in rs],
            linewidths=1.6,
            zorder=st["zorder"],
            label=name,
        )
    for r in bad:
        ax_s.plot(r["calcium_floor_n"], r["peak_force_true_n"], "x", color="red", ms=10, mew=2)
    ax_s.set_xlabel("calcium floor (N)")
    ax_s.set_ylabel("peak true force (N): green crossed, grey not")
    ax_s.grid(alpha=0.3)
    handles, labels = axes[0][0].get_legend_handles_labels()
    fig.legend(
        handles,
        labels,
        loc="outside lower center",
        ncols=min(len(labels), 3),
        fontsize=8,
        title="profile (lines that coincide: the one drawn first is the widest)",
        title_fontsize=8,
    )
    n_bad = len(bad)
    fig.suptitle(
        f"{title}: {len(rows)} runs, "
        + (f"{n_bad} with safety violations (red)" if n_bad else "no safety violation")
    )
    return fig
