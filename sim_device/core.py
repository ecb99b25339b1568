"""The simulated device's firmware: the C core (firmware/core) itself, run in virtual time.

One control tick is the core's two halves around the rig's physics:
``nd_sim_move`` (parse what arrived, step the motion profiles, command the motors),
``Rig.step`` on the commanded positions, ``nd_sim_sense`` with the rig's sensor readings
(safety, watchdog, telemetry, heartbeat). The port (firmware/ports/sim) is plain memory:
one call each way per half, no Python callback from C.

This module is the thin Python side: the virtual clock, the idle skip (ticks in which
nothing can happen are jumped over, the rig stepped once across them), timed rig faults,
and read-only views of the core's state for tests and the simulator's judge. Behaviour
lives in C, once; docs/protocol.md is its contract.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any, Protocol

from protocol import Capabilities, EventCode, EventRecord
from sim_device.clock import VirtualClock
from sim_device.core_build import VARIANTS, core

TICK_US = 1000
TICK_S = TICK_US / 1_000_000
LOADCELL_STUCK_SAMPLES = 200  # a noisy reading frozen this many conversions: stuck amplifier
EVENT_LOG_SIZE = 256
_NEVER_US = 1 << 62
_TX_HIGH_BYTES = 32768  # drain the core's transmit buffer into Python beyond this
_IDLE_BIT = 1 << 31  # nd_sim_sense's "nothing moves, homes or streams" flag
# The fault hooks between the core and its HAL (firmware/faults/fault_hooks.h): one
# scheduled single fault per device, for the single-fault campaign (studies/campaign.py).
# Each kind's number and the unit of its parameter.
HOOK_FAULTS: dict[str, tuple[int, str]] = {
    "loadcell_stuck": (1, ""),
    "loadcell_disconnected": (2, ""),
    "loadcell_saturated": (3, ""),
    "loadcell_drift": (4, "mN/s"),
    "encoder_lost": (5, ""),
    "encoder_jump": (6, "nm"),
    "motor_stalled": (7, ""),
    "driver_disabled": (8, ""),
    "tick_overrun": (9, "ms"),
}
MAX_LATE_TICKS = 200  # firmware/bench/bench.c's
_UM_PER_NM = 1e-3
_DEG_PER_UCDEG = 1e-6


class RigLike(Protocol):
    """What the firmware needs from the rig (sim_device.rig_model.Rig implements it)."""

    encoder_depth_mm: float
    load_cell_force_n: float
    load_cell_fresh: bool  # a conversion completed in the last step (else: held)
    load_cell_sample_hz: float  # the load cell's nominal rate (the board's, IDENTITY)
    home_switch: bool
    needle_depth_mm: float

    def step(self, dt_s: float, motor_depth_mm: float, angle_deg: float) -> None: ...


class HardLimits:
    """The device's own limits (IDENTITY), from the rig's parameters."""

    def __init__(self, params: Any) -> None:
        def get(name: str, default: float) -> float:
            value = getattr(params, name, None)
            return default if value is None else float(value)

        self.travel_um = round(get("travel_limit_mm", 150.0) * 1000)
        self.force_mn = round(get("force_limit_n", 40.0) * 1000)
        self.max_speed_um_s = round(get("max_speed_mm_s", 5.0) * 1000)
        self.max_rate_mrpm = round(get("max_rate_rpm", 120.0) * 1000)
        self.thrust_mn = round(get("thrust_limit_n", 30.0) * 1000)
        self.nm_per_microstep = round(get("um_per_microstep", 0.625) * 1000)
        self.load_cell_rail_mn = round(get("load_cell_full_scale_n", 50.0) * 1000)


class AxisView:
    """An axis of the core, in the simulator's units: µm (advance) or degrees (rotation)."""

    def __init__(self, axis: Any, scale: float) -> None:
        self._axis = axis
        self._scale = scale

    @property
    def active(self) -> bool:
        return bool(self._axis.active)

    @property
    def pos(self) -> float:
        return float(self._axis.pos * self._scale)

    @pos.setter
    def pos(self, value: float) -> None:  # tests only: put the axis somewhere far
        self._axis.pos = round(value / self._scale)

    @property
    def target(self) -> float:
        return float(self._axis.target * self._scale)

    @property
    def vel(self) -> float:
        """Per second (µm/s or °/s): the core's velocity is per 1 ms tick."""
        return float(self._axis.vel * self._scale * 1000.0)


class EventView:
    """The core's event log (the newest 256), read from its ring."""

    def __init__(self, events: Any) -> None:
        self._events = events

    @property
    def last_number(self) -> int:
        return int(self._events.last_number)

    def records(self) -> list[EventRecord]:
        last = self._events.last_number
        out = []
        for number in range(max(1, last - EVENT_LOG_SIZE + 1), last + 1):
            slot = self._events.slots[(number - 1) % EVENT_LOG_SIZE]
            out.append(EventRecord(number, slot.time_us & 0xFFFF_FFFF, slot.code, slot.value))
        return out


# The simulated board's following-error stall limit (nd_board.stall_following_error_nm).
STALL_FOLLOWING_ERROR_NM = 5000


class CoreFirmware:
    """The firmware core bound to one rig and one virtual clock."""

    def __init__(
        self,
        rig: RigLike,
        *,
        clock: VirtualClock | None = None,
        watchdog_ms: int = 200,
        defect: str | None = None,
        serial_number: str = "SIM-0001",
        loadcell_stuck_check: bool = True,
    ) -> None:
        if defect is not None and defect not in VARIANTS:
            raise ValueError(f"unknown defect {defect!r}; known: {', '.join(sorted(VARIANTS))}")
        if not 1 <= watchdog_ms <= 0xFFFF:
            raise ValueError(f"watchdog_ms={watchdog_ms} must be 1..65535")
        mod = core(defect)
        self._ffi = ffi = mod.ffi
        self._lib = lib = mod.lib
        self.rig = rig
        self.clock = clock if clock is not None else VirtualClock()
        self.defect = defect
        self.serial_number = serial_number
        self.hard = hard = HardLimits(getattr(rig, "params", None))
        self._s = s = ffi.new("struct nd_sim *")
        b = s.board
        b.serial_number = serial_number.encode("ascii")[:16]
        b.simulated = 1
        b.travel_um = hard.travel_um
        b.force_limit_mn = hard.force_mn
        b.max_speed_um_s = hard.max_speed_um_s
        b.max_rate_mrpm = hard.max_rate_mrpm
        b.watchdog_ms = watchdog_ms
        b.nm_per_microstep = hard.nm_per_microstep
        b.default_stall_force_mn = hard.thrust_mn * 9 // 10  # 90 % of the thrust
        # the core's 5 µm: the simulated carriage follows its command until the thrust
        b.stall_following_error_nm = STALL_FOLLOWING_ERROR_NM
        b.load_cell_rail_mn = hard.load_cell_rail_mn
        b.load_cell_stuck_samples = LOADCELL_STUCK_SAMPLES if loadcell_stuck_check else 0
        b.load_cell_sample_hz = max(1, min(0xFFFF, round(rig.load_cell_sample_hz)))
        # a control loop late beyond this drops its ticks and latches OVERRUN: the bench
        # board's bound (only the fault hook's tick_overrun makes a simulated loop late)
        b.max_late_ticks = MAX_LATE_TICKS
        b.extra_capabilities = int(Capabilities.USB_BULK | Capabilities.FAULT_INJECTION)
        self._dev = s.dev
        # the transmit buffer, viewed once as char * (unpack gives bytes; a field access costs)
        self._tx = ffi.cast("char *", s.tx)
        self.adv = AxisView(s.dev.adv, _UM_PER_NM)
        self.rot = AxisView(s.dev.rot, _DEG_PER_UCDEG)
        self.events = EventView(s.dev.events)
        self._rx = bytearray()
        self._out = bytearray()
        self._timers: list[tuple[int, int, Callable[[], object]]] = []
        self._next_timer_us = _NEVER_US
        self._timer_serial = 0
        # the core counts device time from 0 at boot: the clock is where the core is
        self.clock.now_us = 0
        lib.nd_sim_init(
            s,
            float(rig.needle_depth_mm),  # where the carriage stood at power-up
            float(rig.encoder_depth_mm),
            float(rig.load_cell_force_n),
            bool(rig.home_switch),
        )

    # ------------------------------------------------------------ host side I/O

    def receive(self, data: bytes | bytearray | memoryview) -> None:
        """Bytes from the host; parsed at the start of the next tick."""
        self._rx += data

    def take_output(self, max_bytes: int | None = None) -> bytes:
        """Remove and return bytes the device has sent (all, or up to max_bytes)."""
        s = self._s
        n = s.tx_len
        out = self._out
        if not out and max_bytes is None:  # the common case: straight from the core
            if not n:
                return b""
            s.tx_len = 0
            data: bytes = self._ffi.unpack(self._tx, n)
            return data
        if n:
            self._drain()
        if max_bytes is None or max_bytes >= len(out):
            data = bytes(out)
            out.clear()
            return data
        data = bytes(out[:max_bytes])
        del out[:max_bytes]
        return data

    @property
    def output_pending(self) -> int:
        """Bytes sent and not yet taken."""
        return len(self._out) + int(self._s.tx_len)

    def _drain(self) -> None:
        s = self._s
        self._out += self._ffi.unpack(self._tx, s.tx_len)
        s.tx_len = 0

    def poll_input(self) -> None:
        """Parse and answer the bytes received so far now, between ticks (served in real
        time: a firmware's UART handler does not wait for the control tick)."""
        if self._rx:
            self._feed()

    def _feed(self) -> None:
        data = bytes(self._rx)
        self._rx.clear()
        self._lib.nd_sim_feed(self._s, data, len(data))

    def at(self, time_us: int, action: Callable[[], object]) -> None:
        """Run ``action()`` at the first tick at or after device time ``time_us`` (a rig
        fault, say: the rig is Python's, the firmware never knows)."""
        self._timer_serial += 1
        self._timers.append((time_us, self._timer_serial, action))
        self._timers.sort(key=lambda t: (t[0], t[1]))
        self._next_timer_us = self._timers[0][0]

    def arm_fault(self, kind: str, at_us: int, param: int = 0) -> None:
        """Schedule one fault in the HAL's hooks from device time ``at_us`` (replacing
        any other): the core sees a faulty sensor, actuator or loop, never the hook."""
        if kind not in HOOK_FAULTS:
            raise ValueError(f"unknown fault {kind!r}; known: {', '.join(HOOK_FAULTS)}")
        self._lib.nd_sim_fault_arm(self._s, HOOK_FAULTS[kind][0], at_us, param)

    def reset(self) -> None:
        """The device resets (brown-out, a watchdog reset) where it stands: the core
        boots again — unhomed, no session, its latches and event log gone — with the
        motors and the sensors where they are."""
        rig = self.rig
        s = self._s
        self._rx.clear()
        s.angle_origin_deg = s.angle_deg  # the rotation stays where it was too
        self._lib.nd_sim_init(
            s,
            float(s.motor_mm),  # the motor stays where it was: no jump for the rig
            float(rig.encoder_depth_mm),
            float(rig.load_cell_force_n),
            bool(rig.home_switch),
        )

    # ------------------------------------------------------------ running

    def set_stall_following_error_um(self, limit_um: int) -> None:
        """Declare the board's following-error stall limit, as another board would (its
        nd_board.stall_following_error_nm; tests: a port's limit on the simulated rig).
        The core reads it every tick."""
        if not 1 <= limit_um <= 1_000_000:
            raise ValueError(f"stall following error {limit_um} µm must be 1..1000000")
        self._s.board.stall_following_error_nm = limit_um * 1000

    def tick(self) -> None:
        """One 1 ms control period."""
        self._run(self.clock.now_us + TICK_US, False, False)

    def age(self, ticks: int) -> None:
        """Tests only: let ``ticks`` control ticks pass at once, as if the device had been
        up that much longer (the rig left as it is). Before a session: the host's
        watchdog would see the jump as silence."""
        while ticks > 0:
            n = min(ticks, 0xFFFF_FFFF)
            self._lib.nd_sim_skip(self._s, n)
            self.clock.now_us += n * TICK_US
            ticks -= n

    def run_ticks(self, n: int) -> None:
        """Run ``n`` control ticks, skipping through idle stretches in one rig step."""
        self._run(self.clock.now_us + n * TICK_US, False, True)

    def run_until_output(self, max_ticks: int | None) -> int:
        """Run until the device has sent something, or ``max_ticks`` ticks (None: no
        bound). Returns the ticks run."""
        start_us = self.clock.now_us
        end_us = _NEVER_US if max_ticks is None else start_us + max_ticks * TICK_US
        self._run(end_us, True, True)
        return (self.clock.now_us - start_us) // TICK_US

    def _idle_until_us(self) -> int | None:
        """None if a tick may change something now; else the device time of the first
        tick an idle device must run (heartbeat, watchdog, a timed rig fault)."""
        if self._rx:
            return None
        until = int(self._lib.nd_sim_idle_until_us(self._s))
        if not until:
            return None
        return min(until, self._next_timer_us)

    def next_deadline_us(self) -> int:
        """Device time of the next tick that can change anything (the next tick, unless
        idle): how long a real-time server may sleep."""
        now = self.clock.now_us
        until = self._idle_until_us()
        if until is None:
            return now + TICK_US
        return max(until - TICK_US, now + TICK_US)

    def _idle_skip(self, end_us: int) -> None:
        """Jump over ticks in which nothing can happen, the rig stepped once across them;
        land on the tick before the deadline, whose normal run handles it."""
        until = self._idle_until_us()
        if until is None:
            return
        now = self.clock.now_us
        skip = (min(until, end_us) - now) // TICK_US - 1
        if skip <= 1:
            return
        s = self._s
        self.rig.step(skip * TICK_S, s.motor_mm, s.angle_deg)
        self._lib.nd_sim_skip(s, skip)
        self.clock.now_us = now + skip * TICK_US

    def _run(self, end_us: int, until_output: bool, skip_idle: bool) -> None:
        """Run control ticks until device time ``end_us`` (or, with ``until_output``,
        until the device has sent something), skipping idle stretches if ``skip_idle``.
        The hot path: per tick two C calls and the rig's step, nothing else that can be
        avoided (bound to locals once)."""
        clock = self.clock
        rig = self.rig
        rig_step = rig.step
        s = self._s
        lib = self._lib
        move = lib.nd_sim_move
        sense = lib.nd_sim_sense
        rx = self._rx  # receive() appends to this very bytearray
        if until_output and (self._out or s.tx_len):
            return
        idle = skip_idle  # try a skip first; after each tick the core says if idle
        now = clock.now_us
        next_timer_us = self._next_timer_us
        while True:
            # ``now`` is kept local and given to the clock when anything else may look
            # (a skip, a timer, leaving): a store per tick costs
            if now >= end_us:
                clock.now_us = now
                return
            if idle:
                clock.now_us = now
                self._idle_skip(end_us)
                now = clock.now_us
                if now >= end_us:
                    return
            now += TICK_US
            if now >= next_timer_us:
                clock.now_us = now
                self._run_timers(now)
                next_timer_us = self._next_timer_us
            if rx:
                self._feed()
            rig_step(TICK_S, move(s), s.angle_deg)
            n = sense(
                s, rig.encoder_depth_mm, rig.load_cell_force_n, rig.home_switch, rig.load_cell_fresh
            )
            if n:  # bytes waiting, or the idle bit (see nd_sim_sense)
                idle = skip_idle and n >= _IDLE_BIT
                if idle:
                    n -= _IDLE_BIT
                if n:
                    if until_output:
                        clock.now_us = now
                        return
                    if n > _TX_HIGH_BYTES:
                        self._drain()
            else:
                idle = False

    def _run_timers(self, now: int) -> None:
        while self._timers and self._timers[0][0] <= now:
            self._timers.pop(0)[2]()
        self._next_timer_us = self._timers[0][0] if self._timers else _NEVER_US

    # ------------------------------------------------------------ the core's state

    @property
    def latched(self) -> int:
        return int(self._dev.latched)

    @property
    def state(self) -> int:
        return int(self._dev.state)

    @property
    def homed(self) -> bool:
        return bool(self._dev.homed)

    @property
    def homing(self) -> bool:
        return bool(self._dev.homing)

    @property
    def session_open(self) -> bool:
        return bool(self._dev.session_open)

    @property
    def depth_um(self) -> int:
        return int(self._dev.depth_um)

    @property
    def force_mn(self) -> int:
        return int(self._dev.force_mn)

    @property
    def soft_depth_limit_um(self) -> int:
        return int(self._dev.soft_depth_limit_um)

    @property
    def force_limit_mn(self) -> int:
        return int(self._dev.force_limit_mn)

    @property
    def stall_force_mn(self) -> int:
        return int(self._dev.stall_force_mn)

    @property
    def stall_time_ms(self) -> int:
        return int(self._dev.stall_time_ms)

    @property
    def telemetry_rate_hz(self) -> int:
        return int(self._dev.telemetry_rate_hz)

    @property
    def commands_executed(self) -> int:
        return int(self._dev.commands_executed)

    @property
    def replies_replayed(self) -> int:
        return int(self._dev.replies_replayed)

    @property
    def watchdog_trips(self) -> int:
        return int(self._dev.watchdog_trips)

    @property
    def samples_sent(self) -> int:
        return int(self._dev.samples_sent)

    @property
    def loadcell_stuck_check(self) -> bool:
        """Does the core latch LOAD_CELL on a reading frozen for LOADCELL_STUCK_SAMPLES?"""
        return bool(self._s.board.load_cell_stuck_samples)

    @loadcell_stuck_check.setter
    def loadcell_stuck_check(self, on: bool) -> None:  # tests: a firmware without it
        self._s.board.load_cell_stuck_samples = LOADCELL_STUCK_SAMPLES if on else 0

    @property
    def load_cell_cut(self) -> bool:
        """Fault injection at the HAL: the load cell's data line cut, no conversion arrives
        (the sensor watchdog's test; the rig's own sensor faults are the rig's)."""
        return bool(self._s.load_cell_cut)

    @load_cell_cut.setter
    def load_cell_cut(self, cut: bool) -> None:
        self._s.load_cell_cut = cut

    @property
    def stall_stop_us(self) -> int | None:
        """When the stall cut-off last fired (its STALL event), or None."""
        stalls = [r.time_us for r in self.events.records() if r.code == EventCode.STALL]
        return stalls[-1] if stalls else None

    def stats(self) -> dict[str, int]:
        """What the device saw (STATUS carries the same counters)."""
        st = self._ffi.new("struct nd_core_stats *")
        self._lib.nd_sim_stats(self._s, st)
        return {
            "device_time_us": self.clock.now_us,
            "frames_ok": st.frames_ok,
            "frames_bad": st.frames_bad,
            "commands_executed": st.commands_executed,
            "commands_naked": int(self._dev.commands_naked),
            "replies_replayed": st.replies_replayed,
            "watchdog_trips": st.watchdog_trips,
            "samples_sent": st.samples_sent,
            "frames_dropped_tx": st.frames_dropped_tx,
            "events": self.events.last_number,
        }
