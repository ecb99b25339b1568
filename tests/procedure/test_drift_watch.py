"""The procedure's drift watch (firmware_host/procedure/drift.py): a reading walking
steadily down at rest is a drifting cell; a crack, noise, a slow relaxation are not; a
pull while advancing is. Fed synthetic fresh samples: no simulator, milliseconds."""

from __future__ import annotations

import numpy as np
import pytest

from firmware_host.procedure.drift import ADVANCING_FLOOR_N, DriftWatch, FloorWatch

pytestmark = pytest.mark.control("RC-DRIFTWATCH")


def _first_alarm_s(watch: DriftWatch, t_s: np.ndarray, force_n: np.ndarray) -> float | None:
    for t, f in zip(t_s.tolist(), force_n.tolist(), strict=True):
        if watch.update(t, f) is not None:
            return float(t)
    return None


@pytest.mark.parametrize("sample_hz", [1000.0, 80.0])
def test_a_reading_drifting_down_at_2_n_s_is_caught_within_half_a_second(
    sample_hz: float,
) -> None:
    rng = np.random.default_rng(1)
    t = np.arange(0.0, 3.0, 1.0 / sample_hz)
    # 6 N held against calcium, noise 0.03 N RMS; the drift begins at 1 s
    f = 6.0 + rng.normal(0.0, 0.03, t.size) - 2.0 * np.clip(t - 1.0, 0.0, None)
    at_s = _first_alarm_s(DriftWatch(1.0, 1.0 / sample_hz), t, f)
    assert at_s is not None and 1.0 < at_s <= 1.5


def test_a_crack_noise_and_a_slow_relaxation_are_not_drift() -> None:
    rng = np.random.default_rng(2)
    t = np.arange(0.0, 20.0, 0.001)
    noise = rng.normal(0.0, 0.05, t.size)
    crack = np.where(t < 5.0, 8.0, 5.0)  # 3 N gone at once, then steady
    relax = 8.0 - 0.5 * t.clip(None, 10.0)  # 0.5 N/s for 10 s: under the 1 N/s bound
    for force in (crack + noise, relax + noise, 0.2 + noise):
        assert _first_alarm_s(DriftWatch(1.0, 0.001), t, force) is None


def test_the_watch_restarts_when_the_needle_moves() -> None:
    watch = DriftWatch(1.0, 0.001)
    t = np.arange(0.0, 0.3, 0.001)
    assert _first_alarm_s(watch, t, 5.0 - 2.0 * t) is None
    watch.reset()  # moving: what fell before no longer counts
    t2 = np.arange(0.3, 0.6, 0.001)
    assert _first_alarm_s(watch, t2, 5.0 - 2.0 * t2) is None


def test_a_pull_while_advancing_is_drift_and_a_light_load_is_not() -> None:
    floor = FloorWatch()
    assert floor.update(ADVANCING_FLOOR_N + 0.01) is None and floor.update(0.0) is None
    # one sample below (an advance closing on a gripping tissue at rest) is not yet
    assert floor.update(ADVANCING_FLOOR_N - 0.01) is None
    assert floor.update(0.1) is None
    assert floor.update(ADVANCING_FLOOR_N - 0.01) is None
    drift = floor.update(ADVANCING_FLOOR_N - 0.02)
    assert drift is not None
    assert "drifting" in drift.words() and "advanced" in drift.words()
