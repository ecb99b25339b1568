"""The load-cell sweep's table (studies/sensor_report.py): one row per condition, a run
counted once however many tables hold it."""

from __future__ import annotations

from pathlib import Path
from typing import Any

from studies.sensor_report import conditions, main, table_lines
from studies.sweep.table import COLUMNS, Journal


def row(run_id: str, part: str, outcome: str, s: float, **kw: Any) -> dict[str, Any]:
    r: dict[str, Any] = {
        k: (0 if t in (int, float) else "" if t is str else False) for k, t in COLUMNS.items()
    }
    r.update(
        run_id=run_id,
        load_cell=part,
        profile="pierce",
        noise=1.0,
        drift=1.0,
        outcome=outcome,
        duration_s=s,
        puncture_overshoot_mm=0.5,
        peak_wind_rev=2.0,
    )
    r.update(kw)
    return r


def test_one_row_per_condition_and_each_run_once(tmp_path: Path) -> None:
    rows = [
        row("a", "hx711-80", "crossed", 100.0),
        row("b", "hx711-80", "stalled", 300.0, violations=1, puncture_overshoot_mm=2.5),
        row("c", "ideal", "crossed", 90.0),
        row("c", "ideal", "crossed", 90.0),  # the same run in a second table
    ]
    stats = conditions(rows)
    assert list(stats) == [
        ("cohort", "ideal", "pierce", 1.0, 1.0),
        ("cohort", "hx711-80", "pierce", 1.0, 1.0),
    ]
    assert stats[("cohort", "ideal", "pierce", 1.0, 1.0)]["runs"] == 1
    hx = stats[("cohort", "hx711-80", "pierce", 1.0, 1.0)]
    assert (hx["crossed"], hx["violations"], hx["overshoot_mm"], hx["median_s"]) == (
        1,
        1,
        2.5,
        200.0,
    )
    lines = table_lines(stats)
    assert lines[2].startswith("| cohort | ideal | pierce | ×1 | ×1 | 1/1 (100 %) | 0 |")
    assert lines[3].startswith("| cohort | hx711-80 | pierce | ×1 | ×1 | 1/2 (50 %) | 1 | 2.50 |")
    for name, rs in (("one", rows[:2]), ("two", rows[2:])):
        j = Journal(tmp_path / name, rs)
        j.close()
    png = tmp_path / "f.png"
    assert main([str(tmp_path / "one"), str(tmp_path / "two"), "--figure", str(png)]) == 0
    assert png.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"
    assert main([str(tmp_path / "none")]) == 2
