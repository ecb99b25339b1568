"""Sweeps per load cell part and drift (issue 18): the grid, the URL each run uses, the
run ids of sweeps before parts, and the table's new columns."""

from __future__ import annotations

from pathlib import Path

import pytest

from studies.sweep.runner import run_sweep
from studies.sweep.spec import SweepError, load_sweep
from studies.sweep.table import COLUMNS

BASE = """
name = "lc"
seeds = [1]
lesions = ["soft-stenosis"]
"""


def write(tmp_path: Path, text: str) -> Path:
    path = tmp_path / "sweep.toml"
    path.write_text(text)
    return path


def test_parts_and_drift_are_crossed_with_the_rest(tmp_path: Path) -> None:
    sweep = load_sweep(
        write(tmp_path, BASE + 'load_cells = ["ideal", "hx711-80"]\ndrift = [1.0, 3.0]\n')
    )
    grid = [(j.load_cell, j.drift) for j in sweep.jobs]
    assert grid == [("ideal", 1.0), ("ideal", 3.0), ("hx711-80", 1.0), ("hx711-80", 3.0)]
    assert {j.inputs["load_cell"] for j in sweep.jobs} == {"ideal", "hx711-80"}
    assert len({j.run_id for j in sweep.jobs}) == 4
    # a sweep that names no part runs the ideal sensor, with the run ids it always had
    before = load_sweep(write(tmp_path, BASE)).jobs[0]
    assert before.run_id == sweep.jobs[0].run_id
    new = {"load_cell", "drift", "load_cell_sample_hz", "puncture_overshoot_mm", "peak_wind_rev"}
    assert new <= set(COLUMNS)


@pytest.mark.parametrize(
    ("extra", "said"),
    [
        ('load_cells = ["hx999"]\n', "load_cells: unknown load cell part 'hx999'"),
        ("drift = [-1.0]\n", "drift multipliers must be within 0..100"),
        ("load_cells = []\n", "load_cells must be a non-empty list"),
    ],
)
def test_a_bad_part_or_drift_is_one_line(tmp_path: Path, extra: str, said: str) -> None:
    with pytest.raises(SweepError) as err:
        load_sweep(write(tmp_path, BASE + extra))
    assert said in str(err.value) and "\n" not in str(err.value)


def test_each_run_uses_its_part(tmp_path: Path) -> None:
    sweep = load_sweep(
        write(
            tmp_path,
            BASE.replace('"soft-stenosis"', '"cohort-2021-07"')
            + 'load_cells = ["hx711-80"]\n[[profile]]\nname = "pierce"\n',
        )
    )
    result = run_sweep(sweep, tmp_path / "out", workers=1, figure=False)
    (row,) = result.rows
    assert row["load_cell"] == "hx711-80" and row["outcome"] == "crossed"
    assert row["load_cell_sample_hz"] == 80.0  # the rig ran that part
    assert row["violations"] == 0
    # its 0.61 N cap's lurch (0.15 mm at 4 N/mm) + one 80 Hz sample's advance
    assert 0.1 < row["puncture_overshoot_mm"] < 2.0
    assert row["peak_wind_rev"] > 1.0  # continuous rotation twists the tissue
