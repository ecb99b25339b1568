"""Protocol v1: every message, enum and constant, declared once.

Everything else is derived from this module: the codec (protocol.codec), the
schema hash, the tables in docs/protocol.md, the test vectors and the C header
(protocol.codegen). Change a message here and the hash changes, the docs test
fails until the docs are regenerated, and host and device refuse to run motion
together until both carry the new schema.

Quantities are fixed-point integers with the unit in the name (µm, mN, µs,
milli-rpm, centi-degrees) so that firmware needs no floating point.
"""

from __future__ import annotations

import enum
import hashlib
import json
from collections.abc import Callable
from typing import Annotated, Any, NamedTuple, TypeVar

import numpy as np

from protocol.fields import (
    I32,
    U8,
    U16,
    U32,
    U64,
    Array,
    Doc,
    EnumOf,
    FieldSpec,
    Int,
    Range,
    Str,
    field_specs,
    record_dtype,
)

PROTOCOL_VERSION = 1

# ---------------------------------------------------------------- enums


class Direction(enum.Enum):
    HOST_TO_DEVICE = "host->device"
    DEVICE_TO_HOST = "device->host"
    BOTH = "both"


class HeaderFlags(enum.IntFlag):
    """Bits of the frame header's flags byte."""

    RETRANSMIT = 0x01  # host: this command was sent before with the same seq
    REPLAYED = 0x02  # device: this reply is a stored reply replayed, nothing was executed


class NakReason(enum.IntEnum):
    BAD_ARGUMENT = 1  # a field out of its documented range or inconsistent
    NOT_HOMED = 2  # motion on the advance axis before a successful HOME
    NOT_ARMED = 3  # motion before a HELLO opened a session
    BEYOND_LIMIT = 4  # target outside the soft/hard travel limits, or a limit above hard
    BUSY = 5  # homing in progress, or the command conflicts with motion in progress
    ESTOPPED = 6  # e-stop latched: CLEAR_FAULT first
    LATCHED_FAULT = 7  # a fault (watchdog, stall, force, sensor) latched: CLEAR_FAULT first
    UNKNOWN_MESSAGE = 8  # a valid frame whose id the device does not implement
    SCHEMA_MISMATCH = 9  # the HELLO's schema hash differs: motion refused, queries allowed


class DeviceState(enum.IntEnum):
    UNHOMED = 0
    HOMING = 1
    READY = 2
    MOVING = 3
    STALLED = 4
    LIMIT = 5
    FAULT = 6
    ESTOPPED = 7


class FaultFlags(enum.IntFlag):
    """Latched faults; each stays set until CLEAR_FAULT."""

    WATCHDOG = 0x0001
    STALL = 0x0002
    FORCE_LIMIT = 0x0004
    ESTOP = 0x0008
    TRAVEL_LIMIT = 0x0010
    ENCODER = 0x0020
    LOAD_CELL = 0x0040
    OVERRUN = 0x0080  # the control loop fell further behind than the board allows, mid-motion


class SampleFlags(enum.IntFlag):
    """Status bits of every TELEMETRY sample, and STATUS.flags (the same bits)."""

    HOMED = 0x01
    ADVANCING = 0x02
    ROTATING = 0x04
    AT_LIMIT = 0x08
    STALL = 0x10
    FAULT = 0x20
    ESTOP = 0x40
    ARMED = 0x80


class EventCode(enum.IntEnum):
    LIMIT_REACHED = 1  # value: the soft depth limit µm at which the advance was stopped
    STALL = 2  # value: encoder depth µm when the stall cut-off fired
    FORCE_OVER_LIMIT = 3  # value: force mN that crossed the force limit
    WATCHDOG_TRIP = 4  # value: ms since the last valid host frame (silent mid-motion)
    ESTOP = 5  # value: 0
    FAULT = 6  # value: FaultFlags bits newly latched (sensor and travel faults)
    HOMED = 7  # value: 0
    TARGET_REACHED = 8  # value: depth µm reached
    FAULT_CLEARED = 9  # value: FaultFlags bits cleared
    BOOT = 10  # value: 0 — the device (re)started; event numbers restart at 1
    SESSION_ENDED = 11  # value: ms since the last valid host frame (silent at rest: no fault)


class MoveMode(enum.IntEnum):
    ABSOLUTE = 0
    RELATIVE = 1  # relative to the commanded target
    STOP = 2  # decelerate the advance to rest, rotation untouched; target and speed ignored


class RotateMode(enum.IntEnum):
    STOP = 0  # decelerate the rotation axis to rest
    CONTINUOUS = 1  # turn at rate_mrpm (sign = direction) until told otherwise
    BY_ANGLE = 2  # turn by angle_cdeg (sign = direction) at |rate_mrpm|, then stop
    OSCILLATE = 3  # swing between start ∓ angle_cdeg (amplitude, one side) at |rate_mrpm|, + first


class Capabilities(enum.IntFlag):
    """What the device has (IDENTITY.capabilities)."""

    ROTATION = 0x01
    OSCILLATION = 0x02
    LOAD_CELL = 0x04
    ENCODER = 0x08
    USB_BULK = 0x10
    FAULT_INJECTION = 0x20  # simulators only


class ForceFlags(enum.IntFlag):
    """Bits of every TELEMETRY sample's force_flags: what its force_mn is."""

    FRESH = 0x01  # from a load-cell conversion that no earlier sample carried (else: held)


class LoadCellFault(enum.IntEnum):
    """Why FaultFlags.LOAD_CELL latched (STATUS.load_cell_fault)."""

    NONE = 0
    NO_READING = 1  # the amplifier reported a fault (open bridge, not answering)
    TIMEOUT = 2  # no fresh conversion within two nominal sample periods
    SATURATED = 3  # a conversion at or beyond the cell's rail (clipped, or a loose wire)
    STUCK = 4  # a noisy reading repeated exactly, conversion after conversion


ENUMS: tuple[type[enum.IntEnum] | type[enum.IntFlag], ...] = (
    HeaderFlags,
    NakReason,
    DeviceState,
    FaultFlags,
    SampleFlags,
    EventCode,
    MoveMode,
    RotateMode,
    Capabilities,
    ForceFlags,
    LoadCellFault,
)

# What each member means, where the name alone does not say it all: shown as the
# "meaning" column of the enum tables in docs/protocol.md (not part of the schema hash).
MEANINGS: dict[type[enum.Enum], dict[str, str]] = {
    SampleFlags: {
        "HOMED": "position known: homed, and no e-stop, stall or encoder loss since",
        "ADVANCING": "the advance axis is moving (homing and ramps included)",
        "ROTATING": "the rotation axis is moving (ramps included)",
        "AT_LIMIT": "the advance stopped at the soft depth limit and has not moved since "
        "(also while a fault is latched on top: the state shows the fault)",
        "STALL": "FaultFlags.STALL latched",
        "FAULT": "a fault other than STALL and ESTOP latched",
        "ESTOP": "FaultFlags.ESTOP latched",
        "ARMED": "the session is armed (HELLO with matching version and schema hash)",
    },
    EventCode: {
        "LIMIT_REACHED": "value = the soft depth limit (µm) at which the advance was stopped",
        "STALL": "value = encoder depth (µm) when the stall cut-off fired",
        "FORCE_OVER_LIMIT": "value = the force (mN) that tripped the force limit",
        "WATCHDOG_TRIP": "the host went silent while something moved: both axes stopped, "
        "WATCHDOG latched; value = ms since the last valid frame received",
        "ESTOP": "value = 0",
        "FAULT": "value = the FaultFlags bits newly latched (ENCODER, LOAD_CELL, TRAVEL_LIMIT)",
        "HOMED": "value = 0",
        "TARGET_REACHED": "value = the commanded depth (µm) reached",
        "FAULT_CLEARED": "value = the FaultFlags bits cleared",
        "BOOT": "value = 0; always event number 1",
        "SESSION_ENDED": "the host went silent with both axes at rest: the session ended "
        "(motion NOT_ARMED until a HELLO), nothing latched; value = ms since the last valid "
        "frame received",
    },
    Capabilities: {
        "ROTATION": "has a rotation axis",
        "OSCILLATION": "supports ROTATE OSCILLATE",
        "LOAD_CELL": "has a load cell (force limit, stall by force, force in samples)",
        "ENCODER": "has an advance encoder (without it the stall cut-off is by force only, "
        "and depth_um reports the motor's position)",
        "USB_BULK": "also offers the vendor USB bulk interface (ND_USB_VID:ND_USB_PID), "
        "same frames",
        "FAULT_INJECTION": "a simulator that accepts injected faults; never a rig",
    },
    ForceFlags: {
        "FRESH": "force_mn comes from a load-cell conversion no earlier sample carried; "
        "clear: the value is held from an earlier conversion (a sensor slower than the "
        "telemetry rate)",
    },
    LoadCellFault: {
        "NONE": "LOAD_CELL not latched",
        "NO_READING": "the amplifier reported a fault (open bridge, not answering)",
        "TIMEOUT": "no fresh conversion within two nominal sample periods "
        "(IDENTITY.load_cell_sample_hz): the sensor watchdog",
        "SATURATED": "a conversion at or beyond the cell's rail (over its rated load, or "
        "an open wire reading all ones)",
        "STUCK": "a noisy reading repeated exactly, conversion after conversion (a frozen "
        "amplifier; boards that declare the check)",
    },
}

# ---------------------------------------------------------------- messages

_C = TypeVar("_C", bound=type)
MSG_ID: dict[type, int] = {}  # message class -> id (also the class attribute MSG_ID)
DIRECTION: dict[type, Direction] = {}


def message(msg_id: int, direction: Direction) -> Callable[[_C], _C]:
    """Declare a NamedTuple as protocol message ``msg_id`` travelling in ``direction``."""

    def register(cls: _C) -> _C:
        cls.MSG_ID = msg_id  # type: ignore[attr-defined]
        cls.DIRECTION = direction  # type: ignore[attr-defined]
        MSG_ID[cls] = msg_id
        DIRECTION[cls] = direction
        return cls

    return register


@message(0x01, Direction.HOST_TO_DEVICE)
class Hello(NamedTuple):
    """Opens a session. The device answers IDENTITY and arms motion when the hashes match."""

    protocol_version: Annotated[int, U8, Doc("host's protocol version")]
    schema_hash: Annotated[int, U32, Doc("host's schema hash")]


@message(0x02, Direction.BOTH)
class Heartbeat(NamedTuple):
    """Keeps the link alive (sent with seq 0; receivers ignore its seq; no reply). The host
    sends one at least every 50 ms; the device sends one when it has sent nothing else for
    100 ms, from boot on."""

    uptime_ms: Annotated[int, U32, Doc("sender's uptime, for the record")]


@message(0x03, Direction.HOST_TO_DEVICE)
class Home(NamedTuple):
    """Drive the advance axis back to the homing switch; position 0 is set there."""

    speed_um_s: Annotated[int, U32, Range(1, 20_000), Doc("homing speed")]


@message(0x04, Direction.HOST_TO_DEVICE)
class Move(NamedTuple):
    """Advance (or retract) the needle to a depth, with a trapezoidal profile."""

    mode: Annotated[
        int, U8, EnumOf(MoveMode), Doc("absolute, relative to commanded depth, or STOP the advance")
    ]
    target_um: Annotated[int, I32, Doc("depth (absolute) or distance (relative)")]
    speed_um_s: Annotated[int, U32, Range(1, 20_000), Doc("cruise speed")]


@message(0x05, Direction.HOST_TO_DEVICE)
class Rotate(NamedTuple):
    """Rotate the needle: continuously, by an angle, or oscillating."""

    mode: Annotated[int, U8, EnumOf(RotateMode), Doc("see RotateMode")]
    rate_mrpm: Annotated[int, I32, Range(-600_000, 600_000), Doc("milli-rpm, sign = direction")]
    angle_cdeg: Annotated[
        int, I32, Doc("BY_ANGLE: angle to turn, sign = direction; OSCILLATE: amplitude > 0")
    ]


@message(0x06, Direction.HOST_TO_DEVICE)
class Stop(NamedTuple):
    """Decelerate both axes to rest (controlled stop; no fault latched)."""


@message(0x07, Direction.HOST_TO_DEVICE)
class EStop(NamedTuple):
    """Emergency stop: both axes halt within one control tick; ESTOP latches. Idempotent."""


@message(0x08, Direction.HOST_TO_DEVICE)
class ClearFault(NamedTuple):
    """Clear latched faults (and e-stop). After a stall or e-stop the device is unhomed."""


@message(0x09, Direction.HOST_TO_DEVICE)
class SetLimits(NamedTuple):
    """Tighten the device's limits. Each must lie within the hard limits in IDENTITY."""

    soft_depth_limit_um: Annotated[
        int, I32, Range(0, I32.hi), Doc("advance stops here (≤ hard travel)")
    ]
    force_limit_mn: Annotated[
        int, I32, Range(1, I32.hi), Doc("|force| above this stops both axes and latches")
    ]
    stall_force_mn: Annotated[
        int, I32, Range(1, I32.hi), Doc("force held ≥ this for stall_time_ms = stall")
    ]
    stall_time_ms: Annotated[int, U16, Range(1, 10_000), Doc("see stall_force_mn")]


@message(0x0A, Direction.HOST_TO_DEVICE)
class SetTelemetry(NamedTuple):
    """Configure the telemetry stream (0 Hz = off)."""

    rate_hz: Annotated[int, U16, Range(0, 1000), Doc("samples per second, 0 = off")]
    batch_samples: Annotated[int, U8, Range(1, 10), Doc("samples per TELEMETRY frame")]


@message(0x0B, Direction.HOST_TO_DEVICE)
class GetStatus(NamedTuple):
    """Ask for a STATUS reply."""


@message(0x0C, Direction.HOST_TO_DEVICE)
class GetEvents(NamedTuple):
    """Ask for stored events from a number on (to recover a gap): EVENT_LOG reply."""

    from_number: Annotated[int, U32, Doc("first event number wanted")]
    max_count: Annotated[int, U8, Range(1, 12), Doc("at most this many events")]


@message(0x0D, Direction.HOST_TO_DEVICE)
class Bye(NamedTuple):
    """End this host's session in order: ACK, then motion is NOT_ARMED until a HELLO, and
    nothing is logged (a host that only goes silent ends it through the watchdog, logged
    SESSION_ENDED). While anything moves or homes: NAK BUSY, the session goes on."""


@message(0x0E, Direction.HOST_TO_DEVICE)
class Tare(NamedTuple):
    """Zero the load cell here: the mean of its last 8 raw conversions becomes the offset
    subtracted from every reading, and the filters restart from zero. The device also tares
    at the end of every HOME (the needle at the switch, out of tissue). Refused BUSY while
    the advance moves or homes, LATCHED_FAULT while LOAD_CELL is latched."""


@message(0x0F, Direction.HOST_TO_DEVICE)
class SetLoadCell(NamedTuple):
    """Configure the load cell's filter chain, run on every fresh conversion: tare offset,
    drift high-pass (continuous tare), mains notch, low-pass; 0 turns a filter off (all
    off at boot). Refused BUSY while the advance moves or homes, BEYOND_LIMIT (detail: the
    nominal sample rate, Hz) when a frequency is not below half the sample rate."""

    drift_corner_mhz: Annotated[
        int, U32, Range(0, 10_000), Doc("continuous-tare high-pass corner, milli-hertz")
    ]
    notch_hz: Annotated[int, U8, Range(0, 100), Doc("mains notch centre (50 or 60), hertz")]
    lowpass_hz: Annotated[int, U16, Range(0, 1000), Doc("low-pass corner, hertz")]


@message(0x81, Direction.DEVICE_TO_HOST)
class Identity(NamedTuple):
    """Reply to HELLO."""

    protocol_version: Annotated[int, U8, Doc("device's protocol version")]
    schema_hash: Annotated[int, U32, Doc("device's schema hash")]
    firmware_major: Annotated[int, U8, Doc("firmware version")]
    firmware_minor: Annotated[int, U8, Doc("firmware version")]
    firmware_patch: Annotated[int, U8, Doc("firmware version")]
    serial_number: Annotated[
        str, Str(16), Doc("ASCII, NUL-padded; all 16 may be used (then no NUL)")
    ]
    simulated: Annotated[int, U8, Range(0, 1), Doc("1 = a simulator, not a rig")]
    capabilities: Annotated[int, U32, EnumOf(Capabilities), Doc("Capabilities bits")]
    travel_limit_um: Annotated[int, I32, Doc("hard advance travel")]
    force_limit_mn: Annotated[int, I32, Doc("hard force limit")]
    max_speed_um_s: Annotated[int, U32, Doc("hard advance speed limit")]
    max_rate_mrpm: Annotated[int, I32, Doc("hard rotation rate limit")]
    watchdog_ms: Annotated[int, U16, Doc("host silence after which motion stops")]
    session_armed: Annotated[int, U8, Range(0, 1), Doc("1 = hashes matched, motion allowed")]
    load_cell_sample_hz: Annotated[
        int, U16, Doc("the load cell's nominal conversion rate (a fresh force this often)")
    ]


@message(0x82, Direction.DEVICE_TO_HOST)
class Ack(NamedTuple):
    """The command with this frame's seq was accepted (and executed once)."""

    command_id: Annotated[int, U8, Doc("message id of the acknowledged command")]


@message(0x83, Direction.DEVICE_TO_HOST)
class Nak(NamedTuple):
    """The command with this frame's seq was refused; nothing was executed."""

    command_id: Annotated[int, U8, Doc("message id of the refused command")]
    reason: Annotated[int, U8, EnumOf(NakReason), Doc("why")]
    detail: Annotated[int, I32, Doc("reason-specific: the offending limit or value, else 0")]


@message(0x84, Direction.DEVICE_TO_HOST)
class Status(NamedTuple):
    """Reply to GET_STATUS: the device's whole state in one frame."""

    state: Annotated[int, U8, EnumOf(DeviceState), Doc("state machine state")]
    flags: Annotated[int, U8, EnumOf(SampleFlags), Doc("as in telemetry samples")]
    latched_faults: Annotated[int, U16, EnumOf(FaultFlags), Doc("faults awaiting CLEAR_FAULT")]
    device_time_us: Annotated[int, U64, Doc("device clock")]
    depth_um: Annotated[int, I32, Doc("encoder depth")]
    commanded_depth_um: Annotated[int, I32, Doc("profile generator's depth")]
    angle_cdeg: Annotated[int, I32, Doc("rotation, multi-turn")]
    force_mn: Annotated[int, I32, Doc("load cell, + = resisting the advance")]
    soft_depth_limit_um: Annotated[int, I32, Doc("in force")]
    force_limit_mn: Annotated[int, I32, Doc("in force")]
    stall_force_mn: Annotated[int, I32, Doc("in force")]
    stall_time_ms: Annotated[int, U16, Doc("in force")]
    telemetry_rate_hz: Annotated[int, U16, Doc("in force")]
    last_event_number: Annotated[int, U32, Doc("number of the newest event (0 = none)")]
    samples_sent: Annotated[int, U32, Doc("telemetry samples produced so far")]
    frames_ok: Annotated[int, U32, Doc("valid frames received (§1 Receiving)")]
    frames_bad: Annotated[int, U32, Doc("frames dropped (CRC, malformed, oversize, unknown id)")]
    commands_executed: Annotated[int, U32, Doc("commands executed (not replays)")]
    replies_replayed: Annotated[int, U32, Doc("repeated commands answered from the reply cache")]
    watchdog_trips: Annotated[int, U32, Doc("since boot")]
    tick_overruns: Annotated[
        int, U32, Doc("control ticks run a period or more late, or skipped, since boot")
    ]
    load_cell_rate_hz: Annotated[int, U16, Doc("conversions counted in the last whole second")]
    load_cell_samples: Annotated[int, U32, Doc("load-cell conversions since boot")]
    load_cell_stale_samples: Annotated[
        int, U32, Doc("telemetry samples whose force was held, not fresh")
    ]
    load_cell_saturated: Annotated[int, U32, Doc("conversions at or beyond the rail")]
    load_cell_fault: Annotated[
        int, U8, EnumOf(LoadCellFault), Doc("why LOAD_CELL is latched (NONE: it is not)")
    ]
    load_cell_offset_mn: Annotated[int, I32, Doc("tare offset in force (raw reading at zero)")]
    drift_corner_mhz: Annotated[int, U32, Doc("in force (SET_LOAD_CELL)")]
    notch_hz: Annotated[int, U8, Doc("in force (SET_LOAD_CELL)")]
    lowpass_hz: Annotated[int, U16, Doc("in force (SET_LOAD_CELL)")]


class TelemetrySample(NamedTuple):
    """One sample inside TELEMETRY."""

    time_us: Annotated[int, U32, Doc("device time, wraps every 71.6 min")]
    depth_um: Annotated[int, I32, Doc("encoder depth")]
    commanded_depth_um: Annotated[int, I32, Doc("profile generator's depth")]
    angle_cdeg: Annotated[int, I32, Doc("rotation, multi-turn")]
    force_mn: Annotated[int, I32, Doc("load cell")]
    state: Annotated[int, U8, EnumOf(DeviceState), Doc("state machine state")]
    flags: Annotated[int, U8, EnumOf(SampleFlags), Doc("status bits")]
    force_flags: Annotated[int, U8, EnumOf(ForceFlags), Doc("FRESH: a new conversion")]


@message(0x85, Direction.DEVICE_TO_HOST)
class Telemetry(NamedTuple):
    """A batch of consecutive samples. first_sample_number counts every sample the device
    produced since boot, so the host knows exactly how many it lost."""

    first_sample_number: Annotated[int, U32, Doc("number of samples[0]")]
    samples: Annotated[bytes, Array(TelemetrySample, 10), Doc("consecutive samples")]


class EventRecord(NamedTuple):
    """One event inside EVENT_LOG."""

    number: Annotated[int, U32, Doc("1, 2, 3, … since boot, no gaps")]
    time_us: Annotated[int, U64, Doc("device time")]
    code: Annotated[int, U8, EnumOf(EventCode), Doc("what happened")]
    value: Annotated[int, I32, Doc("code-specific, see EventCode")]


@message(0x86, Direction.DEVICE_TO_HOST)
class Event(NamedTuple):
    """Something happened. Numbers run 1, 2, 3 … with no gaps: a gap means a lost frame,
    recovered with GET_EVENTS."""

    number: Annotated[int, U32, Doc("1, 2, 3, … since boot")]
    time_us: Annotated[int, U64, Doc("device time")]
    code: Annotated[int, U8, EnumOf(EventCode), Doc("what happened")]
    value: Annotated[int, I32, Doc("code-specific, see EventCode")]


@message(0x87, Direction.DEVICE_TO_HOST)
class EventLog(NamedTuple):
    """Reply to GET_EVENTS: stored events from the asked number on (the device keeps the
    newest 256)."""

    last_event_number: Annotated[int, U32, Doc("number of the newest event")]
    events: Annotated[bytes, Array(EventRecord, 12), Doc("oldest first")]


Message = (
    Hello
    | Heartbeat
    | Home
    | Move
    | Rotate
    | Stop
    | EStop
    | ClearFault
    | SetLimits
    | SetTelemetry
    | GetStatus
    | GetEvents
    | Bye
    | Tare
    | SetLoadCell
    | Identity
    | Ack
    | Nak
    | Status
    | Telemetry
    | Event
    | EventLog
)
"""Any protocol message (each is a NamedTuple: immutable, cheap to build, fields in wire order)."""

MESSAGES: tuple[type[Message], ...] = (
    Hello,
    Heartbeat,
    Home,
    Move,
    Rotate,
    Stop,
    EStop,
    ClearFault,
    SetLimits,
    SetTelemetry,
    GetStatus,
    GetEvents,
    Bye,
    Tare,
    SetLoadCell,
    Identity,
    Ack,
    Nak,
    Status,
    Telemetry,
    Event,
    EventLog,
)
RECORDS: tuple[type[Any], ...] = (TelemetrySample, EventRecord)
COMMANDS: tuple[type[Message], ...] = tuple(
    m for m in MESSAGES if DIRECTION[m] is Direction.HOST_TO_DEVICE
)
# The reply each command gets (echoing its seq); every other command gets ACK or NAK.
REPLY_TO: dict[type[Message], type[Message]] = {
    Hello: Identity,
    GetStatus: Status,
    GetEvents: EventLog,
}
# Commands that make something move; refused on a schema mismatch.
MOTION_COMMANDS: tuple[type[Message], ...] = (Home, Move, Rotate)
# Sent with seq 0 and never answered; a receiver ignores their seq (protocol §2).
UNSEQUENCED: tuple[type[Message], ...] = (Heartbeat, Telemetry, Event)

BY_ID: dict[int, type[Message]] = {MSG_ID[m]: m for m in MESSAGES}
BY_NAME: dict[str, type[Message]] = {m.__name__: m for m in MESSAGES}
assert len(BY_ID) == len(MESSAGES), "duplicate message id"


def _typed_eq(self: Any, other: Any) -> bool:
    # Two messages are equal only if they are the same message with the same fields:
    # tuple equality alone would call Stop() == EStop().
    same: bool = type(self) is type(other) and tuple(self) == tuple(other)
    return same


def _typed_ne(self: Any, other: Any) -> bool:
    return not _typed_eq(self, other)


for _cls in (*MESSAGES, *RECORDS):
    _cls.__eq__ = _typed_eq  # type: ignore[method-assign]
    _cls.__ne__ = _typed_ne  # type: ignore[method-assign]
    _cls.__hash__ = tuple.__hash__  # type: ignore[method-assign]

SAMPLE_DTYPE: Any = record_dtype(TelemetrySample)
EVENT_DTYPE: Any = record_dtype(EventRecord)


def sample_array(msg: Telemetry) -> Any:
    """A TELEMETRY batch's samples as a numpy structured array (fields of TelemetrySample)."""
    return np.frombuffer(msg.samples, dtype=SAMPLE_DTYPE)


def event_array(msg: EventLog) -> Any:
    """The events of an EVENT_LOG as a numpy structured array (fields as in EventRecord)."""
    return np.frombuffer(msg.events, dtype=EVENT_DTYPE)


def pack_samples(samples: Any) -> bytes:
    """Records (a structured array or a sequence of TelemetrySample tuples) to packed bytes."""
    return np.asarray(samples, dtype=SAMPLE_DTYPE).tobytes() if len(samples) else b""


def pack_events(events: Any) -> bytes:
    """Records (a structured array or a sequence of EventRecord tuples) to packed bytes."""
    return np.asarray(events, dtype=EVENT_DTYPE).tobytes() if len(events) else b""


# ---------------------------------------------------------------- framing constants

HEADER_FORMAT = "<BBBH"  # version, msg_id, flags, seq
HEADER_BYTES = 5
CRC_BYTES = 4
MAX_PAYLOAD_BYTES = 250
MAX_RAW_FRAME_BYTES = HEADER_BYTES + MAX_PAYLOAD_BYTES + CRC_BYTES  # 259
# COBS adds one byte per 254 and one more; the 0x00 delimiter is not counted.
MAX_ENCODED_FRAME_BYTES = MAX_RAW_FRAME_BYTES + MAX_RAW_FRAME_BYTES // 254 + 1  # 261
CRC_NAME = "CRC-32/ISO-HDLC"
CRC_POLY = 0x04C11DB7
CRC_INIT = 0xFFFFFFFF
CRC_XOROUT = 0xFFFFFFFF
CRC_CHECK = 0xCBF43926  # CRC of b"123456789"
CRC_RESIDUE = 0x2144DF1C  # CRC over (data + its CRC, little-endian) for a good frame

# force_mn of a sample or STATUS when the device has no reading (§7 Sensor faults: a
# latched LOAD_CELL, or cleared and no good conversion since): no force at all
NO_FORCE_MN = -(2**31)
DEFAULT_WATCHDOG_MS = 200
HOST_HEARTBEAT_MS = 50
DEVICE_HEARTBEAT_MS = 100
REPLY_CACHE_SIZE = 32
EVENT_LOG_SIZE = 256
USB_VID = 0x1209  # pid.codes open-source VID
USB_PID = 0x4E44  # "ND"


def fields_of(cls: type[Any]) -> tuple[FieldSpec, ...]:
    return _FIELDS[cls]


_FIELDS: dict[type[Any], tuple[FieldSpec, ...]] = {
    cls: field_specs(cls) for cls in (*MESSAGES, *RECORDS)
}


def payload_size_bytes(cls: type[Any]) -> tuple[int, int]:
    """(fixed bytes, bytes per array record) of a message's payload."""
    fixed = 0
    per_record = 0
    for spec in _FIELDS[cls]:
        if isinstance(spec.wire, Array):
            fixed += 1
            per_record = int(record_dtype(spec.wire.record).itemsize)
        elif isinstance(spec.wire, Int | Str):
            fixed += spec.wire.size_bytes
    return fixed, per_record


def _wire_name(spec: FieldSpec) -> str:
    if isinstance(spec.wire, Array):
        return f"{spec.wire.record.__name__}[<={spec.wire.max_count}]"
    return spec.wire.name


def canonical_schema() -> dict[str, Any]:
    """Everything that defines the wire format, in a stable form (the hash's input)."""

    def fields(cls: type[Any]) -> list[dict[str, Any]]:
        out = []
        for s in _FIELDS[cls]:
            item: dict[str, Any] = {"name": s.name, "type": _wire_name(s)}
            if s.range:
                item["range"] = [s.range.lo, s.range.hi]
            if s.enum:
                item["enum"] = s.enum.enum_type.__name__
            out.append(item)
        return out

    return {
        "protocol_version": PROTOCOL_VERSION,
        "framing": {
            "header": HEADER_FORMAT,
            "max_payload": MAX_PAYLOAD_BYTES,
            "crc": CRC_NAME,
            "cobs_delimiter": 0,
        },
        "enums": {e.__name__: {m.name: int(m.value) for m in e} for e in ENUMS},
        "records": {r.__name__: fields(r) for r in RECORDS},
        "messages": [
            {
                "id": MSG_ID[m],
                "name": m.__name__,
                "direction": DIRECTION[m].value,
                "reply": reply_name(m),
                "fields": fields(m),
            }
            for m in MESSAGES
        ],
    }


def reply_name(cls: type[Message]) -> str | None:
    """The reply a message gets, by name (None: it gets no reply)."""
    if cls in REPLY_TO:
        return REPLY_TO[cls].__name__
    if DIRECTION[cls] is Direction.HOST_TO_DEVICE and cls is not Heartbeat:
        return "Ack"  # or Nak
    return None


def canonical_json(schema: dict[str, Any] | None = None) -> str:
    """The canonical schema as the exact text hashed (docs/protocol.md §3): keys sorted,
    no whitespace, non-ASCII escaped as \\uXXXX, integers in decimal."""
    return json.dumps(
        canonical_schema() if schema is None else schema,
        sort_keys=True,
        separators=(",", ":"),
        ensure_ascii=True,
    )


def compute_schema_hash(schema: dict[str, Any] | None = None) -> int:
    """First 4 bytes (big-endian) of SHA-256 over the canonical JSON of the schema."""
    text = canonical_json(schema)
    return int.from_bytes(hashlib.sha256(text.encode("ascii")).digest()[:4], "big")


SCHEMA_HASH = compute_schema_hash()


def _check_sizes() -> None:
    for m in MESSAGES:
        fixed, per_record = payload_size_bytes(m)
        arrays = [s.wire for s in _FIELDS[m] if isinstance(s.wire, Array)]
        worst = fixed + (per_record * arrays[0].max_count if arrays else 0)
        assert worst <= MAX_PAYLOAD_BYTES, f"{m.__name__} payload can reach {worst} B"
        for s in _FIELDS[m]:
            if s.range and isinstance(s.wire, Int):
                assert s.wire.lo <= s.range.lo <= s.range.hi <= s.wire.hi, s


_check_sizes()
