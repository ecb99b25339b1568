"""Every NAK reason is reachable, and the device gives the right one (docs/protocol.md §5).

One scenario per reason, parametrized over ``NakReason`` itself: a reason added to the
schema without a scenario here fails the suite.
"""

from __future__ import annotations

import struct
from collections.abc import Callable

import pytest

from hil_tests.dut import Dut
from hil_tests.session import HilSession
from protocol import (
    SCHEMA_HASH,
    Ack,
    DeviceState,
    EStop,
    FaultFlags,
    Home,
    Move,
    MoveMode,
    Nak,
    NakReason,
    Rotate,
    RotateMode,
    SetLimits,
    Stop,
)
from protocol.schema import Message

Scenario = Callable[[Dut, HilSession], Nak]
MOTION = {NakReason.NOT_HOMED, NakReason.BEYOND_LIMIT, NakReason.BUSY, NakReason.LATCHED_FAULT}


def _bad_argument(dut: Dut, s: HilSession) -> Nak:
    # HOME with speed 0 (documented range 1..20000): built by hand, the codec refuses it.
    seq = dut.wire.send_raw(Home.MSG_ID, struct.pack("<I", 0))  # type: ignore[attr-defined]
    reply = dut.wire.reply(seq, 0.5)
    assert reply is not None, "no reply to HOME(speed 0)"
    assert isinstance(reply.message, Nak), f"HOME(speed 0) answered {reply.message!r}"
    assert reply.message.command_id == Home.MSG_ID  # type: ignore[attr-defined]
    return reply.message


def _not_armed(dut: Dut, s: HilSession) -> Nak:
    if s.pre_hello_nak is None:
        if s.pre_hello_note.startswith("ROTATE"):
            pytest.fail(f"before any HELLO, {s.pre_hello_note}")
        pytest.skip(f"NOT_ARMED is only observable before the first HELLO: {s.pre_hello_note}")
    return s.pre_hello_nak


def _not_homed(dut: Dut, s: HilSession) -> Nak:
    dut.estop()
    dut.clear_fault()  # after an e-stop the device is unhomed
    st = dut.status()
    assert st.state == DeviceState.UNHOMED, (
        f"after ESTOP + CLEAR_FAULT: {DeviceState(st.state).name}"
    )
    return dut.nak(Move(MoveMode.ABSOLUTE, 1000, s.speed_um_s))


def _beyond_limit(dut: Dut, s: HilSession) -> Nak:
    travel = s.identity.travel_limit_um
    nak = dut.nak(Move(MoveMode.ABSOLUTE, travel + 1000, s.speed_um_s))
    assert NakReason(nak.reason) is NakReason.BEYOND_LIMIT
    assert nak.detail == travel, f"BEYOND_LIMIT detail {nak.detail}, the limit is {travel} µm"
    # and a limit above the hard one
    lim = s.default_limits()
    nak2 = dut.nak(SetLimits(travel + 1, lim.force_limit_mn, lim.stall_force_mn, lim.stall_time_ms))
    assert NakReason(nak2.reason) is NakReason.BEYOND_LIMIT
    return nak


def _busy(dut: Dut, s: HilSession) -> Nak:
    dut.move_to_um(min(s.test_depth_um, 5000), s.speed_um_s)
    dut.wait_idle(30.0)
    dut.ack(Home(round(s.rig.homing_speed_mm_s * 1000)))
    assert dut.status().state == DeviceState.HOMING
    nak = dut.nak(Move(MoveMode.ABSOLUTE, 1000, s.speed_um_s))
    dut.wait_idle(s.rig.homing_timeout_s)
    return nak


# Scenarios that run without --allow-motion refuse a MOVE by 0 µm: a faulty device that
# executed it anyway would still not move.
NO_MOVE = Move(MoveMode.RELATIVE, 0, 1000)


def _estopped(dut: Dut, s: HilSession) -> Nak:
    dut.estop()
    nak = dut.nak(NO_MOVE)
    dut.clear_fault()
    return nak


def _latched_fault(dut: Dut, s: HilSession) -> Nak:
    # a watchdog trip: host silence while moving
    dut.move_to_um(s.test_depth_um, s.speed_um_s)
    dut.wire.heartbeats_enabled = False
    dut.wire.wait_s(2.5 * s.identity.watchdog_ms / 1000)
    dut.wire.heartbeats_enabled = True
    latched = FaultFlags(dut.status().latched_faults)
    assert latched & FaultFlags.WATCHDOG, f"no watchdog fault after host silence: {latched!r}"
    nak = dut.nak(Move(MoveMode.ABSOLUTE, 0, s.speed_um_s))
    assert nak.detail & FaultFlags.WATCHDOG, f"LATCHED_FAULT detail {nak.detail:#x}"
    return nak


def _unknown_message(dut: Dut, s: HilSession) -> Nak:
    # A known id the device does not implement as a command (a device→host message).
    seq = dut.wire.send(Ack(0x0B))
    reply = dut.wire.reply(seq, 0.5)
    assert reply is not None, "no reply to a device→host message sent as a command"
    assert isinstance(reply.message, Nak), f"answered {reply.message!r}"
    assert reply.message.command_id == Ack.MSG_ID  # type: ignore[attr-defined]
    # An id not in the schema at all is dropped unanswered (and counted as bad).
    bad_before = dut.status().frames_bad
    seq2 = dut.wire.send_raw(0x40, b"")
    assert dut.wire.reply(seq2, 0.2) is None, "a frame with an unknown id was answered"
    assert dut.status().frames_bad == bad_before + 1
    return reply.message


def _schema_mismatch(dut: Dut, s: HilSession) -> Nak:
    dut.hello(schema_hash=SCHEMA_HASH ^ 0xFFFF)
    nak = dut.nak(NO_MOVE)
    dut.hello()
    return nak


SCENARIOS: dict[NakReason, Scenario] = {
    NakReason.BAD_ARGUMENT: _bad_argument,
    NakReason.NOT_HOMED: _not_homed,
    NakReason.NOT_ARMED: _not_armed,
    NakReason.BEYOND_LIMIT: _beyond_limit,
    NakReason.BUSY: _busy,
    NakReason.ESTOPPED: _estopped,
    NakReason.LATCHED_FAULT: _latched_fault,
    NakReason.UNKNOWN_MESSAGE: _unknown_message,
    NakReason.SCHEMA_MISMATCH: _schema_mismatch,
}


@pytest.mark.parametrize("reason", list(NakReason), ids=lambda r: r.name)
def test_nak_reason(
    reason: NakReason, request: pytest.FixtureRequest, hil_session: HilSession
) -> None:
    assert reason in SCENARIOS, f"no scenario reaches NAK {reason.name}"
    dut: Dut = request.getfixturevalue("hil_homed" if reason in MOTION else "hil_device")
    before = dut.status().commands_executed
    nak = SCENARIOS[reason](dut, hil_session)
    assert NakReason(nak.reason) is reason, (
        f"expected NAK {reason.name}, got {NakReason(nak.reason).name} (detail {nak.detail})"
    )
    assert dut.status().commands_executed >= before


def test_stopping_is_never_refused(hil_device: Dut, hil_session: HilSession) -> None:
    """ROTATE STOP, MOVE STOP, STOP and ESTOP are ACKed in every state and session
    condition (protocol §5): before HELLO, under a schema mismatch, with a fault latched."""
    s = hil_session
    dut = hil_device
    if s.pre_hello_stop_reply:
        assert s.pre_hello_stop_reply == "Ack", (
            f"ROTATE STOP before HELLO was answered {s.pre_hello_stop_reply}"
        )
    stops: tuple[Message, ...] = (
        Rotate(RotateMode.STOP, 0, 0),
        Move(MoveMode.STOP, 0, 1),
        Stop(),
    )
    dut.hello(schema_hash=SCHEMA_HASH ^ 0xFFFF)
    try:
        for msg in stops:
            reply = dut.request(msg).message
            assert isinstance(reply, Ack), f"schema mismatch: {msg!r} answered {reply!r}"
    finally:
        dut.hello()
    dut.estop()
    try:
        for msg in (*stops, EStop()):
            reply = dut.request(msg).message
            assert isinstance(reply, Ack), f"e-stopped: {msg!r} answered {reply!r}"
    finally:
        dut.clear_fault()
