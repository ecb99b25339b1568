"""The load cell as the device must treat it (issue 18): it tares (on TARE and at the end
of every HOME), filters (the drift high-pass removes a steady force), marks every telemetry
sample's force fresh or held, latches LOAD_CELL when the sensor falls silent for two of
its periods (TIMEOUT) or reads at its rail (SATURATED), and stops the motion then.

Through the wire only. A load on the needle comes from the rig file's [force] section (the
force test's load); the sensor's faults from [load_cell] (a bench that can provoke them),
or, on the in-process simulator, from a second simulator with a rig fault in its URL."""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager
from typing import Any

import numpy as np
import pytest

from hil_tests.dut import Dut, Limits
from hil_tests.session import (
    SIM_FAULT_AT_S,
    HilSession,
    fresh_simulator,
    on_the_simulator,
    sim_with_fault,
    with_options,
)
from protocol import (
    NO_FORCE_MN,
    DeviceState,
    EventCode,
    FaultFlags,
    ForceFlags,
    Home,
    LoadCellFault,
    Move,
    MoveMode,
    NakReason,
    Rotate,
    RotateMode,
    SampleFlags,
    SetLoadCell,
    Tare,
)

TICK_US = 1000
REST_RECORD_S = 0.3  # force at rest: the mean of this much telemetry
DRIFT_CORNER_MHZ = 1000  # the drift high-pass at 1 Hz: a time constant of 0.16 s
DRIFT_SETTLE_S = 1.5  # about nine time constants
MIN_LOAD_MN = 150  # a load the tare and filter tests can tell from noise and offset
LOAD_SETTLE_S = 1.0  # a tissue's grip relaxes after the needle stops (the simulator's: 0.75 s)
LOWPASS_HZ = 5  # the low-pass test's corner: far below a 1 kHz cell's noise
MAINS_HZ = 50  # the notch test's mains frequency
FILTER_SETTLE_S = 0.3  # the 5 Hz low-pass: ~10 time constants; the notch: ~15 of its own
FIRST_WINDOW_S = 0.05  # a filter started in its steady state: its first 50 ms, 1/3 of the
# 5 Hz low-pass's and the 1 Hz drift filter's rise or fall when started from zero
SLOW_DRIFT_CORNER_MHZ = 1  # a continuous tare at 1 mHz (160 s): it passes a change of load
MAX_BATCH_SAMPLES = 10  # the most samples a TELEMETRY frame carries (protocol §7)


def _mean_force_at_rest(dut: Dut, seconds: float = REST_RECORD_S) -> float:
    """The mean force of the fresh samples over the next ``seconds`` at rest."""
    tl = dut.wire.received.telemetry
    mark = tl.mark()
    dut.wire.wait_s(seconds)
    samples = tl.since(mark)
    fresh = samples[(samples["force_flags"] & ForceFlags.FRESH) != 0]
    assert len(fresh), f"no fresh force sample in {seconds} s at rest"
    return float(np.mean(fresh["force_mn"].astype(np.int64)))


def _first_fresh_mean(dut: Dut, sample_hz: int) -> float:
    """The mean force of the fresh samples made in the first FIRST_WINDOW_S (at least two
    conversions) after every command sent so far had run: STATUS's samples_sent is the
    number of the first sample not yet sent when it ran, and a batch under way holds at
    most MAX_BATCH_SAMPLES made before it."""
    window_s = max(FIRST_WINDOW_S, 2.0 / sample_hz)
    tl = dut.wire.received.telemetry
    mark = tl.mark()
    first_number = dut.status().samples_sent + MAX_BATCH_SAMPLES
    dut.wire.wait_s(2 * window_s + 0.1)
    samples = tl.since(mark)
    after = samples[samples["number"] >= first_number]
    assert len(after), "no telemetry after STATUS"
    t_us = after["t_us"].astype(np.int64)
    fresh = (after["force_flags"] & ForceFlags.FRESH) != 0
    window = after[(t_us - t_us[0] < window_s * 1e6) & fresh]
    assert len(window), f"no fresh force sample in the {window_s * 1000:.0f} ms after STATUS"
    return float(np.mean(window["force_mn"].astype(np.int64)))


def _load_needle(dut: Dut, s: HilSession) -> float:
    """Drive into the rig's [force] load until the force limit (the [force] limit) stops the
    advance there; the limits back to the defaults, the fault cleared. Returns the force
    at rest under the load (mN)."""
    limit_mn, depth_um = s.force_load()
    d = s.default_limits()
    dut.set_limits(Limits(d.soft_depth_limit_um, limit_mn, d.stall_force_mn, d.stall_time_ms))
    before = dut.status().last_event_number
    dut.move_to_um(depth_um, s.speed_um_s)
    ev = dut.wait_event(EventCode.FORCE_OVER_LIMIT, depth_um / s.speed_um_s + 5.0, before)
    assert ev is not None, f"no load on the way to {depth_um} µm ([force] in the rig file)"
    dut.wait_idle(5.0)
    dut.set_limits(d)
    dut.clear_fault()
    dut.wire.wait_s(LOAD_SETTLE_S)
    loaded = _mean_force_at_rest(dut)
    assert loaded > MIN_LOAD_MN, f"the needle rests under only {loaded:.0f} mN"
    return loaded


@contextmanager
def _loadable(s: HilSession, homed: Dut) -> Iterator[Dut]:
    """The homed device whose [force] load is where the rig file says: the session's own
    on a rig; on the in-process simulator a second one, its lesion untouched by the tests
    before (the force tests crack the session's calcium)."""
    if on_the_simulator(s):
        with fresh_simulator(s) as dut:
            yield dut
    else:
        yield homed


def _home(dut: Dut, s: HilSession) -> None:
    dut.home(round(s.rig.homing_speed_mm_s * 1000), s.rig.homing_timeout_s)


def _restore(dut: Dut, s: HilSession) -> None:
    """Whatever a load test left: at rest, no fault, the default limits, the filters off
    (SET_LOAD_CELL is BUSY while moving), homed at the switch (and so tared there)."""
    dut.stop()
    dut.wait_idle(10.0)
    if dut.status().latched_faults:
        dut.clear_fault()
    dut.set_limits(s.default_limits())
    dut.ack(SetLoadCell(0, 0, 0))
    _home(dut, s)


def test_identity_and_status_know_the_sensor(
    hil_device: Dut, hil_session: HilSession, hil_figures: dict[str, Any]
) -> None:
    """IDENTITY gives the nominal rate (the rig file's, if it says); after a second of
    telemetry STATUS counts about that many conversions a second."""
    nominal = hil_session.identity.load_cell_sample_hz
    assert nominal > 0, "IDENTITY must give the load cell's nominal sample rate"
    if hil_session.rig.load_cell_sample_hz is not None:
        assert nominal == hil_session.rig.load_cell_sample_hz
    hil_device.wire.wait_s(1.2)  # a whole measuring second with the tick running
    st = hil_device.status()
    hil_figures["load_cell_rate_hz"] = st.load_cell_rate_hz
    assert abs(st.load_cell_rate_hz - nominal) <= 0.1 * nominal + 2, (
        f"measured {st.load_cell_rate_hz} conversions/s, nominal {nominal}"
    )
    assert st.load_cell_fault == LoadCellFault.NONE


@pytest.mark.control("RC-FRESH")
def test_fresh_bit_marks_each_conversion(hil_device: Dut, hil_session: HilSession) -> None:
    """A sample's force is FRESH when a conversion arrived since the previous sample, and a
    held one repeats the previous value exactly: about rate/1000 of 1 kHz samples are
    fresh; STATUS counts the held ones as stale. A cell as fast as the telemetry holds
    nothing: on the in-process simulator a second one with a bench's 80 samples/s part
    (hx711-80) shows the held samples too."""
    s = hil_session
    _check_fresh_bit(hil_device, s.identity.load_cell_sample_hz)
    if on_the_simulator(s) and s.identity.load_cell_sample_hz >= 1000:
        with fresh_simulator(s, with_options(s.url, load_cell="hx711-80")) as slow:
            assert slow.identity is not None
            _check_fresh_bit(slow, slow.identity.load_cell_sample_hz)


def _check_fresh_bit(dut: Dut, nominal: int) -> None:
    tl = dut.wire.received.telemetry
    st0 = dut.status()
    mark = tl.mark()
    dut.wire.wait_s(0.5)
    st1 = dut.status()
    samples = tl.since(mark)
    assert len(samples) > 100, f"{len(samples)} samples in 0.5 s of 1 kHz telemetry"
    fresh = (samples["force_flags"] & ForceFlags.FRESH) != 0
    expected = len(samples) * min(1.0, nominal / 1000.0)
    assert abs(int(fresh.sum()) - expected) <= 0.1 * expected + 2, (
        f"{int(fresh.sum())} of {len(samples)} samples fresh, {expected:.0f} expected "
        f"of a {nominal} Hz sensor"
    )
    force = samples["force_mn"].astype(np.int64)
    consecutive = np.diff(samples["number"].astype(np.int64)) == 1
    held = ~fresh[1:] & consecutive
    changed = force[1:] != force[:-1]
    assert not (held & changed).any(), (
        f"{int((held & changed).sum())} samples marked held carry a new force"
    )
    # the device's count over its own window (on a real link a batch or two is in flight
    # either side of the mark: compare the fractions)
    stale = st1.load_cell_stale_samples - st0.load_cell_stale_samples
    sent = st1.samples_sent - st0.samples_sent
    held_part = float((~fresh).mean())
    assert sent > 0 and abs(stale / sent - held_part) <= 0.1, (
        f"STATUS counted {stale} stale of {sent} samples sent; {held_part:.0%} were held"
    )


def test_filter_frequencies_below_half_the_sample_rate(
    hil_device: Dut, hil_session: HilSession
) -> None:
    """SET_LOAD_CELL refuses a filter the sensor's rate cannot carry (BEYOND_LIMIT, detail
    the nominal rate) and takes one it can."""
    dut = hil_device
    nominal = hil_session.identity.load_cell_sample_hz
    nak = dut.nak(SetLoadCell(0, 0, nominal // 2))
    assert (NakReason(nak.reason), nak.detail) == (NakReason.BEYOND_LIMIT, nominal)
    try:
        dut.ack(SetLoadCell(0, 0, max(1, nominal // 2 - 1)))
        st = dut.status()
        assert (st.drift_corner_mhz, st.notch_hz, st.lowpass_hz) == (0, 0, max(1, nominal // 2 - 1))
    finally:
        dut.ack(SetLoadCell(0, 0, 0))


def _rest_force_mn(dut: Dut, seconds: float) -> Any:
    """The force of every telemetry sample over ``seconds`` at rest, after 0.2 s to settle."""
    tl = dut.wire.received.telemetry
    dut.wire.wait_s(0.2)
    mark = tl.mark()
    dut.wire.wait_s(seconds)
    return tl.since(mark)["force_mn"].astype(np.float64)


def _band_power(force: Any, hz: int) -> float:
    """The power of ``force`` (1 kHz samples, 1 s) in the 1 Hz bins within ±1 Hz of ``hz``."""
    spectrum = np.fft.rfft(force - force.mean()) / len(force)
    freqs = np.fft.rfftfreq(len(force), 1 / 1000)
    return float(np.sum(np.abs(spectrum[np.abs(freqs - hz) <= 1]) ** 2))


def test_lowpass_and_notch_take_noise_and_hum_out(hil_device: Dut, hil_session: HilSession) -> None:
    """SET_LOAD_CELL's low-pass (5 Hz) takes at least half of the noise of a force at rest
    out; its mains notch (50 Hz) at least three quarters of the power within ±1 Hz of 50 Hz
    (a hum, or the noise's share there); neither moves the mean force at rest (§7a).
    Telemetry at 1 kHz, 1 s each way."""
    dut = hil_device
    rate_hz = hil_session.identity.load_cell_sample_hz
    if rate_hz < 4 * MAINS_HZ:  # a slower cell cannot carry a 50 Hz notch
        pytest.skip(f"a {rate_hz} Hz load cell cannot show a {MAINS_HZ} Hz hum")
    try:
        raw = _rest_force_mn(dut, 1.0)
        dut.ack(SetLoadCell(0, 0, LOWPASS_HZ))
        low = _rest_force_mn(dut, 1.0)
        dut.ack(SetLoadCell(0, MAINS_HZ, 0))
        notched = _rest_force_mn(dut, 1.0)
    finally:
        dut.ack(SetLoadCell(0, 0, 0))
    raw_rms, low_rms = float(np.std(raw)), float(np.std(low))
    assert raw_rms > 2.0, f"no noise to filter: {raw_rms:.2f} mN rms at rest"
    assert low_rms <= raw_rms / 2, (
        f"the {LOWPASS_HZ} Hz low-pass left {low_rms:.2f} of {raw_rms:.2f} mN rms at rest"
    )

    # neither takes the steady force out (unit gain at 0 Hz): the means at rest agree
    for name, force in (("low-pass", low), ("notch", notched)):
        shift = abs(float(force.mean() - raw.mean()))
        assert shift <= 5 + 0.1 * abs(float(raw.mean())), (
            f"the {name} moved the force at rest by {shift:.1f} mN (mean {raw.mean():.1f})"
        )
    # the notch: the power within ±1 Hz of 50 Hz (hum, or the noise's share of it)
    before, after = _band_power(raw, MAINS_HZ), _band_power(notched, MAINS_HZ)
    assert after <= before / 4, (
        f"the {MAINS_HZ} Hz notch left {after:.1f} of {before:.1f} mN² within ±1 Hz of it"
    )


@pytest.mark.control("RC-TARE")
def test_drift_filter_and_tare_under_a_steady_load(
    hil_homed: Dut, hil_session: HilSession, hil_figures: dict[str, Any]
) -> None:
    """Under a steady load: the continuous-tare high-pass (1 Hz) takes the load out of the
    force within a few time constants — but not out of the force limit's sight — and turned
    off the load reads again (filtered, not gone); TARE makes the force read zero and moves
    the offset by the load; back at the switch the HOME zeroes it again — without that
    tare the force there would read minus the load. Every filter starts in its steady
    state for the load (its first 50 ms read it already), and a slow continuous tare
    passes a change of load (the way home, off the load, reads minus it). Filters and tare
    change only at rest: BUSY while homing. (One drive into the load for all of it: on a
    rig each drive costs seconds of real time.)"""
    s = hil_session
    with _loadable(s, hil_homed) as dut:
        try:
            _drift_tare_home(dut, s, hil_figures)
        finally:
            _restore(dut, s)


def _drift_tare_home(dut: Dut, s: HilSession, hil_figures: dict[str, Any]) -> None:
    sample_hz = s.identity.load_cell_sample_hz
    loaded = _load_needle(dut, s)
    hil_figures["loaded_mn"] = loaded
    # the low-pass and the mains notch keep a steady load (unit gain at 0 Hz): a filter
    # that scales or zeroes what it passes shows only under a load (at rest, tared, the
    # force is near 0 whatever the filter does)
    for name, setting in (
        ("lowpass", SetLoadCell(0, 0, LOWPASS_HZ)),
        ("notch", SetLoadCell(0, MAINS_HZ, 0)),
    ):
        if name == "notch" and sample_hz < 4 * MAINS_HZ:
            continue  # a slower cell carries no 50 Hz notch
        dut.ack(setting)
        # started in its steady state for the last conversion (protocol §7): the load
        # reads through it from the first conversion on, no rise from zero
        first = _first_fresh_mean(dut, sample_hz)
        dut.wire.wait_s(FILTER_SETTLE_S)
        through = _mean_force_at_rest(dut)
        dut.ack(SetLoadCell(0, 0, 0))
        hil_figures[f"{name}_loaded_mn"] = through
        hil_figures[f"{name}_first_mn"] = first
        for when, mn in (("from its start", first), ("settled", through)):
            assert abs(mn - loaded) <= 0.1 * loaded + 5, (
                f"a steady {loaded:.0f} mN reads {mn:.0f} mN through the {name} {when}"
            )
    # the drift high-pass: turning it on is itself a tare, from the first conversion on
    dut.ack(SetLoadCell(DRIFT_CORNER_MHZ, 0, 0))
    first = _first_fresh_mean(dut, sample_hz)
    hil_figures["drift_first_mn"] = first
    assert abs(first) < loaded / 4, (
        f"a steady {loaded:.0f} mN read {first:.0f} mN just after the drift filter went on"
    )
    dut.wire.wait_s(DRIFT_SETTLE_S)
    filtered = _mean_force_at_rest(dut)
    hil_figures["filtered_mn"] = filtered
    assert abs(filtered) < loaded / 4, (
        f"a steady {loaded:.0f} mN still reads {filtered:.0f} mN through the drift filter"
    )
    # ... but the force limit still sees the load: a continuous tare must not blind it
    d = s.default_limits()
    before = dut.status().last_event_number
    limit_mn = round(loaded / 2)
    dut.set_limits(Limits(d.soft_depth_limit_um, limit_mn, d.stall_force_mn, d.stall_time_ms))
    ev = dut.wait_event(EventCode.FORCE_OVER_LIMIT, 1.0, before)
    assert ev is not None, (
        f"a steady {loaded:.0f} mN under a {limit_mn} mN limit went unnoticed: the drift "
        "filter blinded the force limit"
    )
    dut.set_limits(d)
    dut.clear_fault()
    dut.ack(SetLoadCell(0, 0, 0))
    again = _mean_force_at_rest(dut)
    assert again > 0.75 * loaded, f"the load read {again:.0f} mN with the filter off"
    # TARE
    offset0 = dut.status().load_cell_offset_mn
    dut.ack(Tare())
    tared = _mean_force_at_rest(dut)
    hil_figures["after_tare_mn"] = tared
    assert abs(tared) < loaded / 4, f"{loaded:.0f} mN read {tared:.0f} mN after TARE"
    shift = dut.status().load_cell_offset_mn - offset0
    assert abs(shift - loaded) < loaded / 4, f"TARE moved the offset by {shift} mN"
    # a slow continuous tare passes a change of load: the way home leaves the load, and
    # the force reads minus it (the tare's offset holds it) until HOME's own tare
    dut.ack(SetLoadCell(SLOW_DRIFT_CORNER_MHZ, 0, 0))
    first = _first_fresh_mean(dut, sample_hz)
    assert abs(first) < loaded / 4, f"{first:.0f} mN just after a tared drift filter went on"
    tl = dut.wire.received.telemetry
    mark = tl.mark()
    # the tare at the end of HOME
    dut.ack(Home(round(s.rig.homing_speed_mm_s * 1000)))
    for refused in (Tare(), SetLoadCell(DRIFT_CORNER_MHZ, 0, 0)):
        nak = dut.nak(refused)
        assert NakReason(nak.reason) is NakReason.BUSY, f"{refused!r} while homing"
    st = dut.wait_idle(s.rig.homing_timeout_s)
    assert st.state == DeviceState.READY and st.flags & SampleFlags.HOMED
    homing = tl.since(mark)
    homing = homing[(homing["force_flags"] & ForceFlags.FRESH) != 0]
    unloaded = float(np.median(homing["force_mn"].astype(np.int64)))
    hil_figures["homing_with_slow_drift_filter_mn"] = unloaded
    assert unloaded < -loaded / 2, (
        f"unloaded on the way home, a {SLOW_DRIFT_CORNER_MHZ} mHz drift filter read {unloaded:.0f} "
        f"mN, not about -{loaded:.0f} mN: it took the change of load out"
    )
    at_home = _mean_force_at_rest(dut)
    hil_figures["home_after_tare_mn"] = at_home
    assert abs(at_home) < loaded / 4, (
        f"homing did not tare: {at_home:.0f} mN at the switch after a {loaded:.0f} mN tare"
    )


def _check_fault(dut: Dut, reason: LoadCellFault, before: int, timeout_s: float) -> Any:
    ev = dut.wait_event(EventCode.FAULT, timeout_s, before)
    assert ev is not None, f"no FAULT event: the load cell's {reason.name} went unnoticed"
    assert ev.value & FaultFlags.LOAD_CELL, f"FAULT {FaultFlags(ev.value)!r}, not LOAD_CELL"
    dut.wait_idle(5.0)
    st = dut.status()
    assert LoadCellFault(st.load_cell_fault) is reason, LoadCellFault(st.load_cell_fault)
    assert st.state == DeviceState.FAULT and st.latched_faults & FaultFlags.LOAD_CELL
    nak = dut.nak(Move(MoveMode.RELATIVE, 100, 1000))
    assert NakReason(nak.reason) is NakReason.LATCHED_FAULT
    return ev


@pytest.mark.control("RC-SENSORWD")
def test_sensor_watchdog_on_a_silent_cell(
    hil_homed: Dut, hil_session: HilSession, hil_figures: dict[str, Any]
) -> None:
    """No conversion for two nominal periods: LOAD_CELL latched (TIMEOUT) and the motion
    stopped; the samples between the last conversion and the fault are marked held."""
    s = hil_session
    period_us = 1e6 / s.identity.load_cell_sample_hz
    rpm = s.rig.load_cell_silent_backward_rpm
    if on_the_simulator(s):
        ctx = sim_with_fault(s, "loadcell_silent")
    elif rpm is not None:
        ctx = _bench_turning_backward(hil_homed, s, rpm)
    else:
        pytest.skip(
            "needs a way to silence the load cell: [load_cell] silent_backward_rpm in the rig"
            " file (or the in-process simulator's fault injection)"
        )
    with ctx as dut:
        tl = dut.wire.received.telemetry
        mark = tl.mark()
        before = dut.status().last_event_number
        ev = _check_fault(dut, LoadCellFault.TIMEOUT, before, SIM_FAULT_AT_S + 5.0)
        dut.wire.wait_s(0.1)
        samples = tl.since(mark)
        fresh_t = samples["t_us"][(samples["force_flags"] & ForceFlags.FRESH) != 0]
        last_fresh_us = int(fresh_t[fresh_t < ev.time_us].max())
        gap_us = int(ev.time_us) - last_fresh_us
        hil_figures["silent_to_fault_ms"] = gap_us / 1000
        assert 2 * period_us <= gap_us <= 2 * period_us + 2 * TICK_US, (
            f"LOAD_CELL {gap_us / 1000} ms after the last fresh sample; two periods are "
            f"{2 * period_us / 1000} ms (were held samples marked fresh?)"
        )
        after = samples[samples["t_us"] >= int(ev.time_us)]
        assert len(after) > 1
        assert int(after["commanded_depth_um"][-1]) == int(after["commanded_depth_um"][0])
        dut.clear_fault()


@contextmanager
def _bench_turning_backward(dut: Dut, s: HilSession, rpm: float) -> Iterator[Dut]:
    rate_mrpm = min(round(rpm * 1000) + 20_000, s.identity.max_rate_mrpm)
    if rate_mrpm <= rpm * 1000:
        pytest.skip(f"the slip ring's {rpm} rpm is beyond the device's rotation rate")
    dut.ack(Rotate(RotateMode.CONTINUOUS, -rate_mrpm, 0))
    yield dut


@pytest.mark.control("RC-SATURATION")
def test_saturation_latches(
    hil_homed: Dut, hil_session: HilSession, hil_figures: dict[str, Any]
) -> None:
    """A conversion at the cell's rail is no force: LOAD_CELL latched (SATURATED), counted
    in STATUS, the advance stopped."""
    s = hil_session
    depth_mm = s.rig.load_cell_saturation_depth_mm
    if on_the_simulator(s):
        ctx = sim_with_fault(s, "loadcell_disconnected")  # an open bridge reads the rail
        timeout_s = SIM_FAULT_AT_S + 5.0
    elif depth_mm is not None:
        ctx = _bench_overloaded(hil_homed, s, round(depth_mm * 1000))
        timeout_s = depth_mm * 1000 / s.speed_um_s + 5.0
    else:
        pytest.skip("needs an overload: [load_cell] saturation_depth_mm in the rig file")
    with ctx as dut:
        before = dut.status()
        _check_fault(dut, LoadCellFault.SATURATED, before.last_event_number, timeout_s)
        st = dut.status()
        hil_figures["saturated"] = st.load_cell_saturated - before.load_cell_saturated
        assert st.load_cell_saturated > before.load_cell_saturated


@pytest.mark.control("RC-STUCK")
def test_a_frozen_reading_latches_stuck(
    hil_session: HilSession, hil_figures: dict[str, Any]
) -> None:
    """A noisy reading repeated to the last bit, conversion after conversion, is a cell
    frozen (a seized ADC, a broken bridge wire holding one code): LOAD_CELL latched (STUCK)
    and the advance stopped, while conversions still arrive."""
    s = hil_session
    if not on_the_simulator(s):
        pytest.skip(
            "needs a way to freeze the load cell's reading: the in-process simulator's fault"
            " injection"
        )
    # noise: the simulator's board declares the check only for a noisy cell (as a bench
    # whose cell is noisy enough that one code repeating is a fault)
    with sim_with_fault(s, "loadcell_stuck", noise="1") as dut:
        before = dut.status().last_event_number
        ev = _check_fault(dut, LoadCellFault.STUCK, before, SIM_FAULT_AT_S + 5.0)
        hil_figures["frozen_to_fault_ms"] = (int(ev.time_us) - SIM_FAULT_AT_S * 1e6) / 1000


@pytest.mark.control("RC-LOADCELL")
def test_an_amplifier_fault_latches_no_reading(
    hil_session: HilSession, hil_figures: dict[str, Any]
) -> None:
    """The amplifier reports a fault (not answering, its own error flag): LOAD_CELL latched
    (NO_READING) at the next read, the advance stopped, and the force reported as no
    reading at all (NO_FORCE_MN), never as the last value or zero."""
    s = hil_session
    if not on_the_simulator(s):
        pytest.skip(
            "needs a load-cell amplifier that reports a fault: the in-process simulator's"
            " fault injection"
        )
    with sim_with_fault(s, "loadcell_amp_fault") as dut:
        before = dut.status().last_event_number
        ev = _check_fault(dut, LoadCellFault.NO_READING, before, SIM_FAULT_AT_S + 5.0)
        # the hook fails the first read from its moment on: at the next conversion
        period_us = 1e6 / s.identity.load_cell_sample_hz
        latency_us = int(ev.time_us) - SIM_FAULT_AT_S * 1e6
        hil_figures["amp_fault_to_latch_ms"] = latency_us / 1000
        assert 0 <= latency_us <= period_us + TICK_US, f"NO_READING {latency_us} µs after"
        st = dut.status()
        assert st.force_mn == NO_FORCE_MN, f"force {st.force_mn} mN with no reading"


@contextmanager
def _bench_overloaded(dut: Dut, s: HilSession, depth_um: int) -> Iterator[Dut]:
    dut.move_to_um(depth_um, s.speed_um_s)
    yield dut
