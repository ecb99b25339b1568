"""The load-cell sweep's table and figure (docs/procedure.md, "The sensor sweep"), from
the results of ``needlectl sim sweep`` runs of sweeps/load-cells*.toml:

    python -m studies.sensor_report OUT_DIR [OUT_DIR ...] [--figure PNG]

One row per condition — lesions (the cohort, or a generated family by name), load cell
part, rotation profile, noise, drift — with the
crossing rate, the safety judge's violations (from the simulator's truth), the largest
overshoot after a puncture, the median time per lesion and the median tissue twist.
"""

from __future__ import annotations

import argparse
import sys
from collections import defaultdict
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import numpy as np

from studies.sweep.table import CSV_NAME, read_rows

PART_ORDER = ("ideal", "ads1220-2000", "ads1220-660", "hx717-320", "hx711-80", "hx711-10")

Key = tuple[str, str, str, float, float]  # lesions, part, profile, noise, drift


def _key(r: dict[str, Any]) -> Key:
    lesions = f"family {r['family']}" if r["family"] else "cohort"
    return (lesions, str(r["load_cell"]), str(r["profile"]), float(r["noise"]), float(r["drift"]))


def _order(k: Key) -> tuple[bool, str, int, str, float, float]:
    part = PART_ORDER.index(k[1]) if k[1] in PART_ORDER else len(PART_ORDER)
    return (k[0] != "cohort", k[0], part, k[2], k[3], k[4])


def conditions(rows: Sequence[dict[str, Any]]) -> dict[Key, dict[str, Any]]:
    """Per condition: runs, crossed, violations, overshoot max, median s, median twist."""
    groups: dict[Key, list[dict[str, Any]]] = defaultdict(list)
    seen: set[str] = set()
    for r in rows:
        if r["run_id"] in seen:  # the same run in two sweeps' tables
            continue
        seen.add(r["run_id"])
        groups[_key(r)].append(r)
    out = {}
    for k in sorted(groups, key=_order):
        g = groups[k]
        out[k] = {
            "runs": len(g),
            "crossed": sum(r["outcome"] == "crossed" for r in g),
            "violations": sum(r["violations"] for r in g),
            "overshoot_mm": max(r["puncture_overshoot_mm"] for r in g),
            "median_s": float(np.median([r["duration_s"] for r in g])),
            "wind_rev": float(np.median([r["peak_wind_rev"] for r in g])),
        }
    return out


def table_lines(stats: dict[Key, dict[str, Any]]) -> list[str]:
    lines = [
        "| lesions | load cell | rotation | noise | drift | crossed | violations "
        "| overshoot mm (max) | s per lesion (median) | tissue twist, turns (median) |",
        "|---|---|---|---|---|---|---|---|---|---|",
    ]
    for (lesions, part, prof, noise, drift), s in stats.items():
        rate = 100.0 * s["crossed"] / s["runs"]
        lines.append(
            f"| {lesions} | {part} | {prof} | ×{noise:g} | ×{drift:g} "
            f"| {s['crossed']}/{s['runs']} "
            f"({rate:.0f} %) | {s['violations']} | {s['overshoot_mm']:.2f} "
            f"| {s['median_s']:.0f} | {s['wind_rev']:.2f} |"
        )
    return lines


def write_figure(stats: dict[Key, dict[str, Any]], path: Path) -> None:
    from matplotlib.backends.backend_agg import FigureCanvasAgg
    from matplotlib.figure import Figure

    fig = Figure(figsize=(12, 4.2), dpi=100, layout="constrained")
    FigureCanvasAgg(fig)
    ax_r, ax_t, ax_w = fig.subplots(1, 3)
    plain = {k[1:3]: s for k, s in stats.items() if k[0] == "cohort" and k[3:] == (1.0, 1.0)}
    parts = sorted({k[0] for k in plain}, key=lambda p: _order(("cohort", p, "", 0, 0)))
    profiles = sorted({k[1] for k in plain})
    width = 0.8 / max(1, len(profiles))
    x = np.arange(len(parts))
    for i, prof in enumerate(profiles):
        got = [plain.get((p, prof)) for p in parts]
        rate = [100.0 * s["crossed"] / s["runs"] if s else np.nan for s in got]
        secs = [s["median_s"] if s else np.nan for s in got]
        wind = [s["wind_rev"] if s else np.nan for s in got]
        for ax, ys in ((ax_r, rate), (ax_t, secs), (ax_w, wind)):
            ax.bar(x + i * width, ys, width, label=prof)
    for ax, label in (
        (ax_r, "crossing rate (%)"),
        (ax_t, "time per lesion, median (s, simulated)"),
        (ax_w, "tissue twist, median (turns)"),
    ):
        ax.set_xticks(x + width * (len(profiles) - 1) / 2, parts, rotation=20)
        ax.set_ylabel(label)
        ax.grid(alpha=0.3, axis="y")
    ax_r.set_ylim(0, 105)
    ax_r.legend(fontsize=8)
    bad = sum(s["violations"] for s in stats.values())
    runs = sum(s["runs"] for s in stats.values())
    fig.suptitle(
        "PIERCE on the cohort with bench load cells (noise ×1, drift ×1); "
        f"all sweeps: {runs} runs, "
        + (f"{bad} safety violations" if bad else "no safety violation")
    )
    fig.savefig(path)


def main(argv: Sequence[str] | None = None) -> int:
    ap = argparse.ArgumentParser(prog="python -m studies.sensor_report", description=__doc__)
    ap.add_argument("folders", nargs="+", type=Path, help="sweep output folders")
    ap.add_argument("--figure", type=Path, help="write the figure here (PNG)")
    ns = ap.parse_args(argv)
    rows: list[dict[str, Any]] = []
    for folder in ns.folders:
        got = read_rows(folder / CSV_NAME)
        if not got:
            print(f"sensor_report: {folder / CSV_NAME}: no results", file=sys.stderr)
            return 2
        rows += got
    stats = conditions(rows)
    print("\n".join(table_lines(stats)))
    if ns.figure is not None:
        write_figure(stats, ns.figure)
        print(f"figure: {ns.figure}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
