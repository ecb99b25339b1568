"""The firmware's load-cell filter chain (firmware/core/load_cell.c), in the C core itself:
a rig whose load cell reads a chosen signal, tick by tick, and the force the core makes of
it. Integer arithmetic must still give a filter: the notch nulls its mains frequency, the
low-pass attenuates as a first-order stage does, the drift high-pass removes a slow ramp
but passes a contact, and every filter passes a steady force unchanged (unity DC gain)."""

from __future__ import annotations

import math
from collections.abc import Callable

import numpy as np
from hypothesis import given, settings
from hypothesis import strategies as st

from protocol import SetLoadCell, Tare, encode
from sim_device.core import CoreFirmware


class _SignalRig:
    """A rig at rest whose load cell reads ``signal(t_s)`` at ``sample_hz`` (RigLike)."""

    def __init__(self, sample_hz: float) -> None:
        self.encoder_depth_mm = 3.0
        self.needle_depth_mm = 3.0
        self.home_switch = False
        self.load_cell_force_n = 0.0
        self.load_cell_fresh = True
        self.load_cell_sample_hz = sample_hz

    def step(self, dt_s: float, motor_depth_mm: float, angle_deg: float) -> None:
        pass  # the test sets the reading between ticks


def _run(
    signal_n: Callable[[float], float],
    seconds: float,
    *,
    sample_hz: float = 1000.0,
    drift_corner_mhz: int = 0,
    notch_hz: int = 0,
    lowpass_hz: int = 0,
) -> np.ndarray:
    """The core's force (mN) tick by tick while its load cell reads the signal."""
    rig = _SignalRig(sample_hz)
    fw = CoreFirmware(rig, loadcell_stuck_check=False)
    fw.receive(encode(SetLoadCell(drift_corner_mhz, notch_hz, lowpass_hz), seq=1))
    period_s = 1.0 / sample_hz
    next_sample_s = 0.0
    out = []
    for i in range(round(seconds * 1000)):
        t_s = i / 1000
        rig.load_cell_fresh = t_s >= next_sample_s
        if rig.load_cell_fresh:
            next_sample_s += period_s
            rig.load_cell_force_n = signal_n(t_s)
        fw.tick()
        out.append(fw.force_mn)
    assert fw.latched == 0, f"a fault latched: {fw.latched:#x}"
    return np.array(out, dtype=np.int64)


def _amplitude(x: np.ndarray) -> float:
    return float(x.max() - x.min()) / 2


def test_the_notch_nulls_its_mains_frequency_and_passes_the_force() -> None:
    for mains_hz in (50, 60):

        def hum(t: float, f: int = mains_hz) -> float:
            return 0.5 + 0.2 * math.sin(2 * math.pi * f * t)

        raw = _run(hum, 1.0)[-200:]
        notched = _run(hum, 1.0, notch_hz=mains_hz)[-200:]
        assert _amplitude(raw) > 190  # the hum, unfiltered
        assert _amplitude(notched) < 10, f"{mains_hz} Hz left at {_amplitude(notched)} mN"
        assert abs(float(notched.mean()) - 500) < 5


def test_the_low_pass_attenuates_as_a_first_order_stage() -> None:
    def buzz(t: float) -> float:
        return 1.0 + 0.2 * math.sin(2 * math.pi * 100 * t)

    out = _run(buzz, 1.0, lowpass_hz=10)[-200:]
    # a first-order stage at 10 Hz passes 100 Hz at about 1/10
    assert 10 < _amplitude(out) < 30, _amplitude(out)
    assert abs(float(out.mean()) - 1000) < 5


def test_the_drift_filter_removes_a_slow_ramp_and_passes_a_contact() -> None:
    def drift_then_contact(t: float) -> float:
        return 0.05 * t + (1.0 if t >= 10.0 else 0.0)  # 50 mN/s drift, a 1 N contact at 10 s

    out = _run(drift_then_contact, 10.2, drift_corner_mhz=100)
    before_contact = out[9_990]
    # the ramp's steady error through a 0.1 Hz high-pass is slope x time constant: 80 mN
    assert abs(before_contact) < 100, f"the drift reads {before_contact} mN (500 mN raw)"
    assert out[10_005] - before_contact > 950, "the contact did not come through"


def test_filters_on_a_slow_sensor_run_at_its_rate() -> None:
    """At 80 samples/s the low-pass is designed for 80 Hz, not the 1 kHz tick."""
    out = _run(lambda t: 1.0 + (0.5 if t >= 1.0 else 0.0), 1.5, sample_hz=80.0, lowpass_hz=4)
    # 4 Hz at 80 samples/s: a time constant of 40 ms; after 0.5 s the step is through
    assert abs(int(out[-1]) - 1500) <= 3
    mid = out[1000 + 40]  # one time constant after the step (±a sample period)
    assert 1250 < mid < 1420, mid


@settings(max_examples=25, deadline=None)
@given(
    force_n=st.floats(-30.0, 30.0),  # a step to it rings through the notch: under the 40 N limit
    notch_hz=st.sampled_from([0, 50, 60]),
    lowpass_hz=st.sampled_from([0, 1, 10, 100, 499]),
)
def test_a_steady_force_passes_every_filter_unchanged(
    force_n: float, notch_hz: int, lowpass_hz: int
) -> None:
    out = _run(lambda t: force_n, 3.0, notch_hz=notch_hz, lowpass_hz=lowpass_hz)
    assert abs(int(out[-1]) - round(force_n * 1000)) <= 1


def test_tare_zeroes_the_mean_of_the_last_conversions() -> None:
    rig = _SignalRig(1000.0)
    fw = CoreFirmware(rig, loadcell_stuck_check=False)
    for i in range(20):
        rig.load_cell_force_n = 0.7 + (0.004 if i % 2 else -0.004)  # noise about 0.7 N
        fw.tick()
    fw.receive(encode(Tare(), seq=1))
    fw.tick()
    assert abs(fw.force_mn) <= 4
    rig.load_cell_force_n = 1.7
    fw.tick()
    assert abs(fw.force_mn - 1000) <= 4
