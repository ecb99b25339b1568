"""The rig's mechanics beyond the ideal: backlash, encoder resolution, steps lost above
the thrust, and the tissue winding of rotation (Lin & Huang 2020). Rig.step directly."""

from __future__ import annotations

import pytest

from sim_device.lesions import Lesion, load_lesion, parse_lesion
from sim_device.rig_model import Rig, RigParams

DT_S = 0.001


def drive(rig: Rig, to_mm: float, speed_mm_s: float = 1.0) -> None:
    motor_mm = rig.motor_depth_mm
    step_mm = speed_mm_s * DT_S * (1 if to_mm > motor_mm else -1)
    while abs(to_mm - motor_mm) > abs(step_mm) / 2:
        motor_mm += step_mm
        rig.step(DT_S, motor_mm, rig.angle_deg)


def test_backlash_a_reversal_turns_the_motor_for_nothing() -> None:
    rig = Rig(load_lesion("soft-stenosis"), seed=0, params=RigParams(backlash_mm=0.05))
    drive(rig, 5.0)  # forward: the gap is taken up at the start
    needle_mm = rig.needle_depth_mm
    assert needle_mm == pytest.approx(5.0 - 0.05, abs=1e-6)
    drive(rig, 4.5)  # reverse 0.5 mm: the first 0.05 mm moves nothing
    assert needle_mm - rig.needle_depth_mm == pytest.approx(0.45, abs=1e-6)
    drive(rig, 4.52)  # 20 µm forward, within the gap: no motion at all
    assert rig.needle_depth_mm == pytest.approx(needle_mm - 0.45, abs=1e-6)
    # without backlash (the default) the needle follows the motor exactly
    ideal = Rig(load_lesion("soft-stenosis"), seed=0)
    drive(ideal, 5.0)
    drive(ideal, 4.5)
    assert ideal.needle_depth_mm == pytest.approx(4.5, abs=1e-6)


def test_encoder_reads_in_its_resolution() -> None:
    rig = Rig(load_lesion("soft-stenosis"), seed=0, params=RigParams(encoder_resolution_um=25))
    seen = set()
    motor_mm = rig.motor_depth_mm
    for _ in range(300):
        motor_mm += 0.0007
        rig.step(DT_S, motor_mm, 0.0)
        counts = rig.encoder_depth_mm / 0.025
        assert counts == pytest.approx(round(counts), abs=1e-9)
        assert abs(rig.encoder_depth_mm - rig.needle_depth_mm) <= 0.0125 + 1e-9
        seen.add(round(counts))
    assert len(seen) >= 8  # 0.21 mm of travel in 25 µm counts


def calcium_wall(crack_force_n: float) -> Lesion:
    return parse_lesion(
        {
            "name": "wall",
            "start_mm": 10.0,
            "segment": [
                {
                    "tissue": "calcium",
                    "length_mm": 4.0,
                    "crack_force_n": crack_force_n,
                    "min_crack_force_n": crack_force_n,
                }
            ],
        },
        "wall.toml",
    )


def test_steps_are_lost_above_the_thrust() -> None:
    rig = Rig(calcium_wall(100.0), seed=0, noise_scale=0.0, params=RigParams(thrust_limit_n=20))
    drive(rig, 14.0, speed_mm_s=0.5)
    assert rig.true_force_n <= 20.0 + 1e-9  # the stage cannot push harder
    assert rig.true_force_n > 19.0
    assert rig.lost_mm > 1.0  # the count went on, the needle did not
    assert rig.encoder_depth_mm == pytest.approx(rig.needle_depth_mm, abs=0.001)
    assert rig.needle_depth_mm < 12.1  # 10 mm face + 20 N / 10 N/mm


def rotate_in_tissue(pattern: str, seconds: float, rate_rpm: float = 30.0, **params: float) -> Rig:
    """Needle 5 mm into fibrous tissue, at rest axially, rotating continuously or
    oscillating ±180° at the same |rate|."""
    lesion = parse_lesion(
        {"name": "f", "start_mm": 5.0, "segment": [{"tissue": "fibrous", "length_mm": 40.0}]},
        "f.toml",
    )
    rig = Rig(lesion, seed=0, noise_scale=0.0, params=RigParams(track_winding=True, **params))
    drive(rig, 10.0)
    step_deg = rate_rpm * 6.0 * DT_S
    direction = 1.0
    angle = 0.0
    for _ in range(round(seconds / DT_S)):
        if pattern == "oscillate" and abs(angle + direction * step_deg) > 180.0:
            direction = -direction
        angle += direction * step_deg
        rig.step(DT_S, rig.motor_depth_mm, angle)
    return rig


def test_rotation_winds_the_tissue_and_reversal_unwinds_it() -> None:
    continuous = rotate_in_tissue("continuous", 10.0)
    oscillating = rotate_in_tissue("oscillate", 10.0)
    # 30 rpm for 10 s = 5 turns; with 5 s relaxation the twist settles near
    # rate × τ × (1 - e^-2) ≈ 2.2 turns; ±180° holds about half a turn
    assert continuous.peak_wind_rev == pytest.approx(2.5 * (1 - 2.718281828**-2), rel=0.05)
    assert oscillating.peak_wind_rev < 0.6  # ±half a turn, a little relaxed
    assert continuous.peak_wind_rev > 3 * oscillating.peak_wind_rev
    # reversing unwinds: 5 turns back brings the twist through zero
    assert continuous.wind_rev > 0
    rig = continuous
    angle = rig.angle_deg
    for _ in range(3000):
        angle -= 30.0 * 6.0 * DT_S
        rig.step(DT_S, rig.motor_depth_mm, angle)
    assert rig.wind_rev < 0.5 * continuous.peak_wind_rev


def test_winding_tightens_the_tissue_only_with_a_gain() -> None:
    def friction_after(pattern: str, gain: float) -> float:
        rig = rotate_in_tissue(pattern, 10.0, wind_friction_gain=gain)
        # pull back slowly: the friction the shaft meets now
        drive(rig, 9.8, speed_mm_s=0.2)
        return abs(rig.true_force_n)

    neutral = friction_after("continuous", 0.0)
    assert friction_after("oscillate", 0.0) == pytest.approx(neutral, rel=0.02)
    wound = friction_after("continuous", 0.2)
    assert wound > 1.3 * neutral  # ≈ 2.2 turns × 0.2
    assert friction_after("oscillate", 0.2) < 1.1 * neutral
