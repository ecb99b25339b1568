"""Needle–tissue physics, driven through Rig.step directly (no firmware)."""

from __future__ import annotations

import math
from typing import Any

import pytest

from sim_device.lesions import Lesion, parse_lesion
from sim_device.physics import compile_profile, friction_at_n
from sim_device.rig_model import Rig, RigParams

DT_S = 0.001


def make_lesion(*segments: dict[str, Any], start_mm: float = 10.0) -> Lesion:
    return parse_lesion(
        {"name": "test", "start_mm": start_mm, "segment": list(segments)}, "test.toml"
    )


class Driver:
    """Moves the rig's axes like a firmware would: motor position and angle per tick."""

    def __init__(self, rig: Rig) -> None:
        self.rig = rig
        self.motor_mm = rig.params.boot_depth_mm
        self.angle_deg = 0.0
        self.t_s = 0.0

    def run(self, seconds: float, speed_mm_s: float = 0.0, rate_rpm: float = 0.0) -> None:
        for _ in range(round(seconds / DT_S)):
            self.tick(speed_mm_s, rate_rpm)

    def tick(self, speed_mm_s: float, rate_rpm: float) -> None:
        self.motor_mm += speed_mm_s * DT_S
        self.angle_deg += rate_rpm * 6.0 * DT_S
        self.t_s += DT_S
        self.rig.step(DT_S, self.motor_mm, self.angle_deg)

    def goto(self, depth_mm: float, speed_mm_s: float = 2.0, rate_rpm: float = 0.0) -> None:
        while self.motor_mm < depth_mm:
            self.tick(speed_mm_s, rate_rpm)

    def push_to_force(self, force_n: float, speed_mm_s: float = 0.5, limit_s: float = 30) -> None:
        """Advance until the true force reaches force_n, then stop the motor."""
        end_s = self.t_s + limit_s
        while self.rig.true_force_n < force_n:
            assert self.t_s < end_s, "force never reached"
            self.tick(speed_mm_s, 0.0)


FIBROUS_NO_TIP = {"tissue": "fibrous", "length_mm": 60.0, "tip_force_n": 0.0}


def steady_force_n(depth_mm: float, rate_rpm: float) -> float:
    rig = Rig(make_lesion(FIBROUS_NO_TIP), seed=0, noise_scale=0.0)
    drv = Driver(rig)
    drv.goto(depth_mm, speed_mm_s=1.0, rate_rpm=rate_rpm)
    drv.run(0.3, speed_mm_s=1.0, rate_rpm=rate_rpm)  # let the filters settle
    return rig.true_force_n


def test_friction_grows_with_inserted_length() -> None:
    shallow_n = steady_force_n(20.0, 0.0)
    deep_n = steady_force_n(50.0, 0.0)
    per_mm = 0.03  # fibrous default friction_n_per_mm
    assert deep_n > shallow_n > 0
    # grows in proportion to the inserted length (10 vs 40 mm, +0.3 mm while settling)
    assert deep_n - shallow_n == pytest.approx(30.0 * per_mm, rel=0.05)


def test_rotation_reduces_friction() -> None:
    still_n = steady_force_n(40.0, 0.0)
    rotating_n = steady_force_n(40.0, 30.0)
    ref_rpm = RigParams().friction_rotation_ref_rpm
    assert rotating_n < still_n
    assert rotating_n / still_n == pytest.approx(1.0 / (1.0 + 30.0 / ref_rpm), rel=0.05)


def test_friction_reverses_when_retracting() -> None:
    rig = Rig(make_lesion(FIBROUS_NO_TIP), seed=0, noise_scale=0.0)
    drv = Driver(rig)
    drv.goto(40.0, speed_mm_s=1.0)
    drv.run(0.3, speed_mm_s=-1.0)
    assert rig.true_force_n < -0.5  # pulling out: the shaft drags the tissue


def test_tip_force_grows_with_speed_and_drops_with_rotation() -> None:
    soft = {"tissue": "soft", "length_mm": 40.0, "friction_n_per_mm": 0.0, "tip_force_n": 1.0}

    def force(speed_mm_s: float, rate_rpm: float) -> float:
        rig = Rig(make_lesion(soft), seed=0, noise_scale=0.0)
        drv = Driver(rig)
        drv.goto(20.0)
        drv.run(0.3, speed_mm_s=speed_mm_s, rate_rpm=rate_rpm)
        return rig.true_force_n

    assert force(0.2, 0) < force(0.5, 0) < force(2.0, 0)
    assert force(0.5, 60) < force(0.5, 0)


def test_force_relaxes_when_the_advance_stops() -> None:
    rig = Rig(make_lesion(FIBROUS_NO_TIP), seed=0, noise_scale=0.0)
    drv = Driver(rig)
    drv.goto(40.0, speed_mm_s=1.0)
    moving_n = rig.true_force_n
    drv.run(1.0)
    assert 0 <= rig.true_force_n < 0.1 * moving_n


CALCIUM = {
    "tissue": "calcium",
    "length_mm": 10.0,
    "crack_force_n": 40.0,
    "min_crack_force_n": 5.0,
    "stiffness_n_per_mm": 10.0,
    "fatigue_rev": 1.0,
    "chunk_mm": 2.0,
}


def pressed_on_calcium(force_n: float, seed: int = 0) -> Driver:
    rig = Rig(make_lesion(CALCIUM), seed=seed, noise_scale=0.0)
    drv = Driver(rig)
    drv.goto(9.5)
    drv.push_to_force(force_n)
    return drv


def test_calcium_stores_force_like_a_spring_without_rotation() -> None:
    drv = pressed_on_calcium(9.0)
    rig = drv.rig
    assert rig.elastic_force_n == pytest.approx(10.0 * (rig.needle_depth_mm - 10.0), rel=1e-6)
    drv.run(20.0)  # holding without rotation grinds nothing
    assert rig.cracks == 0
    assert rig.true_force_n == pytest.approx(9.0, abs=0.1)


def test_loaded_rotation_cracks_calcium_and_the_force_drops() -> None:
    drv = pressed_on_calcium(9.0)
    rig = drv.rig
    before_n = rig.true_force_n
    forces = []
    for _ in range(30_000):
        drv.tick(0.0, 30.0)
        forces.append(rig.true_force_n)
        if rig.cracks:
            break
    assert rig.cracks == 1
    assert rig.true_force_n < before_n - 5.0  # the crack releases the stored force
    assert rig.tip_depth_mm == pytest.approx(rig.needle_depth_mm)  # tip went through the chunk
    # damage needed: threshold 5 + 35·exp(-D) ≤ ~9 N (× chunk spread ±20 %)
    revolutions = len(forces) * DT_S * 30.0 / 60.0
    assert 1.0 < revolutions < 20.0


def revolutions_to_crack(force_n: float) -> float:
    drv = pressed_on_calcium(force_n)
    ticks = 0
    while not drv.rig.cracks:
        drv.tick(0.0, 30.0)
        ticks += 1
        assert ticks < 200_000, "never cracked"
    return ticks * DT_S * 30.0 / 60.0


def test_more_load_needs_fewer_revolutions() -> None:
    assert revolutions_to_crack(12.0) < revolutions_to_crack(7.0)


def test_rotation_without_load_does_not_wear_calcium() -> None:
    rig = Rig(make_lesion(CALCIUM), seed=0, noise_scale=0.0)
    drv = Driver(rig)
    drv.goto(9.9)
    drv.run(20.0, rate_rpm=60.0)  # 20 revolutions just short of the face
    drv.push_to_force(9.0)
    drv.run(2.0)
    assert rig.cracks == 0


def test_plain_fast_push_on_dense_calcium_stalls_with_lost_steps() -> None:
    rig = Rig(make_lesion(CALCIUM), seed=0, noise_scale=0.0)
    drv = Driver(rig)
    drv.goto(9.5)
    drv.run(5.0, speed_mm_s=3.0)
    thrust_n = rig.params.thrust_limit_n
    assert rig.cracks == 0
    assert rig.true_force_n == pytest.approx(thrust_n, abs=0.5)
    assert rig.lost_mm > 10.0  # motor went on ~15 mm, the needle stopped near 13 mm
    assert rig.needle_depth_mm < 10.0 + thrust_n / 10.0 + 0.01
    encoder_mm = rig.encoder_depth_mm
    drv.run(1.0, speed_mm_s=3.0)
    assert rig.encoder_depth_mm == encoder_mm  # the encoder stops with the needle


def test_uncrossable_lesion_ends_in_a_stall() -> None:
    from sim_device.lesions import load_lesion

    lesion = load_lesion("uncrossable")
    rig = Rig(lesion, seed=0)
    drv = Driver(rig)
    drv.goto(lesion.start_mm - 1.0)
    drv.run(120.0, speed_mm_s=0.5, rate_rpm=30.0)  # slow, rotating, patient: still stalls
    assert rig.cracks == 0
    assert rig.lost_mm > 20.0
    assert rig.true_force_n == pytest.approx(rig.params.thrust_limit_n, abs=0.5)
    assert rig.needle_depth_mm < lesion.end_mm


def test_needle_follows_the_motor_back_after_a_stall() -> None:
    rig = Rig(make_lesion(CALCIUM), seed=0, noise_scale=0.0)
    drv = Driver(rig)
    drv.goto(9.5)
    drv.run(3.0, speed_mm_s=3.0)
    lost_mm = rig.lost_mm
    drv.run(2.0, speed_mm_s=-2.0)  # 4 mm back: off the face (3 mm compressed at 30 N)
    assert rig.lost_mm == pytest.approx(lost_mm)  # the offset stays, the needle retracts
    assert rig.true_force_n < 1.0


def test_cap_punctures_once_with_a_force_drop() -> None:
    cap = {"tissue": "cap", "length_mm": 1.0, "puncture_force_n": 3.0}
    rig = Rig(make_lesion(cap, FIBROUS_NO_TIP), seed=0, noise_scale=0.0)
    drv = Driver(rig)
    drv.goto(9.5)
    peak_n = 0.0
    while not rig.punctures:
        drv.tick(0.5, 0.0)
        peak_n = max(peak_n, rig.true_force_n)
    assert peak_n == pytest.approx(3.0, abs=0.1)
    assert rig.true_force_n < 1.0
    drv.run(2.0, speed_mm_s=0.5)
    assert rig.punctures == 1 and rig.cracks == 0


def test_profile_friction_reference_matches_segments() -> None:
    lesion = make_lesion(
        {"tissue": "soft", "length_mm": 5.0, "friction_n_per_mm": 0.1},
        {"tissue": "fibrous", "start_mm": 20.0, "length_mm": 5.0, "friction_n_per_mm": 0.2},
    )
    profile = compile_profile(lesion.segments, 0.0, lambda n: [0.0] * n)
    assert friction_at_n(profile, 5.0) == 0.0
    assert friction_at_n(profile, 12.0) == pytest.approx(0.2)
    assert friction_at_n(profile, 18.0) == pytest.approx(0.5)  # the gap adds nothing
    assert friction_at_n(profile, 22.0) == pytest.approx(0.9)
    assert friction_at_n(profile, 100.0) == pytest.approx(1.5)


def test_dt_does_not_change_the_outcome_much() -> None:
    def crack_time_s(dt_s: float) -> float:
        rig = Rig(make_lesion(CALCIUM), seed=3, noise_scale=0.0)
        motor_mm, angle_deg, t_s = rig.params.boot_depth_mm, 0.0, 0.0
        while not rig.cracks:
            if rig.true_force_n < 9.0:
                motor_mm += 0.5 * dt_s
            angle_deg += 180.0 * dt_s
            t_s += dt_s
            rig.step(dt_s, motor_mm, angle_deg)
            assert t_s < 100
        return t_s

    assert crack_time_s(0.005) == pytest.approx(crack_time_s(0.001), rel=0.05)


def test_bad_dt_is_refused() -> None:
    rig = Rig(make_lesion(CALCIUM), seed=0)
    with pytest.raises(ValueError, match="dt_s"):
        rig.step(0.0, 1.0, 0.0)
    assert math.isfinite(rig.needle_depth_mm)


ECCENTRIC = dict(CALCIUM, arc_deg=120.0, arc_center_deg=90.0)


def oscillate_until_crack(centre_deg: float, seconds: float) -> Rig:
    """Hold 9 N on eccentric calcium and oscillate the bevel ±40° around centre_deg."""
    rig = Rig(make_lesion(ECCENTRIC), seed=0, noise_scale=0.0)
    drv = Driver(rig)
    drv.goto(9.5)
    drv.push_to_force(9.0)
    for k in range(round(seconds / DT_S)):
        angle_deg = centre_deg + 40.0 * math.sin(2 * math.pi * 0.5 * k * DT_S)
        rig.step(DT_S, drv.motor_mm, angle_deg)
        if rig.cracks:
            break
    return rig


def test_eccentric_calcium_wears_only_while_the_bevel_faces_it() -> None:
    assert oscillate_until_crack(90.0, 60.0).cracks == 1  # facing the arc
    assert oscillate_until_crack(270.0, 60.0).cracks == 0  # facing the soft side


def test_eccentric_calcium_needs_more_turns_than_concentric() -> None:
    def revolutions(segment: dict[str, Any]) -> float:
        rig = Rig(make_lesion(segment), seed=0, noise_scale=0.0)
        drv = Driver(rig)
        drv.goto(9.5)
        drv.push_to_force(9.0)
        start_s = drv.t_s
        while not rig.cracks:
            drv.tick(0.0, 30.0)
            assert drv.t_s - start_s < 200
        return (drv.t_s - start_s) * 30.0 / 60.0

    concentric = revolutions(CALCIUM)
    eccentric = revolutions(ECCENTRIC)
    assert 2.0 * concentric < eccentric < 4.0 * concentric  # a 120° arc: ~1/3 of each turn
