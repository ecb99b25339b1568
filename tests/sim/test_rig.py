"""Rig mechanics and sensors: limits, home switch, load cell, encoder, faults, determinism."""

from __future__ import annotations

import math
import statistics

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from sim_device.lesions import load_lesion
from sim_device.rig_model import FAULTS, Rig, RigParams

DT_S = 0.001


def free_rig(seed: int = 0, noise_scale: float = 1.0) -> Rig:
    """A rig whose needle stays in free space (the lesion starts at 20 mm)."""
    return Rig(load_lesion("soft-stenosis"), seed=seed, noise_scale=noise_scale)


def test_boots_unhomed_at_the_boot_depth() -> None:
    rig = free_rig()
    assert rig.needle_depth_mm == RigParams().boot_depth_mm > 0
    assert not rig.home_switch
    assert rig.encoder_depth_mm == pytest.approx(rig.needle_depth_mm)


def test_home_switch_hard_stop_and_hysteresis() -> None:
    rig = free_rig()
    motor_mm = rig.params.boot_depth_mm
    while motor_mm > -1.0:  # drive 1 mm past the switch
        motor_mm -= 0.002
        rig.step(DT_S, motor_mm, 0.0)
    assert rig.needle_depth_mm == 0.0  # hard stop
    assert rig.home_switch
    assert rig.lost_mm == pytest.approx(-1.0, abs=0.003)
    # the firmware zeroes its count at the switch: a few µm of rezero do not open the switch
    rig.step(DT_S, motor_mm + 0.005, 0.0)
    assert rig.home_switch
    for _ in range(100):
        motor_mm += 0.002
        rig.step(DT_S, motor_mm, 0.0)
    assert not rig.home_switch


def test_far_hard_stop() -> None:
    rig = free_rig()
    for i in range(1, 1000):
        rig.step(DT_S, 3.0 + i * 0.4, 0.0)  # 400 mm/s: far past the travel limit
    assert rig.needle_depth_mm <= rig.params.travel_limit_mm


def test_a_big_jump_in_the_motor_count_is_a_rereference_not_motion() -> None:
    rig = free_rig()
    rig.step(DT_S, 0.0, 0.0)  # firmware started its count at 0, not at the boot depth
    assert rig.needle_depth_mm == RigParams().boot_depth_mm
    rig.step(DT_S, 0.001, 0.0)
    assert rig.needle_depth_mm == pytest.approx(RigParams().boot_depth_mm + 0.001)
    rig.rebase_motor(50.0)
    rig.step(DT_S, 50.0, 0.0)
    assert rig.needle_depth_mm == pytest.approx(RigParams().boot_depth_mm + 0.001)


@settings(max_examples=60, deadline=None)
@given(
    st.lists(
        st.tuples(st.floats(-1.0, 1.0), st.floats(-20.0, 20.0), st.integers(1, 200)),
        min_size=1,
        max_size=20,
    ),
    st.sampled_from(["uncrossable", "dense-calcified-cto", "fibrous-cto"]),
)
def test_needle_never_passes_a_hard_limit(
    moves: list[tuple[float, float, int]], lesion_name: str
) -> None:
    rig = Rig(load_lesion(lesion_name), seed=0)
    motor_mm = rig.params.boot_depth_mm
    angle_deg = 0.0
    for step_mm, step_deg, ticks in moves:
        for _ in range(ticks):
            motor_mm += step_mm * 0.4  # up to 400 mm/s: beyond any sane command
            angle_deg += step_deg
            rig.step(DT_S, motor_mm, angle_deg)
            assert 0.0 <= rig.needle_depth_mm <= rig.params.travel_limit_mm
            assert rig.true_force_n <= rig.params.thrust_limit_n + 1.0
            assert math.isfinite(rig.load_cell_force_n)


def settle_and_read(rig: Rig, ticks: int) -> list[float]:
    readings = []
    for _ in range(ticks):
        rig.step(DT_S, rig.params.boot_depth_mm, 0.0)
        readings.append(rig.load_cell_force_n)
    return readings


def test_load_cell_offset_noise_and_quantisation_as_configured() -> None:
    params = RigParams(load_cell_offset_n=0.12, load_cell_noise_rms_n=0.03, load_cell_lsb_n=0.004)
    rig = Rig(load_lesion("soft-stenosis"), seed=5, params=params)
    readings = settle_and_read(rig, 20_000)
    assert statistics.fmean(readings) == pytest.approx(0.12, abs=0.003)
    # quantisation adds lsb²/12 of variance
    expected_rms = math.sqrt(0.03**2 + 0.004**2 / 12)
    assert statistics.pstdev(readings) == pytest.approx(expected_rms, rel=0.05)
    for x in readings:
        assert x / 0.004 == pytest.approx(round(x / 0.004), abs=1e-6)


def test_noise_scale_multiplies_the_noise() -> None:
    quiet = statistics.pstdev(settle_and_read(free_rig(noise_scale=0.5), 10_000))
    loud = statistics.pstdev(settle_and_read(free_rig(noise_scale=2.0), 10_000))
    assert loud / quiet == pytest.approx(4.0, rel=0.1)
    silent = settle_and_read(free_rig(noise_scale=0.0), 100)
    assert set(silent) == {round(RigParams().load_cell_offset_n / 0.001) * 0.001}


def test_load_cell_bandwidth_lags_a_force_drop() -> None:
    """A crack drops the true force in one tick; the reading follows at the set bandwidth."""
    rig = Rig(load_lesion("dense-calcified-cto"), seed=0, noise_scale=0.0)
    motor_mm, angle_deg = rig.params.boot_depth_mm, 0.0
    while rig.true_force_n < 9.0 or rig.punctures == 0:  # through the cap, onto the calcium
        motor_mm += 0.002
        rig.step(DT_S, motor_mm, angle_deg)
    for _ in range(50):
        rig.step(DT_S, motor_mm, angle_deg)
    while not rig.cracks:
        angle_deg += 0.36  # 60 rpm
        rig.step(DT_S, motor_mm, angle_deg)
    true_n = rig.true_force_n
    read_n = rig.load_cell_force_n - rig.params.load_cell_offset_n
    decay = math.exp(-2 * math.pi * rig.params.load_cell_bandwidth_hz * DT_S)
    # the reading moved from ~9 N only (1 - decay) of the way to the new force
    assert true_n < 2.0
    assert read_n - true_n == pytest.approx((9.0 - true_n) * decay, abs=0.3)


def test_encoder_is_quantised_to_its_resolution() -> None:
    params = RigParams(encoder_resolution_um=5.0)
    rig = Rig(load_lesion("soft-stenosis"), seed=0, params=params)
    rig.step(DT_S, 3.0123, 0.0)
    assert rig.needle_depth_mm == pytest.approx(3.0123)
    assert rig.encoder_depth_mm == pytest.approx(3.010)


def test_same_seed_same_run_other_seed_other_noise() -> None:
    def run(seed: int) -> list[tuple[float, float, int]]:
        rig = Rig(load_lesion("dense-calcified-cto"), seed=seed)
        out = []
        motor_mm, angle_deg = rig.params.boot_depth_mm, 0.0
        for _ in range(60_000):
            if rig.load_cell_force_n < 9.0:
                motor_mm += 0.0008
            angle_deg += 0.18
            rig.step(DT_S, motor_mm, angle_deg)
            out.append((rig.load_cell_force_n, rig.encoder_depth_mm, rig.cracks))
        return out

    first = run(7)
    assert first == run(7)
    assert first != run(8)
    assert first[-1][2] > 0  # the run did reach and crack the calcium


@pytest.mark.parametrize("fault", FAULTS)
def test_faults(fault: str) -> None:
    rig = free_rig()
    motor_mm = rig.params.boot_depth_mm
    for _ in range(100):
        motor_mm += 0.001
        rig.step(DT_S, motor_mm, 0.0)
    force_before_n = rig.load_cell_force_n
    encoder_before_mm = rig.encoder_depth_mm
    needle_before_mm = rig.needle_depth_mm
    rig.inject(fault)
    readings = []
    fresh = []
    for _ in range(200):
        motor_mm += 0.001
        rig.step(DT_S, motor_mm, 0.0)
        readings.append(rig.load_cell_force_n)
        fresh.append(rig.load_cell_fresh)
    assert fault in rig.faults
    if fault == "loadcell_stuck":
        assert set(readings) == {force_before_n}
        assert all(fresh)  # the ADC goes on converting, to the same code
    elif fault == "loadcell_silent":
        assert set(readings) == {force_before_n}
        assert not any(fresh)  # no conversion completes: every reading is held
    elif fault == "loadcell_disconnected":
        assert set(readings) == {rig.params.load_cell_full_scale_n}
    elif fault == "encoder_lost":
        assert rig.encoder_depth_mm == encoder_before_mm
        assert rig.needle_depth_mm == pytest.approx(needle_before_mm + 0.2)
    else:  # motor_stall: the count goes on, the needle does not
        assert rig.needle_depth_mm == needle_before_mm
        assert rig.encoder_depth_mm == encoder_before_mm
        assert rig.lost_mm == pytest.approx(0.2)


def test_unknown_fault_is_refused() -> None:
    with pytest.raises(ValueError, match="unknown rig fault 'gremlins'"):
        free_rig().inject("gremlins")


def test_rotation_rate_is_derived_from_the_angle() -> None:
    rig = free_rig()
    angle_deg = 0.0
    for _ in range(500):
        angle_deg -= 30.0 * 6.0 * DT_S  # 30 rpm, either direction counts
        rig.step(DT_S, rig.params.boot_depth_mm, angle_deg)
    assert rig.rotation_rate_rpm == pytest.approx(30.0, rel=0.01)
