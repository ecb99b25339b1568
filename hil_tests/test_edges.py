"""The edges the first suite never tried (issue 17): a resend without RETRANSMIT and older
than the newest reply, a bad CRC on every command, the force-held stall while turning,
latches across HELLO, stops in unusual states, relative moves from a depth, large angles
and more events than the log keeps. Through the wire only, like every conformance test;
each is shown failing on a planted mutant (tests/hil/test_hil_mutants.py)."""

from __future__ import annotations

import dataclasses
import struct
from typing import Any

import pytest
from cobs import cobs

from hil_tests.dut import REPLY_TIMEOUT_S, Dut, Limits
from hil_tests.session import HilSession, on_the_simulator
from protocol import (
    EVENT_LOG_SIZE,
    HEADER_BYTES,
    NO_FORCE_MN,
    PROTOCOL_VERSION,
    SCHEMA_HASH,
    Ack,
    Bye,
    ClearFault,
    DeviceState,
    EStop,
    Event,
    EventCode,
    EventLog,
    FaultFlags,
    GetEvents,
    GetStatus,
    HeaderFlags,
    Hello,
    Home,
    Move,
    MoveMode,
    Nak,
    NakReason,
    Rotate,
    RotateMode,
    SampleFlags,
    SetLimits,
    SetLoadCell,
    SetTelemetry,
    Stop,
    Tare,
    encode_body,
    frame_body,
)
from protocol.schema import MSG_ID, Message

STEP_UM = 1000
REPLY_CACHE_DEPTH = 32  # protocol §2: the last 32 replies are kept
HOME_SPEED_MAX_UM_S = 20_000  # HOME speed_um_s's range 1..20000
EVENT_LOG_MAX_RECORDS = 12  # EVENT_LOG.events: at most 12 records
TELEMETRY_MAX_SAMPLES = 10  # TELEMETRY.samples: at most 10
EVENT_RECORD_BYTES = 17  # number u32, time_us u64, code u8, value i32
TELEMETRY_SAMPLE_BYTES = 23  # of TelemetrySample


def _move_rel(s: HilSession) -> Move:
    return Move(MoveMode.RELATIVE, STEP_UM, s.speed_um_s)


def _replies(dut: Dut, seq: int, count: int) -> list[Any]:
    got = dut.wire.received.replies
    dut.wire.wait_for(lambda: len(got.get(seq, [])) >= count, REPLY_TIMEOUT_S)
    frames = got.get(seq, [])
    assert len(frames) >= count, f"{len(frames)} replies with seq {seq}, expected {count}"
    return frames[:count]


@pytest.mark.parametrize("flags", [0, HeaderFlags.RETRANSMIT], ids=["plain", "retransmit"])
def test_old_resend_executes_once(hil_homed: Dut, hil_session: HilSession, flags: int) -> None:
    """A MOVE resent after 30 other commands — older than the newest reply, within the
    32-deep cache — with or without RETRANSMIT (protocol §2: "whether or not") is replayed,
    never run again."""
    dut = hil_homed
    wire = dut.wire
    start = dut.status()
    move = _move_rel(hil_session)
    seq = wire.send(move)
    (first,) = _replies(dut, seq, 1)
    assert isinstance(first.message, Ack), f"MOVE answered {first.message!r}"
    for _ in range(REPLY_CACHE_DEPTH - 2):  # the MOVE's reply is still among the last 32
        dut.status()
    wire.send(move, seq=seq, flags=flags)
    _, again = _replies(dut, seq, 2)
    assert again.message == first.message and again.flags & HeaderFlags.REPLAYED, (
        f"the resend of a MOVE {REPLY_CACHE_DEPTH - 2} commands back answered "
        f"{again.message!r} (flags {again.flags:#x}), not the cached ACK"
    )
    st = dut.wait_idle(30.0)
    moved = st.commanded_depth_um - start.commanded_depth_um
    assert moved == STEP_UM, f"one MOVE +{STEP_UM} µm sent twice moved {moved} µm"


@pytest.mark.control("RC-CRC")
def test_bad_crc_is_dropped_for_every_command(hil_homed: Dut, hil_session: HilSession) -> None:
    """A frame whose CRC is wrong is dropped whatever its id: no reply, nothing run,
    counted in frames_bad (protocol §1 Receiving)."""
    dut = hil_homed
    wire = dut.wire
    s = hil_session
    st0 = dut.status()
    msgs: list[Message] = [
        Move(MoveMode.RELATIVE, STEP_UM, s.speed_um_s),
        Rotate(RotateMode.BY_ANGLE, 1_000, 1_000),
        Home(round(s.rig.homing_speed_mm_s * 1000)),
        EStop(),
        Stop(),
        ClearFault(),
        SetTelemetry(0, 1),
        GetStatus(),
    ]
    seqs = []
    for msg in msgs:
        seq = wire.next_seq()
        raw = bytearray(cobs.decode(frame_body(encode_body(msg, seq))[:-1]))
        raw[-1] ^= 0x5A  # the CRC's last byte corrupted
        wire.write(b"\x00" + cobs.encode(bytes(raw)) + b"\x00")
        seqs.append(seq)
    wire.wait_s(0.2)
    for msg, seq in zip(msgs, seqs, strict=True):
        assert not wire.received.replies.get(seq), f"{msg!r} with a bad CRC was answered"
    st = dut.status()
    assert st.frames_bad - st0.frames_bad >= len(msgs), "bad-CRC frames not counted bad"
    assert st.commanded_depth_um == st0.commanded_depth_um, "a bad-CRC MOVE was run"
    assert st.angle_cdeg == st0.angle_cdeg, "a bad-CRC ROTATE was run"
    assert not st.latched_faults & FaultFlags.ESTOP, "a bad-CRC ESTOP was run"


def test_wrong_length_is_dropped_for_every_command(hil_homed: Dut, hil_session: HilSession) -> None:
    """A CRC-good frame one byte longer or shorter than its message is dropped whatever
    its id (protocol §1 Receiving, check 6): no reply, nothing run, counted in frames_bad."""
    dut = hil_homed
    wire = dut.wire
    s = hil_session
    st0 = dut.status()
    msgs: list[Message] = [
        Move(MoveMode.RELATIVE, STEP_UM, s.speed_um_s),
        Rotate(RotateMode.BY_ANGLE, 1_000, 1_000),
        Home(round(s.rig.homing_speed_mm_s * 1000)),
        EStop(),
        Stop(),
        ClearFault(),
        SetTelemetry(0, 1),
        GetStatus(),
        GetEvents(1, 1),
        SetLimits(*dataclasses.astuple(s.default_limits())),
        SetLoadCell(0, 0, 0),
        Tare(),
        Hello(PROTOCOL_VERSION, SCHEMA_HASH),
        Bye(),
        Ack(0x0B),  # device→host ids too: of the right length NAKed, of a wrong one dropped
        Nak(0x0B, NakReason.BUSY, 0),
        Event(1, 0, EventCode.BOOT, 0),
        st0,  # a STATUS and an IDENTITY, as the device sent them
        s.identity,
    ]
    seqs, sent = [], 0
    for msg in msgs:
        payload = encode_body(msg, 0)[HEADER_BYTES:]
        for wrong in (payload + b"\x00", payload[:-1]) if payload else (b"\x00",):
            seqs.append(wire.send_raw(MSG_ID[type(msg)], wrong))
            sent += 1
    wire.wait_s(0.2)
    answered = [seq for seq in seqs if wire.received.replies.get(seq)]
    assert not answered, f"{len(answered)} frames of a wrong length were answered"
    st = dut.status()
    assert st.frames_bad - st0.frames_bad >= sent, "wrong-length frames not counted bad"
    assert st.commanded_depth_um == st0.commanded_depth_um, "a wrong-length MOVE was run"
    assert st.angle_cdeg == st0.angle_cdeg, "a wrong-length ROTATE was run"
    assert not st.latched_faults & FaultFlags.ESTOP, "a wrong-length ESTOP was run"


def test_force_held_stall_while_rotating(
    hil_homed: Dut, hil_session: HilSession, hil_figures: dict[str, Any]
) -> None:
    """The force-held stall ([force] depth_mm, where the rig loads the needle above
    limit_n, used as the stall force) fires while the needle turns: the force check is
    not the following-error one, and not only for a needle at rest in its angle."""
    s = hil_session
    dut = hil_homed
    stall_mn, depth_um = s.force_load()
    d = s.default_limits()
    dut.set_limits(Limits(d.soft_depth_limit_um, d.force_limit_mn, stall_mn, d.stall_time_ms))
    before = dut.status().last_event_number
    dut.ack(Rotate(RotateMode.CONTINUOUS, 30_000, 0))
    dut.move_to_um(depth_um, s.speed_um_s)
    ev = dut.wait_event(EventCode.STALL, depth_um / s.speed_um_s + 5.0, before)
    st = dut.status()
    assert ev is not None, (
        f"force held above the {stall_mn} mN stall force while turning and no STALL: "
        f"{DeviceState(st.state).name} at {st.depth_um} µm"
    )
    hil_figures["stall_depth_um"] = int(ev.value)
    assert st.latched_faults & FaultFlags.STALL and st.state == DeviceState.STALLED
    dut.set_limits(d)
    dut.clear_fault()
    dut.home(round(s.rig.homing_speed_mm_s * 1000), s.rig.homing_timeout_s)


@pytest.mark.control("RC-LATCH")
def test_estop_latch_survives_hello(hil_device: Dut, hil_session: HilSession) -> None:
    """A latched e-stop is cleared by CLEAR_FAULT only: a new session (HELLO) keeps it."""
    dut = hil_device
    dut.estop()
    dut.hello()
    st = dut.status()
    assert st.latched_faults & FaultFlags.ESTOP, "HELLO cleared a latched e-stop"
    assert st.state == DeviceState.ESTOPPED
    nak = dut.nak(Rotate(RotateMode.BY_ANGLE, 1_000, 1))  # 0.01°: harmless if run
    assert NakReason(nak.reason) is NakReason.ESTOPPED
    dut.clear_fault()


def test_stop_during_home_ends_it(hil_homed: Dut, hil_session: HilSession) -> None:
    """STOP in HOMING ends the homing at once (protocol §5): nothing moves afterwards, the
    device is not homed, and homing again works."""
    s = hil_session
    dut = hil_homed
    depth = min(s.test_depth_um, 5000)
    dut.move_to_um(depth, s.speed_um_s)
    dut.wait_idle(depth / s.speed_um_s + 5.0)
    dut.ack(Home(round(s.rig.homing_speed_mm_s * 1000)))
    dut.wire.wait_s(0.1)
    assert dut.status().state == DeviceState.HOMING
    dut.stop()
    dut.wire.wait_s(0.05)
    a = dut.status()
    dut.wire.wait_s(0.2)
    b = dut.status()
    assert b.state != DeviceState.HOMING, "STOP ACKed and the homing went on"
    assert a.commanded_depth_um == b.commanded_depth_um, "the advance went on after STOP"
    assert not b.flags & SampleFlags.HOMED
    dut.home(round(s.rig.homing_speed_mm_s * 1000), s.rig.homing_timeout_s)


def test_relative_move_limit_is_on_the_result(hil_homed: Dut, hil_session: HilSession) -> None:
    """A relative move from a depth is refused when its resulting target is beyond the
    soft limit, though its increment alone is not."""
    s = hil_session
    dut = hil_homed
    limit = max(2000, (s.test_depth_um // 2) // 1000 * 1000)
    d = s.default_limits()
    dut.set_limits(Limits(limit, d.force_limit_mn, d.stall_force_mn, d.stall_time_ms))
    dut.move_to_um(limit - 1000, s.speed_um_s)
    dut.wait_idle(limit / s.speed_um_s + 5.0)
    nak = dut.nak(Move(MoveMode.RELATIVE, 2000, s.speed_um_s))
    assert NakReason(nak.reason) is NakReason.BEYOND_LIMIT, NakReason(nak.reason).name
    assert nak.detail == limit
    dut.set_limits(d)
    dut.move_to_um(0, s.speed_um_s)
    dut.wait_idle(limit / s.speed_um_s + 5.0)


def test_rotate_by_large_angle(hil_device: Dut, hil_session: HilSession, hil_motion: None) -> None:
    """BY_ANGLE over several turns (3,600°: beyond 32-bit microdegrees) turns exactly that."""
    dut = hil_device
    angle = 360_000
    rate = min(120_000, hil_session.identity.max_rate_mrpm)
    start = dut.status().angle_cdeg
    dut.ack(Rotate(RotateMode.BY_ANGLE, rate, angle))
    st = dut.wait_idle(angle / 100 / (rate / 1000 * 6) + 5.0)
    assert st.angle_cdeg - start == angle, f"BY_ANGLE {angle} cdeg turned {st.angle_cdeg - start}"


def test_event_log_beyond_its_size(hil_device: Dut) -> None:
    """More than twice the events the log keeps: the oldest kept is last - size + 1 and every record
    fetched is the event sent live under that number."""
    dut = hil_device
    wire = dut.wire
    last = dut.status().last_event_number
    while last < 2 * EVENT_LOG_SIZE + 20:  # beyond twice: an oldest found modulo the size
        dut.estop()
        dut.clear_fault()
        last += 2
    last = dut.status().last_event_number
    oldest = last - EVENT_LOG_SIZE + 1
    log, page = dut.event_log(1, 12)
    assert page, "empty EVENT_LOG"
    assert page[0].number == oldest, f"oldest record {page[0].number}, expected {oldest}"
    live = {e.number: e for e in wire.received.events}
    for e in page:
        if e.number in live:
            assert e == live[e.number], f"event {e.number} in the log differs from the one sent"
    assert [e.number for e in page] == list(range(oldest, oldest + len(page)))
    assert isinstance(log.last_event_number, int) and not isinstance(log, Nak)


PULL_SEEN_MN = 60  # a pull clearly above the load cell's noise
PULL_LIMIT_MN = 40


def test_force_limit_when_pulling(
    hil_homed: Dut, hil_session: HilSession, hil_figures: dict[str, Any]
) -> None:
    """The force limit bounds |force|: withdrawn from [force] depth_mm, the tissue pulls
    on the needle, and a limit set below that pull trips FORCE_OVER_LIMIT on a negative
    force. A rig whose load pulls on nothing on the way out is skipped."""
    s = hil_session
    dut = hil_homed
    if s.rig.force_test_depth_mm is None:
        pytest.skip("needs a load on the needle: set [force] depth_mm in the rig file")
    depth_um = round(s.rig.force_test_depth_mm * 1000)
    d = s.default_limits()
    dut.move_to_um(depth_um, s.speed_um_s)
    dut.wait_idle(depth_um / s.speed_um_s + 5.0)
    tl = dut.wire.received.telemetry
    mark = tl.mark()
    before = dut.status().last_event_number
    dut.move_to_um(0, s.speed_um_s)

    def pulled() -> bool:
        force = tl.since(mark)["force_mn"]
        force = force[force != NO_FORCE_MN]  # no reading is no pull
        return len(force) > 0 and int(force.min()) < -PULL_SEEN_MN

    if not dut.wire.wait_for(pulled, depth_um / s.speed_um_s + 2.0):
        dut.wait_idle(depth_um / s.speed_um_s + 5.0)
        pytest.skip(f"no pull above {PULL_SEEN_MN} mN on the way out of {depth_um} µm")
    dut.set_limits(Limits(d.soft_depth_limit_um, PULL_LIMIT_MN, PULL_LIMIT_MN, d.stall_time_ms))
    ev = dut.wait_event(EventCode.FORCE_OVER_LIMIT, 1.0, before)
    assert ev is not None, f"pulled above {PULL_SEEN_MN} mN, limit {PULL_LIMIT_MN} mN: no trip"
    hil_figures["pull_at_trip_mn"] = int(ev.value)
    assert ev.value < -PULL_LIMIT_MN, f"tripped on {ev.value} mN, not on the pull"
    st = dut.status()
    assert st.latched_faults & FaultFlags.FORCE_LIMIT
    dut.set_limits(d)
    dut.clear_fault()
    dut.move_to_um(0, s.speed_um_s)
    dut.wait_idle(depth_um / s.speed_um_s + 5.0)


def test_reversal_mid_move_ramps_within_speed_and_acceleration(
    hil_homed: Dut, hil_session: HilSession, hil_figures: dict[str, Any]
) -> None:
    """A MOVE back to 0 sent halfway out brakes down its ramp before it turns, never goes
    beyond the first target, never faster than asked, and ends at 0: the commanded depth's
    speed (over 20 ms) changes by no more than [motion] max_accel_mm_s2 allows."""
    s = hil_session
    dut = hil_homed
    if s.rig.max_accel_mm_s2 is None:
        pytest.skip("needs the advance's ramp: set [motion] max_accel_mm_s2 in the rig file")
    far = s.test_depth_um
    tl = dut.wire.received.telemetry
    mark = tl.mark()
    dut.move_to_um(far, s.speed_um_s)
    out = dut.wire.wait_for(
        lambda: tl.count > 0 and int(tl.batches[-1]["commanded_depth_um"][-1]) >= far // 2,
        far / s.speed_um_s + 5.0,
    )
    assert out, f"the advance never reached {far // 2} µm"
    dut.move_to_um(0, s.speed_um_s)
    st = dut.wait_idle(2 * far / s.speed_um_s + 5.0)
    dut.wire.wait_s(0.05)
    d = tl.since(mark)["commanded_depth_um"].astype("i8")
    assert st.commanded_depth_um == 0, f"ended at {st.commanded_depth_um} µm, not 0"
    assert int(d.max()) <= far, f"went to {int(d.max())} µm, beyond the first target {far}"
    w = 200  # samples (1 kHz): no window faster than the speed asked (+1 µm of rounding)
    fastest = int(abs(d[w:] - d[:-w]).max())
    hil_figures["fastest_200ms_um"] = fastest
    assert fastest <= s.speed_um_s * w // 1000 + 1, f"{fastest} µm in {w} ms"
    hil_figures["max_speed_change_um_ms_per_20ms"] = _check_ramp(d, s.rig.max_accel_mm_s2)


def _check_ramp(depths_um: Any, max_accel_mm_s2: float) -> float:
    """The commanded depth's speed over 20 ms changes to the next 20 ms by no more than the
    acceleration allows (1 kHz samples); returns the largest change, µm/ms."""
    n = 20  # ms: the speed over 20 ms, its change to the next 20 ms
    v = (depths_um[n:] - depths_um[:-n]) / n  # µm/ms
    dv = float(abs(v[n:] - v[:-n]).max())
    bound = max_accel_mm_s2 * 1e-3 * n + 0.3  # + the µm rounding, and a margin
    assert dv <= bound, f"the speed jumped {dv:.2f} µm/ms within {n} ms (bound {bound:.2f})"
    return dv


def test_stop_mid_move_ramps_down(hil_homed: Dut, hil_session: HilSession) -> None:
    """STOP halfway out brings the advance to rest down its ramp (protocol §5), not at
    once: the commanded depth's speed changes by no more than [motion] max_accel_mm_s2
    allows, and the advance goes on past where STOP found it."""
    s = hil_session
    dut = hil_homed
    if s.rig.max_accel_mm_s2 is None:
        pytest.skip("needs the advance's ramp: set [motion] max_accel_mm_s2 in the rig file")
    far = s.test_depth_um
    dut.move_to_um(0, s.speed_um_s)  # from 0, wherever an earlier test left the needle
    dut.wait_idle(far / s.speed_um_s + 5.0)
    tl = dut.wire.received.telemetry
    mark = tl.mark()
    dut.move_to_um(far, s.speed_um_s)
    out = dut.wire.wait_for(
        lambda: tl.count > 0 and int(tl.batches[-1]["commanded_depth_um"][-1]) >= far // 2,
        far / s.speed_um_s + 5.0,
    )
    assert out, f"the advance never reached {far // 2} µm"
    moving = dut.status()
    at_stop = moving.commanded_depth_um
    dut.ack(Stop())
    st = dut.wait_idle(far / s.speed_um_s + 5.0)
    assert moving.flags & SampleFlags.ADVANCING and not st.flags & SampleFlags.ADVANCING, (
        f"ADVANCING flag moving / at rest: {SampleFlags(moving.flags)!r} / "
        f"{SampleFlags(st.flags)!r}"
    )
    dut.wire.wait_s(0.05)
    d = tl.since(mark)["commanded_depth_um"].astype("i8")
    assert at_stop < st.commanded_depth_um < far, (
        f"STOP at {at_stop} µm came to rest at {st.commanded_depth_um} µm (target {far})"
    )
    _check_ramp(d, s.rig.max_accel_mm_s2)
    dut.move_to_um(0, s.speed_um_s)
    dut.wait_idle(far / s.speed_um_s + 5.0)


def test_limits_at_their_hard_limits_are_accepted(hil_device: Dut, hil_session: HilSession) -> None:
    """SET_LIMITS with every limit exactly at its hard limit (IDENTITY) is ACKed."""
    ident = hil_session.identity
    d = hil_session.default_limits()
    at = Limits(ident.travel_limit_um, ident.force_limit_mn, ident.force_limit_mn, 5)
    hil_device.set_limits(at)
    st = hil_device.status()
    assert (st.soft_depth_limit_um, st.force_limit_mn, st.stall_force_mn) == (
        ident.travel_limit_um,
        ident.force_limit_mn,
        ident.force_limit_mn,
    )
    hil_device.set_limits(d)


def test_limits_and_telemetry_at_the_low_end_of_their_ranges(
    hil_device: Dut, hil_session: HilSession
) -> None:
    """SET_LIMITS with every field at the bottom of its range (soft limit 0, forces 1 mN,
    stall time 1 ms) is ACKed and in force; SET_TELEMETRY with batch_samples 0, below its
    range 1..10, is NAKed BAD_ARGUMENT, detail 0 (built by hand: the codec refuses it)."""
    dut = hil_device
    d = hil_session.default_limits()
    dut.set_limits(Limits(0, 1, 1, 1))  # a 1 mN force limit may trip at once on noise
    st = dut.status()
    dut.set_limits(d)
    if st.latched_faults & FaultFlags.FORCE_LIMIT:
        dut.clear_fault()
    lows = (st.soft_depth_limit_um, st.force_limit_mn, st.stall_force_mn, st.stall_time_ms)
    assert lows == (0, 1, 1, 1), f"limits in force after SET_LIMITS(0, 1, 1, 1): {lows}"
    seq = dut.wire.send_raw(MSG_ID[SetTelemetry], struct.pack("<HB", 100, 0))
    (reply,) = _replies(dut, seq, 1)
    nak = reply.message
    assert isinstance(nak, Nak), f"SET_TELEMETRY(100 Hz, batch 0) answered {nak!r}"
    assert (NakReason(nak.reason), nak.detail) == (NakReason.BAD_ARGUMENT, 0), nak


def test_move_at_the_lowest_speed_is_accepted(hil_homed: Dut) -> None:
    """MOVE at 1 µm/s, the bottom of its speed range, is ACKed and creeps (a STOP ends
    it); at 0 it is BAD_ARGUMENT (test_receive_rules)."""
    dut = hil_homed
    start = dut.status().commanded_depth_um
    dut.ack(Move(MoveMode.RELATIVE, STEP_UM, 1))
    dut.wire.wait_s(0.5)
    st = dut.status()
    dut.stop()
    dut.wait_idle(5.0)
    assert st.flags & SampleFlags.ADVANCING, "a MOVE at 1 µm/s did not start"
    assert 0 <= st.commanded_depth_um - start <= 2, (
        f"at 1 µm/s for 0.5 s: {st.commanded_depth_um - start} µm"
    )


def test_a_move_with_nothing_to_move_is_reached_before_its_ack(
    hil_homed: Dut, hil_session: HilSession
) -> None:
    """A MOVE RELATIVE 0 at rest, after an arrival, has nothing to move: its TARGET_REACHED
    is sent at once, before the ACK (protocol §5) — a host that waits for the event only
    after the ACK would wait for ever. The wire is read in order, so the event is in when
    the ACK is (the order the frames came in, not when the suite looked)."""
    dut = hil_homed
    s = hil_session
    depth_um = min(s.test_depth_um, STEP_UM)
    before = dut.status().last_event_number
    dut.move_to_um(depth_um, s.speed_um_s)
    arrived = dut.wait_event(EventCode.TARGET_REACHED, depth_um / s.speed_um_s + 5.0, before)
    assert arrived is not None, f"no TARGET_REACHED at {depth_um} µm"
    dut.wait_idle(5.0)
    reply = dut.request(Move(MoveMode.RELATIVE, 0, s.speed_um_s))
    assert isinstance(reply.message, Ack), f"MOVE RELATIVE 0 at rest: {reply.message!r}"
    dut.wire.wait_s(0.1)  # a TARGET_REACHED sent late comes in too, to be told from none
    frames = list(dut.wire.received.last)
    reached = [
        i
        for i, f in enumerate(frames)
        if isinstance(f.message, Event)
        and f.message.code == EventCode.TARGET_REACHED
        and f.message.number > arrived.number
    ]
    ack_at = next(i for i, f in enumerate(frames) if f is reply)
    assert reached, "a MOVE RELATIVE 0 at rest: no TARGET_REACHED"
    assert reached[0] < ack_at, "a MOVE RELATIVE 0 at rest: TARGET_REACHED after its ACK"
    value = frames[reached[0]].message.value  # type: ignore[union-attr]
    assert value == depth_um, f"TARGET_REACHED {value} µm, not {depth_um}"


def test_home_speed_below_and_beyond_the_max(
    hil_device: Dut, hil_session: HilSession, hil_motion: None
) -> None:
    """HOME at half the hard speed is ACKed; one µm/s above it, and at the top of the
    schema's range: NAK BEYOND_LIMIT, detail the hard speed (when the range lets the
    request through)."""
    s = hil_session
    dut = hil_device
    top = s.identity.max_speed_um_s
    if top + 1 <= HOME_SPEED_MAX_UM_S:
        nak = dut.nak(Home(top + 1))
        assert NakReason(nak.reason) is NakReason.BEYOND_LIMIT and nak.detail == top
        # the top of the schema's range is in range: refused for the hard speed only
        nak = dut.nak(Home(HOME_SPEED_MAX_UM_S))
        assert (NakReason(nak.reason), nak.detail) == (NakReason.BEYOND_LIMIT, top), nak
    dut.ack(Home(max(1, top // 2)))
    dut.stop()
    dut.wait_idle(5.0)
    dut.home(round(s.rig.homing_speed_mm_s * 1000), s.rig.homing_timeout_s)


def test_replayed_event_log_is_the_first(hil_device: Dut) -> None:
    """GET_EVENTS resent after more events came: the replay is the first EVENT_LOG,
    identical (the cache keeps the reply, not the question)."""
    dut = hil_device
    wire = dut.wire
    last = dut.status().last_event_number
    from protocol import GetEvents

    ask = GetEvents(max(1, last - 3), 12)
    seq = wire.send(ask)
    (first,) = _replies(dut, seq, 1)
    dut.estop()
    dut.clear_fault()
    wire.resend(ask, seq)
    _, again = _replies(dut, seq, 2)
    assert again.flags & HeaderFlags.REPLAYED
    assert again.message == first.message, f"replayed {again.message!r} ≠ {first.message!r}"


def test_replayed_event_log_keeps_its_count(hil_device: Dut) -> None:
    """A GET_EVENTS whose max_count cut the page short, resent after more events came: the
    replay has the first reply's records, no more (the cache keeps what was sent)."""
    from hil_tests.wire import events_of
    from protocol import EventLog, GetEvents

    dut = hil_device
    wire = dut.wire
    for _ in range(3):
        dut.estop()
        dut.clear_fault()
    last = dut.status().last_event_number
    count = 2 if last % 256 != 2 else 3  # not a byte of the newest number's
    seq = wire.send(GetEvents(last - 5, count))
    (first,) = _replies(dut, seq, 1)
    assert isinstance(first.message, EventLog) and len(events_of(first.message)) == count, (
        f"GET_EVENTS({last - 5}, {count}) of {last} events answered {first.message!r}"
    )
    dut.estop()
    dut.clear_fault()
    wire.resend(GetEvents(last - 5, count), seq)
    _, again = _replies(dut, seq, 2)
    assert again.flags & HeaderFlags.REPLAYED
    assert again.message == first.message, f"replayed {again.message!r} ≠ {first.message!r}"


def test_device_initiated_frames_carry_seq_0(hil_device: Dut) -> None:
    """TELEMETRY, EVENT and the device's HEARTBEAT are sent with seq 0 (protocol §2) and
    header flags 0."""
    dut = hil_device
    dut.estop()
    dut.clear_fault()
    dut.set_telemetry(0)
    dut.wire.wait_s(0.25)  # quiet: the device heartbeats
    dut.set_telemetry(1000, 10)
    dut.wire.wait_s(0.05)
    seqs = dut.wire.received.unsequenced_seqs
    assert seqs == {0}, f"device-initiated frames with seqs {sorted(seqs)}"
    # no flag either: RETRANSMIT is the host's, REPLAYED a replay's, other bits 0 (§1)
    flags = dut.wire.received.unsequenced_flags
    assert flags == {0}, f"device-initiated frames with header flags {sorted(flags)}"


def test_sample_flags_follow_the_latches(hil_device: Dut, hil_session: HilSession) -> None:
    """Telemetry's fault flags say what is latched: none with nothing latched; ESTOP while
    e-stopped; FAULT (not STALL) while the watchdog's fault is latched."""
    dut = hil_device
    wire = dut.wire
    tl = wire.received.telemetry
    faults = int(SampleFlags.STALL | SampleFlags.FAULT | SampleFlags.ESTOP)

    def flags_now() -> set[int]:
        wire.wait_s(0.03)  # the batches sampled before are in
        mark = tl.mark()
        wire.wait_s(0.05)
        return {int(f) & faults for f in tl.since(mark)["flags"]}

    assert flags_now() == {0}, "fault flags with nothing latched"
    dut.estop()
    assert flags_now() == {int(SampleFlags.ESTOP)}
    dut.clear_fault()
    dut.hello()
    dut.ack(Rotate(RotateMode.CONTINUOUS, 30_000, 0))
    before = dut.status().last_event_number
    wire.heartbeats_enabled = False
    ev = dut.wait_event(
        EventCode.WATCHDOG_TRIP, 3 * hil_session.identity.watchdog_ms / 1000, before
    )
    wire.heartbeats_enabled = True
    assert ev is not None
    assert flags_now() == {int(SampleFlags.FAULT)}
    dut.clear_fault()


def test_rotate_beyond_the_hard_rate(hil_device: Dut, hil_session: HilSession) -> None:
    """ROTATE one mrpm beyond the hard rate, either sign: NAK BEYOND_LIMIT, detail the
    hard rate (when the schema's range lets the request through)."""
    top = hil_session.identity.max_rate_mrpm
    if top + 1 > 600_000:
        pytest.skip("the hard rate is the schema's maximum: nothing beyond it to ask")
    for rate in (top + 1, -(top + 1)):
        nak = hil_device.nak(Rotate(RotateMode.CONTINUOUS, rate, 0))
        assert NakReason(nak.reason) is NakReason.BEYOND_LIMIT, NakReason(nak.reason).name
        assert nak.detail == top


def test_variable_length_device_message_is_unknown_message(hil_device: Dut) -> None:
    """A well-formed TELEMETRY (a device→host message, variable length: 0, 1, 10 samples) sent
    to the device is a valid frame: NAK UNKNOWN_MESSAGE. One whose record count disagrees with its
    length, or whose count is above its message's maximum (an EVENT_LOG of 13 records), is
    malformed: dropped, counted bad, unanswered."""
    from protocol import Telemetry

    dut = hil_device
    msg_id = Telemetry.MSG_ID  # type: ignore[attr-defined]
    # first_sample_number 0, then that many (zeroed) samples: none, one, the most (10)
    for samples in (0, 1, TELEMETRY_MAX_SAMPLES):
        payload = bytes(4) + bytes([samples]) + bytes(samples * TELEMETRY_SAMPLE_BYTES)
        seq = dut.wire.send_raw(msg_id, payload)
        (reply,) = _replies(dut, seq, 1)
        assert isinstance(reply.message, Nak), f"{samples} samples: answered {reply.message!r}"
        assert NakReason(reply.message.reason) is NakReason.UNKNOWN_MESSAGE
    st0 = dut.status()
    bad = dut.wire.send_raw(msg_id, bytes(4) + b"\x02")  # says 2 samples, has none
    # and an EVENT_LOG of one record more than it may carry, its length matching that
    # count (a TELEMETRY so long would be oversize already)
    over = EVENT_LOG_MAX_RECORDS + 1
    too_many = dut.wire.send_raw(
        MSG_ID[EventLog], bytes(4) + bytes([over]) + bytes(over * EVENT_RECORD_BYTES)
    )
    dut.wire.wait_s(0.1)
    assert not dut.wire.received.replies.get(bad), "a malformed TELEMETRY was answered"
    assert not dut.wire.received.replies.get(too_many), (
        f"an EVENT_LOG of {over} records (at most {EVENT_LOG_MAX_RECORDS}) was answered"
    )
    assert dut.status().frames_bad == st0.frames_bad + 2


@pytest.mark.control("RC-HOMING")
def test_a_fresh_device_keeps_its_hard_limits_until_set(hil_session: HilSession) -> None:
    """From boot, before any SET_LIMITS, the hard limits are in force — a MOVE within
    them is ACKed — and event 1 is BOOT with value 0. Needs a device fresh from boot: a
    second in-process simulator."""
    s = hil_session
    if not on_the_simulator(s):
        pytest.skip("needs a device fresh from boot (the in-process simulator makes one)")
    from hil_tests.session import open_wire

    wire = open_wire(s.url)
    try:
        dut = Dut(wire)
        _, first = dut.event_log(1, 1)
        assert first and first[0].number == 1 and first[0].code == EventCode.BOOT
        assert first[0].value == 0, f"BOOT event value {first[0].value}"
        dut.hello()
        dut.home(round(s.rig.homing_speed_mm_s * 1000), s.rig.homing_timeout_s)
        dut.move_to_um(1000, s.speed_um_s)
        st = dut.wait_idle(5.0)
        assert st.commanded_depth_um == 1000
    finally:
        wire.close()


def test_a_fresh_device_keeps_its_first_reply(hil_session: HilSession) -> None:
    """From boot the reply cache keeps every reply, the very first one too: GET_EVENTS as
    the first command, a GET_STATUS, then the GET_EVENTS resent with its seq is REPLAYED
    (a second in-process simulator: a device fresh from boot)."""
    s = hil_session
    if not on_the_simulator(s):
        pytest.skip("needs a device fresh from boot (the in-process simulator makes one)")
    from hil_tests.session import open_wire

    wire = open_wire(s.url)
    try:
        dut = Dut(wire)
        ask = GetEvents(1, 1)
        seq = wire.send(ask)
        (first,) = _replies(dut, seq, 1)
        dut.status()
        wire.resend(ask, seq)
        _, again = _replies(dut, seq, 2)
        assert again.flags & HeaderFlags.REPLAYED and again.message == first.message, (
            f"the first command after boot, resent, answered {again.message!r} "
            f"(flags {again.flags:#x}), not its cached reply"
        )
    finally:
        wire.close()


def test_silence_at_rest_with_telemetry_off(hil_device: Dut, hil_session: HilSession) -> None:
    """With nothing streaming (telemetry off: the device may idle) host silence at rest
    still ends the session after the watchdog period ±1 ms, not later."""
    dut = hil_device
    wd_ms = hil_session.identity.watchdog_ms
    dut.set_telemetry(0)
    before = dut.status().last_event_number
    dut.wire.heartbeats_enabled = False
    ev = dut.wait_event(EventCode.SESSION_ENDED, 3 * wd_ms / 1000, before)
    dut.wire.heartbeats_enabled = True
    assert ev is not None, "host silent at rest and no SESSION_ENDED"
    assert wd_ms - 1 <= ev.value <= wd_ms + 1, f"session ended after {ev.value} ms, not {wd_ms}"
    dut.hello()
    dut.set_telemetry(1000, 10)
