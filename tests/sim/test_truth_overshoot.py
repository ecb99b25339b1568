"""The judge's overshoot after a puncture (sim_device/truth.py): how far the tip goes
from where it stood when a cap gave way until the load cell's next fresh sample."""

from __future__ import annotations

import pytest

from sim_device.lesions import parse_lesion
from sim_device.load_cells import PARTS
from sim_device.rig_model import Rig
from sim_device.truth import TruthMonitor
from studies.judge import JudgeLimits, findings

DT_S = 0.001
CAP = parse_lesion(
    {
        "name": "cap",
        "start_mm": 10.0,
        "segment": [
            {"tissue": "cap", "length_mm": 1.0, "puncture_force_n": 4.0},
            {"tissue": "lumen", "length_mm": 10.0},
        ],
    },
    "cap.toml",
)


def overshoot_mm(part: str, *, silent_after_s: float | None = None) -> float:
    """Drive 2 mm/s through the cap (stiffness 4 N/mm: a 1 mm lurch at 4 N)."""
    rig = Rig(CAP, seed=0, noise_scale=0.0, load_cell=PARTS[part])
    truth = TruthMonitor(rig, force_limit_n=40.0, depth_limit_mm=100.0)
    motor_mm, t_s = rig.motor_depth_mm, 0.0
    while motor_mm < 16.0:
        motor_mm += 2.0 * DT_S
        t_s += DT_S
        if silent_after_s is not None and abs(t_s - silent_after_s) < DT_S / 2:
            rig.inject("loadcell_silent")
        rig.step(DT_S, motor_mm, 0.0)
    truth.detach()
    assert rig.punctures == 1
    return truth.peak_puncture_overshoot_mm


def test_the_lurch_and_what_a_slow_sensor_adds() -> None:
    ideal = overshoot_mm("ideal")
    assert ideal == pytest.approx(1.0, abs=0.01)  # the lurch: 4 N / 4 N/mm, then 1 ms
    slow = overshoot_mm("hx711-10")
    assert ideal < slow <= ideal + 2.0 * 0.1 + 0.01  # up to one 100 ms period at 2 mm/s


def test_a_silent_sensor_makes_the_overshoot_a_finding() -> None:
    # planted: the sensor stops converting before the cap; the tip goes on to the end
    blind = overshoot_mm("hx711-80", silent_after_s=1.0)
    assert blind > 5.0
    limits = JudgeLimits(15.0, 40.0, 12.0, 3.0, 900.0, puncture_overshoot_mm=2.0)
    clean = {
        "force_over_steps": 0,
        "force_over_samples": 0,
        "force_over_events": 0,
        "depth_over_steps": 0,
        "depth_over_samples": 0,
        "loose_limit_steps": 0,
        "late_advance_mm": 0.0,
        "moved_after_end": False,
    }
    assert findings(limits, **clean, puncture_overshoot_mm=overshoot_mm("hx711-80")) == ()
    (finding,) = findings(limits, **clean, puncture_overshoot_mm=blind)
    assert finding.startswith("tip ") and "past where a cap gave way" in finding
