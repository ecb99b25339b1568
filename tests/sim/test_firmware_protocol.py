"""Firmware protocol behaviour through sim:// on the virtual clock (no sleeps)."""

from __future__ import annotations

import itertools
from collections.abc import Iterator

import pytest
import serial
from minihost import MiniHost

import sim_device  # noqa: F401  (registers sim://)
from protocol import (
    REPLY_CACHE_SIZE,
    SCHEMA_HASH,
    Ack,
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
    Heartbeat,
    Hello,
    Home,
    Identity,
    Move,
    MoveMode,
    Nak,
    NakReason,
    Rotate,
    RotateMode,
    SetLimits,
    SetTelemetry,
    Status,
    Stop,
    StreamDecoder,
    encode,
    encode_body,
    event_array,
    frame_body,
    sample_array,
)


def open_host(query: str = "lesion=soft-stenosis&seed=1") -> MiniHost:
    port = serial.serial_for_url(f"sim://?{query}", timeout=0.1)
    return MiniHost(port)


@pytest.fixture
def host() -> Iterator[MiniHost]:
    h = open_host()
    yield h
    h.port.close()


def nak_reason(frame_msg: object) -> int:
    assert isinstance(frame_msg, Nak), frame_msg
    return frame_msg.reason


def homed(h: MiniHost) -> MiniHost:
    ident = h.hello().message
    assert isinstance(ident, Identity) and ident.session_armed == 1
    assert isinstance(h.command(Home(2000)).message, Ack)
    h.pump(5.0, until=lambda: EventCode.HOMED in h.event_codes())
    assert EventCode.HOMED in h.event_codes()
    return h


def test_identity_says_simulated_and_arms_on_matching_hash(host: MiniHost) -> None:
    ident = host.hello().message
    assert isinstance(ident, Identity)
    assert ident.simulated == 1 and ident.session_armed == 1
    assert ident.schema_hash == SCHEMA_HASH and ident.watchdog_ms == 200


def test_motion_before_hello_is_not_armed_but_queries_work(host: MiniHost) -> None:
    assert nak_reason(host.command(Home(1000)).message) == NakReason.NOT_ARMED
    assert nak_reason(host.command(Rotate(1, 10_000, 0)).message) == NakReason.NOT_ARMED
    assert host.status().state == DeviceState.UNHOMED


def test_schema_mismatch_refuses_motion_allows_queries(host: MiniHost) -> None:
    ident = host.hello(schema_hash=SCHEMA_HASH ^ 1).message
    assert isinstance(ident, Identity) and ident.session_armed == 0
    assert nak_reason(host.command(Home(1000)).message) == NakReason.SCHEMA_MISMATCH
    assert isinstance(host.command(GetStatus()).message, Status)


@pytest.mark.control("RC-HOMING")
def test_move_before_homing_is_refused_not_homed(host: MiniHost) -> None:
    host.hello()
    assert nak_reason(host.command(Move(0, 1000, 500)).message) == NakReason.NOT_HOMED


def test_homing_zeroes_position_at_the_switch(host: MiniHost) -> None:
    homed(host)
    st = host.status()
    assert st.state == DeviceState.READY and st.depth_um == 0 and st.commanded_depth_um == 0
    assert abs(host.port.sim.rig.needle_depth_mm) < 0.002


def test_move_reaches_target_and_reports_it(host: MiniHost) -> None:
    homed(host)
    assert isinstance(host.command(Move(MoveMode.ABSOLUTE, 2000, 1000)).message, Ack)
    assert host.status().state == DeviceState.MOVING
    host.pump(5.0, until=lambda: EventCode.TARGET_REACHED in host.event_codes())
    st = host.status()
    assert st.state == DeviceState.READY and st.commanded_depth_um == 2000
    assert abs(st.depth_um - 2000) <= 2


def test_repeat_with_same_seq_and_id_is_replayed_not_executed(host: MiniHost) -> None:
    homed(host)
    seq = host.send(Move(MoveMode.RELATIVE, 1000, 2000))
    first = host.wait_reply(seq)
    again = host.command(Move(MoveMode.RELATIVE, 1000, 2000), seq=seq, flags=1)
    assert again.flags & HeaderFlags.REPLAYED and not first.flags & HeaderFlags.REPLAYED
    assert again.message == first.message
    host.pump(3.0)
    st = host.status()
    assert st.commanded_depth_um == 1000 and st.replies_replayed == 1


def test_same_seq_with_another_message_is_executed(host: MiniHost) -> None:
    homed(host)
    seq = host.send(GetStatus())
    host.wait_reply(seq)
    reply = host.command(Move(MoveMode.RELATIVE, 500, 2000), seq=seq)
    assert isinstance(reply.message, Ack) and not reply.flags & HeaderFlags.REPLAYED


def test_reply_cache_holds_the_last_32_commands(host: MiniHost) -> None:
    homed(host)
    first = host.send(Move(MoveMode.RELATIVE, 100, 2000))
    host.wait_reply(first)
    for _ in range(REPLY_CACHE_SIZE - 1):
        host.command(GetStatus())
    # still cached: replayed
    assert host.command(Move(MoveMode.RELATIVE, 100, 2000), seq=first).flags & 2
    host.command(GetStatus())  # the 33rd distinct seq evicts the first
    again = host.command(Move(MoveMode.RELATIVE, 100, 2000), seq=first)
    assert not again.flags & HeaderFlags.REPLAYED
    host.pump(2.0)
    assert host.status().commanded_depth_um == 200


def test_hello_empties_the_reply_cache(host: MiniHost) -> None:
    homed(host)
    seq = host.send(Move(MoveMode.RELATIVE, 100, 2000))
    host.wait_reply(seq)
    host.hello()
    reply = host.command(Move(MoveMode.RELATIVE, 100, 2000), seq=seq)
    assert not reply.flags & HeaderFlags.REPLAYED


def test_limits_can_only_be_tightened_within_hard(host: MiniHost) -> None:
    ident = host.hello().message
    assert isinstance(ident, Identity)
    over = SetLimits(ident.travel_limit_um + 1, 10_000, 5_000, 5)
    assert nak_reason(host.command(over).message) == NakReason.BEYOND_LIMIT
    over_force = SetLimits(10_000, ident.force_limit_mn + 1, 5_000, 5)
    assert nak_reason(host.command(over_force).message) == NakReason.BEYOND_LIMIT
    assert isinstance(host.command(SetLimits(10_000, 10_000, 5_000, 5)).message, Ack)
    st = host.status()
    assert (st.soft_depth_limit_um, st.force_limit_mn) == (10_000, 10_000)


def test_move_beyond_soft_limit_is_refused(host: MiniHost) -> None:
    homed(host)
    host.command(SetLimits(5_000, 20_000, 15_000, 5))
    assert nak_reason(host.command(Move(0, 5_001, 1000)).message) == NakReason.BEYOND_LIMIT
    assert isinstance(host.command(Move(0, 5_000, 1000)).message, Ack)


def test_watchdog_stops_motion_and_latches_until_clear_fault(host: MiniHost) -> None:
    homed(host)
    host.command(Move(MoveMode.ABSOLUTE, 20_000, 2000))
    host.pump(0.3)
    before = host.status().commanded_depth_um
    assert before > 0
    t0 = host.clock()
    host.port.advance_s(0.5)  # the host falls silent
    host.pump(0.01)
    st = host.status()
    assert st.latched_faults & FaultFlags.WATCHDOG and st.watchdog_trips == 1
    trip = [f.message for f in host.events if f.message.code == EventCode.WATCHDOG_TRIP]
    assert trip and isinstance(trip[0], Event)
    assert trip[0].time_us / 1e6 - t0 <= 0.2 + 0.002
    # motion stopped at the trip: ≤ one period of motion at 2 mm/s past the silence start
    assert st.commanded_depth_um - before <= 2000 * 0.25
    assert nak_reason(host.command(Move(0, 1000, 1000)).message) == NakReason.LATCHED_FAULT
    assert isinstance(host.command(ClearFault()).message, Ack)
    assert host.status().latched_faults == 0
    assert isinstance(host.command(Move(0, 1000, 1000)).message, Ack)


def test_device_heartbeats_every_100ms_when_silent() -> None:
    h = open_host()
    h.heartbeat = False
    h.port.read(4096)  # boot event
    times = []
    for _ in range(5):
        h.port.timeout = 1.0
        h.port.read(4096)
        times.append(h.clock())
    gaps = [round(b - a, 3) for a, b in itertools.pairwise(times)]
    assert gaps == [0.1] * 4


def test_estop_halts_within_one_tick_and_unhomes(host: MiniHost) -> None:
    homed(host)
    host.command(Move(MoveMode.ABSOLUTE, 20_000, 2000))
    host.pump(0.5)
    fw = host.port.device
    seq = host.send(EStop())
    pos_before = fw.adv.pos
    fw.run_ticks(1)
    assert fw.adv.pos == pos_before and not fw.adv.active
    reply = host.wait_reply(seq)
    assert isinstance(reply.message, Ack)
    st = host.status()
    assert st.state == DeviceState.ESTOPPED and st.latched_faults & FaultFlags.ESTOP
    assert nak_reason(host.command(Move(0, 100, 100)).message) == NakReason.ESTOPPED
    host.command(ClearFault())
    assert host.status().state == DeviceState.UNHOMED
    assert nak_reason(host.command(Move(0, 100, 100)).message) == NakReason.NOT_HOMED


@pytest.mark.control("RC-SAMPLECOUNT")
def test_telemetry_counter_runs_without_gaps(host: MiniHost) -> None:
    homed(host)
    host.command(SetTelemetry(1000, 10))
    host.command(Move(MoveMode.ABSOLUTE, 3000, 2000))
    host.pump(1.0)
    numbers = []
    for f in host.telemetry:
        samples = sample_array(f.message)
        numbers.extend(
            range(f.message.first_sample_number, f.message.first_sample_number + len(samples))
        )
    assert len(numbers) >= 990 and numbers == list(range(numbers[0], numbers[0] + len(numbers)))
    times = [int(t) for f in host.telemetry for t in sample_array(f.message)["time_us"]]
    assert all(b - a == 1000 for a, b in itertools.pairwise(times))


def test_events_are_numbered_and_fetchable_again(host: MiniHost) -> None:
    homed(host)
    numbers = [f.message.number for f in host.events]
    assert numbers == list(range(1, len(numbers) + 1))
    log = host.command(GetEvents(1, 12)).message
    assert isinstance(log, EventLog)
    recs = event_array(log)
    assert list(recs["number"]) == numbers
    assert recs["code"][0] == EventCode.BOOT


def test_nak_reasons_for_bad_argument_busy_and_unknown(host: MiniHost) -> None:
    host.hello()
    # a field out of its range (the codec refuses to build one, so patch the bytes)
    body = bytearray(encode_body(Home(1), seq=77))
    body[5:9] = (0).to_bytes(4, "little")
    host.port.write(frame_body(bytes(body)))
    assert nak_reason(host.wait_reply(77).message) == NakReason.BAD_ARGUMENT
    host.command(Home(500))
    assert nak_reason(host.command(Move(0, 100, 100)).message) == NakReason.BUSY
    # a device→host message sent to the device: valid frame, not implemented there
    assert nak_reason(host.command(Ack(1)).message) == NakReason.UNKNOWN_MESSAGE


def test_stop_decelerates_without_latching(host: MiniHost) -> None:
    homed(host)
    host.command(Move(MoveMode.ABSOLUTE, 20_000, 2000))
    host.command(Rotate(RotateMode.CONTINUOUS, 30_000, 0))
    host.pump(0.3)
    host.command(Stop())
    host.pump(0.5)
    st = host.status()
    assert st.state == DeviceState.READY and st.latched_faults == 0
    assert st.commanded_depth_um < 20_000


def test_heartbeat_from_host_gets_no_reply(host: MiniHost) -> None:
    host.hello()
    host.port.write(encode(Heartbeat(1)))
    host.pump(0.05)
    assert host.others == []


def test_a_new_session_reusing_seqs_is_not_answered_from_the_old_cache(host: MiniHost) -> None:
    homed(host)
    old_status = host.command(GetStatus(), seq=2).message
    host.command(Move(MoveMode.RELATIVE, 1000, 2000), seq=3)
    host.pump(1.0)
    # a new host process: seqs start at 1 again
    ident = host.command(Hello(1, SCHEMA_HASH), seq=1)
    assert not ident.flags & HeaderFlags.REPLAYED
    fresh = host.command(GetStatus(), seq=2)
    assert not fresh.flags & HeaderFlags.REPLAYED
    assert isinstance(fresh.message, Status) and isinstance(old_status, Status)
    assert fresh.message.device_time_us > old_status.device_time_us
    assert fresh.message.commanded_depth_um == 1000


@pytest.mark.parametrize(("rate_hz", "watchdog_ms"), [(0, 30), (0, 150), (37, 150), (1000, 150)])
def test_watchdog_trips_exactly_one_period_after_the_last_host_frame(
    rate_hz: int, watchdog_ms: int
) -> None:
    # the tick checks the watchdog and heartbeat against one lower-bound deadline; whatever
    # the device sends meanwhile (telemetry at any rate, heartbeats), and however short the
    # period, the trip is on time: after the session opens and again after a re-arm
    h = open_host(f"lesion=soft-stenosis&seed=1&watchdog_ms={watchdog_ms}")
    fw = h.port.device
    h.heartbeat = False
    for round_ in range(2):
        if round_ == 0:
            h.hello()
            h.command(SetTelemetry(rate_hz, 10))
        else:
            h.command(ClearFault())
        h.command(Rotate(RotateMode.CONTINUOUS, 30_000, 0))
        # the reply came in the tick that parsed the command; the core parses at the start
        # of a tick, before its clock moves on: the frame has the last tick's time
        last_host_us = fw.clock.now_us - 1000
        h.pump(watchdog_ms / 1000 + 0.1)
        trips = [f.message for f in h.events if f.message.code == EventCode.WATCHDOG_TRIP]
        assert len(trips) == round_ + 1 and isinstance(trips[-1], Event)
        assert trips[-1].time_us == last_host_us + watchdog_ms * 1000
        assert not fw.rot.active and fw.watchdog_trips == round_ + 1


def test_telemetry_angle_beyond_i32_wraps_not_dropped(host: MiniHost) -> None:
    """The angle wraps modulo 2^32 centidegrees (issue 17: clipped, it froze)."""
    host.command(SetTelemetry(1000, 10))
    fw = host.port.device
    host.command(Rotate(RotateMode.CONTINUOUS, 30_000, 0))
    host.pump(0.05)
    fw.rot.pos = 3.0e7  # 3e9 centidegrees: beyond i32 (days of continuous rotation)
    n_before = len(host.telemetry)
    host.pump(0.05)
    samples = [s for f in host.telemetry[n_before:] for s in sample_array(f.message)]
    assert len(samples) >= 40
    angles = {int(s["angle_cdeg"]) for s in samples[10:]}
    assert angles == {3_000_000_000 - (1 << 32)}, "3e9 cdeg not wrapped into i32"
    times = [int(s["time_us"]) for s in samples]
    assert all(b - a == 1000 for a, b in itertools.pairwise(times))


def _condition(h: MiniHost, condition: str) -> None:
    if condition == "schema_mismatch":
        h.hello(schema_hash=SCHEMA_HASH ^ 1)
    elif condition in ("homing", "latched", "estopped", "moving"):
        h.hello()
        assert isinstance(h.command(Rotate(RotateMode.CONTINUOUS, 30_000, 0)).message, Ack)
        if condition == "homing":
            assert isinstance(h.command(Home(500)).message, Ack)
        elif condition == "latched":
            h.heartbeat = False
            h.pump(0.5, until=lambda: EventCode.WATCHDOG_TRIP in h.event_codes())
            h.heartbeat = True
        elif condition == "estopped":
            assert isinstance(h.command(EStop()).message, Ack)


@pytest.mark.parametrize(
    "condition", ["before_hello", "schema_mismatch", "homing", "moving", "latched", "estopped"]
)
def test_stopping_is_accepted_in_every_state_and_session_condition(
    host: MiniHost, condition: str
) -> None:
    """ROTATE STOP (whatever its other fields), STOP and ESTOP are never refused."""
    _condition(host, condition)
    for stop in (
        Rotate(RotateMode.STOP, 0, 0),
        Rotate(RotateMode.STOP, 600_000, -5),  # a STOP's rate and angle are ignored
        Stop(),
        EStop(),
    ):
        reply = host.command(stop).message
        assert isinstance(reply, Ack), f"{condition}: {stop} answered {reply}"
    host.pump(0.2)
    assert not host.port.device.rot.active and not host.port.device.adv.active


def test_noise_on_either_line_costs_no_retransmission() -> None:
    """Protocol §1: each frame is preceded by a 0x00, so garbage already on the line is
    flushed as a (bad) chunk of its own instead of gluing itself to the next frame."""
    host = open_host()
    fw = host.port.device
    fw.take_output()  # the BOOT event
    # host → device: noise, then a command sent as a host does (a leading 0x00)
    fw.receive(b"\x13\x37\xfe" + b"\x00" + encode(GetStatus(), 7))
    fw.run_until_output(50)
    out = fw.take_output()
    # device → host: noise the host's receiver holds before the device's reply
    frames = StreamDecoder().feed(b"\x55\xaa\x01\x02" + out)
    replies = [f for f in frames if f.seq == 7]
    assert len(replies) == 1 and isinstance(replies[0].message, Status), frames
    assert fw.stats()["commands_executed"] == 1
    # every frame the device sends starts with the delimiter
    fw.receive(b"\x00" + encode(Hello(1, SCHEMA_HASH), 8))
    fw.run_ticks(300)
    out = fw.take_output()
    assert out.startswith(b"\x00") and b"\x00\x00" in out
    chunks = out.split(b"\x00")
    # one empty chunk before each frame, one non-empty chunk per frame, trailing ""
    assert chunks[0] == b"" and chunks[-1] == b""
    body = chunks[1:-1]
    assert all(body[i] == b"" for i in range(1, len(body), 2)), "a frame without its 0x00"
    assert all(body[i] != b"" for i in range(0, len(body), 2))
