"""The load cell parts: each imperfection of a real sensor shows in the rig's readings.

Driven through Rig.step directly (no firmware), in virtual time: each test is a few
simulated seconds at most.
"""

from __future__ import annotations

from dataclasses import replace
from typing import Any

import numpy as np
import pytest

from sim_device.lesions import LesionError, load_lesion, parse_lesion
from sim_device.load_cells import PARTS, LoadCellError, LoadCellPart, part_from_table
from sim_device.rig_model import Rig

DT_S = 0.001
QUIET = {"bench_noise_rms_n": 0.0, "adc_noise_rms_n": 0.0}  # noise off, all else as the part


def part(name: str, **changes: Any) -> LoadCellPart:
    return replace(PARTS[name], **changes)


def free_rig(load_cell: LoadCellPart, *, seed: int = 0, **kw: Any) -> Rig:
    """The needle at rest in free space (the lesion starts at 20 mm)."""
    return Rig(load_lesion("soft-stenosis"), seed=seed, load_cell=load_cell, **kw)


def record(rig: Rig, seconds: float) -> tuple[np.ndarray, np.ndarray]:
    """(reading N, fresh) per 1 ms tick, the needle at rest."""
    n = round(seconds / DT_S)
    force = np.empty(n)
    fresh = np.empty(n, dtype=bool)
    depth_mm = rig.motor_depth_mm
    for k in range(n):
        rig.step(DT_S, depth_mm, 0.0)
        force[k] = rig.load_cell_force_n
        fresh[k] = rig.load_cell_fresh
    return force, fresh


def test_hx711_80_gives_a_fresh_sample_every_12_5_ms_and_holds_it_between() -> None:
    rig = free_rig(PARTS["hx711-80"])
    assert rig.load_cell_sample_hz == 80.0
    force, fresh = record(rig, 2.0)
    ticks = np.flatnonzero(fresh)
    gaps_ms = np.diff(ticks)
    assert set(gaps_ms.tolist()) <= {12, 13}  # 12.5 ms on a 1 ms tick
    assert gaps_ms.mean() == pytest.approx(12.5, abs=0.05)
    # held: the reading changes only on a tick with a fresh conversion
    changed = np.flatnonzero(np.diff(force) != 0.0) + 1
    assert set(changed.tolist()) <= set(ticks.tolist())
    assert len(changed) > 0.9 * len(ticks)  # noise: nearly every conversion is a new value


@pytest.mark.parametrize("name", list(PARTS))
def test_each_part_converts_at_its_rate(name: str) -> None:
    rig = free_rig(PARTS[name])
    _, fresh = record(rig, 1.0)
    # the firmware looks once per 1 ms tick: a faster ADC is fresh on every tick
    assert fresh.sum() == pytest.approx(min(PARTS[name].sample_hz, 1000.0), abs=1)


def test_ideal_is_fresh_every_tick() -> None:
    rig = Rig(load_lesion("soft-stenosis"), seed=0)
    assert rig.load_cell_part.ideal and rig.load_cell_sample_hz == 1000.0
    _, fresh = record(rig, 0.1)
    assert fresh.all()


def test_readings_clip_at_the_rated_load() -> None:
    # a 10 N cell on the rig, pushed against calcium well beyond 10 N
    lesion = parse_lesion(
        {
            "name": "clip",
            "start_mm": 10.0,
            "segment": [{"tissue": "calcium", "length_mm": 4.0, "crack_force_n": 25.0}],
            "load_cell": {"part": "hx717-320", "rated_load_n": 10.0},
        },
        "clip.toml",
    )
    rig = Rig(lesion, seed=0)
    assert rig.params.load_cell_full_scale_n == 10.0  # the firmware's rail follows the part
    motor_mm = rig.params.boot_depth_mm
    peak_true_n = 0.0
    readings = []
    while motor_mm < 12.0:
        motor_mm += 0.0005
        rig.step(DT_S, motor_mm, 0.0)
        peak_true_n = max(peak_true_n, rig.true_force_n)
        readings.append(rig.load_cell_force_n)
    assert peak_true_n > 15.0
    assert max(readings) == 10.0
    assert readings.count(10.0) > 100


def test_offset_and_drift_move_the_zero() -> None:
    quiet = part("hx711-80", **QUIET, mains_pickup_n=0.0)
    rig = free_rig(quiet)
    first, _ = record(rig, 0.1)
    rig.step(600.0, rig.motor_depth_mm, 0.0)  # ten minutes at rest, in one step
    later, _ = record(rig, 0.1)
    assert first[-1] == pytest.approx(quiet.offset_n, abs=0.005)
    drift_n = later[-1] - first[-1]
    assert drift_n == pytest.approx(10.0 * quiet.drift_n_per_min, rel=0.05)
    # drift= scales it; 0 removes it
    doubled = free_rig(quiet, drift_scale=2.0)
    record(doubled, 0.1)
    doubled.step(600.0, doubled.motor_depth_mm, 0.0)
    assert record(doubled, 0.1)[0][-1] - first[-1] == pytest.approx(2 * drift_n, rel=0.05)
    none = free_rig(quiet, drift_scale=0.0)
    none.step(600.0, none.motor_depth_mm, 0.0)
    assert record(none, 0.1)[0][-1] == pytest.approx(quiet.offset_n, abs=0.005)


def spectrum_peak_hz(name: str, **changes: Any) -> tuple[float, float]:
    """(frequency of the biggest peak, its amplitude in N) of the fresh samples, at rest."""
    p = part(name, **QUIET, drift_n_per_min=0.0, **changes)
    force, fresh = record(free_rig(p), 4.0)
    samples = force[fresh] - force[fresh].mean()
    amplitude = np.abs(np.fft.rfft(samples)) * 2 / len(samples)
    freqs = np.fft.rfftfreq(len(samples), 1.0 / p.sample_hz)
    k = int(np.argmax(amplitude[1:])) + 1
    return float(freqs[k]), float(amplitude[k])


def test_mains_pickup_shows_in_the_spectrum_aliased_by_the_sample_rate() -> None:
    # 50 Hz seen at 80 SPS aliases to 30 Hz; 60 Hz to 20 Hz. The conversion's mean over
    # 12.5 ms attenuates the hum to |sinc(50/80)| ≈ 0.58 of its amplitude.
    hum_n = PARTS["hx711-80"].mains_pickup_n
    f50, a50 = spectrum_peak_hz("hx711-80")
    assert f50 == pytest.approx(30.0, abs=0.5)
    assert a50 == pytest.approx(hum_n * abs(np.sinc(50 / 80)), rel=0.1)
    f60, _ = spectrum_peak_hz("hx711-80", mains_hz=60.0)
    assert f60 == pytest.approx(20.0, abs=0.5)
    # the HX711's 10 SPS conversion spans whole periods of 50 and 60 Hz: both nulled
    for mains_hz in (50.0, 60.0):
        _, a = spectrum_peak_hz("hx711-10", mains_hz=mains_hz)
        assert a < 1e-3 * hum_n + 2 * PARTS["hx711-10"].lsb_n


def test_noise_averages_down_with_a_slower_conversion() -> None:
    def rms(p: LoadCellPart, scale: float = 1.0) -> float:
        p = replace(p, mains_pickup_n=0.0, drift_n_per_min=0.0)
        force, fresh = record(free_rig(p, noise_scale=scale), 3.0)
        return float(np.std(force[fresh]))

    slow, fast = rms(PARTS["hx711-10"]), rms(PARTS["ads1220-660"])
    assert fast > 2.5 * slow  # √(100 ms / 1.5 ms) ≈ 8 in theory; 30 vs 2000 samples
    assert rms(PARTS["ads1220-660"], scale=3.0) == pytest.approx(3 * fast, rel=0.2)
    assert rms(PARTS["ads1220-660"], scale=0.0) < PARTS["ads1220-660"].lsb_n * 2


def test_quantisation_at_the_adc_code() -> None:
    coarse = part("hx711-80", lsb_n=0.01)  # noise ≈ 0.006 N rms: a few codes
    force, _ = record(free_rig(coarse), 1.0)
    codes = force / 0.01
    assert np.allclose(codes, np.round(codes), rtol=0, atol=1e-6)
    assert len(set(np.round(codes).tolist())) >= 3


@pytest.mark.parametrize("name", ["hx711-80", "ads1220-2000"])
def test_faults_of_a_part(name: str) -> None:
    p = PARTS[name]
    stuck = free_rig(p)
    record(stuck, 0.2)
    before_n = stuck.load_cell_force_n
    stuck.inject("loadcell_stuck")
    force, fresh = record(stuck, 0.5)
    assert set(force.tolist()) == {before_n} and fresh.any()  # conversions, one code

    disconnected = free_rig(p)
    disconnected.inject("loadcell_disconnected")
    force, fresh = record(disconnected, 0.5)
    assert set(force.tolist()) == {p.rated_load_n} and fresh.any()  # the rail

    silent = free_rig(p)
    record(silent, 0.2)
    before_n = silent.load_cell_force_n
    silent.inject("loadcell_silent")
    force, fresh = record(silent, 0.5)
    assert set(force.tolist()) == {before_n} and not fresh.any()  # nothing new, ever


def test_missing_samples() -> None:
    lossy = part("hx717-320", missing_fraction=0.2)
    _, fresh = record(free_rig(lossy), 2.0)
    assert fresh.sum() == pytest.approx(0.8 * 640, rel=0.1)
    gaps_ms = np.diff(np.flatnonzero(fresh))
    assert gaps_ms.max() >= 6  # two periods (3.1 ms each) and more without a sample


def test_a_lesion_file_names_its_load_cell() -> None:
    data = {"name": "x", "start_mm": 10.0, "segment": [{"tissue": "soft", "length_mm": 1.0}]}
    lesion = parse_lesion({**data, "load_cell": {"part": "hx711-80"}}, "x.toml")
    assert lesion.load_cell == PARTS["hx711-80"]
    assert Rig(lesion, seed=0).load_cell_sample_hz == 80.0
    # an explicit part wins over the file's
    assert Rig(lesion, seed=0, load_cell=PARTS["ideal"]).load_cell_sample_hz == 1000.0
    with pytest.raises(LesionError, match=r"^x\.toml: unknown load cell part 'hx999'; known: "):
        parse_lesion({**data, "load_cell": {"part": "hx999"}}, "x.toml")
    with pytest.raises(LesionError, match=r"unknown key 'gain'"):
        parse_lesion({**data, "load_cell": {"part": "hx711-80", "gain": 64}}, "x.toml")
    with pytest.raises(LesionError, match=r"sample_hz = 0\.0 must be > 0"):
        parse_lesion({**data, "load_cell": {"part": "hx711-80", "sample_hz": 0}}, "x.toml")


def test_unknown_part_is_a_one_line_error() -> None:
    with pytest.raises(
        LoadCellError, match=r"^here: unknown load cell part 'nope'; known: ideal, "
    ):
        part_from_table({"part": "nope"}, "here")
