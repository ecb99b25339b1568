"""The suite's judges: how it counts telemetry samples and reads stop times. A suite that
miscounts would pass a device that loses samples."""

from __future__ import annotations

import numpy as np

from hil_tests.measure import (
    advance_stopped_at_us,
    encoder_stopped_at_us,
    force_held_since_us,
    gaps,
)
from hil_tests.wire import KEPT_SAMPLE_DTYPE, TelemetryLog
from protocol import Telemetry, TelemetrySample, pack_samples


def _batch(first: int, t0_us: int, n: int = 10, depth0: int = 0) -> Telemetry:
    samples = [
        TelemetrySample((t0_us + i * 1000) & 0xFFFF_FFFF, depth0 + i, depth0 + i, 0, 0, 3, 0, 1)
        for i in range(n)
    ]
    return Telemetry(first, pack_samples(samples))


def test_counter_gaps_and_repeats_are_counted() -> None:
    log = TelemetryLog()
    log.add(_batch(0, 0))
    log.add(_batch(10, 10_000))
    log.add(_batch(25, 25_000))  # 5 samples lost
    log.add(_batch(25, 35_000))  # counter stuck: 10 repeated
    assert log.count == 40
    assert log.lost == 5
    assert log.repeated == 10
    numbers = log.since()["number"]
    assert gaps(numbers[:30]) == 5


def test_device_time_unwraps_past_u32() -> None:
    log = TelemetryLog()
    start = 0xFFFF_FFFF - 4_500  # wraps inside the first batch
    log.add(_batch(0, start))
    log.add(_batch(10, start + 10_000))
    t = log.since()["t_us"].astype(np.int64)
    assert np.all(np.diff(t) == 1000)
    assert int(t[-1]) == start + 19_000  # beyond 2**32, unwrapped


def _samples(cmd: list[int], enc: list[int]) -> np.ndarray:
    arr = np.zeros(len(cmd), dtype=KEPT_SAMPLE_DTYPE)
    arr["t_us"] = np.arange(len(cmd)) * 1000
    arr["commanded_depth_um"] = cmd
    arr["depth_um"] = enc
    return arr


def test_stop_and_onset_times() -> None:
    cmd = [0, 10, 20, 30, 40, 50, 50, 50, 50]
    enc = [0, 10, 20, 30, 30, 30, 30, 30, 30]  # encoder stops at 3 ms, command at 5 ms
    s = _samples(cmd, enc)
    assert advance_stopped_at_us(s, 0) == 5000
    assert encoder_stopped_at_us(s, 5000) == 3000
    # still advancing at the end of the record: not stopped
    assert advance_stopped_at_us(_samples([0, 1, 2, 3], [0, 1, 2, 3]), 0) is None
    # a brief pause that resumes is not a stop
    assert advance_stopped_at_us(_samples([0, 5, 5, 9, 9, 9], [0] * 6), 0) == 3000


def test_force_held_onset() -> None:
    s = _samples([0] * 8, [0] * 8)
    s["force_mn"] = [0, 900, 1000, 900, 1000, 1100, 1200, 1200]
    # held at ≥ 1000 mN from 4 ms (the dip at 3 ms broke the first stretch)
    assert force_held_since_us(s, 7000, 1000) == 4000
    assert force_held_since_us(s, 2000, 1000) == 2000
    assert force_held_since_us(s, 3000, 1000) is None  # below at the end
    assert force_held_since_us(s, 7000, 0) == 0  # held since the record began
