"""The telemetry ring buffer, the lost-sample count and the device→host time mapping,
without a device."""

from __future__ import annotations

import numpy as np
import pytest

from firmware_host.link import Link
from firmware_host.telemetry import TELEMETRY_DTYPE, TelemetryBuffer, rows_from_samples
from firmware_host.timesync import TimeSync
from firmware_host.transports import open_transport
from protocol import SAMPLE_DTYPE, Telemetry, TelemetrySample, pack_samples


def _rows(first: int, n: int) -> np.ndarray:
    rows = np.zeros(n, dtype=TELEMETRY_DTYPE)
    rows["sample_number"] = np.arange(first, first + n)
    rows["depth_mm"] = np.arange(first, first + n) / 1000.0
    return rows


def test_ring_keeps_newest_in_order_and_wraps() -> None:
    buf = TelemetryBuffer(capacity=8)
    buf.push(_rows(0, 5))
    buf.push(_rows(5, 5))  # wraps
    assert len(buf) == 8
    assert list(buf.latest()["sample_number"]) == list(range(2, 10))
    assert list(buf.latest(3)["sample_number"]) == [7, 8, 9]
    last = buf.last()
    assert last is not None and last["sample_number"] == 9
    buf.push(_rows(10, 20))  # bigger than the ring
    assert list(buf.latest()["sample_number"]) == list(range(22, 30))


@pytest.mark.control("RC-SAMPLECOUNT")
def test_lost_samples_counted_once_exactly_from_the_counter() -> None:
    """The link counts lost samples (the buffer, fed by the link, does not count again):
    gaps exactly, the u32 counter modulo 2^32, an older batch as a duplicate."""
    link = Link(open_transport("loop://"))  # what is sent comes back as received
    link.heartbeats_enabled = False
    stats = link.stats
    try:
        for first, n, received in ((0, 10, 10), (10, 10, 20), (27, 10, 30), (2**32 - 5, 5, 30)):
            link.send(Telemetry(first, pack_samples([TelemetrySample(0, 0, 0, 0, 0, 2, 0, 1)] * n)))
            assert link.wait_until(lambda: link.stats.frames_in >= link.stats.frames_out, 5.0)
            assert stats.telemetry_samples == received
        assert stats.telemetry_samples_lost == 7  # 20..26
        assert not hasattr(TelemetryBuffer(1), "samples_lost")
    finally:
        link.close()


def test_subscribers_get_each_batch_and_can_leave() -> None:
    buf = TelemetryBuffer(capacity=100)
    seen: list[int] = []
    unsubscribe = buf.subscribe(lambda rows: seen.append(len(rows)))
    buf.push(_rows(0, 3))
    unsubscribe()
    buf.push(_rows(3, 4))
    assert seen == [3]


def test_rows_from_wire_samples_convert_units() -> None:
    samples = np.zeros(2, dtype=SAMPLE_DTYPE)
    samples["depth_um"] = [1500, 2500]
    samples["commanded_depth_um"] = [1600, 2600]
    samples["angle_cdeg"] = [9000, -4500]
    samples["force_mn"] = [1234, -50]
    samples["state"] = [3, 3]
    samples["flags"] = [0x81, 0x83]
    dev_us = np.array([1_000_000, 1_001_000], dtype=np.int64)
    rows = rows_from_samples(samples, 42, dev_us, dev_us / 1e6 + 10.0)
    assert list(rows["sample_number"]) == [42, 43]
    assert list(rows["depth_mm"]) == [1.5, 2.5]
    assert list(rows["commanded_depth_mm"]) == [1.6, 2.6]
    assert list(rows["angle_deg"]) == [90.0, -45.0]
    assert list(rows["force_n"]) == [1.234, -0.05]
    assert list(rows["device_time_s"]) == [1.0, 1.001]
    assert list(rows["host_time_s"]) == [11.0, 11.001]


def test_unwrap_32_bit_sample_times() -> None:
    ts = TimeSync()
    ts.observe(2**32 - 1000, 100.0)
    assert ts.unwrap_us(500) == 2**32 + 500  # just wrapped
    assert ts.unwrap_us(2**32 - 2000) == 2**32 - 2000  # slightly older, no wrap
    arr = ts.unwrap_array_us(np.array([2**32 - 10, 5], dtype=np.uint32))
    assert list(arr) == [2**32 - 10, 2**32 + 5]


def test_offset_and_drift_estimated_from_minimum_delays() -> None:
    rng = np.random.default_rng(1)
    ts = TimeSync(window_s=1.0)
    offset_s, drift = 1000.0, 50e-6  # host = device * (1 + 50 ppm) + 1000 s, plus delay
    for dev_us in range(0, 60_000_000, 10_000):
        dev_s = dev_us / 1e6
        delay_s = 0.0002 + rng.exponential(0.002)
        ts.observe(dev_us, dev_s * (1 + drift) + offset_s + delay_s)
    assert ts.ready
    assert ts.drift_ppm == pytest.approx(50.0, abs=5.0)
    true_host = 59.0 * (1 + drift) + offset_s
    assert ts.to_host_s(59_000_000) == pytest.approx(true_host, abs=0.001)
