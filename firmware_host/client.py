"""NeedleDriver: the device client (docs/architecture.md §6).

Quantities carry their unit in their name (mm, mm/s, N, s, rpm, degrees); the wire's
fixed-point integers stay inside. Every command is checked against the device's hard
limits and the limits this client set before it is sent (LimitError); the device
checks again. Closing sends STOP if this session commanded motion (a query-only session
sends nothing: it changed nothing); the device's watchdog stops the rig anyway if the host
goes silent mid-motion, and ends the session quietly if it goes silent at rest.
"""

from __future__ import annotations

import contextlib
import enum
import threading
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any, TypeVar, cast

from firmware_host import units
from firmware_host.driver import ClosedOnExit
from firmware_host.errors import (
    DeviceFault,
    LimitError,
    LinkLost,
    Nak,
    NeedleDriverError,
    ProtocolError,
    SchemaMismatch,
    Timeout,
)
from firmware_host.link import Link, LinkConfig, LinkStats
from firmware_host.telemetry import TelemetryBuffer, rows_from_samples
from firmware_host.timesync import TimeSync
from firmware_host.transports import Clock, Transport, open_transport
from firmware_host.waiting import wait_until_idle
from protocol import (
    PROTOCOL_VERSION,
    SCHEMA_HASH,
    Ack,
    Bye,
    Capabilities,
    ClearFault,
    DeviceState,
    EStop,
    Event,
    EventCode,
    EventLog,
    FaultFlags,
    Frame,
    GetEvents,
    GetStatus,
    Hello,
    Home,
    Identity,
    LoadCellFault,
    Move,
    MoveMode,
    Rotate,
    RotateMode,
    SampleFlags,
    SetLimits,
    SetLoadCell,
    SetTelemetry,
    Status,
    Stop,
    Tare,
    Telemetry,
    event_array,
    sample_array,
)
from protocol import Nak as NakMsg
from protocol.schema import Message

_POLL_S = 0.01  # status polling period while waiting for motion to end
# wait_s asks for STATUS this often (one round trip), so that a lost last event is
# noticed from last_event_number even when no later event reveals the gap
_EVENT_CHECK_S = 0.5
# DeviceEvent.code of the host's own notice that device events were lost for good (the
# device's log no longer held them): number = the first lost, value = how many
EVENTS_LOST = -1
_MOVING_STATES = (DeviceState.HOMING, DeviceState.MOVING)
_STOPPED_BY_FAULT = (DeviceState.FAULT, DeviceState.ESTOPPED, DeviceState.STALLED)


@dataclass(frozen=True)
class DeviceIdentity:
    protocol_version: int
    schema_hash: int
    firmware: str  # "1.2.3"
    serial_number: str
    simulated: bool
    capabilities: Capabilities
    travel_limit_mm: float  # hard limits
    force_limit_n: float
    max_speed_mm_s: float
    max_rate_rpm: float
    watchdog_s: float
    session_armed: bool  # the device will run motion in this session
    schema_matches: bool  # device's schema hash == ours
    load_cell_sample_hz: float = 1000.0  # the sensor's nominal rate: a fresh force this often

    @classmethod
    def from_message(cls, msg: Identity) -> DeviceIdentity:
        return cls(
            protocol_version=msg.protocol_version,
            schema_hash=msg.schema_hash,
            firmware=f"{msg.firmware_major}.{msg.firmware_minor}.{msg.firmware_patch}",
            serial_number=msg.serial_number,
            simulated=bool(msg.simulated),
            capabilities=Capabilities(msg.capabilities),
            travel_limit_mm=units.um_to_mm(msg.travel_limit_um),
            force_limit_n=units.mn_to_n(msg.force_limit_mn),
            max_speed_mm_s=units.um_s_to_mm_s(msg.max_speed_um_s),
            max_rate_rpm=units.mrpm_to_rpm(msg.max_rate_mrpm),
            watchdog_s=units.ms_to_s(msg.watchdog_ms),
            session_armed=bool(msg.session_armed),
            schema_matches=msg.schema_hash == SCHEMA_HASH
            and msg.protocol_version == PROTOCOL_VERSION,
            load_cell_sample_hz=float(msg.load_cell_sample_hz),
        )


@dataclass(frozen=True)
class DeviceLimits:
    soft_depth_limit_mm: float
    force_limit_n: float
    stall_force_n: float
    stall_time_s: float


@dataclass(frozen=True)
class DeviceCounters:
    samples_sent: int
    frames_ok: int
    frames_bad: int
    commands_executed: int
    replies_replayed: int
    watchdog_trips: int
    last_event_number: int
    tick_overruns: int  # control ticks the device ran late or dropped (its loop's health)


@dataclass(frozen=True)
class LoadCellStatus:
    """The load cell as the device sees it (like Klipper's LOAD_CELL_DIAGNOSTIC)."""

    rate_hz: int  # conversions counted in the last whole second
    samples: int  # conversions since boot
    stale_samples: int  # telemetry samples whose force was held, not fresh
    saturated: int  # conversions at or beyond the rail
    fault: LoadCellFault  # why LOAD_CELL is latched (NONE: it is not)
    offset_n: float  # tare offset in force
    drift_corner_hz: float  # filters in force (0: off)
    notch_hz: int
    lowpass_hz: int


@dataclass(frozen=True)
class DeviceStatus:
    state: DeviceState
    flags: SampleFlags
    homed: bool
    device_time_s: float
    depth_mm: float
    commanded_depth_mm: float
    angle_deg: float
    force_n: float
    latched_faults: FaultFlags
    limits: DeviceLimits
    telemetry_rate_hz: int
    counters: DeviceCounters
    load_cell: LoadCellStatus

    @property
    def moving(self) -> bool:
        return self.state in _MOVING_STATES or bool(
            self.flags & (SampleFlags.ADVANCING | SampleFlags.ROTATING)
        )

    @property
    def stopped_by_fault(self) -> bool:
        """A fault, an e-stop or a stall stopped the axes (or a fault is latched)."""
        return self.state in _STOPPED_BY_FAULT or bool(self.latched_faults)

    @classmethod
    def from_message(cls, msg: Status) -> DeviceStatus:
        return cls(
            state=_device_enum(DeviceState, msg.state, "state"),
            flags=SampleFlags(msg.flags),
            homed=bool(msg.flags & SampleFlags.HOMED),
            device_time_s=units.us_to_s(msg.device_time_us),
            depth_mm=units.um_to_mm(msg.depth_um),
            commanded_depth_mm=units.um_to_mm(msg.commanded_depth_um),
            angle_deg=units.cdeg_to_deg(msg.angle_cdeg),
            force_n=units.mn_to_n(msg.force_mn),
            latched_faults=FaultFlags(msg.latched_faults),
            limits=DeviceLimits(
                soft_depth_limit_mm=units.um_to_mm(msg.soft_depth_limit_um),
                force_limit_n=units.mn_to_n(msg.force_limit_mn),
                stall_force_n=units.mn_to_n(msg.stall_force_mn),
                stall_time_s=units.ms_to_s(msg.stall_time_ms),
            ),
            telemetry_rate_hz=msg.telemetry_rate_hz,
            counters=DeviceCounters(
                samples_sent=msg.samples_sent,
                frames_ok=msg.frames_ok,
                frames_bad=msg.frames_bad,
                commands_executed=msg.commands_executed,
                replies_replayed=msg.replies_replayed,
                watchdog_trips=msg.watchdog_trips,
                last_event_number=msg.last_event_number,
                tick_overruns=msg.tick_overruns,
            ),
            load_cell=LoadCellStatus(
                rate_hz=msg.load_cell_rate_hz,
                samples=msg.load_cell_samples,
                stale_samples=msg.load_cell_stale_samples,
                saturated=msg.load_cell_saturated,
                fault=_device_enum(LoadCellFault, msg.load_cell_fault, "load_cell_fault"),
                offset_n=units.mn_to_n(msg.load_cell_offset_mn),
                drift_corner_hz=msg.drift_corner_mhz / 1000.0,
                notch_hz=msg.notch_hz,
                lowpass_hz=msg.lowpass_hz,
            ),
        )


@dataclass(frozen=True)
class DeviceEvent:
    number: int
    device_time_s: float
    host_time_s: float
    code: EventCode | int
    value: int

    @property
    def name(self) -> str:
        if isinstance(self.code, EventCode):
            return self.code.name
        return "EVENTS_LOST" if self.code == EVENTS_LOST else f"CODE_{self.code}"

    def as_dict(self) -> dict[str, Any]:
        return {
            "number": self.number,
            "device_time_s": self.device_time_s,
            "host_time_s": self.host_time_s,
            "code": self.name,
            "value": self.value,
        }


_E = TypeVar("_E", bound=enum.Enum)


def _device_enum(kind: type[_E], value: int, what: str) -> _E:
    """A device-reported enum value, mapped defensively: the decoder passes any integer
    the wire can carry, and an undefined one means the two schemas disagree."""
    try:
        return kind(value)
    except ValueError:
        raise ProtocolError(
            f"device reported undefined {what} {value} — firmware and host schema disagree"
        ) from None


def _event_code(code: int) -> EventCode | int:
    try:
        return EventCode(code)
    except ValueError:
        return code


EventListener = Callable[[DeviceEvent], None]


class NeedleDriver(ClosedOnExit):
    """A connected rig (or simulator). Open with ``NeedleDriver.open(url)``; use as a
    context manager so that the rig is stopped when the block ends."""

    def __init__(
        self,
        transport: Transport,
        *,
        link_config: LinkConfig | None = None,
        telemetry_capacity: int = 1 << 18,
        schema_hash: int = SCHEMA_HASH,
    ) -> None:
        self.link = Link(transport, link_config)
        self.clock: Clock = self.link.clock
        self.telemetry = TelemetryBuffer(telemetry_capacity)
        self.timesync = TimeSync()
        self._events: dict[int, DeviceEvent] = {}
        self._events_lock = threading.Lock()
        self._last_event_number = 0  # the newest event number seen (live or fetched)
        self._gap_from: int | None = None  # first missing live event number, if any
        # Events up to the device's last_event_number at connection are history, not
        # news: None until a STATUS said where the numbering stood.
        self._event_baseline: int | None = None
        self._next_event_check_s = 0.0
        self._event_batch = 12  # events asked per GET_EVENTS (adaptive, 1..12)
        self._event_listeners: list[EventListener] = []
        self._own_limits: DeviceLimits | None = None
        # The device's commanded depth as last known (a STATUS, or a move it ACKed); None
        # when something may have changed it unseen (stop, fault, a failed command).
        self._commanded_mm: float | None = None
        self._closed = False
        self._commanded_motion = False  # close() stops the rig only if we ever moved it
        self.link.add_listener(self._on_frame)
        try:
            frame = self.link.request(Hello(PROTOCOL_VERSION, schema_hash))
            if not isinstance(frame.message, Identity):
                raise NeedleDriverError(f"{transport.name}: HELLO answered by {frame.message!r}")
            self.identity = DeviceIdentity.from_message(frame.message)
            self._schema_hash = schema_hash
            # where the event numbering stands: what comes later is news for listeners
            # (a raw STATUS: the handshake must not depend on decoding all of it)
            with contextlib.suppress(Nak):
                first = self._request(GetStatus(), Status)
                assert isinstance(first, Status)
                self._set_event_baseline(first.last_event_number)
        except BaseException:
            self.link.close()
            raise

    @classmethod
    def open(cls, url: str, *, usb_backend: Any = None, **kwargs: Any) -> NeedleDriver:
        """Open the port named by url (see docs/architecture.md §4) and shake hands."""
        return cls(open_transport(url, usb_backend=usb_backend), **kwargs)

    # ---------------------------------------------------------------- closing

    def close(self) -> None:
        """Stop the rig (best effort) if this session commanded motion, end the session
        with BYE, then close the link. A BYE refused (the rig still braking, an older
        firmware) or lost changes nothing: the device then ends the session by itself
        once we are silent, logging SESSION_ENDED (protocol §4)."""
        if self._closed:
            return
        self._closed = True
        if self.link.lost is None:
            with contextlib.suppress(NeedleDriverError, OSError):
                if self._commanded_motion:
                    self.link.request(Stop(), max_retries=2)
                self.link.request(Bye(), max_retries=1)
        self.link.close()

    def rearm(self) -> None:
        """HELLO again on the open link: re-open a session the device ended because this
        host fell silent with both axes at rest (SESSION_ENDED; motion NOT_ARMED until a
        HELLO). For a long-lived owner (the rig server) that is alive again; nothing was
        latched, so nothing needs clearing."""
        frame = self.link.request(Hello(PROTOCOL_VERSION, self._schema_hash))
        if not isinstance(frame.message, Identity):
            raise NeedleDriverError(f"{self.url}: HELLO answered by {frame.message!r}")

    # ---------------------------------------------------------------- properties

    @property
    def url(self) -> str:
        return self.link.name

    @property
    def stats(self) -> LinkStats:
        return self.link.stats

    @property
    def schema_mismatch(self) -> bool:
        return not self.identity.schema_matches or self._schema_hash != SCHEMA_HASH

    # ---------------------------------------------------------------- queries

    def status(self) -> DeviceStatus:
        msg = self._request(GetStatus(), Status)
        assert isinstance(msg, Status)
        now_s = self.clock.monotonic()
        self.timesync.observe(msg.device_time_us, now_s)
        self._next_event_check_s = now_s + _EVENT_CHECK_S
        self._catch_up_events(msg.last_event_number, msg.device_time_us)
        status = DeviceStatus.from_message(msg)
        if not status.moving:
            # at rest the commanded depth is the move's target (while moving it is the
            # ramp's setpoint; the target is what our ACKed command said)
            self._commanded_mm = status.commanded_depth_mm
        return status

    def _set_event_baseline(self, last_number: int) -> None:
        with self._events_lock:
            self._event_baseline = last_number
            self._last_event_number = max(self._last_event_number, last_number)

    def _catch_up_events(self, last_number: int, device_time_us: int) -> None:
        """Given the device's newest event number (a STATUS), fetch every event of this
        session not seen yet — a gap in the live numbering, or events after the newest
        seen (a lost *last* event reveals no gap) — and pass them to the listeners, late
        but in order. Runs on the caller's thread — inside a callback too (status() from
        a listener), where a listener may then be called again for an older event."""
        if self._event_baseline is None:
            self._set_event_baseline(last_number)
            return
        with self._events_lock:
            newest = self._last_event_number
            first = self._gap_from if self._gap_from is not None else newest + 1
            self._gap_from = None
        # (a STATUS older than the newest event seen — a replayed reply — asks nothing;
        # a restarted device shows itself by a live EVENT numbered 1: _add_event)
        if first <= last_number:
            self._fetch_events(first, last_number, notify=True, device_time_us=device_time_us)

    def events(self) -> list[DeviceEvent]:
        """The device's numbered event log, oldest first; gaps fetched with GET_EVENTS.
        Events of this session not yet seen are also passed to the listeners."""
        last = self._request(GetStatus(), Status)
        assert isinstance(last, Status)
        self._catch_up_events(last.last_event_number, last.device_time_us)
        self._fetch_events(1, last.last_event_number, notify=False)
        with self._events_lock:
            return [self._events[n] for n in sorted(self._events)]

    def _fetch_events(
        self, first_number: int, last_number: int, *, notify: bool, device_time_us: int = 0
    ) -> None:
        """GET_EVENTS from first_number to last_number (those not held already).
        notify=True: they are news — listeners get them, and numbers the device's log no
        longer holds are reported (stats.events_lost and an EVENTS_LOST notice)."""
        number = first_number
        while number <= last_number:
            with self._events_lock:
                while number <= last_number and number in self._events:
                    number += 1
            if number > last_number:
                return
            # Only as many as missing, in batches that shrink while replies get lost (a
            # long EVENT_LOG is likelier to be garbled) and grow back when they do not.
            count = min(self._event_batch, last_number - number + 1)
            retransmits = self.link.stats.retransmits
            msg = self._request(GetEvents(number, count), EventLog)
            if self.link.stats.retransmits > retransmits:
                self._event_batch = max(1, self._event_batch // 2)
            else:
                self._event_batch = min(12, self._event_batch * 2)
            assert isinstance(msg, EventLog)
            records = event_array(msg)
            # The log starts at the oldest it still holds (it keeps the newest 256).
            held_from = int(records["number"][0]) if len(records) else last_number + 1
            if held_from > number:
                if notify:
                    lost_to = min(held_from, last_number + 1)
                    when_us = int(records["time_us"][0]) if len(records) else device_time_us
                    self._report_lost(number, lost_to - number, when_us)
                if not len(records):
                    return
            for rec in records:
                self._add_event(
                    int(rec["number"]),
                    int(rec["time_us"]),
                    int(rec["code"]),
                    int(rec["value"]),
                    notify=notify,
                    live=False,
                )
            number = max(number + 1, int(records["number"][-1]) + 1)

    def _report_lost(self, first_number: int, count: int, device_time_us: int) -> None:
        """Events gone for good: counted, and told to the listeners (the recorder writes
        it), never skipped silently."""
        self.link.stats.events_lost += count
        notice = DeviceEvent(
            first_number,
            units.us_to_s(device_time_us),
            self.timesync.to_host_s(device_time_us),
            EVENTS_LOST,
            count,
        )
        for listener in list(self._event_listeners):
            with contextlib.suppress(Exception):
                listener(notice)

    def add_event_listener(self, listener: EventListener) -> Callable[[], None]:
        """listener(DeviceEvent) for each event as it arrives (gaps arrive when fetched)."""
        self._event_listeners.append(listener)
        return lambda: self._event_listeners.remove(listener)

    # ---------------------------------------------------------------- setup

    def set_limits(
        self,
        soft_depth_limit_mm: float | None = None,
        force_limit_n: float | None = None,
        stall_force_n: float | None = None,
        stall_time_s: float | None = None,
    ) -> DeviceLimits:
        """Tighten the device's limits (None: keep the current value). Returns those in force."""
        ident = self.identity
        given = {
            "soft_depth_limit_mm": (soft_depth_limit_mm, 0.0, ident.travel_limit_mm),
            # forces ≥ 1 mN (protocol §6: SET_LIMITS ranges)
            "force_limit_n": (force_limit_n, 0.001, ident.force_limit_n),
            "stall_force_n": (stall_force_n, 0.001, ident.force_limit_n),
            "stall_time_s": (stall_time_s, 0.001, 10.0),
        }
        for name, (value, lo, hi) in given.items():
            if value is not None:
                _check_range(name, value, lo, hi)  # before anything is sent
        if None in (soft_depth_limit_mm, force_limit_n, stall_force_n, stall_time_s):
            current = self.status().limits
        else:
            current = DeviceLimits(0.0, 0.0, 0.0, 0.0)
        new = DeviceLimits(
            soft_depth_limit_mm=current.soft_depth_limit_mm
            if soft_depth_limit_mm is None
            else soft_depth_limit_mm,
            force_limit_n=current.force_limit_n if force_limit_n is None else force_limit_n,
            stall_force_n=current.stall_force_n if stall_force_n is None else stall_force_n,
            stall_time_s=current.stall_time_s if stall_time_s is None else stall_time_s,
        )
        self._command(
            SetLimits(
                units.mm_to_um(new.soft_depth_limit_mm),
                units.n_to_mn(new.force_limit_n),
                units.n_to_mn(new.stall_force_n),
                units.s_to_ms(new.stall_time_s),
            )
        )
        self._own_limits = new
        return new

    def set_telemetry(self, rate_hz: int = 1000, batch_samples: int = 10) -> None:
        _check_range("rate_hz", rate_hz, 0, 1000)
        _check_range("batch_samples", batch_samples, 1, 10)
        self._command(SetTelemetry(int(rate_hz), int(batch_samples)))

    def tare(self) -> None:
        """Zero the load cell where the needle is (the device also tares after homing)."""
        self._command(Tare())

    def set_load_cell(
        self, drift_corner_hz: float = 0.0, notch_hz: int = 0, lowpass_hz: int = 0
    ) -> None:
        """The device's load-cell filters (0 = off): continuous-tare drift high-pass,
        mains notch (50 or 60), low-pass. Each must be below half the sensor's rate."""
        _check_range("drift_corner_hz", drift_corner_hz, 0, 10)
        _check_range("notch_hz", notch_hz, 0, 100)
        _check_range("lowpass_hz", lowpass_hz, 0, 1000)
        self._command(SetLoadCell(round(drift_corner_hz * 1000), int(notch_hz), int(lowpass_hz)))

    # ---------------------------------------------------------------- motion

    def start_home(self, speed_mm_s: float = 2.0) -> None:
        """Send HOME; returns once the device accepted it (it is then homing). For a
        caller that waits in its own way (e.g. one an abort can interrupt)."""
        self._check_speed(speed_mm_s)
        self._commanded_mm = None
        self._motion(Home(units.mm_s_to_um_s(speed_mm_s)))

    def home(self, speed_mm_s: float = 2.0, timeout_s: float = 120.0) -> DeviceStatus:
        """Home the advance axis; blocks until homed (DeviceFault if a fault stops it).
        Inside a callback: CallbackWait, and no HOME sent (start_home does not wait)."""
        self.link.check_may_wait()
        self.start_home(speed_mm_s)
        status = self.wait_idle(timeout_s, raise_on_fault=True)
        if not status.homed:
            raise DeviceFault(f"{self.url}: homing ended without the axis homed", 0)
        return status

    def move_to_mm(self, depth_mm: float, speed_mm_s: float) -> None:
        """Advance/retract to an absolute depth. Returns once the device accepted it."""
        self._check_depth("depth_mm", depth_mm)
        self._check_speed(speed_mm_s)
        self._commanded_mm = None  # unknown until ACKed (a timeout leaves it unknown)
        self._motion(
            Move(MoveMode.ABSOLUTE, units.mm_to_um(depth_mm), units.mm_s_to_um_s(speed_mm_s))
        )
        self._commanded_mm = units.um_to_mm(units.mm_to_um(depth_mm))

    def advance_mm(self, distance_mm: float, speed_mm_s: float) -> None:
        """Advance by distance_mm from the commanded depth (negative retracts). The
        resulting depth is checked against [0, hard travel / soft limit] before sending,
        from the last known commanded depth (read from the device if not known)."""
        travel = self.identity.travel_limit_mm
        _check_range("distance_mm", distance_mm, -travel, travel)
        self._check_speed(speed_mm_s)
        start_mm = self._commanded_mm
        if start_mm is None:
            # (still moving after a stop or homing: the setpoint is the best estimate
            # of the device's base; the device checks again against its own)
            start_mm = self.status().commanded_depth_mm
        # in the device's own µm, as it adds them
        end_mm = units.um_to_mm(units.mm_to_um(start_mm) + units.mm_to_um(distance_mm))
        upper_mm = self._depth_upper_mm()
        if not (0.0 <= end_mm <= upper_mm):
            raise LimitError(
                f"advance_mm={distance_mm:g} from the commanded depth {start_mm:g} mm would "
                f"reach {end_mm:g} mm, outside [0, {upper_mm:g}]; not sent"
            )
        self._commanded_mm = None  # unknown until ACKed (a timeout leaves it unknown)
        self._motion(
            Move(MoveMode.RELATIVE, units.mm_to_um(distance_mm), units.mm_s_to_um_s(speed_mm_s))
        )
        self._commanded_mm = end_mm

    def rotate_rpm(self, rate_rpm: float) -> None:
        """Turn continuously at rate_rpm (sign = direction); 0 stops the rotation."""
        self._check_rate(rate_rpm)
        if rate_rpm == 0:
            self._motion(Rotate(RotateMode.STOP, 0, 0))
        else:
            self._motion(Rotate(RotateMode.CONTINUOUS, units.rpm_to_mrpm(rate_rpm), 0))

    def rotate_deg(self, angle_deg: float, rate_rpm: float) -> None:
        """Turn by angle_deg (sign = direction) at |rate_rpm|, then stop."""
        self._check_rate(rate_rpm)
        self._motion(
            Rotate(
                RotateMode.BY_ANGLE, units.rpm_to_mrpm(abs(rate_rpm)), units.deg_to_cdeg(angle_deg)
            )
        )

    def oscillate_deg(self, amplitude_deg: float, rate_rpm: float) -> None:
        """Turn back and forth ±amplitude_deg around the current angle at |rate_rpm|."""
        self._check_rate(rate_rpm)
        _check_range("amplitude_deg", amplitude_deg, 0.0, 21_474_836.0)
        self._motion(
            Rotate(
                RotateMode.OSCILLATE,
                units.rpm_to_mrpm(abs(rate_rpm)),
                units.deg_to_cdeg(amplitude_deg),
            )
        )

    def stop_advance(self) -> None:
        """Decelerate the advance to rest, the rotation untouched (MOVE STOP): a pause —
        the device reports no TARGET_REACHED. Never refused, like every stop."""
        self._commanded_mm = None  # the axis settles where it brakes
        # target and speed are ignored; speed 1 µm/s is the schema's lowest
        self._command(Move(MoveMode.STOP, 0, 1))

    def stop(self) -> None:
        """Controlled stop of both axes (no fault latched)."""
        self._commanded_mm = None  # the axis settles where it brakes
        self._command(Stop())

    def estop(self) -> None:
        """Emergency stop: both axes halt within one control tick; latches until clear_fault()."""
        self._commanded_mm = None
        self._command(EStop())

    def clear_fault(self) -> None:
        self._commanded_mm = None
        self._command(ClearFault())

    # ---------------------------------------------------------------- waiting

    def wait_idle(self, timeout_s: float, *, raise_on_fault: bool = False) -> DeviceStatus:
        """Poll until no axis moves; returns the final status (Timeout if it keeps moving)."""
        self.link.check_may_wait()
        status = wait_until_idle(
            self.status,
            lambda status: status.moving,
            now=self.clock.monotonic,
            wait_s=self.link.wait_s,
            poll_s=_POLL_S,
            timeout_s=timeout_s,
            on_timeout=lambda _: Timeout(f"{self.url}: still moving after {timeout_s:g} s"),
        )
        assert status is not None  # (no abort)
        if raise_on_fault and status.stopped_by_fault:
            raise DeviceFault(
                f"{self.url}: stopped in state {status.state.name}",
                int(status.latched_faults),
            )
        return status

    def wait_s(self, seconds: float) -> None:
        """Let time pass with the link kept alive (virtual time on sim://). Every
        _EVENT_CHECK_S (and after a gap in the event numbering) it asks for STATUS,
        which fetches events lost on the way: a device that stops answering while it
        is still heard raises Timeout here as in status()."""
        self.link.check_may_wait()
        clock = self.clock
        deadline_s = clock.monotonic() + seconds
        while True:
            now_s = clock.monotonic()
            step_s = min(deadline_s, self._next_event_check_s) - now_s
            if step_s > 0:
                self.link.wait_s(step_s)
                now_s = clock.monotonic()
            if self._gap_from is not None or now_s >= self._next_event_check_s:
                self.status()  # fetches what is missing; sets the next check
            if now_s >= deadline_s:
                return

    def keepalive(self) -> None:
        """Show the link that this program is alive (see Link.keepalive): code that works
        for longer than the 150 ms lease between the driver's calls calls this, or the
        heartbeats stop and the device's watchdog stops the rig. Every driver call and
        wait renews the lease too."""
        self.link.keepalive()

    def wait_until(self, predicate: Callable[[], bool], timeout_s: float) -> bool:
        """Run the link until predicate() (checked after each batch of frames) or timeout.
        The predicate may make requests (status()); a wait inside a telemetry/event
        callback raises CallbackWait (docs/architecture.md §6, "Callbacks")."""
        return self.link.wait_until(predicate, timeout_s)

    # ---------------------------------------------------------------- internals

    def _request(self, msg: Message, expect: type[Any]) -> Message:
        reply: Message = self.link.request(msg).message
        if isinstance(reply, NakMsg):
            raise Nak(type(msg).__name__, reply.reason, reply.detail)
        if not isinstance(reply, expect):
            raise NeedleDriverError(f"{self.url}: {type(msg).__name__} answered by {reply!r}")
        return cast(Message, reply)

    def _command(self, msg: Message) -> None:
        self._request(msg, Ack)

    def _motion(self, msg: Message) -> None:
        if self.schema_mismatch:
            raise SchemaMismatch(
                f"{self.url}: device schema {self.identity.schema_hash:#010x} differs from "
                f"ours {SCHEMA_HASH:#010x}; motion refused (queries work) — update the "
                "firmware or this library"
            )
        self._commanded_motion = True
        self._command(msg)

    def _depth_upper_mm(self) -> float:
        """The deepest depth a command may reach: hard travel, or the soft limit we set."""
        upper = self.identity.travel_limit_mm
        if self._own_limits is not None:
            upper = min(upper, self._own_limits.soft_depth_limit_mm)
        return upper

    def _check_depth(self, name: str, depth_mm: float) -> None:
        _check_range(name, depth_mm, 0.0, self._depth_upper_mm())

    def _check_speed(self, speed_mm_s: float) -> None:
        _check_range("speed_mm_s", speed_mm_s, 0.001, self.identity.max_speed_mm_s)

    def _check_rate(self, rate_rpm: float) -> None:
        top = self.identity.max_rate_rpm
        _check_range("rate_rpm", rate_rpm, -top, top)

    def _on_frame(self, frame: Frame) -> None:
        msg = frame.message
        if isinstance(msg, Telemetry):
            samples = sample_array(msg)
            if len(samples) == 0:
                return
            now = self.clock.monotonic()
            ts = self.timesync
            dev_us = ts.unwrap_array_us(samples["time_us"])
            ts.observe(int(dev_us[-1]), now)
            rows = rows_from_samples(
                samples, msg.first_sample_number, dev_us, ts.to_host_array_s(dev_us)
            )
            self.telemetry.push(rows)
        elif isinstance(msg, Event):
            self.timesync.observe(msg.time_us, self.clock.monotonic())
            self._add_event(msg.number, msg.time_us, msg.code, msg.value, notify=True, live=True)

    def _add_event(
        self, number: int, time_us: int, code: int, value: int, *, notify: bool, live: bool
    ) -> None:
        """Store an event; notify=True: it is news (live, or a recovered gap) for listeners.
        live: it came as an EVENT frame, so a jump in the numbering is a gap to fetch."""
        with self._events_lock:
            if number in self._events:
                return
            if number < self._last_event_number and number == 1:
                self._events.clear()  # the device rebooted: numbering restarts
                self._last_event_number = 0
            elif live and 0 < self._last_event_number < number - 1:
                first_missing = self._last_event_number + 1
                if self._gap_from is None or first_missing < self._gap_from:
                    self._gap_from = first_missing
            event = DeviceEvent(
                number,
                units.us_to_s(time_us),
                self.timesync.to_host_s(time_us),
                _event_code(code),
                value,
            )
            self._events[number] = event
            self._last_event_number = max(self._last_event_number, number)
        if not notify:
            return  # history fetched by events(): not news
        for listener in list(self._event_listeners):
            with contextlib.suppress(Exception):
                listener(event)


def _check_range(name: str, value: float, lo: float, hi: float) -> None:
    if not (lo <= value <= hi):  # also refuses NaN
        raise LimitError(f"{name}={value:g} is outside [{lo:g}, {hi:g}]; not sent")


__all__ = [
    "DeviceCounters",
    "DeviceEvent",
    "DeviceIdentity",
    "DeviceLimits",
    "DeviceStatus",
    "LinkLost",
    "LoadCellStatus",
    "NeedleDriver",
]
