"""Typed errors are also the built-ins they are kinds of; unit conversions round trip."""

from __future__ import annotations

import pytest

from firmware_host import units
from firmware_host.errors import (
    DeviceFault,
    LimitError,
    LinkLost,
    Nak,
    NeedleDriverError,
    PortError,
    ProtocolError,
    SchemaMismatch,
    Timeout,
)
from protocol import FaultFlags, Frame, NakReason, Status
from protocol.codec import encode_body, frame_body
from protocol.schema import HEADER_BYTES

from .helpers import tamper_device_frames


@pytest.mark.parametrize(
    ("error", "builtin"),
    [
        (LinkLost("x"), ConnectionError),
        (Timeout("x"), TimeoutError),
        (PortError("x"), OSError),
        (LimitError("x"), ValueError),
    ],
)
def test_errors_are_their_builtins(error: Exception, builtin: type[Exception]) -> None:
    assert isinstance(error, builtin)
    assert isinstance(error, NeedleDriverError)


def test_nak_carries_reason_and_detail() -> None:
    err = Nak("Move", NakReason.BEYOND_LIMIT, 150000)
    assert err.reason is NakReason.BEYOND_LIMIT and err.detail == 150000
    assert str(err) == "device refused Move: BEYOND_LIMIT (detail 150000)"
    assert isinstance(err, NeedleDriverError)
    unknown = Nak("Move", 99)
    assert unknown.reason == 99 and "reason 99" in str(unknown)


def test_device_fault_names_latched_faults() -> None:
    err = DeviceFault("stopped", int(FaultFlags.WATCHDOG | FaultFlags.STALL))
    assert "WATCHDOG|STALL" in str(err)
    assert isinstance(SchemaMismatch("x"), NeedleDriverError)


def test_units_round_trip_to_one_step() -> None:
    assert units.mm_to_um(1.2346) == 1235 and units.mm_to_um(1.2344) == 1234
    assert units.mm_to_um(-0.0004) == 0
    assert units.um_to_mm(units.mm_to_um(12.345)) == pytest.approx(12.345)
    assert units.n_to_mn(2.5) == 2500 and units.mn_to_n(2500) == 2.5
    assert units.rpm_to_mrpm(-30) == -30000 and units.mrpm_to_rpm(-30000) == -30.0
    assert units.deg_to_cdeg(90.0) == 9000 and units.cdeg_to_deg(9000) == 90.0
    assert units.s_to_ms(0.2) == 200 and units.ms_to_s(200) == 0.2
    assert units.mm_s_to_um_s(2.0) == 2000 and units.us_to_s(1_500_000) == 1.5


def test_an_undefined_device_state_is_a_typed_schema_error() -> None:
    """The decoder passes any state the wire can carry; the client maps it defensively:
    an undefined one is a ProtocolError (a SchemaMismatch), never a bare ValueError that
    needlectl would report as a usage error."""
    from firmware_host.cli.exits import Exit, classify
    from firmware_host.client import NeedleDriver

    with NeedleDriver.open("sim://?seed=13") as nd:

        def tamper(frame: Frame, raw: bytes) -> bytes:
            if not isinstance(frame.message, Status):
                return raw
            # a newer firmware's state 99 (our encoder refuses it: built byte by byte)
            body = bytearray(encode_body(frame.message, frame.seq, frame.flags))
            body[HEADER_BYTES] = 99  # state: the payload's first byte
            return frame_body(bytes(body))

        tamper_device_frames(nd, tamper)
        with pytest.raises(ProtocolError) as info:
            nd.status()
    err = info.value
    assert isinstance(err, NeedleDriverError) and isinstance(err, SchemaMismatch)
    assert not isinstance(err, ValueError)
    assert "undefined state 99" in str(err) and "schema" in str(err)
    code, line = classify(err, "sim://")
    assert code is Exit.REFUSED and "undefined state 99" in line
