"""The simulated firmware: protocol v1, state machine, motion, safety, telemetry, events.

One ``tick()`` is one 1 ms control period: parse the bytes received since the last
tick and execute commands (sim_device/commands.py), advance the motion profiles, step
the rig, read its sensors, run the safety checks (limits, force, stall, watchdog),
produce telemetry and heartbeats. Bytes for the host accumulate in ``tx``; whoever carries them (the
``sim://`` port, the pty/TCP server, the USB backend) takes them from there.

The firmware knows nothing about time except its clock's ``now_us``, which each
tick advances by 1000, so the same inputs give the same bytes.

Planted defects (``defect=``) exist for the HIL suite: each breaks one behaviour
and nothing else (see DEFECTS).

Behaviour in brief (the contract the host and the HIL suite rely on):

* Commands (session, NAK order, exactly once, e-stop and stops): the handlers are in
  sim_device/commands.py, which states their contract; this module is the control tick
  and what it needs (sensors, safety, state, output).
* Watchdog: with a session open, no valid host frame for ``watchdog_ms`` while anything
  moves stops both axes at once and latches WATCHDOG (+ WATCHDOG_TRIP event); with both
  axes at rest it ends the session instead (SESSION_ENDED event, nothing latched,
  motion NOT_ARMED until a HELLO); any valid frame (one the decoder accepts: good COBS,
  length, CRC, known id, version, payload length) re-arms it; CLEAR_FAULT lifts the latch.
* Safety every tick: the advance stops at the soft depth limit (LIMIT state,
  LIMIT_REACHED event; the limit is exact to the microstep); |force| above the
  force limit latches FORCE_LIMIT; the stall cut-off fires
  when the force stays ≥ the stall force for stall_time_ms while advancing, or the
  motor count runs more than 5 µm ahead of the encoder (steps lost), and latches
  STALL; a load cell at its rail, or a noisy reading frozen for 200 ticks, latches
  LOAD_CELL. Every latched fault stops both axes: the advance at once, the rotation
  down its ramp (at once for e-stop and watchdog); motion other than ROTATE STOP is
  NAKed until CLEAR_FAULT. Stall, e-stop and a lost encoder make the position
  invalid: re-home.
* Telemetry: samples every 1000/rate_hz ticks (integer accumulator), sent in batches
  of ``batch_samples``; ``first_sample_number`` counts every sample since boot.
* Heartbeat: a HEARTBEAT whenever the device has sent nothing for 100 ms, from boot on.
* Telemetry settings persist across HELLO and watchdog trips (off at boot).
* Framing: every frame the device sends is preceded by a 0x00 (protocol §1).
"""

from __future__ import annotations

import math
import struct
from typing import Any, Protocol

from protocol import (
    DEFAULT_WATCHDOG_MS,
    DEVICE_HEARTBEAT_MS,
    DeviceState,
    Event,
    EventCode,
    FaultFlags,
    Heartbeat,
    SampleFlags,
    StreamDecoder,
    Telemetry,
    encode,
)
from protocol.schema import Message
from sim_device.clock import VirtualClock
from sim_device.commands import Commands
from sim_device.event_log import EventLog as DeviceEventLog
from sim_device.limits import (
    DEFECTS,
    I32_MAX,
    I32_MIN,
    HardLimits,
    clip_i32,
)
from sim_device.motion import Axis

TICK_US = 1000
TICK_S = TICK_US / 1_000_000

# Estimates (see docs/simulator.md): a small lead-screw stage and a geared rotation stepper.
ADVANCE_ACCEL_UM_S2 = 20_000.0
ROTATE_ACCEL_DEG_S2 = 3_600.0
# Following error (motor count ahead of the encoder) that means steps were lost: a few
# encoder counts, so the cut-off fires within ~10 ms at crossing speeds of ≥ 0.5 mm/s.
STALL_FOLLOWING_ERROR_UM = 5.0
DEFAULT_STALL_TIME_MS = 5
# Homing gives up (TRAVEL_LIMIT fault) after this much travel beyond the hard travel.
HOMING_MARGIN_UM = 20_000.0
LOADCELL_STUCK_TICKS = 200
FORCE_INVALID_MN = -0x8000_0000  # load cell reading unavailable (disconnected)

_SAMPLE_STRUCT = struct.Struct("<IiiiiBB")  # TelemetrySample, packed
_SAMPLE_BYTES = _SAMPLE_STRUCT.size
_pack_sample = _SAMPLE_STRUCT.pack_into
_MAX_BATCH_SAMPLES = 10
_ADVANCING = int(SampleFlags.ADVANCING)
_ROTATING = int(SampleFlags.ROTATING)
_SF_HOMED = int(SampleFlags.HOMED)
_SF_AT_LIMIT = int(SampleFlags.AT_LIMIT)
_SF_STALL = int(SampleFlags.STALL)
_SF_FAULT = int(SampleFlags.FAULT)
_SF_ESTOP = int(SampleFlags.ESTOP)
_SF_ARMED = int(SampleFlags.ARMED)
_F_ESTOP = int(FaultFlags.ESTOP)
_F_STALL = int(FaultFlags.STALL)
_F_OTHER = int(~(FaultFlags.STALL | FaultFlags.ESTOP))  # any latched fault but these two
_S_UNHOMED = int(DeviceState.UNHOMED)
_S_HOMING = int(DeviceState.HOMING)
_S_READY = int(DeviceState.READY)
_S_MOVING = int(DeviceState.MOVING)
_S_STALLED = int(DeviceState.STALLED)
_S_LIMIT = int(DeviceState.LIMIT)
_S_FAULT = int(DeviceState.FAULT)
_S_ESTOPPED = int(DeviceState.ESTOPPED)
_floor = math.floor
_NEVER_US = 1 << 62
_HEARTBEAT_US = DEVICE_HEARTBEAT_MS * 1000
_I32_MIN = I32_MIN
_I32_MAX = I32_MAX
# a depth reading rounds into (i32 min, i32 max]: i32 min itself means "encoder invalid"
_DEPTH_LO_UM = _I32_MIN + 0.5
_DEPTH_HI_UM = _I32_MAX + 0.5


class RigLike(Protocol):
    """What the firmware needs from the rig (sim_device.rig.Rig implements it)."""

    encoder_depth_mm: float
    load_cell_force_n: float
    home_switch: bool
    needle_depth_mm: float

    def step(self, dt_s: float, motor_depth_mm: float, angle_deg: float) -> None: ...


class Firmware:
    """The device's firmware, bound to one rig and one clock."""

    def __init__(
        self,
        rig: RigLike,
        *,
        clock: VirtualClock | None = None,
        hard: HardLimits | None = None,
        watchdog_ms: int = DEFAULT_WATCHDOG_MS,
        defect: str | None = None,
        serial_number: str = "SIM-0001",
        loadcell_stuck_check: bool = True,
    ) -> None:
        if defect is not None and defect not in DEFECTS:
            raise ValueError(f"unknown defect {defect!r}; known: {', '.join(sorted(DEFECTS))}")
        if not 1 <= watchdog_ms <= 0xFFFF:
            raise ValueError(f"watchdog_ms={watchdog_ms} must be 1..65535")
        self.rig = rig
        self.clock = clock if clock is not None else VirtualClock()
        self.hard = (
            hard if hard is not None else HardLimits.from_params(getattr(rig, "params", None))
        )
        self.defect = defect
        self._stall_enabled = defect != "stall_cutoff_disabled"
        self._watchdog_enabled = defect != "watchdog_disabled"
        self.serial_number = serial_number
        self.watchdog_us = watchdog_ms * 1000
        self.tx = bytearray()
        self._rx = bytearray()
        self._decoder = StreamDecoder()
        self._commands = Commands(self)
        self.events = DeviceEventLog()
        self._um_per_step = self.hard.um_per_microstep
        # A reading at the ADC's rail means an open bridge (disconnected load cell); a
        # noisy reading that repeats exactly for LOADCELL_STUCK_TICKS ticks means a stuck one
        # (only checked when the sensor is expected to be noisy).
        params = getattr(rig, "params", None)
        self._lc_rail_n = float(getattr(params, "load_cell_full_scale_n", 50.0))
        self._lc_stuck_check = loadcell_stuck_check
        self._lc_same_ticks = 0
        self._force_n = 0.0

        # The motor's own coordinate starts at 0 at boot; the rig wants absolute depth, so
        # the physical coupling (where the carriage happened to be at power-up) is read
        # once from the rig. The firmware's logic never uses it.
        self._motor_origin_mm = float(rig.needle_depth_mm)
        self._enc_zero_mm = float(rig.encoder_depth_mm)
        self.adv = Axis(ADVANCE_ACCEL_UM_S2)
        self.rot = Axis(ROTATE_ACCEL_DEG_S2)
        self._osc_center_deg = 0.0
        self._osc_amp_deg = 0.0

        # session, state
        self.session_open = False
        self.armed = False
        self.schema_ok = False
        self.homed = False
        self.homing = False
        self._homing_start_um = 0.0
        self.at_limit = False
        self.latched = 0
        self.state = int(DeviceState.UNHOMED)
        self._flags_base = 0

        # limits in force
        self.soft_depth_limit_um = self.hard.travel_um
        self.force_limit_mn = self.hard.force_mn
        self.stall_force_mn = int(self.hard.thrust_mn * 0.9)
        self.stall_time_ms = DEFAULT_STALL_TIME_MS
        self._set_limit_steps()

        # telemetry
        self.telemetry_rate_hz = 0
        self.batch_samples = 10
        self._sample_acc = 0
        # samples are packed into this buffer as they are taken (one pack_into each, no
        # per-sample objects); a batch is sent as its first _batch_count samples
        self._batch_buf = bytearray(_SAMPLE_BYTES * _MAX_BATCH_SAMPLES)
        self._batch_count = 0
        self._batch_first = 0
        self.samples_sent = 0

        # sensors as last read (µm / mN, relative to the firmware's zero)
        self.depth_um = 0
        self.force_mn = 0
        self._stall_ticks = 0
        self._follow_motor0_um = 0.0
        self._follow_enc0_um = 0.0

        # timing
        self._last_host_us = 0
        self._last_tx_us = 0
        self._wd_tripped = False
        self._timers: list[tuple[int, int, Any]] = []
        self._next_timer_us = _NEVER_US
        self._next_due_us = 0  # see _due_bound_us
        self._timer_serial = 0

        # statistics
        self.commands_executed = 0
        self.commands_naked = 0
        self.replies_replayed = 0
        self.watchdog_trips = 0
        self.stall_stop_us: int | None = None  # truth for tests: when the cut-off fired

        self._read_sensors()
        self._update_state()
        self._emit_event(EventCode.BOOT, 0)

    # ------------------------------------------------------------ host side I/O

    def receive(self, data: bytes | bytearray | memoryview) -> None:
        """Bytes from the host; parsed at the start of the next tick."""
        self._rx += data

    def take_output(self, max_bytes: int | None = None) -> bytes:
        """Remove and return bytes the device has sent (all, or up to max_bytes)."""
        tx = self.tx
        if max_bytes is None or max_bytes >= len(tx):
            out = bytes(tx)
            tx.clear()
            return out
        out = bytes(tx[:max_bytes])
        del tx[:max_bytes]
        return out

    def at(self, time_us: int, action: Any) -> None:
        """Run ``action()`` at the first tick at or after device time ``time_us``."""
        self._timer_serial += 1
        self._timers.append((time_us, self._timer_serial, action))
        self._timers.sort(key=lambda t: (t[0], t[1]))
        self._next_timer_us = self._timers[0][0]

    # ------------------------------------------------------------ running

    def run_ticks(self, n: int) -> None:
        """Run ``n`` control ticks, skipping through idle stretches in one rig step."""
        self._run(self.clock.now_us + n * TICK_US, False, True)

    def run_until_output(self, max_ticks: int | None) -> int:
        """Run until the device has sent something, or ``max_ticks`` ticks (None: no bound).
        Returns the ticks run."""
        start_us = self.clock.now_us
        end_us = _NEVER_US if max_ticks is None else start_us + max_ticks * TICK_US
        self._run(end_us, True, True)
        return (self.clock.now_us - start_us) // TICK_US

    def poll_input(self) -> None:
        """Parse and answer the bytes received so far now, between ticks (served in real
        time: a firmware's UART handler does not wait for the control tick)."""
        if self._rx:
            self._commands.parse_input(self.clock.now_us)

    def _idle_deadline_us(self) -> int | None:
        """None if a tick can change something now (input, motion, homing, telemetry);
        else the device time of the earliest thing an idle device must do: a heartbeat,
        the watchdog, a timer. The one definition for both the in-process idle skip and
        the served loop's sleep (``next_deadline_us``)."""
        if self._rx or self.adv.active or self.rot.active or self.homing or self.telemetry_rate_hz:
            return None
        deadline = self._due_bound_us()
        if self._timers and self._timers[0][0] < deadline:
            deadline = self._timers[0][0]
        return deadline

    def next_deadline_us(self) -> int:
        """Device time of the next tick that can change anything (the next tick, unless idle)."""
        now = self.clock.now_us
        deadline = self._idle_deadline_us()
        if deadline is None:
            return now + TICK_US
        return max(deadline - TICK_US, now + TICK_US)

    def _idle_skip(self, end_us: int | None) -> None:
        """Jump over ticks in which nothing can happen: no input, nothing moving, no
        telemetry. The rig is stepped once over the whole stretch; the next real tick
        comes at the earliest deadline (heartbeat, watchdog, timer, end)."""
        deadline = self._idle_deadline_us()
        if deadline is None:
            return
        now = self.clock.now_us
        if end_us is not None:
            deadline = min(deadline, end_us)
        # land on the tick just before the deadline; that tick's normal run handles it
        skip = (deadline - now) // TICK_US - 1
        if skip <= 1:
            return
        self.rig.step(skip * TICK_S, self._motor_abs_mm(), self.rot.pos)
        self.clock.now_us = now + skip * TICK_US
        self._read_sensors()

    def tick(self) -> None:
        """One 1 ms control period."""
        self._run(self.clock.now_us + TICK_US, False, False)

    def _run(self, end_us: int, until_output: bool, skip_idle: bool) -> None:
        """Run control ticks until device time ``end_us`` (or, with ``until_output``, until
        the device has sent something), skipping idle stretches if ``skip_idle``.

        The hot path: one loop, every tick's body inline (no call per tick), objects that
        never change bound to locals once; every rare case (a fault, an event, a command)
        leaves it through a method call. Every mutable setting (limits, zeros, state) is
        read from ``self`` in each tick, so a command or a fault takes effect at once."""
        clock = self.clock
        adv = self.adv
        rot = self.rot
        rig = self.rig
        rig_step = rig.step
        tx = self.tx
        step_um = self._um_per_step
        rail = self._lc_rail_n
        stall_enabled = self._stall_enabled
        batch_buf = self._batch_buf
        while True:
            if until_output and tx:
                return
            now = clock.now_us
            if now >= end_us:
                return
            if skip_idle and not adv.active:
                self._idle_skip(end_us)
                now = clock.now_us
                if now >= end_us:
                    return
            now += TICK_US
            clock.now_us = now
            if now >= self._next_timer_us:
                self._run_timers(now)
            if self._rx:
                self._commands.parse_input(now)
            # watchdog or heartbeat possibly due (a lower bound of both deadlines)
            due = now >= self._next_due_us

            adv_was_active = adv.active
            rot_was_active = rot.active
            if adv_was_active:
                pos_before = adv.pos
                vel = adv.vel
                if vel == adv.cruise_vel and vel != 0.0 and (pos_before - adv.brake_at) * vel < 0.0:
                    adv.pos = pos_before + vel * TICK_S  # cruising, far from braking: no ramp
                    arrived = False
                else:
                    arrived = adv.step(TICK_S)
                if adv.pos > self._limit_pos_um and adv.pos > pos_before and self.homed:
                    self._hit_limit(now, pos_before)
                elif arrived and not self.homing:
                    self._emit_event(EventCode.TARGET_REACHED, clip_i32(adv.pos))
            if rot_was_active:
                vel = rot.vel
                if vel == rot.cruise_vel and vel != 0.0 and (rot.pos - rot.brake_at) * vel < 0.0:
                    rot.pos += vel * TICK_S  # cruising, far from braking: no ramp
                elif rot.step(TICK_S) and self._osc_amp_deg:
                    # oscillation: turn around at each end
                    c = self._osc_center_deg
                    a = self._osc_amp_deg
                    rot.move_to(c - a if rot.target > c else c + a, rot.vmax)

            rig_step(
                TICK_S,
                self._motor_origin_mm + _floor(adv.pos / step_um + 0.5) * step_um * 0.001,
                rot.pos,
            )

            # sensors: _read_sensors, inlined expression for expression (a test checks
            # that the two agree)
            d = (rig.encoder_depth_mm - self._enc_zero_mm) * 1000.0
            depth_um = self.depth_um = round(d) if _DEPTH_LO_UM < d < _DEPTH_HI_UM else _I32_MIN
            force_n = rig.load_cell_force_n
            if force_n == self._force_n:
                self._lc_same_ticks += 1
            else:
                self._lc_same_ticks = 0
                self._force_n = force_n
            if -rail < force_n < rail:
                force_mn = self.force_mn = round(force_n * 1000.0)
            else:
                force_mn = self.force_mn = FORCE_INVALID_MN  # at the rail, or NaN

            # safety: one cheap test each; the details are off the hot path
            limit = self.force_limit_mn
            if (
                force_mn > limit
                or force_mn < -limit
                or depth_um == _I32_MIN
                or self._lc_same_ticks >= LOADCELL_STUCK_TICKS
            ):
                self._sensor_safety(now)
            if adv.active:
                if self.homing:
                    self._homing_check()
                if adv.active and stall_enabled:
                    # stall cut-off, cheap test first: force at the stall threshold while
                    # advancing, or the encoder not following the motor (steps lost)
                    err = adv.pos - self._follow_motor0_um - (depth_um - self._follow_enc0_um)
                    if (
                        err > STALL_FOLLOWING_ERROR_UM
                        or err < -STALL_FOLLOWING_ERROR_UM
                        or self._stall_ticks
                        or (force_mn >= self.stall_force_mn and adv.vel > 0.0)
                    ):
                        self._stall_check(now)
            elif self._stall_ticks:
                self._stall_ticks = 0
            if (
                due
                and now - self._last_host_us >= self.watchdog_us
                and self.session_open
                and not self._wd_tripped
                and self._watchdog_enabled
            ):
                self._watchdog_trip(now)

            if adv_was_active != adv.active or rot_was_active != rot.active:
                self._update_state()

            rate = self.telemetry_rate_hz
            if rate:
                acc = self._sample_acc + rate
                if acc >= 1000:
                    self._sample_acc = acc - 1000
                    n = self._batch_count
                    if not n:
                        self._batch_first = self.samples_sent
                    flags = self._flags_base
                    if adv.active:
                        flags |= _ADVANCING
                    if rot.active:
                        flags |= _ROTATING
                    try:
                        _pack_sample(
                            batch_buf,
                            n * _SAMPLE_BYTES,
                            now & 0xFFFF_FFFF,
                            self.depth_um,  # not depth_um: homing zeroes it within the tick
                            round(adv.pos),
                            round(rot.pos * 100.0),
                            self.force_mn,
                            self.state,
                            flags,
                        )
                    except struct.error:  # beyond i32 (e.g. after days of rotation): clip
                        self._pack_clipped(n, now, flags)
                    self.samples_sent += 1
                    n += 1
                    self._batch_count = n
                    if n >= self.batch_samples:
                        self._flush_batch()
                else:
                    self._sample_acc = acc
            if due:
                if now - self._last_tx_us >= _HEARTBEAT_US:
                    self._send(Heartbeat((now // 1000) & 0xFFFF_FFFF))
                self._next_due_us = self._due_bound_us()

    def _due_bound_us(self) -> int:
        """The earliest device time at which the watchdog can trip or a heartbeat be due.
        Both deadlines only move later as the device sends and the host speaks, so this
        stays a lower bound until a frame (re)arms the watchdog (``_parse_input`` resets it)."""
        bound = self._last_tx_us + _HEARTBEAT_US
        if self.session_open and not self._wd_tripped and self._watchdog_enabled:
            wd = self._last_host_us + self.watchdog_us
            if wd < bound:
                bound = wd
        return bound

    def _run_timers(self, now: int) -> None:
        while self._timers and self._timers[0][0] <= now:
            self._timers.pop(0)[2]()
        self._next_timer_us = self._timers[0][0] if self._timers else _NEVER_US

    # ------------------------------------------------------------ sensors and safety

    def _motor_abs_mm(self) -> float:
        step = self._um_per_step
        return self._motor_origin_mm + math.floor(self.adv.pos / step + 0.5) * step / 1000.0

    def _read_sensors(self) -> None:
        """Read the encoder and the load cell into ``depth_um`` / ``force_mn``. The control
        tick (``_run``) does exactly this inline (the hot path makes no call per tick);
        tests/sim/test_firmware_properties.py checks that the two agree. An encoder reading
        that is NaN, infinite or beyond i32 cannot be trusted: depth = i32 min (ENCODER
        fault); a load cell at its rail, or NaN: FORCE_INVALID_MN (LOAD_CELL fault)."""
        rig = self.rig
        d = (rig.encoder_depth_mm - self._enc_zero_mm) * 1000.0
        self.depth_um = round(d) if _DEPTH_LO_UM < d < _DEPTH_HI_UM else _I32_MIN
        force_n = rig.load_cell_force_n
        if force_n == self._force_n:
            self._lc_same_ticks += 1
        else:
            self._lc_same_ticks = 0
            self._force_n = force_n
        rail = self._lc_rail_n
        self.force_mn = round(force_n * 1000.0) if -rail < force_n < rail else FORCE_INVALID_MN

    def _sensor_safety(self, now: int) -> None:
        """A force over the limit, or a sensor reading that cannot be trusted."""
        force_mn = self.force_mn
        if self._lc_same_ticks >= LOADCELL_STUCK_TICKS and self._lc_stuck_check:
            force_mn = self.force_mn = FORCE_INVALID_MN
        if force_mn == FORCE_INVALID_MN:
            if not self.latched & FaultFlags.LOAD_CELL:
                self._stop_advance()
                self._latch(FaultFlags.LOAD_CELL, EventCode.FAULT, int(FaultFlags.LOAD_CELL))
        elif (force_mn > self.force_limit_mn or -force_mn > self.force_limit_mn) and not (
            self.latched & FaultFlags.FORCE_LIMIT
        ):
            self._stop_advance()
            self._latch(FaultFlags.FORCE_LIMIT, EventCode.FORCE_OVER_LIMIT, force_mn)
        if self.depth_um == _I32_MIN and not self.latched & FaultFlags.ENCODER:
            self._stop_advance()
            self.homed = False
            self._latch(FaultFlags.ENCODER, EventCode.FAULT, int(FaultFlags.ENCODER))

    def _homing_check(self) -> None:
        if self.rig.home_switch:
            self._home_found()
        elif self._homing_start_um - self.adv.pos > self.hard.travel_um + HOMING_MARGIN_UM:
            self._stop_advance()
            self.homing = False
            self._latch(FaultFlags.TRAVEL_LIMIT, EventCode.FAULT, int(FaultFlags.TRAVEL_LIMIT))

    def _stall_check(self, now: int) -> None:
        adv = self.adv
        # force held at the stall threshold while advancing
        if adv.vel > 0.0 and self.force_mn >= self.stall_force_mn:
            self._stall_ticks += 1
            if self._stall_ticks >= self.stall_time_ms:
                self._stall(now)
                return
        else:
            self._stall_ticks = 0
        # advance commanded, encoder not following (steps lost)
        motor_moved = adv.pos - self._follow_motor0_um
        enc_moved = self.depth_um - self._follow_enc0_um
        error = motor_moved - enc_moved if motor_moved >= 0 else enc_moved - motor_moved
        if error > STALL_FOLLOWING_ERROR_UM:
            self._stall(now)

    def _stall(self, now: int) -> None:
        self._stop_advance()
        self.homing = False
        self.homed = False  # steps were lost: the position is no longer known
        self.stall_stop_us = now
        self._latch(FaultFlags.STALL, EventCode.STALL, self.depth_um)

    def _stop_advance(self) -> None:
        if self.adv.active:
            self.adv.halt()
            self._update_state()
        self._stall_ticks = 0

    def _hit_limit(self, now: int, pos_before: float) -> None:
        """The advance went beyond the limit this tick: stop it at the limit (or where it
        was, if a limit tightened below the needle put it beyond already)."""
        self.adv.pos = max(self._limit_pos_um, pos_before)
        self.adv.halt()
        self.at_limit = True
        self._emit_event(EventCode.LIMIT_REACHED, clip_i32(self._limit_pos_um))
        self._update_state()

    def _home_found(self) -> None:
        adv = self.adv
        adv.halt()
        # zero both coordinates here: the motor's count and the encoder's reading
        self._motor_origin_mm = self._motor_abs_mm()
        self._enc_zero_mm = float(self.rig.encoder_depth_mm)
        adv.pos = 0.0
        adv.target = 0.0
        self.depth_um = 0
        self.homing = False
        self.homed = True
        self.at_limit = False
        self._emit_event(EventCode.HOMED, 0)
        self._update_state()

    def _watchdog_trip(self, now: int) -> None:
        """The host has been silent for the watchdog period while a session is open. If
        anything moves, stop all motion at once and latch WATCHDOG (only CLEAR_FAULT lifts
        it): a host lost mid-motion is a fault the next host must see. With both axes at
        rest, end the session instead — nothing latched, SESSION_ENDED noted, motion
        NOT_ARMED until a HELLO: that is how every host's session ends when it simply
        stops talking, and a clean exit must leave no fault (protocol §4)."""
        self._wd_tripped = True
        silent_ms = (now - self._last_host_us) // 1000
        if not (self.adv.active or self.rot.active or self.homing):
            self.session_open = False
            self.schema_ok = False
            self.armed = False
            self._emit_event(EventCode.SESSION_ENDED, silent_ms)
            self._update_state()
            return
        self.watchdog_trips += 1
        self.adv.halt()
        self.rot.halt()
        self._osc_amp_deg = 0.0
        self.homing = False
        self._stall_ticks = 0
        self._latch(FaultFlags.WATCHDOG, EventCode.WATCHDOG_TRIP, silent_ms)

    def _latch(self, fault: FaultFlags, code: EventCode, value: int) -> None:
        """Latch a fault. Every latched fault stops both axes: the advance at once (every
        caller has halted it already), the rotation here, down its ramp (e-stop and the
        watchdog have halted it at once). A needle left spinning in a lesion after a force
        or stall fault is what a safety cut-off exists to prevent."""
        self._osc_amp_deg = 0.0
        if self.rot.active:
            self.rot.decelerate()
        self.latched |= int(fault)
        self._emit_event(code, value)
        self._update_state()

    def _set_limit_steps(self) -> None:
        steps = math.floor(self.soft_depth_limit_um / self._um_per_step + 1e-9)
        if self.defect == "limit_off_by_one_step":
            steps += 1
        self._limit_steps = steps
        self._limit_pos_um = steps * self._um_per_step

    # ------------------------------------------------------------ state

    def _update_state(self) -> None:
        # plain ints (enum flag arithmetic costs microseconds; this runs for every command)
        latched = self.latched
        adv_active = self.adv.active
        if latched & _F_ESTOP:
            state = _S_ESTOPPED
        elif latched & _F_STALL:
            state = _S_STALLED
        elif latched:
            state = _S_FAULT
        elif self.homing:
            state = _S_HOMING
        elif not self.homed:
            state = _S_UNHOMED
        elif self.at_limit and not adv_active:
            state = _S_LIMIT
        elif adv_active or self.rot.active:
            state = _S_MOVING
        else:
            state = _S_READY
        self.state = state
        flags = 0
        if self.homed:
            flags |= _SF_HOMED
        if self.at_limit:
            flags |= _SF_AT_LIMIT
        if latched & _F_STALL:
            flags |= _SF_STALL
        if latched & _F_OTHER:
            flags |= _SF_FAULT
        if latched & _F_ESTOP:
            flags |= _SF_ESTOP
        if self.armed:
            flags |= _SF_ARMED
        self._flags_base = flags

    def flags(self) -> int:
        flags = self._flags_base
        if self.adv.active:
            flags |= _ADVANCING
        if self.rot.active:
            flags |= _ROTATING
        return flags

    # ------------------------------------------------------------ output

    def _send(self, msg: Message, seq: int = 0, flags: int = 0) -> None:
        # a 0x00 before every frame (protocol §1): noise already on the line ends as a bad
        # chunk of its own instead of costing this frame its CRC. One byte per frame.
        tx = self.tx
        tx.append(0)
        tx += encode(msg, seq, flags)
        self._last_tx_us = self.clock.now_us

    def _emit_event(self, code: EventCode, value: int) -> None:
        rec = self.events.add(self.clock.now_us, int(code), clip_i32(value))
        self._send(Event(rec.number, rec.time_us, rec.code, rec.value))

    def _flush_batch(self) -> None:
        n = self._batch_count
        if not n:
            return
        first = self._batch_first
        if self.defect == "telemetry_counter_stuck":
            first = 0
        self._send(Telemetry(first & 0xFFFF_FFFF, bytes(self._batch_buf[: n * _SAMPLE_BYTES])))
        self._batch_count = 0

    def _pack_clipped(self, n: int, now: int, flags: int) -> None:
        """Pack sample ``n`` of the batch (taken now) with its i32 fields clipped to range."""
        _pack_sample(
            self._batch_buf,
            n * _SAMPLE_BYTES,
            now & 0xFFFF_FFFF,
            clip_i32(self.depth_um),
            clip_i32(self.adv.pos),
            clip_i32(self.rot.pos * 100.0),
            clip_i32(self.force_mn),
            self.state,
            flags,
        )

    # ------------------------------------------------------------ statistics

    def stats(self) -> dict[str, int]:
        """What the device saw (STATUS carries the same counters)."""
        dec = self._decoder.stats
        return {
            "device_time_us": self.clock.now_us,
            "frames_ok": dec.frames_ok,
            "frames_bad": dec.frames_bad,
            "commands_executed": self.commands_executed,
            "commands_naked": self.commands_naked,
            "replies_replayed": self.replies_replayed,
            "watchdog_trips": self.watchdog_trips,
            "samples_sent": self.samples_sent,
            "events": self.events.last_number,
        }
