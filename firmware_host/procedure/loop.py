"""The PIERCE control loop: rotate slowly, advance under a force ceiling, hold, peck, stop.

One pass of the loop every ``control_period_s`` of the driver's clock (on sim://
the wait itself runs the device, so a ten-minute run takes seconds):

    SETUP ─► SPIN_UP ─► ADVANCE ◄──────────────┐
                          │ force ≥ ceiling    │ force < resume × ceiling
                          ▼                    │ (it relaxed, or a crack dropped it)
                         HOLD ─────────────────┘
                          │ hold > max_hold_s (or no progress for 2 × max_hold_s)
                          ▼
                         PECK (back off) ─► DWELL (rotate) ─► ADVANCE
                          │ max_pecks pecks in a row without progress, or max_duration_s
                          ▼
                       STALLED          ADVANCE at target ─► CROSSED (stay or withdraw)

Whatever ends the run — crossed, stalled, the abort event, Ctrl-C, a device
fault, a lost link — the loop's last act on a live link is to stop the rig and
wait until nothing moves. Safety never rests on this loop alone: before any
motion it sets the device's own soft depth limit, force limit and stall cut-off,
which the device enforces whatever the host does.
"""

from __future__ import annotations

import contextlib
import signal
import threading
from collections import deque
from collections.abc import Callable
from dataclasses import asdict
from typing import Any

import numpy as np

from firmware_host.client import DeviceLimits
from firmware_host.errors import DeviceFault, LinkLost, Nak, NeedleDriverError, Timeout
from firmware_host.procedure.drift import NO_READING_N, DriftWatch, FloorWatch
from firmware_host.procedure.homing import abort_reason, home_interruptibly
from firmware_host.procedure.outcome import (
    Outcome,
    Phase,
    ProcedureEvent,
    Progress,
    Result,
)
from firmware_host.procedure.profile import Profile, ProfileError, load_profile
from firmware_host.procedure.sensor import SensorPlan, SensorRefused, plan_for, sample_hz_of
from firmware_host.procedure.signals import DropDetector, ForceFilter, PunctureDetector
from protocol import DeviceState, EventCode, FaultFlags, NakReason, SampleFlags

_PROGRESS_PERIOD_S = 0.2
_AT_TARGET_TOL_MM = 0.005  # one encoder count or so
_WITHDRAWN_TOL_MM = 0.01
_STOP_TIMEOUT_S = 10.0
HOME_SPEED_MM_S = 2.0  # the library's homing speed (NeedleDriver.home's default)
_HOME_TIMEOUT_S = 120.0
LOAD_CELL_FROZEN_S = 0.5
LOAD_CELL_FROZEN_SAMPLES = 20
# The puncture detector tells a cap's fall (done within a sample or two) from a tissue's
# relaxation (~150 ms) by the samples after it: a sensor slower than 40 Hz sees a whole
# relaxation within two samples, as sudden as a puncture (an HX711 at 10 Hz noted the tip
# leaving calcium as one), so with it the detector is off and only crack_drop_n drops count.
PUNCTURE_MAX_PERIOD_S = 0.025


class ProcedureError(ValueError):
    """The run was refused before any motion (target beyond the device's limits...)."""


class _Ended(Exception):
    """Internal: unwinds the loop with a result. ``latch``: a fault only the host can
    see (the device trusts its reading): the rig is e-stopped, so the device holds it
    latched — no later run or jog moves until the operator clears it and re-homes."""

    def __init__(self, result: Result, reason: str, *, latch: bool = False) -> None:
        super().__init__(reason)
        self.result = result
        self.reason = reason
        self.latch = latch


_BAD_STATES = {
    int(DeviceState.STALLED): (Result.STALLED, "the device's stall cut-off stopped the advance"),
    int(DeviceState.LIMIT): (Result.FAULT, "the device's soft depth limit stopped the advance"),
    int(DeviceState.FAULT): (Result.FAULT, "the device latched a fault"),
    int(DeviceState.ESTOPPED): (Result.FAULT, "the device is e-stopped"),
    int(DeviceState.UNHOMED): (Result.FAULT, "the device lost its homing"),
}
# The latched faults in an operator's words (the run's reason says which fault it was).
_FAULT_WORDS = {
    FaultFlags.LOAD_CELL: "load cell (no valid reading: disconnected, frozen or at its rail)",
    FaultFlags.ENCODER: "encoder (no valid reading: position unknown, re-home)",
    FaultFlags.WATCHDOG: "watchdog (the device heard nothing from the host in time)",
    FaultFlags.FORCE_LIMIT: "force over the limit",
    FaultFlags.TRAVEL_LIMIT: "travel limit",
    FaultFlags.STALL: "stall",
    FaultFlags.ESTOP: "e-stop",
}
# A device that reset mid-run (its BOOT event) has lost its session, homing and limits:
# the run ends, and nothing moves again until the operator homes it (RC-NORESUME).
DEVICE_RESET_REASON = (
    "the device reset mid-run (power or firmware restart): it is unhomed and will not"
    " move until homed again"
)


class _Run:
    """One run's state; ``run_procedure`` is its public face."""

    def __init__(
        self,
        driver: Any,
        profile: Profile,
        target_depth_mm: float,
        recorder: Any,
        on_progress: Callable[[Progress], None] | None,
        abort: threading.Event | None,
        sensor: SensorPlan,
    ) -> None:
        self.nd = driver
        self.p = profile
        self.sensor = sensor
        self.target_mm = target_depth_mm
        self.recorder = recorder
        self.on_progress = on_progress
        self.abort = abort
        self.clock = driver.clock
        self.t0: float = float(self.clock.monotonic())
        self.t_motion0: float | None = None
        self.phase = Phase.SETUP
        self.phase_t = self.t0
        # both fed with fresh load-cell samples only, at the sensor's own rate
        self.filter = ForceFilter(profile.advance.force_filter_s, sensor.period_s)
        self.drops = DropDetector(
            profile.hold.crack_drop_n, window_s=max(0.05, 2.5 * sensor.period_s)
        )
        # the puncture detector: a faster filter and a drop sized for a sub-newton cap, on
        # fresh samples (device time), armed only while advancing at a steady speed. Its
        # window is short (10 ms, or 2 sample periods of a slower sensor), and a fall counts
        # only if it is over a window later: a puncture is a fracture, done within a sample
        # or two; a tissue's viscoelastic relaxation (the tip leaving a segment) goes on
        hold = profile.hold
        self.punct_filter = ForceFilter(hold.puncture_filter_s, sensor.period_s)
        self.punct_drops = (
            PunctureDetector(hold.puncture_drop_n, window_s=max(0.01, 2.0 * sensor.period_s))
            if hold.puncture_drop_n > 0 and sensor.period_s <= PUNCTURE_MAX_PERIOD_S
            else None
        )
        self.puncture_drop_n: float | None = None  # a drop it saw since the last pass
        self.speed_changed_t = self.t0  # when the commanded advance speed last changed
        self.punct_quiet_until = self.t0  # host time: the crack detector just fired
        # a reading walking steadily down hides real force (RC-DRIFTWATCH)
        self.drift = DriftWatch(profile.sensor.max_fall_n_s, sensor.period_s)
        self.floor = FloorWatch()
        self.fresh_now = False  # a fresh sample arrived since the last pass
        self.homed = False  # this run homed the rig (the needle at home, the cell tared)
        self.last_fresh_t = self.t0
        self.force_rate_n_s = 0.0  # rise of the filtered force, per fresh sample
        self.force_n = 0.0  # filtered
        self.depth_mm = 0.0
        self.commanded_mm = 0.0
        self.commanded_speed_mm_s = 0.0
        self.state = int(DeviceState.READY)
        self.peak_force_n = 0.0
        self.events: list[ProcedureEvent] = []
        self.holds = 0
        self.pecks = 0
        self.stalls = 0
        # The ceiling in force: the profile's, raised step by step by an escalation.
        self.ceiling_n = profile.advance.force_ceiling_n
        self.escalations = 0
        self.cracks = 0
        self.punctures = 0
        self.limits_before: DeviceLimits | None = None
        self.frozen_value_n: float | None = None
        self.ending = False
        self.frozen_since = self.t0
        self.frozen_samples = 0  # fresh samples equal to frozen_value_n in a row
        self.crack_now = False
        self.first_event_number = 0
        self.hold_time_s = 0.0
        self.hold_start: float | None = None
        self.pecks_no_progress = 0
        self.last_peck_depth_mm: float | None = None
        self.best_depth_mm = 0.0
        self.deepest_mm = 0.0  # deepest encoder sample seen while running
        self.progress_t = self.t0  # when depth last gained progress_mm
        self.progress_ref_mm = 0.0
        self.last_progress_report = -1e9
        self.soft_limit_mm = 0.0
        # Filled by the telemetry subscription — on a real port from the link's reader
        # thread — and drained here: deque append/popleft are atomic, no batch is lost.
        self._pending: deque[Any] = deque()
        self._unsubscribe: Callable[[], None] | None = None
        self.device_event_base = 0
        self.device_reset = False
        listen = getattr(driver, "add_event_listener", None)
        self._unlisten: Callable[[], None] | None = (
            listen(self._on_device_event) if listen is not None else None
        )
        self.withdrawing = False
        self.withdraw_failure: str | None = None

    # ------------------------------------------------------------ helpers

    def now(self) -> float:
        return float(self.clock.monotonic())

    def t(self) -> float:
        return self.now() - self.t0

    def note(self, kind: str, **fields: Any) -> None:
        fields = {k: (round(v, 4) if isinstance(v, float) else v) for k, v in fields.items()}
        self.events.append(ProcedureEvent(round(self.t(), 4), kind, fields))
        if self.recorder is not None and hasattr(self.recorder, "note"):
            self.recorder.note(kind, **fields)

    def set_phase(self, phase: Phase) -> None:
        if phase is not self.phase:
            self.phase = phase
            self.phase_t = self.now()
            self.report(force=True)

    def report(self, force: bool = False) -> None:
        if self.on_progress is None:
            return
        now = self.now()
        if not force and now - self.last_progress_report < _PROGRESS_PERIOD_S:
            return
        self.last_progress_report = now
        self.on_progress(
            Progress(
                phase=self.phase,
                depth_mm=self.depth_mm,
                target_depth_mm=self.target_mm,
                force_n=self.force_n,
                force_ceiling_n=self.ceiling_n,
                elapsed_s=now - self.t0,
                holds=self.holds,
                pecks=self.pecks,
                motion_s=None if self.t_motion0 is None else now - self.t_motion0,
            )
        )

    def check_abort(self) -> None:
        if self.abort is not None and self.abort.is_set():
            raise _Ended(Result.ABORTED, abort_reason(self.abort, "aborted by the operator"))

    # ------------------------------------------------------------ sensing

    def _on_samples(self, samples: Any) -> None:
        self._pending.append(samples)

    def sense(self) -> None:
        """Fold the telemetry that arrived since the last pass into the loop's state."""
        pending = self._pending
        if not pending:
            return
        batches = [pending.popleft() for _ in range(len(pending))]
        arr = np.concatenate(batches) if len(batches) > 1 else batches[0]
        if len(arr) == 0:
            return
        force = arr["force_n"]
        times_s, flags = arr["device_time_s"], arr["flags"]
        if "force_fresh" in (arr.dtype.names or ()):
            # a held value is the last conversion again: never a new reading
            fresh = arr["force_fresh"]
            force, times_s, flags = force[fresh], times_s[fresh], flags[fresh]
        self.fresh_now = len(force) > 0
        if self.fresh_now:
            self.last_fresh_t = self.now()
            self.watch_load_cell(force)
            self.watch_drift(times_s, force, flags)
            self.peak_force_n = max(self.peak_force_n, float(force.max()))
            self.watch_punctures(times_s, force)
            before = self.filter.value_n
            f = self.filter.update(force.tolist())
            self.force_n = f if f is not None else 0.0
            if before is not None:
                self.force_rate_n_s = (self.force_n - before) / (len(force) * self.sensor.period_s)
        else:
            self.watch_silence()
        self.depth_mm = float(arr["depth_mm"][-1])
        self.deepest_mm = max(self.deepest_mm, float(arr["depth_mm"].max()))
        self.commanded_mm = float(arr["commanded_depth_mm"][-1])
        states = arr["state"]
        bad = [int(s) for s in states if int(s) in _BAD_STATES]
        self.state = bad[0] if bad else int(states[-1])

    def puncture_armed(self) -> bool:
        """The puncture detector listens only while the advance runs at a steady commanded
        speed: not in a hold, a peck or at the end, and not within ``puncture_settle_s``
        of the procedure's own speed changes (each moves the cutting force)."""
        now = self.now()
        return (
            not self.ending
            and self.phase is Phase.ADVANCE
            and self.hold_start is None
            and self.commanded_speed_mm_s > 0.0
            and now - self.speed_changed_t >= self.p.hold.puncture_settle_s
            and now >= self.punct_quiet_until
        )

    def watch_punctures(self, times_s: Any, force: Any) -> None:
        """Feed the fresh samples through the puncture filter; while armed, through its
        drop detector too (the first drop seen is kept for ``watch_cracks``)."""
        det = self.punct_drops
        if det is None:
            return
        armed = self.puncture_armed()
        filt = self.punct_filter
        for t_s, f_n in zip(times_s.tolist(), force.tolist(), strict=True):
            if f_n <= NO_READING_N:
                continue  # not a force: the device has latched LOAD_CELL
            v = filt.update((f_n,))
            if armed and v is not None:
                drop = det.update(t_s, v)
                if drop is not None and self.puncture_drop_n is None:
                    self.puncture_drop_n = drop
        if not armed:
            det.reset()

    def watch_load_cell(self, force: Any) -> None:
        """A live load cell is never perfectly still (noise spans several LSBs); a reading
        frozen to the last bit for LOAD_CELL_FROZEN_S — and for LOAD_CELL_FROZEN_SAMPLES
        fresh samples, so that a slow, quiet sensor repeating a code a few times is not
        taken for a stuck one — means a stuck sensor, and a needle pushed blind. The
        device cannot tell a frozen value from a real one."""
        if self.ending:
            return
        lo, hi = float(force.min()), float(force.max())
        if lo != hi or self.frozen_value_n is None or lo != self.frozen_value_n:
            # The newest sample may start a frozen stretch.
            self.frozen_value_n = float(force[-1])
            self.frozen_since = self.now()
            self.frozen_samples = 1
            return
        self.frozen_samples += len(force)
        if (
            self.now() - self.frozen_since >= LOAD_CELL_FROZEN_S
            and self.frozen_samples >= LOAD_CELL_FROZEN_SAMPLES
        ):
            raise _Ended(
                Result.FAULT,
                f"load cell reading frozen at {lo:.3f} N for "
                f"{self.now() - self.frozen_since:.1f} s (stuck sensor?)",
                latch=True,  # a board without the device's own stuck check latches nothing
            )

    def watch_drift(self, times_s: Any, force: Any, flags: Any) -> None:
        """The drift watch (``drift.py``) on each fresh sample, on device time (the host's
        own clock plays no part): the staircase at rest, the floor while advancing
        forward; asleep while the needle is drawn back and at the end, when a real
        force falls or pulls."""
        if self.ending or self.phase in (Phase.PECK, Phase.WITHDRAW, Phase.STOPPING):
            self.drift.reset()
            self.floor.reset()
            return
        # no pull on the needle while it advances, nor at home just after the device
        # tared the cell there, out of tissue
        floor = self.phase is Phase.ADVANCE or (self.phase is Phase.SPIN_UP and self.homed)
        if not floor:
            self.floor.reset()
        moving = int(SampleFlags.ADVANCING)
        for t_s, f_n, fl in zip(times_s.tolist(), force.tolist(), flags.tolist(), strict=True):
            if f_n <= NO_READING_N:
                continue  # not a force: the device has latched LOAD_CELL
            drift = self.floor.update(f_n) if floor else None
            if fl & moving:
                self.drift.reset()
            elif drift is None:
                drift = self.drift.update(t_s, f_n)
            if drift is not None:
                raise _Ended(Result.FAULT, drift.words(), latch=True)

    def _on_device_event(self, event: Any) -> None:
        # on a real port from the link's reader thread: a bool store is atomic
        if event.code == EventCode.BOOT:
            self.device_reset = True

    def fault_words(self, reason: str) -> str:
        """``reason`` and which faults the device has latched, in words."""
        try:
            latched = self.nd.status().latched_faults
        except NeedleDriverError:
            return reason  # the run ends on the fault all the same
        words = [w for flag, w in _FAULT_WORDS.items() if latched & flag]
        return f"{reason}: {', '.join(words)}" if words else reason

    def check_silent_device(self) -> None:
        """No telemetry for a whole control period: ask the device why. One that reset
        (its BOOT event may come before any session, so it is not streamed) answers
        with no session and no homing: the run ends there, the rig left as it is."""
        st = self.nd.status()
        if not st.homed and not st.flags & SampleFlags.ARMED:
            self.device_reset = True

    def watch_silence(self) -> None:
        """No fresh sample for three sample periods (and at least LOAD_CELL_FROZEN_S): the
        sensor has stopped converting; the needle would be pushed blind. (The device's
        sensor watchdog latches a fault after two periods; this is the host's own.)"""
        if self.ending:
            return
        silent_s = self.now() - self.last_fresh_t
        if silent_s >= max(LOAD_CELL_FROZEN_S, 3.0 * self.sensor.period_s):
            raise _Ended(
                Result.FAULT,
                f"no fresh load-cell sample for {silent_s:.1f} s (the "
                f"{self.sensor.sample_hz:g} Hz sensor stopped converting?)",
                latch=True,
            )

    def ended_by(self, exc: NeedleDriverError) -> _Ended:
        """How a library error ends the run. A command refused LATCHED_FAULT or ESTOPPED
        crossed on the wire with the device stopping on its own (a stall at the block
        latched just before the next advance arrived; more likely on a loaded host, whose
        view lags): the run ends as what the device did — stalled, its fault in words —
        not as the refusal. A reset mid-homing shows as homing that failed: say it was a
        reset."""
        if _was_reset(self):
            return _Ended(Result.FAULT, DEVICE_RESET_REASON)
        if isinstance(exc, Nak) and exc.reason in (NakReason.LATCHED_FAULT, NakReason.ESTOPPED):
            with contextlib.suppress(NeedleDriverError):
                self.state = int(self.nd.status().state)
            try:
                self.check_device()
            except _Ended as ended:
                return ended
        return _Ended(Result.FAULT, _fault_reason(exc))

    def check_device(self) -> None:
        if self.device_reset:
            raise _Ended(Result.FAULT, DEVICE_RESET_REASON)
        if self.state in _BAD_STATES:
            result, reason = _BAD_STATES[self.state]
            if self.state == int(DeviceState.FAULT):
                reason = self.fault_words(reason)
            if self.state == int(DeviceState.STALLED):
                self.stalls += 1
                self.note("stall", by="device", depth_mm=self.depth_mm)
            raise _Ended(result, reason)

    def tick(self) -> None:
        """Let one control period pass (the driver's wait keeps the link alive and, on
        sim://, runs the device), then sense and check."""
        self.check_abort()
        self.nd.wait_s(self.p.advance.control_period_s)
        if not self._pending and self._unsubscribe is not None:
            self.check_silent_device()
        self.sense()
        self.check_device()
        self.check_abort()
        if self.t_motion0 is not None and not self.withdrawing:
            elapsed = self.now() - self.t_motion0
            if elapsed > self.p.stall.max_duration_s:
                self.stalls += 1
                self.note("stall", by="host", why="max_duration_s", depth_mm=self.depth_mm)
                raise _Ended(
                    Result.STALLED,
                    f"not crossed within max_duration_s = {self.p.stall.max_duration_s:g} s",
                )
        self.report()

    # ------------------------------------------------------------ motion

    def start_rotation(self, rate_rpm: float | None = None) -> None:
        r = self.p.rotation
        rate = r.rate_rpm if rate_rpm is None else rate_rpm
        if r.mode == "oscillate":
            self.nd.oscillate_deg(r.oscillate_amplitude_deg, rate)
        else:
            self.nd.rotate_rpm(rate)

    def advance_speed_mm_s(self) -> float:
        """Approach speed while the force is low; the slow speed once it builds. Back to
        the approach speed only when the force has fallen to half the switch point, so
        noise around it does not toggle the command."""
        a = self.p.advance
        approach, slow = self.sensor.approach_speed_mm_s, self.sensor.speed_mm_s
        switch_n = a.approach_below_fraction * self.ceiling_n
        if self.commanded_speed_mm_s == approach:
            fast = self.force_n < switch_n
        else:
            fast = self.force_n < 0.5 * switch_n
        return approach if fast else slow

    def advance_to_target(self) -> None:
        speed = self.advance_speed_mm_s()
        self.nd.move_to_mm(self.target_mm, speed)
        self.set_commanded_speed(speed)

    def set_commanded_speed(self, speed_mm_s: float) -> None:
        if speed_mm_s != self.commanded_speed_mm_s:
            self.speed_changed_t = self.now()
        self.commanded_speed_mm_s = speed_mm_s

    def adjust_speed(self) -> None:
        if self.advance_speed_mm_s() != self.commanded_speed_mm_s:
            self.advance_to_target()

    def pause_advance(self) -> None:
        # MOVE STOP: the advance brakes to rest while the rotation axis is left alone
        # (STOP would halt both); a pause, so the device reports no TARGET_REACHED
        self.nd.stop_advance()
        self.set_commanded_speed(0.0)

    def stop_rig(self) -> None:
        self.nd.stop()
        self.nd.wait_idle(_STOP_TIMEOUT_S)

    # ------------------------------------------------------------ phases

    def setup(self) -> None:
        nd = self.nd
        st = nd.status()
        self.first_event_number = int(st.counters.last_event_number)
        if st.latched_faults:
            raise _Ended(
                Result.FAULT,
                f"the device has latched faults ({st.latched_faults:#x}): clear them first",
            )
        if self.p.home_first or not st.homed:
            self.note("home")
            homed = home_interruptibly(
                nd, speed_mm_s=HOME_SPEED_MM_S, timeout_s=_HOME_TIMEOUT_S, abort=self.abort
            )
            if homed is None:
                self.check_abort()  # the abort came while homing: end (the rig is stopped)
            self.homed = True  # the device tared the cell at home, out of tissue
        lim = self.p.limits
        # the device's limits before the run: finish() puts them back, or the profile's
        # (a stall force above a bench's thrust, say) would govern every later jog
        self.limits_before = st.limits
        nd.set_limits(
            soft_depth_limit_mm=self.soft_limit_mm,
            force_limit_n=lim.force_limit_n,
            stall_force_n=lim.stall_force_n,
            stall_time_s=lim.stall_time_s,
        )
        sp = self.sensor
        self.note(
            "sensor",
            sample_hz=sp.sample_hz,
            approach_speed_mm_s=sp.approach_speed_mm_s,
            speed_mm_s=sp.speed_mm_s,
            capped=sp.capped,
            latency_s=sp.latency_s,
        )
        nd.set_telemetry(rate_hz=1000, batch_samples=10)
        self._unsubscribe = nd.telemetry.subscribe(self._on_samples)
        st = nd.status()
        self.depth_mm = st.depth_mm
        self.best_depth_mm = st.depth_mm
        self.progress_ref_mm = st.depth_mm
        self.note(
            "limits",
            soft_depth_limit_mm=self.soft_limit_mm,
            force_limit_n=lim.force_limit_n,
            stall_force_n=lim.stall_force_n,
            stall_time_s=lim.stall_time_s,
        )

    def run(self) -> None:
        self.report(force=True)  # phase "setup" (homing watches the abort event too)
        self.check_abort()
        self.setup()
        self.check_abort()
        self.t_motion0 = self.now()
        self.progress_t = self.now()
        self.set_phase(Phase.SPIN_UP)
        self.start_rotation()
        self.note("rotate", mode=self.p.rotation.mode, rate_rpm=self.p.rotation.rate_rpm)
        spin_end = self.now() + self.p.rotation.spin_up_s
        while self.now() < spin_end:
            self.tick()
        self.set_phase(Phase.ADVANCE)
        self.advance_to_target()
        while True:
            self.tick()
            self.track_progress()
            self.crack_now = self.watch_cracks()
            if self.phase is Phase.ADVANCE:
                if self.depth_mm >= self.target_mm - _AT_TARGET_TOL_MM:
                    self.note("target_reached", depth_mm=self.depth_mm)
                    return
                if self.force_seen_ahead_n() >= self.ceiling_n:
                    self.begin_hold()
                elif self.no_progress_too_long():
                    self.peck("no_progress")
                else:
                    self.adjust_speed()
            elif self.phase is Phase.HOLD:
                self.in_hold()

    def force_seen_ahead_n(self) -> float:
        """The filtered force, plus what it rises over the sensor's extra latency (the
        true force is that far ahead of the last conversion; 0 s for an ideal sensor)."""
        rise_n = self.force_rate_n_s * self.sensor.latency_s
        return self.force_n + (rise_n if rise_n > 0.0 else 0.0)

    def track_progress(self) -> None:
        if self.depth_mm > self.best_depth_mm:
            self.best_depth_mm = self.depth_mm
        if self.best_depth_mm >= self.progress_ref_mm + self.p.stall.progress_mm:
            self.progress_ref_mm = self.best_depth_mm
            self.progress_t = self.now()

    def no_progress_too_long(self) -> bool:
        return bool(self.now() - self.progress_t > 2.0 * self.p.hold.max_hold_s)

    def begin_hold(self) -> None:
        self.pause_advance()
        self.holds += 1
        self.hold_start = self.now()
        self.note("hold_start", depth_mm=self.depth_mm, force_n=self.force_n)
        self.set_phase(Phase.HOLD)

    def end_hold(self, why: str) -> float:
        assert self.hold_start is not None
        held = self.now() - self.hold_start
        self.hold_time_s += held
        self.hold_start = None
        self.note("hold_end", why=why, held_s=held, depth_mm=self.depth_mm, force_n=self.force_n)
        return held

    def watch_cracks(self) -> bool:
        """Note a sudden fall of the filtered force: during a hold (advance paused, the
        needle turning under load) calcium cracking; while advancing, a cap giving way
        under the needle — a puncture, not a crack. The filtered force moves only with
        fresh samples (``sense``), so a held value never makes a drop. A young cap's
        puncture (0.6–1.5 N, its drop far under ``crack_drop_n``) is seen by the puncture
        detector instead (``watch_punctures``: ``puncture_drop_n``, a steady speed); one
        fall is one mark, whichever detector sees it first."""
        drop = self.drops.update(self.now(), self.force_n)
        small, self.puncture_drop_n = self.puncture_drop_n, None
        if drop is None and small is None:
            return False
        # one fall is one mark: whichever detector saw it first quiets the other
        if drop is None:
            assert small is not None
            drop = small
            self.drops.hold_off(self.now())
        else:
            self.punct_quiet_until = self.now() + self.drops.refractory_s
            if self.punct_drops is not None:
                self.punct_drops.reset()
        if self.hold_start is not None:
            self.cracks += 1
            self.note("crack", drop_n=drop, depth_mm=self.depth_mm, force_n=self.force_n)
        else:
            self.punctures += 1
            self.note("puncture", drop_n=drop, depth_mm=self.depth_mm, force_n=self.force_n)
        return True

    def in_hold(self) -> None:
        assert self.hold_start is not None
        drop = self.crack_now
        if self.force_n < self.p.advance.resume_fraction * self.ceiling_n:
            self.end_hold("crack" if drop else "relaxed")
            self.set_phase(Phase.ADVANCE)
            self.advance_to_target()
        elif self.now() - self.hold_start > self.p.hold.max_hold_s:
            self.end_hold("timeout")
            self.peck("hold_timeout")
        elif self.no_progress_too_long():
            self.end_hold("no_progress")
            self.peck("no_progress")

    def peck(self, why: str) -> None:
        """Back off, rotate a while, then re-advance — or declare the stall."""
        depth = self.depth_mm
        if self.last_peck_depth_mm is not None and (
            depth < self.last_peck_depth_mm + self.p.stall.progress_mm
        ):
            self.pecks_no_progress += 1
        else:
            self.pecks_no_progress = 0
        self.last_peck_depth_mm = max(depth, self.last_peck_depth_mm or depth)
        top_n = self.p.escalate.max_force_ceiling_n
        if (
            top_n is not None
            and self.ceiling_n < top_n
            and self.pecks_no_progress >= self.p.escalate.after_pecks
        ):
            self.escalate(top_n, depth)
        elif self.pecks_no_progress >= self.p.stall.max_pecks:
            self.stalls += 1
            self.note(
                "stall",
                by="host",
                why=f"{self.pecks_no_progress} pecks without progress",
                depth_mm=depth,
                force_n=self.force_n,
            )
            raise _Ended(
                Result.STALLED,
                f"no progress after {self.pecks_no_progress} pecks at {depth:.2f} mm",
            )
        self.pecks += 1
        self.note("peck", why=why, depth_mm=depth, force_n=self.force_n, n=self.pecks)
        self.set_phase(Phase.PECK)
        back_to = max(0.0, self.depth_mm - self.p.peck.back_off_mm)
        self.nd.move_to_mm(back_to, self.p.peck.speed_mm_s)
        deadline = self.now() + 3.0 * self.p.peck.back_off_mm / self.p.peck.speed_mm_s + 2.0
        while self.depth_mm > back_to + 0.01 and self.now() < deadline:
            self.tick()
        self.set_phase(Phase.DWELL)
        dwell_end = self.now() + self.p.peck.dwell_s
        while self.now() < dwell_end:
            self.tick()
        self.progress_t = self.now()
        self.set_phase(Phase.ADVANCE)
        self.advance_to_target()

    def escalate(self, top_n: float, depth_mm: float) -> None:
        """One step of the bounded escalation: the ceiling up by ``step_n`` (never above
        the profile's maximum, which validation keeps under the device's stall threshold
        and at most 80 % of its force limit), and from the first step the rotation at
        ``[escalate] rate_rpm`` if set. The pecks without progress count again from 0:
        the stall policy applies in full at the new ceiling."""
        esc = self.p.escalate
        old_n = self.ceiling_n
        self.ceiling_n = min(round(old_n + esc.step_n, 6), top_n)
        self.escalations += 1
        self.pecks_no_progress = 0
        fields: dict[str, Any] = {
            "from_n": old_n,
            "force_ceiling_n": self.ceiling_n,
            "depth_mm": depth_mm,
            "n": self.escalations,
        }
        if esc.rate_rpm is not None and self.escalations == 1:
            self.start_rotation(esc.rate_rpm)
            fields["rate_rpm"] = esc.rate_rpm
        self.note("escalate", **fields)

    def finish_crossed(self) -> None:
        """Withdraw to home if the profile asks. The crossing has happened whatever this
        meets: a failure here (a device stall, the link, an abort, the deadline) is
        recorded in ``withdraw_failure`` and the outcome stays ``crossed``."""
        if self.p.target.on_crossed != "withdraw":
            return
        self.withdrawing = True  # max_duration_s bounds the crossing, not the way back
        self.set_phase(Phase.WITHDRAW)
        self.note("withdraw", from_mm=self.depth_mm)
        speed = self.p.target.withdraw_speed_mm_s
        # Generous: the distance at the profile's speed twice over, plus braking.
        limit_s = 2.0 * self.depth_mm / speed + 5.0
        try:
            self.nd.move_to_mm(0.0, speed)
            deadline = self.now() + limit_s
            while self.depth_mm > _WITHDRAWN_TOL_MM and self.now() < deadline:
                self.tick()
            if self.depth_mm > _WITHDRAWN_TOL_MM:
                raise _Ended(Result.FAULT, f"not back home within {limit_s:.0f} s")
        except _Ended as end:
            self.withdraw_failure = end.reason
        except KeyboardInterrupt:
            self.withdraw_failure = "interrupted"
        except NeedleDriverError as exc:
            self.withdraw_failure = _fault_reason(exc)
        if self.withdraw_failure is not None:
            self.note("withdraw_failed", why=self.withdraw_failure, depth_mm=self.depth_mm)

    def restore_limits(self) -> None:
        """The limits the device had before the run, once the rig is at rest."""
        before = self.limits_before
        if before is None:
            return
        self.nd.set_limits(
            soft_depth_limit_mm=before.soft_depth_limit_mm,
            force_limit_n=before.force_limit_n,
            stall_force_n=before.stall_force_n,
            stall_time_s=before.stall_time_s,
        )
        self.note("limits_restored", **asdict(before))

    def finish(self) -> None:
        """Bring the rig to rest, best effort, whatever happened."""
        self.ending = True
        self.set_phase(Phase.STOPPING)
        try:
            self.stop_rig()
            # The depth the rig came to rest at, read after the stop, not the last
            # telemetry before it (the axis was still braking then).
            self.sense()
            self.depth_mm = self.nd.status().depth_mm
            self.note("stopped", depth_mm=self.depth_mm)
        except NeedleDriverError as exc:
            # A dead link: the device's watchdog stops the motion by itself.
            self.note("stop_failed", error=str(exc))
            with contextlib.suppress(NeedleDriverError):
                self.depth_mm = self.nd.status().depth_mm
        finally:
            if self._unsubscribe is not None:
                self._unsubscribe()
            if self._unlisten is not None:
                self._unlisten()
        try:
            self.restore_limits()
        except NeedleDriverError as exc:
            self.note("limits_not_restored", error=str(exc))


def run_procedure(
    driver: Any,
    profile: Profile | str | None = None,
    *,
    target_depth_mm: float | None = None,
    recorder: Any = None,
    on_progress: Callable[[Progress], None] | None = None,
    abort: threading.Event | None = None,
) -> Outcome:
    """Run the PIERCE procedure on an open ``NeedleDriver`` and return its outcome.

    ``profile``: a Profile, a built-in name or a .toml path (default ``pierce``).
    ``target_depth_mm`` overrides the profile's target. ``recorder`` (optional)
    gets ``note(kind, **fields)`` for every phase event. ``on_progress`` is called
    a few times a second of procedure time. Setting ``abort`` stops the rig and
    ends the run ``aborted`` (so does KeyboardInterrupt).

    Raises ProcedureError/ProfileError only before any motion; everything after
    the first motion ends in an Outcome with the rig stopped.
    """
    prof = profile if isinstance(profile, Profile) else load_profile(profile)
    target = target_depth_mm if target_depth_mm is not None else prof.target.depth_mm
    if target is None:
        raise ProfileError(
            f"profile {prof.name}: no target depth: give one (--target-mm) or set [target] depth_mm"
        )
    _check_against_device(driver, prof, target)
    try:
        sensor = plan_for(prof, sample_hz_of(driver.identity))
    except SensorRefused as exc:
        raise ProcedureError(str(exc)) from None
    run = _Run(driver, prof, float(target), recorder, on_progress, abort, sensor)
    run.soft_limit_mm = min(
        target + prof.target.overshoot_limit_mm, driver.identity.travel_limit_mm
    )
    result, reason = Result.CROSSED, "reached the target depth"
    try:
        try:
            run.run()
        except KeyboardInterrupt as exc:
            raise _Ended(Result.ABORTED, _interrupt_reason(exc)) from None
        except NeedleDriverError as exc:
            raise run.ended_by(exc) from None
        run.finish_crossed()
        if run.punctures == 0:
            # the depth was reached but no barrier gave way on the way: say so, or an
            # operator reads "crossed" for a target short of the lesion
            reason += " with no puncture on the way (is the target short of the lesion?)"
            if run.punct_drops is None and prof.hold.puncture_drop_n > 0:
                reason += (
                    f"; the {sensor.sample_hz:g} Hz load cell is too slow to see a young"
                    " cap's puncture"
                )
        if run.withdraw_failure is not None:
            reason += f"; the withdrawal failed: {run.withdraw_failure}"
    except _Ended as end:
        result, reason = end.result, end.reason
        if end.latch:
            # first, before the orderly stop below: one tick, and latched
            with contextlib.suppress(NeedleDriverError):
                driver.estop()
        if result is Result.FAULT and abort is not None and abort.is_set():
            # a stop or e-stop asked for through the abort event (another terminal, the
            # rig server's page) came first: the fault the device then reports (ESTOPPED,
            # a refused command) is its consequence, not the cause
            result, reason = Result.ABORTED, abort_reason(abort, "aborted by the operator")
        if run.hold_start is not None:
            run.end_hold(result.value)
    run.note("end", outcome=result.value, reason=reason)
    try:
        run.finish()
    except KeyboardInterrupt:
        # A second Ctrl-C while stopping: stop again, harder, and go.
        with contextlib.suppress(NeedleDriverError):
            driver.estop()
    run.events.extend(_device_events(driver, run.first_event_number, run.t0))
    run.set_phase(Phase.DONE)
    start = run.t_motion0 if run.t_motion0 is not None else run.t0
    return Outcome(
        result=result,
        reason=reason,
        target_depth_mm=run.target_mm,
        final_depth_mm=round(run.depth_mm, 4),
        deepest_depth_mm=round(max(run.deepest_mm, run.depth_mm), 4),
        duration_s=round(run.now() - start, 4),
        peak_force_n=round(run.peak_force_n, 4),
        hold_time_s=round(run.hold_time_s, 4),
        holds=run.holds,
        pecks=run.pecks,
        stalls=run.stalls,
        cracks=run.cracks,
        punctures=run.punctures,
        escalations=run.escalations,
        force_ceiling_n=run.ceiling_n,
        # One timeline: the device's events (fetched at the end) among the notes.
        events=tuple(sorted(run.events, key=lambda e: e.t_s)),
        soft_depth_limit_mm=run.soft_limit_mm,
        force_limit_n=prof.limits.force_limit_n,
        clock_start_s=run.t0,
        withdrawn=(
            None
            if prof.target.on_crossed != "withdraw" or result is not Result.CROSSED
            else run.withdraw_failure is None
        ),
    )


def _was_reset(run: _Run) -> bool:
    """Did the device reset? (Its BOOT event comes before any session, so it may not
    have been streamed: a device with no session and no homing has reset.)"""
    if run.device_reset:
        return True
    try:
        run.check_silent_device()
    except NeedleDriverError:
        return False
    return run.device_reset


def _fault_reason(exc: NeedleDriverError) -> str:
    if isinstance(exc, LinkLost):
        return f"link lost: {exc}"
    if isinstance(exc, Timeout):
        return f"device not answering: {exc}"
    if isinstance(exc, DeviceFault):
        return f"device fault: {exc}"
    return str(exc)


def _interrupt_reason(exc: KeyboardInterrupt) -> str:
    """Name the signal when the interrupt carries one (needlectl's ``Interrupted``
    has ``signum``: SIGTERM must not be recorded as a Ctrl-C)."""
    signum = getattr(exc, "signum", None)
    if isinstance(signum, int) and signum in signal.Signals._value2member_map_:
        return f"interrupted by {signal.Signals(signum).name}"
    return "interrupted (Ctrl-C)"


def _device_events(driver: Any, after_number: int, t0: float) -> list[ProcedureEvent]:
    """The device's own log since the run began (limits, stalls, faults), on run time."""
    out: list[ProcedureEvent] = []
    try:
        events = driver.events()
    except NeedleDriverError:
        return out
    for e in events:
        if e.number <= after_number:
            continue
        code = int(e.code)
        name = EventCode(code).name if code in EventCode._value2member_map_ else str(code)
        out.append(
            ProcedureEvent(
                round(float(e.host_time_s) - t0, 4),
                "device_event",
                {"number": int(e.number), "code": name, "value": int(e.value)},
            )
        )
    return out


def _check_against_device(driver: Any, p: Profile, target_mm: float) -> None:
    ident = driver.identity
    problems = []
    if target_mm <= 0:
        problems.append(f"target depth {target_mm:g} mm must be > 0")
    if target_mm + p.target.overshoot_limit_mm > ident.travel_limit_mm:
        problems.append(
            f"target depth {target_mm:g} mm + overshoot {p.target.overshoot_limit_mm:g} mm "
            f"is beyond the device's travel {ident.travel_limit_mm:g} mm"
        )
    if p.limits.force_limit_n > ident.force_limit_n:
        problems.append(
            f"force_limit_n {p.limits.force_limit_n:g} N is above the device's hard limit "
            f"{ident.force_limit_n:g} N"
        )
    # Every speed and rate the run may command, so none is refused halfway (after
    # homing, with the needle turning) and turns the run into a FAULT.
    speeds = [
        ("[advance] speed_mm_s", p.advance.speed_mm_s),
        ("[advance] approach_speed_mm_s", p.advance.approach_speed_mm_s),
        ("[peck] speed_mm_s", p.peck.speed_mm_s),
        ("[target] withdraw_speed_mm_s", p.target.withdraw_speed_mm_s),
        ("homing speed", HOME_SPEED_MM_S),
    ]
    for name, speed_mm_s in speeds:
        if speed_mm_s > ident.max_speed_mm_s:
            problems.append(
                f"{name} = {speed_mm_s:g} mm/s is above the device's max_speed_mm_s "
                f"{ident.max_speed_mm_s:g} mm/s"
            )
    rates = [("[rotation] rate_rpm", p.rotation.rate_rpm)]
    if p.escalate.max_force_ceiling_n is not None and p.escalate.rate_rpm is not None:
        rates.append(("[escalate] rate_rpm", p.escalate.rate_rpm))
    for name, rate_rpm in rates:
        if rate_rpm > ident.max_rate_rpm:
            problems.append(
                f"{name} = {rate_rpm:g} rpm is above the device's "
                f"max_rate_rpm {ident.max_rate_rpm:g} rpm"
            )
    if problems:
        raise ProcedureError(f"profile {p.name}: " + "; ".join(problems))
