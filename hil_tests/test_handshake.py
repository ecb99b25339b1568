"""Handshake: HELLO → IDENTITY, the schema hash, and motion refused on a hash mismatch."""

from __future__ import annotations

from typing import Any

import pytest

from hil_tests.dut import Dut
from hil_tests.session import HilSession
from protocol import (
    PROTOCOL_VERSION,
    SCHEMA_HASH,
    Capabilities,
    Move,
    MoveMode,
    NakReason,
    SampleFlags,
)


def test_identity_matches_protocol_and_schema(
    hil_device: Dut, hil_session: HilSession, hil_figures: dict[str, Any]
) -> None:
    wire = hil_device.wire
    t0 = wire.clock.monotonic()
    ident = hil_device.hello()
    hil_figures["hello_round_trip_ms"] = (wire.clock.monotonic() - t0) * 1000
    hil_figures["schema_hash"] = f"0x{ident.schema_hash:08x}"
    assert ident.protocol_version == PROTOCOL_VERSION
    assert ident.schema_hash == SCHEMA_HASH, (
        f"device schema 0x{ident.schema_hash:08x} ≠ host 0x{SCHEMA_HASH:08x}"
    )
    assert ident.session_armed == 1
    assert ident.travel_limit_um > 0 and ident.force_limit_mn > 0
    assert ident.max_speed_um_s > 0 and ident.watchdog_ms > 0
    assert ident.capabilities & Capabilities.ENCODER, "an advance without encoder"
    # The link is healthy enough to run the suite at all: nothing arrived broken.
    assert wire.decoder.stats.frames_bad == 0
    rig = hil_session.rig
    if rig.travel_mm is not None:
        assert ident.travel_limit_um == round(rig.travel_mm * 1000)
    if rig.force_limit_n is not None:
        assert ident.force_limit_mn == round(rig.force_limit_n * 1000)
    if rig.watchdog_ms is not None:
        assert ident.watchdog_ms == rig.watchdog_ms
    if rig.serial_number is not None:
        assert ident.serial_number == rig.serial_number


@pytest.mark.control("RC-SCHEMAHASH")
def test_schema_mismatch_refuses_motion_allows_queries(hil_device: Dut) -> None:
    wrong = SCHEMA_HASH ^ 0x5A5A5A5A
    ident = hil_device.hello(schema_hash=wrong)
    assert ident.session_armed == 0, "armed although the schema hashes differ"
    assert ident.schema_hash == SCHEMA_HASH
    nak = hil_device.nak(Move(MoveMode.RELATIVE, 0, 1000))  # moves nothing, even if run
    assert NakReason(nak.reason) is NakReason.SCHEMA_MISMATCH
    assert nak.detail == 0, f"SCHEMA_MISMATCH detail {nak.detail} (a NAK's detail: else 0)"
    st = hil_device.status()  # queries still answered
    assert not st.flags & SampleFlags.ARMED
    assert hil_device.hello().session_armed == 1  # the right hash arms again


@pytest.mark.parametrize("version", [0, PROTOCOL_VERSION + 1])
def test_protocol_version_mismatch_is_not_armed(hil_device: Dut, version: int) -> None:
    from protocol import Hello, Identity

    reply = hil_device.request(Hello(version, SCHEMA_HASH)).message
    assert isinstance(reply, Identity)
    assert reply.session_armed == 0, f"armed by a HELLO of protocol version {version}"
