"""What a device does with each frame it receives (docs/protocol.md §1 Receiving, §2, §6):
seq 0, device→host ids, HEARTBEAT seq, which frames count as valid and feed the watchdog,
and the SET_LIMITS / MOVE argument checks with their NAK details."""

from __future__ import annotations

import struct

from hil_tests.dut import REPLY_TIMEOUT_S, Dut
from hil_tests.session import HilSession
from protocol import (
    Ack,
    DeviceState,
    EStop,
    Event,
    EventCode,
    FaultFlags,
    Frame,
    GetStatus,
    HeaderFlags,
    Heartbeat,
    Move,
    MoveMode,
    Nak,
    NakReason,
    Rotate,
    RotateMode,
    SampleFlags,
    SetLimits,
    SetTelemetry,
    Stop,
    StreamDecoder,
)
from protocol.schema import MSG_ID, Message

UNASSIGNED_ID = 0x40  # no message has this id


def _replies(dut: Dut, seq: int, count: int) -> list[Frame]:
    """The first ``count`` replies with this seq (waiting for them)."""
    got = dut.wire.received.replies
    dut.wire.wait_for(lambda: len(got.get(seq, [])) >= count, REPLY_TIMEOUT_S)
    frames = got.get(seq, [])
    assert len(frames) >= count, f"{len(frames)} replies with seq {seq}, expected {count}"
    return frames[:count]


def _raw_nak(dut: Dut, msg_id: int, payload: bytes) -> Nak:
    seq = dut.wire.send_raw(msg_id, payload)
    reply = dut.wire.reply(seq, REPLY_TIMEOUT_S)
    assert reply is not None, f"no reply to msg_id 0x{msg_id:02x} payload {payload.hex()}"
    assert isinstance(reply.message, Nak), f"payload {payload.hex()} answered {reply.message!r}"
    assert reply.message.command_id == msg_id
    return reply.message


def test_command_with_seq_0_is_refused_unexecuted_uncached(hil_device: Dut) -> None:
    """Any command with seq 0 (HEARTBEAT aside), a device→host id too: NAK BAD_ARGUMENT at
    seq 0, detail 0; nothing executed (but a stop); not cached (a repeat is not REPLAYED)."""
    dut = hil_device
    wire = dut.wire
    for msg in (SetTelemetry(0, 1), SetTelemetry(0, 1), Ack(0x0B)):
        wire.received.replies.pop(0, None)
        wire.send(msg, seq=0)
        (reply,) = _replies(dut, 0, 1)
        assert isinstance(reply.message, Nak), f"{msg!r} at seq 0 answered {reply.message!r}"
        assert NakReason(reply.message.reason) is NakReason.BAD_ARGUMENT
        assert reply.message.command_id == MSG_ID[type(msg)]
        assert reply.message.detail == 0
        assert not reply.flags & HeaderFlags.REPLAYED, "a seq-0 reply came from the cache"
        assert reply.flags == 0, f"a seq-0 NAK with header flags {reply.flags:#x}"
    wire.received.replies.pop(0, None)
    assert dut.status().telemetry_rate_hz != 0, "SET_TELEMETRY at seq 0 was executed"


def _seq0_nak(dut: Dut, msg: Message) -> None:
    dut.wire.received.replies.pop(0, None)
    dut.wire.send(msg, seq=0)
    (reply,) = _replies(dut, 0, 1)
    dut.wire.received.replies.pop(0, None)
    assert isinstance(reply.message, Nak), f"{msg!r} at seq 0 answered {reply.message!r}"
    assert NakReason(reply.message.reason) is NakReason.BAD_ARGUMENT


def test_stop_with_seq_0_still_stops(hil_homed: Dut, hil_session: HilSession) -> None:
    """Stopping is never refused (protocol §2, §5): a STOP or an ESTOP malformed in its seq
    (0) is NAKed BAD_ARGUMENT and stops all the same."""
    s = hil_session
    dut = hil_homed
    far = s.test_depth_um
    dut.move_to_um(far, s.speed_um_s)
    dut.wire.wait_s(0.2)
    _seq0_nak(dut, Stop())
    dut.wire.wait_s(0.3)  # down its ramp
    a = dut.status()
    dut.wire.wait_s(0.1)
    b = dut.status()
    assert a.commanded_depth_um == b.commanded_depth_um < far, "a seq-0 STOP did not stop"
    dut.move_to_um(far, s.speed_um_s)
    dut.wire.wait_s(0.2)
    _seq0_nak(dut, EStop())
    st = dut.status()
    assert st.latched_faults & FaultFlags.ESTOP, "a seq-0 ESTOP was not executed"
    assert st.state == DeviceState.ESTOPPED
    dut.clear_fault()


def test_device_to_host_id_is_unknown_message_and_cached(hil_device: Dut) -> None:
    """A device→host message received by the device: NAK UNKNOWN_MESSAGE echoing its seq,
    detail 0, cached like any reply: the repeat is the same NAK, flagged REPLAYED."""
    dut = hil_device
    seq = dut.wire.send(Ack(0x0B))
    dut.wire.resend(Ack(0x0B), seq)
    first, again = _replies(dut, seq, 2)
    assert isinstance(first.message, Nak), f"answered {first.message!r}"
    assert NakReason(first.message.reason) is NakReason.UNKNOWN_MESSAGE
    assert first.message.command_id == Ack.MSG_ID  # type: ignore[attr-defined]
    assert first.message.detail == 0
    assert not first.flags & HeaderFlags.REPLAYED
    assert again.message == first.message
    assert again.flags & HeaderFlags.REPLAYED, "the repeat was not answered from the cache"


def test_every_device_to_host_message_is_unknown_message(
    hil_device: Dut, hil_session: HilSession
) -> None:
    """Each fixed-length device→host message, of its right length, is a valid frame the
    device cannot take: NAK UNKNOWN_MESSAGE naming its id — not dropped as a bad frame
    (the variable-length ones: test_edges.py)."""
    dut = hil_device
    st0 = dut.status()
    event = Event(1, 0, EventCode.BOOT, 0)
    for msg in (Ack(0x0B), Nak(0x0B, NakReason.BUSY, 0), event, st0, hil_session.identity):
        (reply,) = _replies(dut, dut.wire.send(msg), 1)
        assert isinstance(reply.message, Nak), f"{type(msg).__name__}: {reply.message!r}"
        assert NakReason(reply.message.reason) is NakReason.UNKNOWN_MESSAGE
        assert reply.message.command_id == MSG_ID[type(msg)]


def test_only_valid_frames_count_as_ok(hil_device: Dut) -> None:
    """CRC-good frames with an unknown id or a wrong payload length are dropped, counted
    in frames_bad and not in frames_ok; a HEARTBEAT with seq ≠ 0 is valid and unanswered."""
    dut = hil_device
    wire = dut.wire
    # Every write to the port, in wire order: a valid frame the suite itself sent between
    # the two STATUS requests (a heartbeat of its own already on its way as they were
    # switched off, a retransmitted request) is counted as such, not waited out.
    written: list[bytes] = []
    transport_write = wire.transport.write

    def spy(data: bytes) -> None:
        written.append(bytes(data))
        transport_write(data)

    wire.transport.write = spy  # type: ignore[method-assign]
    wire.heartbeats_enabled = False
    try:
        st0 = dut.status()
        seqs = [wire.send_raw(UNASSIGNED_ID, b"") for _ in range(3)]
        seqs.append(wire.send_raw(GetStatus.MSG_ID, b"\x00"))  # type: ignore[attr-defined]
        wire.send_raw(Heartbeat.MSG_ID, b"\x01\x02", seq=0)  # type: ignore[attr-defined]
        hb_seq = wire.next_seq()
        wire.send(Heartbeat(7), seq=hb_seq)  # valid: counted ok, no reply
        st1 = dut.status()
    finally:
        wire.heartbeats_enabled = True
        wire.transport.write = transport_write  # type: ignore[method-assign]
    # st0's request is the first GET_STATUS written, st1's the last (a retransmission has
    # the seq of its first copy): st1 counts every frame after st0's first copy up to and
    # including st1's first copy
    frames = [StreamDecoder().feed(data) for data in written]  # bad frames do not decode
    status_seqs = [f.seq for fs in frames for f in fs if isinstance(f.message, GetStatus)]
    st0_seq, st1_seq = status_seqs[0], status_seqs[-1]

    def first_copy(seq: int) -> int:
        return next(
            i
            for i, fs in enumerate(frames)
            if any(f.seq == seq and isinstance(f.message, GetStatus) for f in fs)
        )

    first, last = first_copy(st0_seq) + 1, first_copy(st1_seq)
    valid = [f for fs in frames[first : last + 1] for f in fs]
    extra = [f for f in valid if f.seq not in (hb_seq, st1_seq)]
    assert all(isinstance(f.message, Heartbeat | GetStatus) for f in extra), extra
    assert st1.frames_bad - st0.frames_bad == 5, (
        f"frames_bad grew by {st1.frames_bad - st0.frames_bad}, 5 bad frames were sent"
    )
    # the HEARTBEAT (seq ≠ 0) and the GET_STATUS of st1: nothing else was valid (but what
    # the suite's own pump or retransmission added, counted above)
    assert st1.frames_ok - st0.frames_ok == 2 + len(extra), (
        f"frames_ok grew by {st1.frames_ok - st0.frames_ok}: only {2 + len(extra)} valid "
        f"frames were sent ({len(extra)} of them the suite's heartbeats or retransmissions)"
    )
    wire.wait_s(0.1)
    for seq in [*seqs, hb_seq]:
        assert not wire.received.replies.get(seq), f"seq {seq} was answered"


def test_only_valid_frames_feed_the_watchdog(hil_device: Dut, hil_session: HilSession) -> None:
    """HEARTBEATs with seq ≠ 0 keep the watchdog fed; CRC-good frames with an unknown id or
    a wrong length do not: sent alone for longer than the watchdog period, the watchdog
    acts — at rest, by ending the session (protocol §4)."""
    dut = hil_device
    wire = dut.wire
    wd_s = hil_session.identity.watchdog_ms / 1000
    before = dut.status()
    wire.heartbeats_enabled = False
    try:
        end = wire.clock.monotonic() + 2 * wd_s
        while wire.clock.monotonic() < end:
            wire.send(Heartbeat(1), seq=0x2345)  # any seq: ignored, still valid
            wire.wait_s(0.04)
        st = dut.status()
        assert st.last_event_number == before.last_event_number, (
            "the watchdog acted although HEARTBEATs (seq ≠ 0) kept coming"
        )
        assert st.flags & SampleFlags.ARMED
        mark = st.last_event_number
        end = wire.clock.monotonic() + 2.5 * wd_s
        while wire.clock.monotonic() < end:
            wire.send_raw(UNASSIGNED_ID, b"\x00\x01")
            wire.send_raw(Heartbeat.MSG_ID, b"\x01", seq=0)  # type: ignore[attr-defined]
            wire.wait_s(0.02)
    finally:
        wire.heartbeats_enabled = True
    ended = [
        e for e in wire.received.events if e.code == EventCode.SESSION_ENDED and e.number > mark
    ]
    assert len(ended) == 1, (
        f"{len(ended)} SESSION_ENDED events: unknown-id / wrong-length frames fed the watchdog"
    )
    assert wire.received.replies.get(0x2345) in (None, []), "a HEARTBEAT was answered"
    st = dut.status()
    assert not st.latched_faults and not st.flags & SampleFlags.ARMED
    assert st.watchdog_trips == before.watchdog_trips


def test_set_limits_ranges_then_hard_limits_in_field_order(
    hil_device: Dut, hil_session: HilSession
) -> None:
    """SET_LIMITS (protocol §6): each field against its range in field order (BAD_ARGUMENT,
    detail = the value), then against the hard limits in field order (BEYOND_LIMIT, detail =
    the hard limit); nothing changes when refused. Built by hand: the codec refuses them."""
    s = hil_session
    dut = hil_device
    travel = s.identity.travel_limit_um
    hard_force = s.identity.force_limit_mn
    lim = s.default_limits()
    soft, force, stall_force, stall_ms = (
        lim.soft_depth_limit_um,
        lim.force_limit_mn,
        lim.stall_force_mn,
        lim.stall_time_ms,
    )
    bad, beyond = NakReason.BAD_ARGUMENT, NakReason.BEYOND_LIMIT
    cases = [
        ((-1, force, stall_force, stall_ms), bad, -1),
        ((soft, 0, stall_force, stall_ms), bad, 0),
        ((soft, force, -5, stall_ms), bad, -5),
        ((soft, force, stall_force, 0), bad, 0),
        ((soft, force, stall_force, 10_001), bad, 10_001),
        ((-7, 0, -5, 0), bad, -7),
        ((soft, -3, -5, 0), bad, -3),
        ((travel + 1, hard_force + 1, -9, stall_ms), bad, -9),
        ((travel + 1, force, stall_force, stall_ms), beyond, travel),
        ((soft, hard_force + 1, stall_force, stall_ms), beyond, hard_force),
        ((soft, force, hard_force + 1, stall_ms), beyond, hard_force),
        ((travel + 1, hard_force + 1, hard_force + 1, stall_ms), beyond, travel),
    ]
    before = dut.status()
    for values, reason, detail in cases:
        nak = _raw_nak(dut, SetLimits.MSG_ID, struct.pack("<iiiH", *values))  # type: ignore[attr-defined]
        got = (NakReason(nak.reason), nak.detail)
        assert got == (reason, detail), f"SET_LIMITS{values}: {got}, expected {(reason, detail)}"
    after = dut.status()
    assert (
        after.soft_depth_limit_um,
        after.force_limit_mn,
        after.stall_force_mn,
        after.stall_time_ms,
    ) == (
        before.soft_depth_limit_um,
        before.force_limit_mn,
        before.stall_force_mn,
        before.stall_time_ms,
    ), "a refused SET_LIMITS changed the limits"


def test_move_below_zero_is_beyond_the_lower_limit(hil_homed: Dut, hil_session: HilSession) -> None:
    nak = hil_homed.nak(Move(MoveMode.ABSOLUTE, -1, hil_session.speed_um_s))
    assert (NakReason(nak.reason), nak.detail) == (NakReason.BEYOND_LIMIT, 0)


def test_move_stop_and_rotate_stop_with_seq_0_still_stop(
    hil_homed: Dut, hil_session: HilSession
) -> None:
    """MOVE STOP and ROTATE STOP are stops too (protocol §5: never refused): malformed in
    their seq (0) they are NAKed BAD_ARGUMENT and stop their axis all the same; their other
    modes at seq 0 are not run."""
    s = hil_session
    dut = hil_homed
    far = s.test_depth_um
    dut.ack(Rotate(RotateMode.CONTINUOUS, 30_000, 0))
    dut.move_to_um(far, s.speed_um_s)
    dut.wire.wait_s(0.2)
    _seq0_nak(dut, Move(MoveMode.STOP, 0, 1))
    dut.wire.wait_s(0.3)  # down its ramp
    a = dut.status()
    dut.wire.wait_s(0.1)
    b = dut.status()
    assert a.commanded_depth_um == b.commanded_depth_um < far, "a seq-0 MOVE STOP did not stop"
    assert b.angle_cdeg != a.angle_cdeg, "a seq-0 MOVE STOP stopped the rotation too"
    _seq0_nak(dut, Rotate(RotateMode.STOP, 0, 0))
    st = dut.wait_idle(2.0)
    assert not st.flags & SampleFlags.ROTATING, "a seq-0 ROTATE STOP did not stop"
    # only the stops: a seq-0 ROTATE or MOVE of another mode is not run
    _seq0_nak(dut, Rotate(RotateMode.BY_ANGLE, 30_000, 1_000))
    _seq0_nak(dut, Move(MoveMode.RELATIVE, 1_000, s.speed_um_s))
    dut.wire.wait_s(0.1)
    after = dut.status()
    assert (after.angle_cdeg, after.commanded_depth_um) == (st.angle_cdeg, st.commanded_depth_um), (
        "a seq-0 ROTATE BY_ANGLE or MOVE RELATIVE was run"
    )
    dut.move_to_um(0, s.speed_um_s)
    dut.wait_idle(far / s.speed_um_s + 5.0)


def test_move_bad_mode_or_speed_0_is_bad_argument(hil_homed: Dut) -> None:
    """MOVE with a mode that is not one of MoveMode's, or at speed 0 (range 1..20000), is
    NAKed BAD_ARGUMENT with the offending value as detail and moves nothing (built by hand:
    the codec refuses both)."""
    dut = hil_homed
    move_id = MSG_ID[Move]
    for mode, speed_um_s, detail in ((7, 1000, 7), (MoveMode.ABSOLUTE, 0, 0)):
        before = dut.status()
        seq = dut.wire.send_raw(move_id, struct.pack("<BiI", mode, 1000, speed_um_s))
        (reply,) = _replies(dut, seq, 1)
        nak = reply.message
        what = f"MOVE(mode {mode}, 1000 µm, {speed_um_s} µm/s)"
        assert isinstance(nak, Nak), f"{what} answered {nak!r}"
        assert (NakReason(nak.reason), nak.detail) == (NakReason.BAD_ARGUMENT, detail), nak
        dut.wire.wait_s(0.1)
        after = dut.status()
        assert after.commanded_depth_um == before.commanded_depth_um, f"{what} moved"


def test_invalid_cobs_is_dropped(hil_device: Dut) -> None:
    """A chunk that is not valid COBS — a code byte pointing past its end — is dropped and
    counted bad (protocol §1 Receiving, check 3), unanswered; the device goes on answering."""
    dut = hil_device
    st0 = dut.status()
    dut.wire.write(b"\x00" + bytes([0x09, 0x01, 0x0B]) + b"\x00")  # 0x09: 8 bytes follow, 2 do
    st = dut.status()
    assert st.frames_bad == st0.frames_bad + 1, (
        f"frames_bad {st0.frames_bad} → {st.frames_bad} over one invalid COBS chunk"
    )


def test_oversize_chunk_is_dropped_and_the_next_frame_taken(hil_device: Dut) -> None:
    """A chunk longer than any frame (300 bytes, no delimiter) is dropped and counted bad
    (protocol §1 Receiving, check 2); the frame after it is received as usual."""
    dut = hil_device
    st0 = dut.status()
    dut.wire.write(b"\x00" + b"\x01" * 300 + b"\x00")
    st = dut.status()  # the next frame: answered
    assert st.frames_bad == st0.frames_bad + 1, (
        f"frames_bad {st0.frames_bad} → {st.frames_bad} over one oversize chunk"
    )
