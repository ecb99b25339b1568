"""The sweep's figure and its floor table, read as a reader would: every profile's line
visible where two coincide, distinct calcium floors printed distinct (and binning said
when there is any), units on the axes. Read from the matplotlib objects and the summary
lines, on hand-made rows (no simulation: milliseconds)."""

from __future__ import annotations

import itertools
from typing import Any

import numpy as np
import pytest

from studies.sweep import report

FLOORS_N = [3.0, 3.2295, 4.5, 5.2025, 6.869]  # example.toml's: 3 and 3.23 are two lesions
PROFILES = ["pierce[advance.force_ceiling_n=8.0]", "pierce[advance.force_ceiling_n=9.0]"]


def _row(profile: str, floor_n: float, i: int, crossed: bool = True) -> dict[str, Any]:
    return {
        "profile": profile,
        "load_cell": "ideal",
        "drift": 1.0,
        "outcome": "crossed" if crossed else "stalled",
        "violations": 0,
        "calcium_floor_n": floor_n,
        "length_mm": 9.0 + i,
        "calcium_arc_deg": 320.0 + 10 * i,
        "duration_s": 20.0 + i,
        "peak_force_true_n": 5.0 + floor_n / 2,
        "judge_force_limit_n": 15.0,
        "puncture_overshoot_mm": 0.5,
        "peak_wind_rev": 2.0,
    }


def _rows(floors_n: list[float] = FLOORS_N) -> list[dict[str, Any]]:
    # both profiles cross the same lesions: their rate lines coincide exactly
    return [_row(p, f, i, crossed=i != 2) for p in PROFILES for i, f in enumerate(floors_n)]


def _profile_lines(ax: Any) -> list[Any]:
    return [line for line in ax.get_lines() if line.get_label() in PROFILES]


def test_coinciding_rate_lines_all_show() -> None:
    fig = report.figure(_rows(), "t")
    rate_axes = fig.axes[:3]
    for ax in rate_axes:
        lines = _profile_lines(ax)
        assert [line.get_label() for line in lines] == PROFILES, ax.get_xlabel()
        for under, over in itertools.pairwise(sorted(lines, key=lambda line: line.zorder)):
            assert np.array_equal(under.get_ydata(), over.get_ydata())  # they do coincide
            # ... yet the one beneath peeks out: another marker and dash, drawn larger
            assert (under.get_marker(), under.get_linestyle()) != (
                over.get_marker(),
                over.get_linestyle(),
            )
            assert under.get_markersize() > over.get_markersize()
            assert under.get_linewidth() > over.get_linewidth()
            assert under.get_fillstyle() == "none"  # hollow: the one inside shows through
    # one legend for the figure, each profile once (not over one panel's data)
    legend_texts = [t.get_text() for legend in fig.legends for t in legend.get_texts()]
    assert [t for t in legend_texts if t in PROFILES] == PROFILES


def test_histograms_are_outlines_and_the_scatter_is_not_shifted() -> None:
    rows = _rows()
    fig = report.figure(rows, "t")
    ax_d, ax_f, ax_s = fig.axes[3:6]
    for ax in (ax_d, ax_f):
        outlines = [p for p in ax.patches if p.get_label() in PROFILES]
        assert len(outlines) == len(PROFILES)
        assert not any(p.get_fill() for p in outlines)  # a filled bar hides the one behind
        assert len({p.get_linestyle() for p in outlines}) == len(PROFILES)
    # the scatter: each profile's true peak forces as they are (no offset to separate
    # profiles), told apart by marker
    plotted = [c for c in ax_s.collections if c.get_label() in PROFILES]
    assert [c.get_label() for c in plotted] == PROFILES
    for c, profile in zip(plotted, PROFILES, strict=True):
        want = sorted(r["peak_force_true_n"] for r in rows if r["profile"] == profile)
        assert sorted(c.get_offsets()[:, 1]) == pytest.approx(want, abs=1e-12)
    assert len({c.get_paths()[0].vertices.tobytes() for c in plotted}) == len(PROFILES)


def test_every_axis_states_its_unit() -> None:
    fig = report.figure(_rows(), "t")
    for ax in fig.axes[:6]:
        for label in (ax.get_xlabel(), ax.get_ylabel()):
            assert "(" in label and ")" in label, label  # "quantity (unit)"
    assert "crossed / runs" in fig.axes[0].get_ylabel()


def _floor_table(lines: list[str]) -> tuple[str, list[str]]:
    at = next(i for i, line in enumerate(lines) if "by calcium floor" in line)
    return lines[at], lines[at + 1].split()[1:]


def test_distinct_calcium_floors_print_distinct() -> None:
    summary = report.summarise(_rows())
    title, columns = _floor_table(report.summary_lines(summary))
    assert len(columns) == len(FLOORS_N) == len(set(columns)), columns
    assert "binned" not in title
    # 3 and 3.2295 N are two lesions: two columns, one run each per profile
    first = summary["profiles"][PROFILES[0]]["crossing_rate_by_floor_n"]
    assert list(first.values())[:2] == [{"crossed": 1, "runs": 1}] * 2


def test_many_floors_are_binned_and_the_table_says_so() -> None:
    floors_n = [3.0 + 0.37 * i for i in range(20)]
    summary = report.summarise(_rows(floors_n))
    title, columns = _floor_table(report.summary_lines(summary))
    assert "binned" in title
    assert 1 < len(columns) < 20 and len(set(columns)) == len(columns)
    assert all("–" in c for c in columns), columns  # each a range
    counts = summary["profiles"][PROFILES[0]]["crossing_rate_by_floor_n"].values()
    assert sum(c["runs"] for c in counts) == 20  # every run in one bin
