"""ROTATE's modes as docs/protocol.md §5 defines them: BY_ANGLE turns by the angle's sign at
|rate|; OSCILLATE swings ± the amplitude around its start, + first; bad arguments NAKed."""

from __future__ import annotations

import numpy as np
import pytest

from hil_tests.dut import Dut
from hil_tests.session import HilSession
from protocol import Capabilities, NakReason, Rotate, RotateMode, SampleFlags, Stop


def _rate_mrpm(s: HilSession) -> int:
    return min(30_000, s.identity.max_rate_mrpm)


def test_rotate_by_negative_angle(
    hil_device: Dut, hil_session: HilSession, hil_motion: None
) -> None:
    dut = hil_device
    rate = _rate_mrpm(hil_session)
    tl = dut.wire.received.telemetry
    start = dut.wait_idle(5.0).angle_cdeg
    mark = tl.mark()
    dut.ack(Rotate(RotateMode.BY_ANGLE, rate, -9_000))  # + rate, − angle: turns −
    end = dut.wait_idle(10.0).angle_cdeg
    assert abs(end - (start - 9_000)) <= 1, f"BY_ANGLE −90°: {start} → {end} cdeg"
    angles = tl.since(mark)["angle_cdeg"].astype(np.int64)
    assert len(angles) and int(angles.max()) <= start + 1, "turned + for a negative angle"
    dut.ack(Rotate(RotateMode.BY_ANGLE, -rate, 9_000))  # the rate's sign is ignored
    back = dut.wait_idle(10.0).angle_cdeg
    assert abs(back - start) <= 1, f"BY_ANGLE +90° at a negative rate: {end} → {back} cdeg"


def test_rotate_oscillate_swings_plus_minus_the_amplitude(
    hil_device: Dut, hil_session: HilSession, hil_motion: None
) -> None:
    if not hil_session.identity.capabilities & Capabilities.OSCILLATION:
        pytest.skip("the device does not claim Capabilities.OSCILLATION")
    dut = hil_device
    amplitude = 4_500
    tl = dut.wire.received.telemetry
    start = dut.wait_idle(5.0).angle_cdeg
    mark = tl.mark()
    dut.ack(Rotate(RotateMode.OSCILLATE, _rate_mrpm(hil_session), amplitude))
    dut.wire.wait_s(2.5)
    dut.ack(Rotate(RotateMode.STOP, 0, 0))
    dut.wait_idle(5.0)
    angles = tl.since(mark)["angle_cdeg"].astype(np.int64) - start
    hi, lo = int(angles.max()), int(angles.min())
    assert abs(hi - amplitude) <= 1 and abs(lo + amplitude) <= 1, (
        f"OSCILLATE amplitude {amplitude}: swung {lo}..{hi} cdeg around the start"
    )
    moved = angles[np.abs(angles) > 100]
    assert len(moved) and int(moved[0]) > 0, "the first swing went −"
    dut.ack(Rotate(RotateMode.BY_ANGLE, _rate_mrpm(hil_session), int(-angles[-1])))
    dut.wait_idle(10.0)


def test_continuous_at_rate_0_ramps_to_rest(
    hil_device: Dut, hil_session: HilSession, hil_motion: None
) -> None:
    """ROTATE CONTINUOUS at rate 0 is ACKed and ramps a turning needle to rest (protocol §5:
    its rate 0 is a stop, not the BAD_ARGUMENT of BY_ANGLE's and OSCILLATE's)."""
    dut = hil_device
    dut.ack(Rotate(RotateMode.CONTINUOUS, _rate_mrpm(hil_session), 0))
    dut.wire.wait_s(0.2)
    dut.ack(Rotate(RotateMode.CONTINUOUS, 0, 0))
    st = dut.wait_idle(2.0)
    assert not st.flags & SampleFlags.ROTATING


def test_stop_ramps_a_reverse_rotation_down(
    hil_device: Dut, hil_session: HilSession, hil_motion: None
) -> None:
    """STOP ramps a rotation turning − to rest as it does one turning + (protocol §5: down
    its normal ramp, not halted): the angle still changes after STOP's ACK, then rests."""
    dut = hil_device
    tl = dut.wire.received.telemetry
    dut.ack(Rotate(RotateMode.CONTINUOUS, -_rate_mrpm(hil_session), 0))
    dut.wire.wait_s(0.3)
    dut.ack(Stop())
    mark = tl.mark()
    st = dut.wait_idle(2.0)
    angles = tl.since(mark)["angle_cdeg"].astype(np.int64)
    assert not st.flags & SampleFlags.ROTATING
    assert len(angles) > 1 and int(angles[-1]) < int(angles[0]), (
        "a rotation turning − stopped at once on STOP, not down its ramp"
    )


@pytest.mark.parametrize(
    ("mode", "rate", "angle"),
    [
        (RotateMode.BY_ANGLE, 0, 500),
        (RotateMode.OSCILLATE, 0, 300),
        (RotateMode.OSCILLATE, 10_000, 0),
        (RotateMode.OSCILLATE, 10_000, -100),
    ],
)
def test_rotate_bad_arguments(
    hil_device: Dut, hil_motion: None, mode: RotateMode, rate: int, angle: int
) -> None:
    """No rate to turn at, or no amplitude: BAD_ARGUMENT, detail = angle_cdeg."""
    nak = hil_device.nak(Rotate(mode, rate, angle))
    assert (NakReason(nak.reason), nak.detail) == (NakReason.BAD_ARGUMENT, angle)
