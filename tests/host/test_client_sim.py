"""NeedleDriver against the in-process simulator (sim://, virtual clock): handshake,
motion, limits, schema mismatch, watchdog, link loss, telemetry, events — and the
exactly-once proof over a link that corrupts, drops and duplicates bytes."""

from __future__ import annotations

import random
import threading
from typing import Any

import pytest

from firmware_host.client import NeedleDriver
from firmware_host.errors import LimitError, LinkLost, Nak, SchemaMismatch, Timeout
from firmware_host.link import LinkConfig
from firmware_host.transports import open_transport
from protocol import (
    SCHEMA_HASH,
    DeviceState,
    EventCode,
    FaultFlags,
    Home,
    NakReason,
)
from protocol import Nak as NakMsg


def _fw(nd: NeedleDriver) -> Any:
    """The simulated firmware (test truth)."""
    return nd.link.transport.port.device  # type: ignore[attr-defined]


def test_handshake_status_home_move_telemetry_events() -> None:
    threads_before = threading.active_count()
    with NeedleDriver.open("sim://?seed=1") as nd:
        assert nd.link.virtual and threading.active_count() == threads_before  # no threads
        ident = nd.identity
        assert ident.simulated and ident.schema_matches and ident.session_armed
        assert ident.travel_limit_mm > 0 and ident.max_speed_mm_s > 0
        st = nd.status()
        assert st.state is DeviceState.UNHOMED and not st.homed
        with pytest.raises(Nak) as info:
            nd.advance_mm(1.0, 1.0)
        assert info.value.reason is NakReason.NOT_HOMED
        st = nd.home()
        assert st.homed and st.state is DeviceState.READY
        nd.set_telemetry(1000, 10)
        t0 = nd.clock.monotonic()
        nd.advance_mm(2.0, 2.0)
        st = nd.wait_idle(30.0)
        assert st.commanded_depth_mm == pytest.approx(2.0)
        assert st.depth_mm == pytest.approx(2.0, abs=0.05)
        elapsed_s = nd.clock.monotonic() - t0
        assert 1.0 <= elapsed_s <= 3.0  # 2 mm at 2 mm/s, with acceleration
        rows = nd.telemetry.latest()
        assert len(rows) >= 900 * elapsed_s
        assert nd.stats.telemetry_samples_lost == 0
        assert (rows["sample_number"][1:] - rows["sample_number"][:-1] == 1).all()
        assert rows["depth_mm"][-1] == pytest.approx(st.depth_mm, abs=0.05)
        # device time mapped onto the (virtual) host clock: the shared clock, so ~equal
        assert abs(rows["host_time_s"][-1] - rows["device_time_s"][-1]) < 0.01
        codes = [e.code for e in nd.events()]
        assert codes[0] is EventCode.BOOT
        assert EventCode.HOMED in codes and EventCode.TARGET_REACHED in codes
        numbers = [e.number for e in nd.events()]
        assert numbers == list(range(1, len(numbers) + 1))
        assert nd.stats.rtt_smoothed_s is not None and nd.stats.rtt_p99_s is not None


def test_host_limit_checks_refuse_before_sending() -> None:
    with NeedleDriver.open("sim://?seed=2") as nd:
        nd.home()
        travel = nd.identity.travel_limit_mm
        sent = nd.stats.frames_out
        with pytest.raises(LimitError):
            nd.move_to_mm(travel + 1.0, 1.0)
        with pytest.raises(LimitError):
            nd.move_to_mm(1.0, nd.identity.max_speed_mm_s * 2)
        with pytest.raises(LimitError):
            nd.rotate_rpm(nd.identity.max_rate_rpm + 1)
        with pytest.raises(LimitError):
            nd.move_to_mm(float("nan"), 1.0)
        with pytest.raises(LimitError):
            nd.set_limits(force_limit_n=nd.identity.force_limit_n + 1)
        assert nd.stats.frames_out == sent  # nothing went out
        limits = nd.set_limits(soft_depth_limit_mm=10.0, force_limit_n=5.0)
        assert nd.status().limits.soft_depth_limit_mm == pytest.approx(10.0)
        assert limits.force_limit_n == pytest.approx(5.0)
        with pytest.raises(LimitError):
            nd.move_to_mm(11.0, 1.0)
        # a relative move: its resulting depth is checked against [0, soft limit]
        nd.move_to_mm(9.0, 5.0)
        sent = nd.stats.frames_out
        executed = _fw(nd).stats()["commands_executed"]
        with pytest.raises(LimitError) as info:
            nd.advance_mm(2.0, 1.0)  # 9 + 2 > the soft 10 mm
        assert "would reach 11 mm" in str(info.value)
        with pytest.raises(LimitError):
            nd.advance_mm(-9.5, 1.0)  # 9 - 9.5 < 0
        assert nd.stats.frames_out == sent  # nothing went out
        assert _fw(nd).stats()["commands_executed"] == executed
        nd.advance_mm(1.0, 5.0)  # exactly to the soft limit: allowed
        nd.advance_mm(-10.0, 5.0)  # exactly back to 0: allowed
        st = nd.wait_idle(30.0)
        assert st.commanded_depth_mm == pytest.approx(0.0)


def test_relative_moves_checked_against_the_hard_travel_from_the_device_depth() -> None:
    with NeedleDriver.open("sim://?seed=14") as nd:
        nd.home()
        travel = nd.identity.travel_limit_mm
        nd.move_to_mm(travel - 1.0, nd.identity.max_speed_mm_s)
        nd.wait_idle(60.0)
        sent = nd.stats.frames_out
        with pytest.raises(LimitError):  # from the commanded depth it knows
            nd.advance_mm(1.5, 1.0)
        assert nd.stats.frames_out == sent
        nd.stop()  # the host no longer knows the commanded depth for sure
        with pytest.raises(LimitError):  # reads it first, then refuses
            nd.advance_mm(1.5, 1.0)
        assert nd.stats.frames_out == sent + 2  # STOP, GET_STATUS; no MOVE
        nd.advance_mm(1.0, 1.0)  # to the hard travel exactly: sent
        assert nd.wait_idle(10.0).commanded_depth_mm == pytest.approx(travel)


def test_schema_mismatch_queries_work_motion_refused() -> None:
    nd = NeedleDriver(open_transport("sim://?seed=3"), schema_hash=SCHEMA_HASH ^ 0x1)
    try:
        assert nd.schema_mismatch and not nd.identity.session_armed
        assert nd.status().state is DeviceState.UNHOMED  # queries work
        sent = nd.stats.frames_out
        with pytest.raises(SchemaMismatch):
            nd.home()
        assert nd.stats.frames_out == sent  # refused before sending
        reply = nd.link.request(Home(1000)).message  # and the device refuses it too
        assert isinstance(reply, NakMsg) and reply.reason == NakReason.SCHEMA_MISMATCH
    finally:
        nd.close()


def test_silent_host_trips_the_watchdog_then_clear() -> None:
    with NeedleDriver.open("sim://?seed=4") as nd:
        nd.home()
        nd.advance_mm(20.0, 2.0)
        nd.wait_s(1.0)  # heartbeats keep it going
        assert nd.status().state is DeviceState.MOVING
        nd.link.heartbeats_enabled = False
        t_silent = nd.clock.monotonic()
        nd.wait_s(0.5)  # the link runs, but sends nothing
        nd.link.heartbeats_enabled = True
        st = nd.status()
        assert st.latched_faults & FaultFlags.WATCHDOG
        assert not st.moving and st.state is DeviceState.FAULT
        trip = [e for e in nd.events() if e.code is EventCode.WATCHDOG_TRIP]
        assert trip and trip[0].host_time_s - t_silent <= nd.identity.watchdog_s + 0.05
        with pytest.raises(Nak) as info:
            nd.advance_mm(1.0, 1.0)
        assert info.value.reason is NakReason.LATCHED_FAULT
        nd.clear_fault()
        assert not nd.status().latched_faults


def test_close_sends_stop() -> None:
    nd = NeedleDriver.open("sim://?seed=5")
    fw = _fw(nd)
    nd.home()
    nd.rotate_rpm(30.0)
    nd.advance_mm(10.0, 1.0)
    nd.wait_s(0.5)
    assert fw.rot.active and fw.adv.active
    nd.close()
    fw.run_ticks(150)  # less than the 200 ms watchdog: this stop is the client's STOP
    assert not fw.rot.active and not fw.adv.active
    assert not fw.latched


def test_a_query_only_session_sends_no_stop_and_leaves_no_fault() -> None:
    """info/status/events change nothing: closing sends no STOP, only BYE — the session
    ends in order, nothing latched, nothing logged (protocol §4)."""
    nd = NeedleDriver.open("sim://?seed=5")
    fw = _fw(nd)
    nd.status()
    nd.events()
    executed = fw.commands_executed
    before = [r.code for r in fw.events.records()]
    nd.close()
    sent = [m for _, way, _, _, m in nd.link.frame_log if way == "out"][-1:]
    assert [type(m).__name__ for m in sent] == ["Bye"], sent
    assert fw.commands_executed == executed + 1  # the BYE, nothing else
    fw.run_ticks(400)
    assert not fw.latched and not fw.session_open
    assert [r.code for r in fw.events.records()] == before  # no SESSION_ENDED either


def test_a_host_that_just_goes_silent_at_rest_ends_the_session_logged() -> None:
    """No BYE (a host killed at rest): the device ends the session itself 200 ms later
    — SESSION_ENDED, nothing latched, for the next host to see (protocol §4)."""
    nd = NeedleDriver.open("sim://?seed=5")
    fw = _fw(nd)
    nd.status()
    nd.link.close()  # gone without a word
    fw.run_ticks(400)
    assert not fw.latched and not fw.session_open
    codes = [r.code for r in fw.events.records()]
    assert codes[-1] == EventCode.SESSION_ENDED and EventCode.WATCHDOG_TRIP not in codes


def test_a_moving_rig_left_silent_latches_the_watchdog() -> None:
    """A host that goes silent with something moving (no close: killed) is a fault."""
    nd = NeedleDriver.open("sim://?seed=5")
    fw = _fw(nd)
    nd.rotate_rpm(30.0)
    nd.wait_s(0.2)
    fw.run_ticks(400)  # the host says nothing more
    assert fw.latched & FaultFlags.WATCHDOG and not fw.rot.active


def test_cut_link_is_link_lost_and_device_stops() -> None:
    nd = NeedleDriver.open("sim://?seed=6&cut_at_s=3&cut_for_s=60")
    fw = _fw(nd)
    try:
        nd.home()
        nd.advance_mm(50.0, 2.0)
        with pytest.raises(LinkLost) as info:
            nd.wait_s(10.0)
        assert isinstance(info.value, ConnectionError)
        assert "silent" in str(info.value)
        assert fw.latched & FaultFlags.WATCHDOG and not fw.adv.active
        with pytest.raises(LinkLost):
            nd.status()
    finally:
        nd.close()


def test_timeout_when_device_never_answers() -> None:
    nd = NeedleDriver.open(
        "sim://?seed=7&cut_at_s=1&cut_for_s=60",
        link_config=LinkConfig(silence_timeout_s=100.0, max_retries=3),
    )
    try:
        nd.wait_s(0.9)
        with pytest.raises(Timeout):  # its periodic STATUS goes unanswered
            nd.wait_s(1.0)
        with pytest.raises(Timeout):
            nd.status()
    finally:
        nd.close()


@pytest.mark.parametrize("seed", [11, 12, 13])
def test_exactly_once_over_a_lossy_link(seed: int) -> None:
    """Relative moves over a link that corrupts, drops and duplicates bytes: the device's
    position is the sum of the moves reported successful, and its own count of executed
    commands equals the number of successes (nothing failed was run, nothing ran twice)."""
    url = f"sim://?seed={seed}&corrupt=0.004&drop=0.004&duplicate=0.004&watchdog_ms=5000"
    rng = random.Random(seed)
    # ~1 % of bytes damaged each way: a 60-byte reply is lost about half the time, so a
    # request gets 30 tries (all lost: ~1e-8), or a status poll would fail the setup
    with NeedleDriver.open(url, link_config=LinkConfig(max_retries=30)) as nd:
        fw = _fw(nd)
        nd.home()
        nd.move_to_mm(50.0, 5.0)
        nd.wait_idle(60.0)
        executed_before = fw.commands_executed
        expected_um = round(fw.adv.target)
        ok = failed = 0
        for _ in range(300):
            step_um = 5 * rng.randint(-400, 400)  # whole micro-steps (0.625 µm)
            try:
                nd.advance_mm(step_um / 1000.0, 5.0)
            except (Timeout, Nak):
                failed += 1
                continue
            ok += 1
            expected_um += step_um
        executed = fw.commands_executed - executed_before
        assert executed == ok
        assert round(fw.adv.target) == expected_um
        stats = nd.stats
        # the test really exercised the mechanism
        assert stats.retransmits > 0 and stats.crc_failures > 0
        assert fw.replies_replayed > 0
        assert ok >= 290, f"{failed} of 300 failed"


def test_two_threads_share_a_virtual_link() -> None:
    """A procedure thread polling status while another thread sends ESTOP (as a Ctrl-C
    path would): both get their own replies, the device ends e-stopped."""
    with NeedleDriver.open("sim://?seed=9") as nd:
        nd.home()
        nd.advance_mm(30.0, 2.0)
        errors: list[BaseException] = []
        polled: list[DeviceState] = []

        def poller() -> None:
            try:
                for _ in range(20_000):
                    polled.append(nd.status().state)
                    if polled[-1] is DeviceState.ESTOPPED:
                        return
            except BaseException as exc:
                errors.append(exc)

        t = threading.Thread(target=poller)
        t.start()
        nd.wait_s(0.2)
        nd.estop()
        t.join(60)
        assert not errors and len(polled) >= 2
        st = nd.status()
        assert st.state is DeviceState.ESTOPPED and not st.moving
        assert polled[-1] is DeviceState.ESTOPPED


def test_lost_event_frames_are_recovered_for_listeners() -> None:
    """Over a lossy link some EVENT frames are lost; the client notices the gap in the
    numbering and fetches the missing ones, so listeners (the recorder) see every event."""
    url = "sim://?seed=21&corrupt=0.003&drop=0.003&duplicate=0.003&watchdog_ms=5000"
    # (a lossy link garbles most long STATUS frames: the device may seem silent a while)
    config = LinkConfig(max_retries=40, silence_timeout_s=5.0)
    with NeedleDriver.open(url, link_config=config) as nd:
        seen: list[int] = []
        nd.add_event_listener(lambda e: seen.append(e.number))
        nd.home()
        first = max(seen)
        for _ in range(40):  # each move ends with a TARGET_REACHED event
            nd.advance_mm(0.05, 5.0)
            nd.wait_idle(10.0)
        nd.wait_s(0.5)
        last = nd.status().counters.last_event_number
        assert last >= first + 40
        assert set(range(first, last + 1)) <= set(seen)
        assert len(seen) == len(set(seen))  # each once
