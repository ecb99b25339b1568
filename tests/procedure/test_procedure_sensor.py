"""The PIERCE procedure with a bench's load cell (issue 18), on sim:// with the firmware's
fresh bit: it slows to what its sensor allows, holds at the ceiling in true force, acts
on fresh samples only, and a profile that says so is refused before any motion."""

from __future__ import annotations

from pathlib import Path
from types import SimpleNamespace
from typing import Any

import numpy as np
import pytest

from firmware_host.client import NeedleDriver
from firmware_host.procedure import run_procedure
from firmware_host.procedure.loop import ProcedureError, _Ended, _Run
from firmware_host.procedure.profile import load_profile
from firmware_host.procedure.sensor import plan_for
from firmware_host.telemetry import TELEMETRY_DTYPE
from sim_device.lesions import parse_lesion, registered

# one calcium block of two chunks near the start: a few holds, a short run
BLOCK = parse_lesion(
    {
        "name": "sensor-block",
        "start_mm": 8.0,
        "segment": [
            {"tissue": "fibrous", "length_mm": 1.0},
            {"tissue": "calcium", "length_mm": 3.0, "chunk_mm": 1.5},
            {"tissue": "fibrous", "length_mm": 1.0},
        ],
    },
    "sensor-block.toml",
)
TARGET_MM = 15.0


class Watch:
    """A recorder that notes the true force at each hold_start, and the needle's forward
    travel in every 100 ms of the run (the rig's truth)."""

    def __init__(self, rig: Any) -> None:
        self.rig = rig
        self.notes: dict[str, list[dict[str, Any]]] = {}
        self.true_at_hold_n: list[float] = []
        self.depths_mm: list[float] = []
        inner = rig.step
        t = [0.0]

        def step(dt_s: float, motor_mm: float, angle_deg: float) -> None:
            inner(dt_s, motor_mm, angle_deg)
            t[0] += dt_s
            while t[0] >= 0.1:
                t[0] -= 0.1
                self.depths_mm.append(rig.needle_depth_mm)

        rig.step = step

    def note(self, kind: str, **fields: Any) -> None:
        self.notes.setdefault(kind, []).append(fields)
        if kind == "hold_start":
            self.true_at_hold_n.append(self.rig.true_force_n)


def run(part: str) -> tuple[Any, Watch]:
    with registered(BLOCK) as name:
        url = f"sim://?lesion={name}&load_cell={part}&seed=2"
        with NeedleDriver.open(url) as nd:
            watch = Watch(nd.link.transport.port.sim.rig)
            out = run_procedure(nd, "pierce", target_depth_mm=TARGET_MM, recorder=watch)
    return out, watch


@pytest.fixture(scope="module")
def ideal() -> tuple[Any, Watch]:
    return run("ideal")


@pytest.fixture(scope="module")
def hx711_10() -> tuple[Any, Watch]:
    return run("hx711-10")


def test_a_10_hz_sensor_slows_the_advance_to_25_um_a_sample(hx711_10: Any) -> None:
    out, watch = hx711_10
    assert out.result.value == "crossed", out.reason
    (sensor,) = watch.notes["sensor"]
    assert sensor["sample_hz"] == 10.0 and sensor["capped"] is True
    assert sensor["approach_speed_mm_s"] == pytest.approx(0.25)
    forward_mm = np.diff(watch.depths_mm)
    # at most 0.25 mm/s: 25 µm in 100 ms, and a microstep of rounding
    assert forward_mm.max() <= 0.025 + 0.001
    assert forward_mm.max() >= 0.024  # it does advance at that speed


def test_the_ideal_sensor_is_not_slowed(ideal: Any) -> None:
    out, watch = ideal
    assert out.result.value == "crossed", out.reason
    (sensor,) = watch.notes["sensor"]
    assert sensor["capped"] is False and sensor["latency_s"] == 0.0
    assert np.diff(watch.depths_mm).max() > 0.15  # the 2 mm/s approach


def test_holds_begin_at_the_ceiling_in_true_force_whatever_the_sensor(
    ideal: Any, hx711_10: Any
) -> None:
    # 100 ms between conversions: without the latency allowance the true force runs
    # ~0.2 N past where the ideal sensor's holds begin
    ceiling_n = load_profile("pierce").advance.force_ceiling_n
    slow = hx711_10[1].true_at_hold_n
    assert len(slow) >= 2
    assert max(slow) <= max(ideal[1].true_at_hold_n) + 0.02
    assert min(slow) >= ceiling_n - 0.6  # not needlessly early either


def test_a_profile_that_refuses_a_slow_sensor_refuses_before_any_motion(tmp_path: Path) -> None:
    strict = tmp_path / "strict.toml"
    strict.write_text('name = "strict"\n[sensor]\non_slow_sensor = "refuse"\n')
    with (
        registered(BLOCK) as name,
        NeedleDriver.open(f"sim://?lesion={name}&load_cell=hx711-10") as nd,
    ):
        rig = nd.link.transport.port.sim.rig
        before_mm = rig.needle_depth_mm
        with pytest.raises(ProcedureError, match=r"^profile strict: \[advance\] approach"):
            run_procedure(nd, str(strict), target_depth_mm=TARGET_MM)
        assert rig.needle_depth_mm == before_mm and rig.angle_deg == 0.0


def fake_run(sample_hz: float) -> tuple[_Run, list[float]]:
    """A _Run on a clock the test turns (no device): for the sensing rules alone."""
    now = [0.0]
    driver = SimpleNamespace(clock=SimpleNamespace(monotonic=lambda: now[0]))
    p = load_profile("pierce")
    return _Run(driver, p, 10.0, None, None, None, plan_for(p, sample_hz)), now


def rows(force_n: list[float], fresh: list[bool]) -> Any:
    r = np.zeros(len(force_n), dtype=TELEMETRY_DTYPE)
    r["force_n"] = force_n
    r["force_fresh"] = fresh
    return r


def test_held_samples_are_never_new_readings() -> None:
    run_, now = fake_run(80.0)
    # held samples carry the last conversion; make them differ to see they are ignored
    run_._on_samples(rows([1.0] + [9.0] * 12, [True] + [False] * 12))
    run_.sense()
    assert run_.force_n == 1.0 and run_.peak_force_n == 1.0
    assert run_.fresh_now
    now[0] += 0.01
    run_._on_samples(rows([9.0] * 10, [False] * 10))
    run_.sense()
    assert not run_.fresh_now and run_.force_n == 1.0  # a drop to 9 N never seen


def test_no_fresh_sample_for_three_periods_ends_the_run() -> None:
    run_, now = fake_run(10.0)
    run_._on_samples(rows([1.0], [True]))
    run_.sense()
    for _ in range(49):  # 0.49 s of held samples: three 100 ms periods, but not 0.5 s
        now[0] += 0.01
        run_._on_samples(rows([1.0] * 10, [False] * 10))
        run_.sense()
    now[0] += 0.02
    run_._on_samples(rows([1.0] * 10, [False] * 10))
    with pytest.raises(_Ended) as end:
        run_.sense()
    assert end.value.result.value == "fault"
    assert "no fresh load-cell sample for 0.5 s" in end.value.reason


def test_a_slow_quiet_sensor_repeating_a_code_is_not_frozen() -> None:
    run_, now = fake_run(10.0)
    for _ in range(8):  # 8 conversions, 0.8 s, one code: fewer than 20 samples
        now[0] += 0.1
        run_._on_samples(rows([1.0], [True]))
        run_.sense()
    assert run_.force_n == 1.0
    for _ in range(20):  # a stuck one: 20 conversions, 2 s
        now[0] += 0.1
        run_._on_samples(rows([1.0], [True]))
        if run_.frozen_samples + 1 >= 20:
            with pytest.raises(_Ended, match="frozen"):
                run_.sense()
            return
        run_.sense()
    pytest.fail("a stuck sensor was never called frozen")
