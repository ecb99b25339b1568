"""Lock-step differential test: the Python firmware (sim_device/firmware.py) and the C core
(sim_device/core.py over firmware/core) on the same physics, fed the same bytes, must send
the same bytes.

Each device gets its own rig built from the same lesion and seed; the commanded positions
are rounded to 1e-6 mm / 1e-6 ° before the physics sees them, so a last-bit difference in
how each side turns its motor count into millimetres (floats in Python, integers in C)
cannot tip an encoder count one way in one rig and the other way in the other. Every
frame is then compared field by field, but for the differences that were settled
(docs/firmware.md, "One core"):

* IDENTITY's firmware version: the core's (1.0.0), not the copy's (0.3.0);
* positions on a half unit round up in the core (floor(x + ½)), half to even in the copy:
  telemetry's and STATUS's commanded depth may differ by 1 µm, nothing else may.

The host's bytes are handed to both devices and parsed at once (``poll_input``), as a
UART handler does between ticks: the copy parses bytes left for the next tick at that
tick's time, the core at the last tick's (the time between is not the device's).
"""

from __future__ import annotations

import struct
from typing import Any

from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from protocol import (
    PROTOCOL_VERSION,
    SCHEMA_HASH,
    ClearFault,
    EStop,
    GetEvents,
    GetStatus,
    Heartbeat,
    Hello,
    Home,
    Identity,
    Move,
    MoveMode,
    Rotate,
    RotateMode,
    SetLimits,
    SetTelemetry,
    Status,
    Stop,
    StreamDecoder,
    Telemetry,
    frame_body,
    sample_array,
)
from protocol.codec import _CODECS
from protocol.schema import HEADER_FORMAT, MSG_ID, Message
from sim_device.core import CoreFirmware
from sim_device.device import Device, DeviceOptions
from sim_device.firmware import Firmware


class QuantisedRig:
    """The rig, fed positions rounded to 1e-6 of its units (see the module doc)."""

    def __init__(self, rig: Any) -> None:
        self.__dict__["_rig"] = rig

    def __getattr__(self, name: str) -> Any:
        return getattr(self._rig, name)

    def __setattr__(self, name: str, value: Any) -> None:
        setattr(self._rig, name, value)

    def step(self, dt_s: float, motor_depth_mm: float, angle_deg: float) -> None:
        self._rig.step(dt_s, round(motor_depth_mm, 6), round(angle_deg, 6))


def device(options: DeviceOptions, core: bool) -> Device:
    dev = Device(options)
    kind: Any = CoreFirmware if core else Firmware
    dev.firmware = kind(
        QuantisedRig(dev.rig),
        clock=dev.clock,
        watchdog_ms=options.watchdog_ms,
        defect=options.defect,
        serial_number=options.serial_number,
        loadcell_stuck_check=options.noise > 0,
    )
    return dev


def differences(a: bytes, b: bytes) -> list[str]:
    """What differs between two device byte streams, beyond the settled differences."""
    fa, fb = StreamDecoder().feed(a), StreamDecoder().feed(b)
    out = []
    if len(fa) != len(fb):
        out.append(f"{len(fa)} frames vs {len(fb)}")
    for i, (x, y) in enumerate(zip(fa, fb, strict=False)):
        mx, my = x.message, y.message
        if type(mx) is not type(my):
            out.append(f"frame {i}: {mx} vs {my}")
            continue
        if (x.seq, x.flags) != (y.seq, y.flags):
            out.append(f"frame {i}: seq/flags {x.seq}/{x.flags} vs {y.seq}/{y.flags}")
        if isinstance(mx, Telemetry) and isinstance(my, Telemetry):
            sx, sy = sample_array(mx), sample_array(my)
            for name in sx.dtype.names or ():
                dx, dy = sx[name].astype(int), sy[name].astype(int)
                slack = 1 if name == "commanded_depth_um" else 0
                if len(dx) != len(dy) or (abs(dx - dy) > slack).any():
                    out.append(f"frame {i}: Telemetry.{name} {dx.tolist()} vs {dy.tolist()}")
            if mx.first_sample_number != my.first_sample_number:
                out.append(f"frame {i}: first_sample_number differs")
            continue
        for name in mx._fields:
            vx, vy = getattr(mx, name), getattr(my, name)
            if vx == vy:
                continue
            if isinstance(mx, Identity) and name.startswith("firmware_"):
                continue
            if isinstance(mx, Status) and name == "commanded_depth_um" and abs(vx - vy) <= 1:
                continue
            out.append(f"frame {i}: {type(mx).__name__}.{name} {vx} vs {vy}")
    return out


class Pair:
    """The two devices, driven in lock step."""

    def __init__(self, options: DeviceOptions) -> None:
        self.devs = (device(options, core=False), device(options, core=True))
        self.sent = (bytearray(), bytearray())
        self.seq = 0

    def write(self, data: bytes) -> None:
        for dev in self.devs:
            dev.host_write(data)
            dev.firmware.poll_input()
        self.take()

    def send(self, msg: Message, seq: int | None = None, flags: int = 0) -> None:
        if seq is None:
            self.seq = self.seq % 0xFFFF + 1
            seq = self.seq
        # packed without the encoder's range checks: out-of-range fields are wanted here
        header = struct.pack(HEADER_FORMAT, PROTOCOL_VERSION, MSG_ID[type(msg)], flags, seq)
        self.write(frame_body(header + _CODECS[type(msg)].payload_struct.pack(*msg)))

    def run_ms(self, ms: int, heartbeat: bool = True) -> None:
        """Let ms pass, 50 ms at a time, with host heartbeats between unless silent."""
        for dev in self.devs:
            assert dev.clock.now_us == self.devs[0].clock.now_us
        end_us = self.devs[0].clock.now_us + ms * 1000
        while self.devs[0].clock.now_us < end_us:
            if heartbeat:
                self.send(Heartbeat((self.devs[0].clock.now_us // 1000) & 0xFFFF_FFFF), seq=0)
            n = min(50, (end_us - self.devs[0].clock.now_us) // 1000)
            for dev in self.devs:
                dev.firmware.run_ticks(n)
            self.take()

    def take(self) -> None:
        for dev, sent in zip(self.devs, self.sent, strict=True):
            sent += dev.host_take()

    def differences(self) -> list[str]:
        return differences(bytes(self.sent[0]), bytes(self.sent[1]))


def test_a_scripted_session_is_the_same_on_both() -> None:
    """The golden session's path (homing, oscillation, an advance through calcium, limits,
    a replay, e-stop, a watchdog trip moving, the session ending at rest)."""
    p = Pair(DeviceOptions(lesion="cohort-2021-01", seed=11))
    p.run_ms(30)
    p.send(Hello(PROTOCOL_VERSION, SCHEMA_HASH))
    p.send(GetStatus())
    p.send(SetTelemetry(1000, 10))
    p.send(Home(5000))
    p.run_ms(1500)
    p.send(SetLimits(120_000, 30_000, 27_000, 5))
    p.send(Rotate(RotateMode.OSCILLATE, 20_000, 9000))
    p.run_ms(400)
    p.send(Rotate(RotateMode.CONTINUOUS, 30_000, 0))
    p.send(Move(MoveMode.ABSOLUTE, 8_000, 2000))
    p.run_ms(5000)
    p.send(Move(MoveMode.RELATIVE, 6_000, 1000))
    p.send(Move(MoveMode.RELATIVE, 6_000, 1000), seq=p.seq, flags=1)
    p.send(GetEvents(1, 12))
    p.run_ms(2500)
    p.send(Move(MoveMode.ABSOLUTE, 60_000, 1500))
    for _ in range(20):
        p.run_ms(600)
        p.send(GetStatus())
    p.send(EStop())
    p.send(ClearFault())
    p.send(Home(5000))
    p.run_ms(12_000)
    p.send(Rotate(RotateMode.BY_ANGLE, 60_000, 36_000))
    p.send(Move(MoveMode.ABSOLUTE, 5_000, 2000))
    p.run_ms(100)
    p.run_ms(500, heartbeat=False)
    p.send(ClearFault())
    p.run_ms(1500, heartbeat=False)
    assert len(p.sent[1]) > 100_000
    assert p.differences() == []


# ------------------------------------------------------------ generated sessions

_i32 = st.integers(-(2**31), 2**31 - 1)
_commands = st.one_of(
    st.builds(Hello, st.just(PROTOCOL_VERSION), st.sampled_from([SCHEMA_HASH, 0xDEAD])),
    st.builds(Home, st.sampled_from([0, 1, 5000, 20_000, 20_001])),
    st.builds(
        Move,
        st.sampled_from(list(MoveMode)),
        st.one_of(st.integers(-2000, 30_000), _i32),
        st.sampled_from([0, 1, 500, 2000, 5000, 5001]),
    ),
    st.builds(
        Rotate,
        st.sampled_from(list(RotateMode)),
        st.sampled_from([-600_000, -30_000, 0, 1, 20_000, 120_000, 120_001]),
        st.one_of(st.integers(-36_000, 36_000), _i32),
    ),
    st.builds(Stop),
    st.builds(EStop),
    st.builds(ClearFault),
    st.builds(
        SetLimits,
        st.sampled_from([0, 625, 5_000, 150_000, 150_001]),
        st.sampled_from([1, 500, 30_000, 40_000, 40_001]),
        st.sampled_from([1, 300, 27_000, 40_001]),
        st.sampled_from([0, 1, 5, 1000]),
    ),
    st.builds(SetTelemetry, st.sampled_from([0, 1, 7, 333, 1000, 1001]), st.integers(0, 11)),
    st.builds(GetStatus),
    st.builds(GetEvents, st.integers(0, 40), st.integers(0, 13)),
)
_actions = st.one_of(
    st.tuples(st.just("send"), _commands),
    st.tuples(st.just("resend"), st.booleans()),  # with or without RETRANSMIT
    st.tuples(st.just("garbage"), st.binary(min_size=1, max_size=40)),
    st.tuples(st.just("run"), st.integers(1, 2000)),
    st.tuples(st.just("silence"), st.integers(1, 600)),
)


@settings(
    max_examples=300,
    deadline=None,
    suppress_health_check=[HealthCheck.too_slow, HealthCheck.data_too_large],
)
@given(
    lesion=st.sampled_from(["soft-stenosis", "cohort-2021-03", "uncrossable"]),
    seed=st.integers(0, 3),
    watchdog_ms=st.sampled_from([50, 200]),
    boot_ms=st.sampled_from([0, 1, 99, 100, 101, 450]),
    actions=st.lists(_actions, min_size=1, max_size=30),
)
def test_generated_sessions_are_the_same_on_both(
    lesion: str, seed: int, watchdog_ms: int, boot_ms: int, actions: list[tuple[str, Any]]
) -> None:
    """Random command streams from a homed device (and from boot): retransmits with and
    without the flag, garbage, silence (watchdog trips, sessions ending), e-stops."""
    p = Pair(DeviceOptions(lesion=lesion, seed=seed, watchdog_ms=watchdog_ms))
    p.run_ms(boot_ms, heartbeat=False)  # the device alone after power-up
    p.send(Hello(PROTOCOL_VERSION, SCHEMA_HASH))
    if seed % 2:
        p.send(Home(5000))
        p.run_ms(1500)
    last: tuple[Message, int] | None = None
    for kind, arg in actions:
        if kind == "send":
            p.send(arg)
            last = (arg, p.seq)
        elif kind == "resend" and last is not None:
            p.send(last[0], seq=last[1], flags=1 if arg else 0)
        elif kind == "garbage":
            p.write(arg)
        elif kind == "run":
            p.run_ms(arg)
        elif kind == "silence":
            p.run_ms(arg, heartbeat=False)
    p.run_ms(300)
    assert p.differences() == []
