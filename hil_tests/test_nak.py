"""Every NAK reason is reachable, and the device gives the right one (docs/protocol.md §5).

One scenario per reason, parametrized over ``NakReason`` itself: a reason added to the
schema without a scenario here fails the suite.
"""

from __future__ import annotations

import struct
from collections.abc import Callable
from dataclasses import dataclass

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
    SampleFlags,
    SetLimits,
    Status,
    Stop,
)
from protocol.schema import Message

MOTION = {NakReason.NOT_HOMED, NakReason.BEYOND_LIMIT, NakReason.BUSY, NakReason.LATCHED_FAULT}
MOVING_FLAGS = SampleFlags.ADVANCING | SampleFlags.ROTATING


@dataclass(frozen=True)
class Refused:
    """A refused command's NAK and the device's STATUS just before and just after it."""

    nak: Nak
    before: Status
    after: Status


Scenario = Callable[[Dut, HilSession], Refused]


def _refuse(dut: Dut, send: Callable[[], Nak]) -> Refused:
    """``send()`` the command that must be refused, between two STATUS requests."""
    before = dut.status()
    nak = send()
    return Refused(nak, before, dut.status())


def _check_unexecuted(r: Refused, what: str) -> None:
    """A refused command ran nothing: ``commands_executed`` rose by the second GET_STATUS
    alone (each STATUS counts itself), and a device at rest stayed where it was."""
    b, a = r.before, r.after
    executed = a.commands_executed - b.commands_executed
    assert executed == 1, (
        f"{what}: commands_executed rose by {executed} across the refused command and one "
        "GET_STATUS (1 expected): the refused command was executed"
    )
    if not b.flags & MOVING_FLAGS and b.state not in (DeviceState.HOMING, DeviceState.MOVING):
        assert not a.flags & MOVING_FLAGS, f"{what}: an axis moves after the refusal"
        assert (a.commanded_depth_um, a.angle_cdeg) == (b.commanded_depth_um, b.angle_cdeg), (
            f"{what}: commanded depth / angle went from {b.commanded_depth_um} µm / "
            f"{b.angle_cdeg} cdeg to {a.commanded_depth_um} µm / {a.angle_cdeg} cdeg"
        )
    assert a.state == b.state, (
        f"{what}: state went from {DeviceState(b.state).name} to {DeviceState(a.state).name}"
    )


def _raw_nak(dut: Dut, msg_id: int, payload: bytes, what: str) -> Nak:
    seq = dut.wire.send_raw(msg_id, payload)
    reply = dut.wire.reply(seq, 0.5)
    assert reply is not None, f"no reply to {what}"
    assert isinstance(reply.message, Nak), f"{what} answered {reply.message!r}"
    assert reply.message.command_id == msg_id
    return reply.message


def _bad_argument(dut: Dut, s: HilSession) -> Refused:
    # HOME with speed 0 (documented range 1..20000): built by hand, the codec refuses it.
    home_id: int = Home.MSG_ID  # type: ignore[attr-defined]
    return _refuse(dut, lambda: _raw_nak(dut, home_id, struct.pack("<I", 0), "HOME(speed 0)"))


def _not_armed(dut: Dut, s: HilSession) -> Refused:
    if s.pre_hello_nak is None or s.pre_hello_around is None:
        if s.pre_hello_note.startswith("ROTATE"):
            pytest.fail(f"before any HELLO, {s.pre_hello_note}")
        pytest.skip(f"NOT_ARMED is only observable before the first HELLO: {s.pre_hello_note}")
    return Refused(s.pre_hello_nak, *s.pre_hello_around)


def _not_homed(dut: Dut, s: HilSession) -> Refused:
    dut.estop()
    dut.clear_fault()  # after an e-stop the device is unhomed
    st = dut.status()
    assert st.state == DeviceState.UNHOMED, (
        f"after ESTOP + CLEAR_FAULT: {DeviceState(st.state).name}"
    )
    return _refuse(dut, lambda: dut.nak(Move(MoveMode.ABSOLUTE, 1000, s.speed_um_s)))


def _beyond_limit(dut: Dut, s: HilSession) -> Refused:
    travel = s.identity.travel_limit_um
    r = _refuse(dut, lambda: dut.nak(Move(MoveMode.ABSOLUTE, travel + 1000, s.speed_um_s)))
    assert NakReason(r.nak.reason) is NakReason.BEYOND_LIMIT
    assert r.nak.detail == travel, f"BEYOND_LIMIT detail {r.nak.detail}, the limit is {travel} µm"
    # and a limit above the hard one
    lim = s.default_limits()
    too_far = SetLimits(travel + 1, lim.force_limit_mn, lim.stall_force_mn, lim.stall_time_ms)
    r2 = _refuse(dut, lambda: dut.nak(too_far))
    assert NakReason(r2.nak.reason) is NakReason.BEYOND_LIMIT
    _check_unexecuted(r2, "SET_LIMITS beyond the hard travel")
    assert r2.after.soft_depth_limit_um == r2.before.soft_depth_limit_um
    return r


def _busy(dut: Dut, s: HilSession) -> Refused:
    dut.move_to_um(min(s.test_depth_um, 5000), s.speed_um_s)
    dut.wait_idle(30.0)
    dut.ack(Home(round(s.rig.homing_speed_mm_s * 1000)))
    assert dut.status().state == DeviceState.HOMING
    r = _refuse(dut, lambda: dut.nak(Move(MoveMode.ABSOLUTE, 1000, s.speed_um_s)))
    dut.wait_idle(s.rig.homing_timeout_s)
    assert r.nak.detail == 0, (
        f"BUSY detail {r.nak.detail} (a NAK's detail: the offending value, else 0)"
    )
    return r


# Scenarios that run without --allow-motion refuse a MOVE by 0 µm: a faulty device that
# executed it anyway would still not move.
NO_MOVE = Move(MoveMode.RELATIVE, 0, 1000)


def _estopped(dut: Dut, s: HilSession) -> Refused:
    dut.estop()
    r = _refuse(dut, lambda: dut.nak(NO_MOVE))
    dut.clear_fault()
    return r


def _latched_fault(dut: Dut, s: HilSession) -> Refused:
    # a watchdog trip: host silence while moving
    dut.move_to_um(s.test_depth_um, s.speed_um_s)
    dut.wire.heartbeats_enabled = False
    dut.wire.wait_s(2.5 * s.identity.watchdog_ms / 1000)
    dut.wire.heartbeats_enabled = True
    latched = FaultFlags(dut.status().latched_faults)
    assert latched & FaultFlags.WATCHDOG, f"no watchdog fault after host silence: {latched!r}"
    r = _refuse(dut, lambda: dut.nak(Move(MoveMode.ABSOLUTE, 0, s.speed_um_s)))
    assert r.nak.detail & FaultFlags.WATCHDOG, f"LATCHED_FAULT detail {r.nak.detail:#x}"
    return r


def _unknown_message(dut: Dut, s: HilSession) -> Refused:
    # A known id the device does not implement as a command (a device→host message).
    r = _refuse(dut, lambda: dut.nak(Ack(0x0B)))
    assert r.nak.command_id == Ack.MSG_ID  # type: ignore[attr-defined]
    # An id not in the schema at all is dropped unanswered (and counted as bad).
    bad_before = dut.status().frames_bad
    seq2 = dut.wire.send_raw(0x40, b"")
    assert dut.wire.reply(seq2, 0.2) is None, "a frame with an unknown id was answered"
    assert dut.status().frames_bad == bad_before + 1
    return r


def _schema_mismatch(dut: Dut, s: HilSession) -> Refused:
    dut.hello(schema_hash=SCHEMA_HASH ^ 0xFFFF)
    r = _refuse(dut, lambda: dut.nak(NO_MOVE))
    dut.hello()
    return r


NO_VALUE_REASONS = {
    NakReason.NOT_ARMED,
    NakReason.SCHEMA_MISMATCH,
    NakReason.ESTOPPED,
    NakReason.BUSY,
    NakReason.NOT_HOMED,
    NakReason.UNKNOWN_MESSAGE,
}
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
    refused = SCENARIOS[reason](dut, hil_session)
    nak = refused.nak
    assert NakReason(nak.reason) is reason, (
        f"expected NAK {reason.name}, got {NakReason(nak.reason).name} (detail {nak.detail})"
    )
    # a reason that names no value says 0 (protocol §5: "detail" 0 unless a value is named)
    if reason in NO_VALUE_REASONS:
        assert nak.detail == 0, f"NAK {reason.name} with detail {nak.detail}, not 0"
    # refused means not run: nothing counted as executed, nothing moved
    _check_unexecuted(refused, f"NAK {reason.name}")


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
