"""Telemetry at 1 kHz with no sample lost, and event numbering with gaps recovered.

Neither test moves the device: they run on a rig without --allow-motion.
"""

from __future__ import annotations

from functools import partial
from typing import Any

import numpy as np
import pytest

from hil_tests.dut import Dut
from hil_tests.measure import gaps
from hil_tests.session import HilSession
from protocol import DEVICE_HEARTBEAT_MS, EVENT_LOG_SIZE, EventCode

TELEMETRY_RATE_HZ = 1000
TELEMETRY_DURATION_S = 10.0
SAMPLE_PERIOD_US = 1_000_000 // TELEMETRY_RATE_HZ


def test_telemetry_1khz_for_10s_without_loss(
    hil_device: Dut, hil_session: HilSession, hil_figures: dict[str, Any]
) -> None:
    dut = hil_device
    wire = dut.wire
    tl = wire.received.telemetry
    dut.set_telemetry(TELEMETRY_RATE_HZ, 10)
    wire.wait_s(0.1)  # let the stream settle: judge whole batches from a known point
    # the window starts after STATUS is answered: no sample in it was counted in st0
    # but those of the batch under way (the device sends in order)
    st0 = dut.status()
    mark = tl.mark()
    lost0, repeated0 = tl.lost, tl.repeated
    want = round(TELEMETRY_RATE_HZ * TELEMETRY_DURATION_S)
    start_count = tl.count
    wire.wait_for(lambda: tl.count - start_count >= want, TELEMETRY_DURATION_S * 1.2 + 1.0)
    # the window ends before STATUS is asked for: every sample in it was made before the
    # device counted samples_sent (batches that come in behind the reply are not)
    end = tl.mark()
    st1 = dut.status()
    samples = tl.since(mark, end)
    n = len(samples)
    numbers = samples["number"].astype(np.int64)
    times = samples["t_us"].astype(np.int64)
    span_s = (int(times[-1]) - int(times[0])) / 1e6 if n > 1 else 0.0
    steps = np.diff(times)
    lost = tl.lost - lost0 + gaps(numbers)
    repeated = tl.repeated - repeated0
    rate_hz = (n - 1) / span_s if span_s > 0 else 0.0
    produced = st1.samples_sent - st0.samples_sent
    hil_figures.update(
        samples_received=n,
        duration_s=span_s,
        rate_hz=rate_hz,
        samples_lost=lost,
        samples_repeated=repeated,
        max_sample_gap_us=int(steps.max()) if len(steps) else None,
        min_sample_gap_us=int(steps.min()) if len(steps) else None,
        device_samples_sent=produced,
        frames_bad=wire.decoder.stats.frames_bad,
    )
    assert n >= want, f"{n} samples in {TELEMETRY_DURATION_S} s at {TELEMETRY_RATE_HZ} Hz"
    # none sent empty, since the session began (every test's SET_TELEMETRY flushes a batch)
    assert tl.empty_frames == 0, f"{tl.empty_frames} TELEMETRY frames with no sample"
    assert repeated == 0, f"the sample counter repeated {repeated} numbers (stuck?)"
    assert np.all(np.diff(numbers) == 1), "sample numbers do not count up by one"
    assert lost == 0, f"{lost} samples lost"
    assert np.all(steps == SAMPLE_PERIOD_US), (
        f"sample spacing {int(steps.min())}..{int(steps.max())} µs, not {SAMPLE_PERIOD_US}"
    )
    assert abs(rate_hz - TELEMETRY_RATE_HZ) <= 1.0
    # the device's own count agrees: every sample it made in the window was received
    assert produced >= n - 20
    assert int(numbers[-1]) < st1.samples_sent <= int(numbers[-1]) + 20 + TELEMETRY_RATE_HZ


def _sample_times_us(dut: Dut, rate_hz: int, seconds: float) -> Any:
    """The device times of the samples of ``seconds`` of telemetry at ``rate_hz``, started
    from off; the suite's 1 kHz afterwards."""
    tl = dut.wire.received.telemetry
    try:
        dut.set_telemetry(0)
        dut.wire.wait_s(0.1)  # the 1 kHz stream has drained
        mark = tl.mark()
        dut.set_telemetry(rate_hz, 10)
        dut.wire.wait_s(seconds)
        return tl.since(mark)["t_us"].astype(np.int64)
    finally:
        dut.set_telemetry(TELEMETRY_RATE_HZ, 10)


def test_telemetry_at_100hz_is_spaced_10ms(hil_device: Dut) -> None:
    """SET_TELEMETRY at 100 Hz from off: one sample every 10 ms of device time from the
    first one on, not every tick."""
    t = _sample_times_us(hil_device, 100, 0.5)
    steps = np.diff(t)
    assert len(t) >= 40 and np.all(steps == 10_000), (
        f"{len(t)} samples in 0.5 s at 100 Hz, spacing {sorted(set(steps.tolist()))[:5]} µs"
    )


def test_telemetry_at_300hz_keeps_its_rate(hil_device: Dut, hil_figures: dict[str, Any]) -> None:
    """SET_TELEMETRY at a rate that does not divide the 1 kHz tick (300 Hz): samples 3 or
    4 ms apart and 300 a second on average — what is left over at each sample carried to
    the next, not dropped."""
    t = _sample_times_us(hil_device, 300, 1.0)
    steps = set(np.diff(t).tolist())
    assert len(t) > 100 and steps <= {3000, 4000}, f"{len(t)} samples, spacing {steps} µs"
    rate_hz = (len(t) - 1) / ((int(t[-1]) - int(t[0])) / 1e6)
    hil_figures["rate_hz"] = round(rate_hz, 2)
    assert abs(rate_hz - 300) <= 3, f"{rate_hz:.1f} samples/s at 300 Hz"


def test_device_heartbeat_when_quiet(hil_device: Dut, hil_figures: dict[str, Any]) -> None:
    """With nothing else to send, the device sends a HEARTBEAT every 100 ms."""
    dut = hil_device
    wire = dut.wire
    dut.set_telemetry(0)
    wire.wait_s(0.15)  # the telemetry stream has drained
    beats = wire.received.heartbeat_uptimes_ms
    before = len(beats)
    # ten heartbeats, judged by the device's own uptime stamps (not a host-timed window)
    wire.wait_for(lambda: len(beats) - before >= 10, 5.0)
    got = beats[before:]
    periods = np.diff(np.asarray(got, dtype=np.int64))
    if len(periods):
        hil_figures["device_heartbeat_max_period_ms"] = int(periods.max())
    assert len(got) >= 10, f"{len(got)} device heartbeats in 5 s when quiet (every 100 ms)"
    # on its own clock, whose ticks are whole ms: one every 100 ms exactly, never later
    assert int(periods.max()) <= DEVICE_HEARTBEAT_MS, periods
    dut.set_telemetry(TELEMETRY_RATE_HZ, 10)


def _at_least(items: list[int], n: int) -> bool:
    return len(items) >= n


def test_device_heartbeat_uptime_is_device_time(hil_device: Dut) -> None:
    """A HEARTBEAT's uptime_ms is the device clock in ms (protocol §4): each one falls
    between the device_time_us of the STATUS replies sent before and after it. The period
    check above reads only differences of uptimes, blind to an offset or a wrong scale."""
    dut = hil_device
    wire = dut.wire
    dut.set_telemetry(0)
    wire.wait_s(0.15)  # the telemetry stream has drained
    beats = wire.received.heartbeat_uptimes_ms
    for _ in range(3):  # three windows: a scale error grows with the clock, an offset does not
        before = dut.status().device_time_us
        first = len(beats)
        # a STATUS reply restarts the device's 100 ms quiet: at least three beats in 0.35 s
        wire.wait_for(partial(_at_least, beats, first + 3), 5.0)
        after = dut.status().device_time_us
        got = beats[first:]
        assert len(got) >= 3, f"{len(got)} device heartbeats in 5 s when quiet (every 100 ms)"
        lo_ms, hi_ms = before // 1000, after // 1000
        wrong = [u for u in got if not lo_ms <= u <= hi_ms]
        assert not wrong, (
            f"heartbeat uptimes {wrong} ms outside the device time {lo_ms}..{hi_ms} ms of the "
            "STATUS replies around them"
        )
    dut.set_telemetry(TELEMETRY_RATE_HZ, 10)


def test_device_heartbeat_before_hello(hil_session: HilSession) -> None:
    """The device heartbeats from boot, before any HELLO (protocol §4): observed at connect,
    before the suite's first HELLO."""
    beats = hil_session.pre_hello_heartbeats_ms
    if beats is None:
        pytest.skip(f"only observable before the first HELLO: {hil_session.pre_hello_note}")
    assert len(beats) >= 4, f"{len(beats)} device heartbeats in 0.5 s before HELLO (every 100 ms)"
    periods = np.diff(np.asarray(beats, dtype=np.int64))
    assert int(periods.max()) <= DEVICE_HEARTBEAT_MS + 2, periods


def test_telemetry_settings_survive_hello_and_watchdog(
    hil_device: Dut, hil_session: HilSession
) -> None:
    """Neither HELLO nor the watchdog (here: ending a session at rest) changes the telemetry
    settings (protocol §7)."""
    dut = hil_device
    wire = dut.wire
    tl = wire.received.telemetry
    rate_hz, batch = 200, 5
    dut.set_telemetry(rate_hz, batch)
    wire.wait_s(0.05)

    period_us = 1_000_000 // rate_hz

    def flowing(what: str, seconds: float) -> None:
        """``seconds`` of the device's own clock, from the first sample received after
        now: exactly ``seconds * rate_hz`` samples, evenly spaced, in whole batches."""
        mark = tl.mark()
        window_us = round(seconds * 1e6)

        def covered() -> bool:
            got = tl.batches[mark:]
            return bool(got) and int(got[-1]["t_us"][-1]) - int(got[0]["t_us"][0]) >= window_us

        assert wire.wait_for(covered, 4 * seconds + 2.0), f"{what}: telemetry stopped"
        batches = tl.batches[mark:]
        samples = tl.since(mark)
        t = samples["t_us"].astype(np.int64)
        n = int(np.count_nonzero(t < t[0] + window_us))
        assert n == round(seconds * rate_hz), (
            f"{what}: {n} samples in {seconds} s of device time at {rate_hz} Hz"
        )
        assert np.all(np.diff(t) == period_us), f"{what}: sample spacing {set(np.diff(t))}"
        assert np.all(np.diff(samples["number"].astype(np.int64)) == 1), f"{what}: samples lost"
        assert all(len(b) == batch for b in batches), f"{what}: batch sizes changed"

    dut.hello()
    assert dut.status().telemetry_rate_hz == rate_hz, "HELLO changed the telemetry rate"
    flowing("after HELLO", 0.5)
    wd_s = hil_session.identity.watchdog_ms / 1000
    before = dut.status().last_event_number
    wire.heartbeats_enabled = False
    try:
        wire.wait_s(2.5 * wd_s)
    finally:
        wire.heartbeats_enabled = True
    ended = [
        e for e in wire.received.events if e.code == EventCode.SESSION_ENDED and e.number > before
    ]
    assert len(ended) == 1, "the watchdog did not end the session"
    st = dut.status()
    assert st.telemetry_rate_hz == rate_hz, "the watchdog changed the telemetry rate"
    flowing("after the watchdog ended the session", 0.5)


def _make_events(dut: Dut, pairs: int) -> None:
    """Events without motion: each ESTOP + CLEAR_FAULT pair makes ESTOP and FAULT_CLEARED."""
    for _ in range(pairs):
        dut.estop()
        dut.clear_fault()


@pytest.mark.control("RC-EVENTS")
def test_event_gap_recovered_with_get_events(hil_device: Dut, hil_figures: dict[str, Any]) -> None:
    dut = hil_device
    wire = dut.wire
    last = dut.status().last_event_number
    # withhold the next event and one later: the host "lost" those frames
    dropped = {last + 1, last + 4}
    wire.drop_event_numbers |= dropped
    _make_events(dut, 3)
    wire.wait_s(0.05)
    st = dut.status()
    assert st.last_event_number == last + 6, (
        f"3 × (ESTOP, CLEAR_FAULT) made {st.last_event_number - last} events, not 6"
    )
    seen = sorted(e.number for e in wire.received.events if e.number > last)
    missing = sorted(set(range(last + 1, st.last_event_number + 1)) - set(seen))
    assert missing == sorted(dropped), f"the gap seen is {missing}"
    # recover: fetch from the first missing number on
    log, fetched = dut.event_log(missing[0])
    hil_figures["events_missing"] = len(missing)
    hil_figures["events_recovered"] = len([e for e in fetched if e.number in dropped])
    assert log.last_event_number == st.last_event_number
    numbers = [e.number for e in fetched]
    assert numbers == list(range(missing[0], missing[0] + len(numbers))), numbers
    assert numbers[-1] == st.last_event_number
    by_number = {e.number: e for e in fetched}
    for lost in wire.received.dropped_events:
        assert by_number.get(lost.number) == lost, f"event {lost.number} recovered differently"
    for e in wire.received.events:
        if e.number in by_number:
            assert by_number[e.number] == e, f"event {e.number} differs in the log"
    codes = [EventCode(by_number[n].code) for n in range(last + 1, last + 7)]
    assert codes == [EventCode.ESTOP, EventCode.FAULT_CLEARED] * 3
    times = [by_number[n].time_us for n in range(last + 1, last + 7)]
    assert times == sorted(times), "event times go backwards"


def test_event_log_pages_and_bounds(hil_device: Dut) -> None:
    dut = hil_device
    _make_events(dut, 7)  # 14 events: more than one EVENT_LOG page (12)
    last = dut.status().last_event_number
    first_kept = max(1, last - EVENT_LOG_SIZE + 1)
    got = []
    start = max(first_kept, last - 13)
    while start <= last:
        log, page = dut.event_log(start, 12)
        assert page, f"empty EVENT_LOG from {start} (last {last})"
        assert len(page) <= 12
        got.extend(page)
        start = page[-1].number + 1
    numbers = [e.number for e in got]
    assert numbers == list(range(max(first_kept, last - 13), last + 1))
    log, beyond = dut.event_log(last + 1, 12)
    assert beyond == [] and log.last_event_number == last
