"""The simulated firmware's command handlers: every host frame, parsed, checked, executed
and answered (the control tick is sim_device/firmware.py; this is its other half and works
on the same state).

* Session: before HELLO, HOME/MOVE/ROTATE are NAKed NOT_ARMED; after a HELLO whose
  schema hash differs, SCHEMA_MISMATCH. Queries, STOP, ESTOP, CLEAR_FAULT,
  SET_LIMITS and SET_TELEMETRY work in any case; so do ROTATE STOP and MOVE STOP (their
  other fields ignored): stopping is never refused.
* NAK order for motion: NOT_ARMED / SCHEMA_MISMATCH, then BAD_ARGUMENT (a field out
  of its schema range), ESTOPPED, LATCHED_FAULT (detail = latched bits), BUSY
  (homing, or HOME while the advance moves), NOT_HOMED (MOVE only), BEYOND_LIMIT
  (detail = the limit: soft depth, hard speed or hard rate). Any command with seq 0
  (HEARTBEAT aside) gets BAD_ARGUMENT at seq 0, uncached, unexecuted; else a frame of a
  device→host message gets UNKNOWN_MESSAGE, cached like any reply. The seq of a
  HEARTBEAT is ignored (no reply, whatever it is).
* Exactly once: the replies to the last 32 seqs are kept; a repeat (same seq and
  message id) is answered with the stored reply flagged REPLAYED and not executed.
  HELLO empties the cache and is itself never replayed.
* E-stop halts both axes in the tick that parses it. STOP decelerates (no latch).
"""

from __future__ import annotations

import math
from typing import TYPE_CHECKING

from protocol import (
    PROTOCOL_VERSION,
    SCHEMA_HASH,
    Ack,
    Capabilities,
    ClearFault,
    EStop,
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
)
from protocol.schema import MSG_ID, Direction, Message
from sim_device.limits import FIRMWARE_VERSION, clip_i32
from sim_device.reply_cache import ReplyCache

if TYPE_CHECKING:
    from sim_device.firmware import Firmware

_DEVICE_TO_HOST_IDS = frozenset(
    MSG_ID[m] for m in MSG_ID if getattr(m, "DIRECTION", None) is Direction.DEVICE_TO_HOST
)


class Commands:
    """Parses the host's bytes and runs its commands on one Firmware (see the module)."""

    def __init__(self, fw: Firmware) -> None:
        self.fw = fw
        self._cache = ReplyCache()

    def parse_input(self, now: int) -> None:
        """Decode and answer everything received since the last call (``now``: device time)."""
        fw = self.fw
        data = bytes(fw._rx)
        fw._rx.clear()
        fw._next_due_us = 0  # a host frame re-arms the watchdog: recompute its deadline
        for frame in fw._decoder.feed(data):
            msg = frame.message
            msg_id = MSG_ID[type(msg)]
            fw._last_host_us = now
            fw._wd_tripped = False
            if type(msg) is Heartbeat:
                continue
            seq = frame.seq
            if seq == 0:
                # a command without a seq (any id but HEARTBEAT's, a device→host id too):
                # not executed, not cached
                fw.commands_naked += 1
                fw._send(Nak(msg_id, int(NakReason.BAD_ARGUMENT), 0), 0)
                continue
            # HELLO is never replayed: a new host process starts its seqs at 1 again, and
            # must not be answered from the previous session's cache (it is harmless to
            # run twice: it only opens the session and empties the cache).
            if fw.defect != "no_repeat_detection" and type(msg) is not Hello:
                cached = self._cache.lookup(seq, msg_id)
                if cached is not None:
                    fw.replies_replayed += 1
                    fw._send(cached, seq, int(HeaderFlags.REPLAYED))
                    continue
            reply: Message
            if msg_id in _DEVICE_TO_HOST_IDS:
                reply = Nak(msg_id, int(NakReason.UNKNOWN_MESSAGE), 0)
                fw.commands_naked += 1
            else:
                reply = self._execute(msg, msg_id)
            if type(msg) is Hello:
                self._cache.clear()
            self._cache.store(seq, msg_id, reply)
            fw._send(reply, seq)

    def _nak(self, msg_id: int, reason: NakReason, detail: int = 0) -> Nak:
        fw = self.fw
        if fw.defect == "nak_reason_swapped":
            if reason is NakReason.NOT_HOMED:
                reason = NakReason.BEYOND_LIMIT
            elif reason is NakReason.BEYOND_LIMIT:
                reason = NakReason.NOT_HOMED
        fw.commands_naked += 1
        return Nak(msg_id, int(reason), clip_i32(detail))

    def _ack(self, msg_id: int) -> Ack:
        fw = self.fw
        fw.commands_executed += 1
        return Ack(msg_id)

    def _execute(self, msg: Message, msg_id: int) -> Message:
        fw = self.fw
        kind = type(msg)
        if kind is Hello:
            assert isinstance(msg, Hello)
            return self._hello(msg)
        if kind is GetStatus:
            fw.commands_executed += 1
            return self.status()
        if kind is GetEvents:
            assert isinstance(msg, GetEvents)
            if not 1 <= msg.max_count <= 12:
                return self._nak(msg_id, NakReason.BAD_ARGUMENT, msg.max_count)
            fw.commands_executed += 1
            return EventLog(
                fw.events.last_number, fw.events.packed_since(msg.from_number, msg.max_count)
            )
        if kind is Stop:
            self._stop()
            return self._ack(msg_id)
        if kind is EStop:
            self._estop()
            return self._ack(msg_id)
        if kind is ClearFault:
            self._clear_fault()
            return self._ack(msg_id)
        if kind is SetLimits:
            assert isinstance(msg, SetLimits)
            return self._set_limits(msg, msg_id)
        if kind is SetTelemetry:
            assert isinstance(msg, SetTelemetry)
            if not 0 <= msg.rate_hz <= 1000:
                return self._nak(msg_id, NakReason.BAD_ARGUMENT, msg.rate_hz)
            if not 1 <= msg.batch_samples <= 10:
                return self._nak(msg_id, NakReason.BAD_ARGUMENT, msg.batch_samples)
            fw._flush_batch()
            fw.telemetry_rate_hz = msg.rate_hz
            fw.batch_samples = msg.batch_samples
            fw._sample_acc = 1000 - msg.rate_hz  # first sample on the next tick
            return self._ack(msg_id)
        if kind is Rotate and isinstance(msg, Rotate) and msg.mode == RotateMode.STOP:
            # stopping is always allowed: before HELLO, under a schema mismatch, latched,
            # e-stopped, homing; its rate and angle are ignored (a STOP must never bounce)
            return self._rotate_stop(msg_id)
        if kind is Move and isinstance(msg, Move) and msg.mode == MoveMode.STOP:
            return self._move_stop(msg_id)  # the same for the advance alone
        # motion: Home, Move, Rotate
        refusal = self._motion_refusal(msg_id)
        if refusal is not None:
            return refusal
        if kind is Home:
            assert isinstance(msg, Home)
            return self._home(msg, msg_id)
        if kind is Move:
            assert isinstance(msg, Move)
            return self._move(msg, msg_id)
        assert isinstance(msg, Rotate)
        return self._rotate(msg, msg_id)

    def _motion_refusal(self, msg_id: int) -> Nak | None:
        fw = self.fw
        if not fw.session_open:
            return self._nak(msg_id, NakReason.NOT_ARMED)
        if not fw.schema_ok:
            return self._nak(msg_id, NakReason.SCHEMA_MISMATCH)
        return None

    def _state_refusal(self, msg_id: int) -> Nak | None:
        fw = self.fw
        if fw.latched & FaultFlags.ESTOP:
            return self._nak(msg_id, NakReason.ESTOPPED)
        if fw.latched:
            return self._nak(msg_id, NakReason.LATCHED_FAULT, fw.latched)
        if fw.homing:
            return self._nak(msg_id, NakReason.BUSY)
        return None

    def _hello(self, msg: Hello) -> Identity:
        fw = self.fw
        fw.session_open = True
        fw.schema_ok = msg.protocol_version == PROTOCOL_VERSION and msg.schema_hash == SCHEMA_HASH
        fw.armed = fw.schema_ok
        fw._wd_tripped = False
        fw._update_state()
        fw.commands_executed += 1
        return self.identity()

    def identity(self) -> Identity:
        fw = self.fw
        hard = fw.hard
        major, minor, patch = FIRMWARE_VERSION
        caps = (
            Capabilities.ROTATION
            | Capabilities.OSCILLATION
            | Capabilities.LOAD_CELL
            | Capabilities.ENCODER
            | Capabilities.USB_BULK
            | Capabilities.FAULT_INJECTION
        )
        return Identity(
            PROTOCOL_VERSION,
            SCHEMA_HASH,
            major,
            minor,
            patch,
            fw.serial_number,
            1,
            int(caps),
            hard.travel_um,
            hard.force_mn,
            hard.max_speed_um_s,
            hard.max_rate_mrpm,
            fw.watchdog_us // 1000,
            1 if fw.armed else 0,
        )

    def status(self) -> Status:
        fw = self.fw
        return Status(
            fw.state,
            fw.flags(),
            fw.latched,
            fw.clock.now_us,
            fw.depth_um,
            clip_i32(fw.adv.pos),
            clip_i32(fw.rot.pos * 100.0),
            fw.force_mn,
            fw.soft_depth_limit_um,
            fw.force_limit_mn,
            fw.stall_force_mn,
            fw.stall_time_ms,
            fw.telemetry_rate_hz,
            fw.events.last_number,
            fw.samples_sent & 0xFFFF_FFFF,
            fw._decoder.stats.frames_ok & 0xFFFF_FFFF,
            fw._decoder.stats.frames_bad & 0xFFFF_FFFF,
            fw.commands_executed & 0xFFFF_FFFF,
            fw.replies_replayed & 0xFFFF_FFFF,
            fw.watchdog_trips & 0xFFFF_FFFF,
        )

    def _stop(self) -> None:
        self._advance_to_rest()
        self._rotation_to_rest()
        self.fw._update_state()

    def _advance_to_rest(self) -> None:
        """A HOME ends at once, a move brakes down its ramp (velocity mode: no
        TARGET_REACHED). at_limit stays: the advance has not moved away from the limit
        (protocol §5)."""
        fw = self.fw
        if fw.homing:
            fw.homing = False
            fw.adv.halt()
        elif fw.adv.active:
            fw.adv.decelerate()

    def _rotation_to_rest(self) -> None:
        """The rotation down its ramp; an oscillation ends."""
        fw = self.fw
        fw._osc_amp_deg = 0.0
        if fw.rot.active:
            fw.rot.decelerate()

    def _estop(self) -> None:
        fw = self.fw
        # within this tick: both axes halt where they are
        fw.adv.halt()
        fw.rot.halt()
        fw._osc_amp_deg = 0.0
        fw.homing = False
        fw._stall_ticks = 0
        if not fw.latched & FaultFlags.ESTOP:
            fw.homed = False  # the stepper may have slipped: re-home
            fw._latch(FaultFlags.ESTOP, EventCode.ESTOP, 0)
        else:
            fw._update_state()

    def _clear_fault(self) -> None:
        fw = self.fw
        cleared = fw.latched
        fw.latched = 0
        if cleared:
            fw._emit_event(EventCode.FAULT_CLEARED, cleared)
        fw._update_state()

    def _set_limits(self, msg: SetLimits, msg_id: int) -> Message:
        fw = self.fw
        hard = fw.hard
        # each field against its schema range, in field order; then against the hard limits
        if msg.soft_depth_limit_um < 0:
            return self._nak(msg_id, NakReason.BAD_ARGUMENT, msg.soft_depth_limit_um)
        if msg.force_limit_mn < 1:
            return self._nak(msg_id, NakReason.BAD_ARGUMENT, msg.force_limit_mn)
        if msg.stall_force_mn < 1:
            return self._nak(msg_id, NakReason.BAD_ARGUMENT, msg.stall_force_mn)
        if not 1 <= msg.stall_time_ms <= 10_000:
            return self._nak(msg_id, NakReason.BAD_ARGUMENT, msg.stall_time_ms)
        if msg.soft_depth_limit_um > hard.travel_um:
            return self._nak(msg_id, NakReason.BEYOND_LIMIT, hard.travel_um)
        if msg.force_limit_mn > hard.force_mn:
            return self._nak(msg_id, NakReason.BEYOND_LIMIT, hard.force_mn)
        if msg.stall_force_mn > hard.force_mn:
            return self._nak(msg_id, NakReason.BEYOND_LIMIT, hard.force_mn)
        fw.soft_depth_limit_um = msg.soft_depth_limit_um
        fw.force_limit_mn = msg.force_limit_mn
        fw.stall_force_mn = msg.stall_force_mn
        fw.stall_time_ms = msg.stall_time_ms
        # a move in progress beyond the new limit is stopped there by the tick's check
        fw._set_limit_steps()
        return self._ack(msg_id)

    def _home(self, msg: Home, msg_id: int) -> Message:
        fw = self.fw
        if not 1 <= msg.speed_um_s <= 20_000:
            return self._nak(msg_id, NakReason.BAD_ARGUMENT, msg.speed_um_s)
        refusal = self._state_refusal(msg_id)
        if refusal is not None:
            return refusal
        if fw.adv.active:
            return self._nak(msg_id, NakReason.BUSY)
        if msg.speed_um_s > fw.hard.max_speed_um_s:
            return self._nak(msg_id, NakReason.BEYOND_LIMIT, fw.hard.max_speed_um_s)
        fw.homed = False
        fw.at_limit = False
        if fw.rig.home_switch:
            fw.homing = True
            fw._home_found()
            return self._ack(msg_id)
        fw.homing = True
        fw._homing_start_um = fw.adv.pos
        self._begin_follow()
        fw.adv.run_at(-float(msg.speed_um_s))
        fw._update_state()
        return self._ack(msg_id)

    def _begin_follow(self) -> None:
        fw = self.fw
        fw._follow_motor0_um = fw.adv.pos
        fw._follow_enc0_um = float(fw.depth_um)
        fw._stall_ticks = 0

    def _move(self, msg: Move, msg_id: int) -> Message:
        fw = self.fw
        if msg.mode not in (MoveMode.ABSOLUTE, MoveMode.RELATIVE):
            return self._nak(msg_id, NakReason.BAD_ARGUMENT, msg.mode)
        if not 1 <= msg.speed_um_s <= 20_000:
            return self._nak(msg_id, NakReason.BAD_ARGUMENT, msg.speed_um_s)
        refusal = self._state_refusal(msg_id)
        if refusal is not None:
            return refusal
        if not fw.homed:
            return self._nak(msg_id, NakReason.NOT_HOMED)
        if msg.speed_um_s > fw.hard.max_speed_um_s:
            return self._nak(msg_id, NakReason.BEYOND_LIMIT, fw.hard.max_speed_um_s)
        adv = fw.adv
        base = adv.target if (adv.active and not adv.velocity_mode) else adv.pos
        target_um = float(msg.target_um) + (base if msg.mode == MoveMode.RELATIVE else 0.0)
        target_steps = math.floor(target_um / fw._um_per_step + 1e-9)
        if target_um < 0.0:
            return self._nak(msg_id, NakReason.BEYOND_LIMIT, 0)
        if target_steps > fw._limit_steps:
            return self._nak(msg_id, NakReason.BEYOND_LIMIT, fw.soft_depth_limit_um)
        was_active = adv.active
        if not was_active:
            self._begin_follow()
        # the target is kept in exact µm (relative moves add up exactly); only the motor's
        # output is quantised to microsteps, and never beyond the limit's last step
        adv.move_to(min(target_um, fw._limit_pos_um), float(msg.speed_um_s))
        fw.at_limit = False
        fw._update_state()
        if not adv.active:
            fw._emit_event(EventCode.TARGET_REACHED, clip_i32(adv.pos))
        return self._ack(msg_id)

    def _move_stop(self, msg_id: int) -> Message:
        """The advance alone to rest, the rotation untouched: a pause, not a target."""
        self._advance_to_rest()
        self.fw._update_state()
        return self._ack(msg_id)

    def _rotate_stop(self, msg_id: int) -> Message:
        self._rotation_to_rest()
        self.fw._update_state()
        return self._ack(msg_id)

    def _rotate(self, msg: Rotate, msg_id: int) -> Message:
        fw = self.fw
        mode = msg.mode
        if mode not in (0, 1, 2, 3):
            return self._nak(msg_id, NakReason.BAD_ARGUMENT, mode)
        if not -600_000 <= msg.rate_mrpm <= 600_000:
            return self._nak(msg_id, NakReason.BAD_ARGUMENT, msg.rate_mrpm)
        if mode != RotateMode.CONTINUOUS and (
            msg.rate_mrpm == 0 or (mode == RotateMode.OSCILLATE and msg.angle_cdeg <= 0)
        ):
            # no rate to turn at, or no amplitude to swing: detail = angle_cdeg (protocol §5)
            return self._nak(msg_id, NakReason.BAD_ARGUMENT, msg.angle_cdeg)
        rot = fw.rot
        refusal = self._state_refusal(msg_id)
        if refusal is not None:
            return refusal
        if abs(msg.rate_mrpm) > fw.hard.max_rate_mrpm:
            return self._nak(msg_id, NakReason.BEYOND_LIMIT, fw.hard.max_rate_mrpm)
        rate_deg_s = msg.rate_mrpm / 1000.0 * 6.0  # rpm → deg/s
        if mode == RotateMode.CONTINUOUS:
            fw._osc_amp_deg = 0.0
            rot.run_at(rate_deg_s)
        else:
            angle_deg = msg.angle_cdeg / 100.0
            if mode == RotateMode.BY_ANGLE:
                fw._osc_amp_deg = 0.0
                rot.move_to(rot.pos + angle_deg, rate_deg_s)
            else:
                fw._osc_center_deg = rot.pos
                fw._osc_amp_deg = angle_deg
                rot.move_to(rot.pos + angle_deg, rate_deg_s)
        fw._update_state()
        return self._ack(msg_id)
