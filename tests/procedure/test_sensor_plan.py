"""The procedure's rules for its load cell (firmware_host/procedure/sensor.py): how fast
it may advance between two fresh samples, and the latency its ceiling allows for."""

from __future__ import annotations

import dataclasses
from types import SimpleNamespace

import pytest

from firmware_host.procedure.profile import load_profile
from firmware_host.procedure.sensor import (
    IDEAL_SAMPLE_HZ,
    SensorRefused,
    plan_for,
    sample_hz_of,
)


def test_an_ideal_sensor_changes_nothing() -> None:
    p = load_profile("pierce")
    plan = plan_for(p, IDEAL_SAMPLE_HZ)
    assert (plan.approach_speed_mm_s, plan.speed_mm_s) == (2.0, 0.5)
    assert not plan.capped and plan.latency_s == 0.0


def test_a_slow_sensor_slows_the_advance() -> None:
    p = load_profile("pierce")
    plan = plan_for(p, 10.0)  # 25 µm × 10 Hz = 0.25 mm/s
    assert plan.approach_speed_mm_s == pytest.approx(0.25)
    assert plan.speed_mm_s == pytest.approx(0.25)
    assert plan.capped
    assert plan.latency_s == pytest.approx(0.15 - 0.0015)
    # an HX711 at 80 Hz allows the default profile as it is (2 mm/s = 25 µm a sample)
    assert not plan_for(p, 80.0).capped


def test_a_profile_that_says_refuse_is_refused_in_one_line() -> None:
    p = load_profile("pierce")
    strict = dataclasses.replace(p, sensor=dataclasses.replace(p.sensor, on_slow_sensor="refuse"))
    with pytest.raises(SensorRefused) as err:
        plan_for(strict, 10.0)
    msg = str(err.value)
    assert "\n" not in msg
    assert msg == (
        "profile pierce: [advance] approach_speed_mm_s = 2 mm/s moves the needle 200 µm "
        "between two fresh samples of the device's 10 Hz load cell, more than [sensor] "
        "max_mm_per_sample = 25 µm: advance at most 0.25 mm/s "
        '(or set [sensor] on_slow_sensor = "slow")'
    )
    assert not plan_for(strict, 80.0).capped  # fast enough: not refused


def test_the_rate_comes_from_identity() -> None:
    assert sample_hz_of(SimpleNamespace(load_cell_sample_hz=80.0)) == 80.0
    assert sample_hz_of(SimpleNamespace()) == IDEAL_SAMPLE_HZ  # a device that does not say
    assert sample_hz_of(SimpleNamespace(load_cell_sample_hz=0)) == IDEAL_SAMPLE_HZ
