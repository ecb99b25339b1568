"""`needlectl sim sweep`: the same table whichever engine, resume, a judge that fires."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest

from studies.sweep import job as job_mod
from studies.sweep import table
from studies.sweep.runner import run_sweep
from studies.sweep.spec import SweepError, load_sweep

# Four short runs: two generated one-block lesions (one the 8 N ceiling cracks, one
# whose floor is above it), one seed, two noise levels.
TINY = """
name = "tiny"
seeds = [3]
noise = [1.0, 2.0]
[[family]]
name = "tiny"
count = 1
seed = 5
[family.params]
start_mm = 10.0
length_mm = 6.0
calcium_blocks = 1
calcium_fraction = 0.4
chunk_mm = 1.5
calcium_floor_n = { from = 4.0, to = 12.0, step = 8.0 }
[[profile]]
name = "pierce"
grid = { "stall.max_pecks" = [1] }
"""


def write(tmp_path: Path, text: str, name: str = "sweep.toml") -> Path:
    path = tmp_path / name
    path.write_text(text)
    return path


@pytest.fixture(scope="module")
def tiny_local(tmp_path_factory: pytest.TempPathFactory) -> Any:
    folder = tmp_path_factory.mktemp("local")
    sweep = load_sweep(write(folder, TINY))
    return sweep, run_sweep(sweep, folder / "out", workers=2, figure=False)


def test_every_combination_is_one_row_in_job_order(tiny_local: Any) -> None:
    sweep, result = tiny_local
    assert [r["run_id"] for r in result.rows] == [j.run_id for j in sweep.jobs]
    assert len(result.rows) == 4
    by_floor = {(r["calcium_floor_n"], r["noise"]): r["outcome"] for r in result.rows}
    # The 4 N floor cracks under the 8 N ceiling; 12 N (up to 14.4 N a chunk) cannot.
    assert by_floor == {
        (4.0, 1.0): "crossed",
        (4.0, 2.0): "crossed",
        (12.0, 1.0): "stalled",
        (12.0, 2.0): "stalled",
    }
    assert all(r["violations"] == 0 and r["safety"] == "ok" for r in result.rows)
    assert all(r["peak_force_true_n"] < r["judge_force_limit_n"] for r in result.rows)
    assert table.read_table(result.parquet_path).num_rows == 4


def test_dask_gives_the_same_table_as_local_processes(tiny_local: Any, tmp_path: Path) -> None:
    sweep, local = tiny_local
    result = run_sweep(sweep, tmp_path / "dask", dask="local:2", figure=False)
    assert table.read_table(result.parquet_path).equals(table.read_table(local.parquet_path))
    assert result.csv_path.read_bytes() == local.csv_path.read_bytes()


def test_an_interrupted_sweep_resumes_without_redoing_finished_runs(
    tiny_local: Any, tmp_path: Path
) -> None:
    sweep, full = tiny_local
    out = tmp_path / "resume"
    out.mkdir()
    lines = full.csv_path.read_text().splitlines(keepends=True)
    # Two finished rows, then a line torn by the kill.
    (out / table.CSV_NAME).write_text("".join(lines[:3]) + lines[3][:40])
    seen: list[str] = []
    result = run_sweep(
        sweep, out, workers=1, figure=False, on_row=lambda r: seen.append(r["run_id"])
    )
    assert result.resumed == 2 and result.ran == 2
    assert len(seen) == 2 and set(seen).isdisjoint(r["run_id"] for r in full.rows[:2])
    assert table.read_table(result.parquet_path).equals(table.read_table(full.parquet_path))


def _planted(depth_beyond_mm: float, rate_rpm: float) -> Any:
    """A broken procedure: sets no device limits and no ceiling, and drives on for two
    minutes towards the target + ``depth_beyond_mm``."""
    from firmware_host.procedure.outcome import Outcome, Result

    def run_procedure(nd: Any, profile: Any, *, target_depth_mm: float, **_: Any) -> Outcome:
        nd.home()
        if rate_rpm:
            nd.rotate_rpm(rate_rpm)
        nd.move_to_mm(target_depth_mm + depth_beyond_mm, 0.5)
        nd.wait_s(120.0)
        nd.stop()
        nd.wait_idle(10.0)
        return Outcome(Result.CROSSED, "planted", target_depth_mm, 0.0, 0.0, 0.0, 0.0, 0, 0, 0, 0)

    return run_procedure


def test_the_judge_fires_on_a_planted_overshoot(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    import firmware_host.procedure as procedure

    sweep = load_sweep(write(tmp_path, TINY))
    monkeypatch.setattr(procedure, "run_procedure", _planted(depth_beyond_mm=3.0, rate_rpm=60.0))
    row = job_mod.run_job(sweep.jobs[0])  # the crossable lesion: nothing stops the needle
    assert row["depth_over_steps"] > 0
    assert row["peak_depth_true_mm"] > row["judge_depth_limit_mm"]
    assert row["violations"] >= 1 and "true depth beyond" in row["safety"]


def test_the_judge_fires_on_a_planted_push_into_calcium(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    import firmware_host.procedure as procedure

    sweep = load_sweep(write(tmp_path, TINY))
    monkeypatch.setattr(procedure, "run_procedure", _planted(depth_beyond_mm=0.0, rate_rpm=0.0))
    hard = next(j for j in sweep.jobs if j.inputs["calcium_floor_n"] == 12.0)
    row = job_mod.run_job(hard)  # pushed without rotation or ceiling into 12 N calcium
    assert row["force_over_steps"] > 0
    assert row["peak_force_true_n"] > row["judge_force_limit_n"] == 15.0
    assert "true force above 15 N" in row["safety"]


def test_family_draws_are_reproducible_and_within_their_ranges(tmp_path: Path) -> None:
    from sim_device.families import PARAMS, draw_params

    a = draw_params({"calcium_floor_n": {"from": 3, "to": 14, "step": 1}}, 3, seed=9)
    assert a == draw_params({"calcium_floor_n": {"from": 3, "to": 14, "step": 1}}, 3, seed=9)
    assert a != draw_params({"calcium_floor_n": {"from": 3, "to": 14, "step": 1}}, 3, seed=10)
    assert len(a) == 12 * 3
    assert sorted({p["calcium_floor_n"] for p in a}) == [float(f) for f in range(3, 15)]
    for p in a:
        for name, rng in PARAMS.items():
            if name != "calcium_floor_n":
                assert rng.lo <= p[name] <= rng.hi, name


def test_a_family_member_has_the_calcium_it_was_drawn_with() -> None:
    from sim_device.families import build_lesion, draw_params, features

    for p in draw_params({}, 20, seed=1):
        lesion = build_lesion("m", p)
        f = features(lesion)
        assert f["length_mm"] == pytest.approx(p["length_mm"])
        assert f["calcium_mm"] == pytest.approx(p["calcium_fraction"] * p["length_mm"], abs=1e-3)
        assert f["calcium_floor_n"] == p["calcium_floor_n"]
        assert sum(s.tissue == "calcium" for s in lesion.segments) == p["calcium_blocks"]


@pytest.mark.parametrize(
    ("text", "message"),
    [
        ("seeds = [1]\nlesion = ['soft-stenosis']\n", "unknown key(s) lesion"),
        ("lesions = ['no-such-lesion']\n", "unknown lesion 'no-such-lesion'"),
        ("lesions = ['soft-stenosis']\nnoise = 'x'\n", "noise must be a non-empty list"),
        (
            "lesions = ['soft-stenosis']\n[[profile]]\nname = 'pierce'\n"
            "grid = { 'advance.force_ceiling_n' = [13.0] }\n",
            "must be below [limits] stall_force_n",
        ),
        (
            "[[family]]\nname = 'f'\nparams = { calcium_flor_n = 3 }\n",
            "family 1 (f): unknown parameter(s) calcium_flor_n",
        ),
        (
            "[[family]]\nname = 'f'\nparams = { calcium_floor_n = [5, 1] }\n",
            "family 1 (f): calcium_floor_n = [5, 1]: hi must be >= lo",
        ),
        ("[[family]]\nname = 'f'\ncount = 0\n", "family 1 (f): count must be >= 1"),
        (
            "[[family]]\nname = 'f'\n"
            "params = { length_mm = 5.0, calcium_blocks = 30, calcium_fraction = 0.9 }\n",
            "family 1 (f): f-00000: 30 calcium blocks",
        ),
    ],
)
def test_a_bad_sweep_file_is_one_line_naming_the_problem(
    tmp_path: Path, text: str, message: str
) -> None:
    path = write(tmp_path, text)
    with pytest.raises(SweepError) as err:
        load_sweep(path)
    assert message in str(err.value) and "\n" not in str(err.value)
    # the file named once, first (issue 21: "sweep.toml: sweep.toml: family 1 ...")
    assert str(err.value).startswith(f"{path}: ") and str(err.value).count(str(path)) == 1


def test_a_registered_lesion_is_loadable_by_name_only_while_registered() -> None:
    import dataclasses

    from sim_device.lesions import LesionError, load_lesion, registered

    lesion = dataclasses.replace(load_lesion("soft-stenosis"), name="sweep-test-only")
    with registered(lesion) as name:
        assert load_lesion(name) is lesion
    with pytest.raises(LesionError):
        load_lesion("sweep-test-only")
    with pytest.raises(LesionError, match="already taken"), registered(load_lesion("uncrossable")):
        pass
