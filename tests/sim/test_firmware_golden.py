"""The device's bytes, pinned: a scripted session on fixed lesions and seeds must give the
same byte stream as when the hash below was recorded.

This is the guard for refactoring and speeding up the firmware core (firmware/core, run by
the simulator through sim_device/core.py) and the rig (sim_device/rig_model.py, physics.py): any
change to what the device
sends — a telemetry sample's rounding, an event's tick, a heartbeat's time — changes the
hash. A change of behaviour that is meant must re-record it (run this file as a script:
it prints the hashes) and say why in its commit. The one field that is not the device's
behaviour, the schema hash IDENTITY carries, is hashed as 0 (its frame re-encoded so), so
that a schema change elsewhere does not move the pin; every other byte is hashed as sent.

The script talks to ``Device`` directly (no host library, no pump), so only the device's
behaviour is pinned: commands at fixed ticks, host heartbeats every 50 ms, both ways of
running the device (``run_ticks`` with its idle skip, ``run_until_output`` as ``sim://``
reads do), and every path a run takes — homing, continuous and oscillating rotation, an
advance through calcium, STOP, SET_LIMITS, queries, a replayed command, a lost motor
(stall), e-stop, clear, a watchdog trip while moving and the session ending at rest.
"""

from __future__ import annotations

import hashlib
from collections.abc import Callable

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
    Stop,
    StreamDecoder,
    encode,
)
from protocol.schema import Message
from sim_device.device import Device, DeviceOptions

# (lesion, seed, extra options) → sha256 of everything the device sent
GOLDEN: dict[tuple[str, int, str], str] = {
    ("cohort-2021-01", 11, ""): "ffbd5b62ee6931dca57e13a85762f338ef87a49d435a5c045a1bd54f1e6b05a7",
    ("cohort-2021-07", 22, ""): "70796b1e068f8f9090c696d5cbc565adc77af97225edbf86333c3dfd97c52f53",
    ("cohort-2021-15", 33, "motor_stall@9.5"): (
        "3c74555f1fac58e2874c2680da76bbed02e2ec65d63cff01097b4cca94abdd24"
    ),
}


def _schema_hash_zeroed(data: bytes) -> bytes:
    """``data`` with every IDENTITY frame re-encoded with schema_hash 0 (frames are the
    chunks between 0x00 delimiters; a frame never straddles two takes: the device sends
    whole frames)."""
    chunks = data.split(b"\x00")
    for i, chunk in enumerate(chunks):
        if chunk and len(chunk) > 40:  # IDENTITY is the one long reply; telemetry is longer
            frames = StreamDecoder().feed(chunk + b"\x00")
            if frames and isinstance(frames[0].message, Identity):
                f = frames[0]
                ident = frames[0].message._replace(schema_hash=0)
                chunks[i] = encode(ident, f.seq, f.flags)[:-1]
    return b"\x00".join(chunks)


class Script:
    """A host that sends commands at chosen ticks and heartbeats every 50 ms."""

    def __init__(self, dev: Device) -> None:
        self.dev = dev
        self.fw = dev.firmware
        self.seq = 0
        self.sha = hashlib.sha256()
        self.n_bytes = 0
        self.heartbeats = True
        self._next_hb_us = 0

    def take(self) -> None:
        data = self.dev.host_take()
        self.sha.update(_schema_hash_zeroed(data) if b"\x00" in data else data)
        self.n_bytes += len(data)

    def send(self, msg: Message, seq: int | None = None) -> None:
        if seq is None:
            self.seq += 1
            seq = self.seq
        self.dev.host_write(encode(msg, seq))

    def run_ms(self, ms: int) -> None:
        """Let ``ms`` ms pass in 50 ms slices (heartbeats between), reading at each."""
        self._pass(ms, self.fw.run_ticks)

    def read_ms(self, ms: int) -> None:
        """Like ``run_ms`` but as a ``sim://`` read does: run until output, take it."""
        self._pass(ms, self.fw.run_until_output)

    def _pass(self, ms: int, run: Callable[[int], object]) -> None:
        end_us = self.fw.clock.now_us + ms * 1000
        while self.fw.clock.now_us < end_us:
            now = self.fw.clock.now_us
            if self.heartbeats and now >= self._next_hb_us:
                self.dev.host_write(encode(Heartbeat((now // 1000) & 0xFFFF_FFFF)))
                self._next_hb_us = now + 50_000
            run(min(50, (end_us - now) // 1000))
            self.take()


def session(lesion: str, seed: int, extra: str) -> tuple[str, int]:
    """The scripted session; returns (sha256 hex, bytes sent)."""
    fault_at = None
    if extra:
        fault, at_s = extra.split("@")
        fault_at = (fault, float(at_s))
    options = DeviceOptions(lesion=lesion, seed=seed)
    dev = Device(options)
    if fault_at is not None:
        rig = dev.rig
        name = fault_at[0]
        dev.firmware.at(round(fault_at[1] * 1e6), lambda: rig.inject(name))
    s = Script(dev)
    step: Callable[[int], None] = s.run_ms
    s.run_ms(30)  # boot: heartbeats from the device, nothing else
    s.send(Hello(PROTOCOL_VERSION, SCHEMA_HASH))
    s.send(GetStatus())
    s.send(SetTelemetry(1000, 10))
    s.run_ms(20)
    s.send(Home(5000))
    s.read_ms(1500)
    s.send(SetLimits(120_000, 30_000, 27_000, 5))
    s.send(Rotate(RotateMode.OSCILLATE, 20_000, 9000))
    s.run_ms(400)
    s.send(Rotate(RotateMode.CONTINUOUS, 30_000, 0))
    s.send(Move(MoveMode.ABSOLUTE, 8_000, 2000))
    s.read_ms(5000)  # target reached
    s.send(SetTelemetry(500, 7))
    s.send(Move(MoveMode.RELATIVE, 6_000, 1000))
    seq_before = s.seq
    s.run_ms(1000)
    s.send(Move(MoveMode.RELATIVE, 6_000, 1000), seq=seq_before)  # a repeat: replayed
    s.send(GetEvents(1, 12))
    s.run_ms(2500)
    s.send(Stop())
    s.read_ms(300)
    s.send(SetTelemetry(1000, 10))
    s.send(Move(MoveMode.ABSOLUTE, 60_000, 1500))
    for i in range(40):  # into the calcium, polling status as a control loop does
        step = s.read_ms if i % 2 else s.run_ms
        step(600)
        s.send(GetStatus())
        if i == 8:  # a limit tightened just ahead of the needle: LIMIT_REACHED
            limit_um = round(s.fw.adv.pos) + 300
            s.send(SetLimits(limit_um, 30_000, 27_000, 5))
        if i == 10:  # ... and lifted again: on into the calcium
            s.send(SetLimits(120_000, 30_000, 27_000, 5))
            s.send(Move(MoveMode.ABSOLUTE, 60_000, 1500))
    s.send(EStop())
    s.run_ms(50)
    s.send(ClearFault())
    s.send(Home(5000))
    s.read_ms(12_000)
    s.send(Rotate(RotateMode.BY_ANGLE, 60_000, 36_000))
    s.send(Move(MoveMode.ABSOLUTE, 5_000, 2000))
    s.run_ms(100)
    s.heartbeats = False  # the host goes quiet while moving: watchdog trip
    s.read_ms(500)
    s.heartbeats = True
    s.send(ClearFault())
    s.run_ms(200)
    s.heartbeats = False  # ... and quiet at rest: the session ends
    s.run_ms(1000)
    s.read_ms(300)
    return s.sha.hexdigest(), s.n_bytes


def test_device_bytes_match_the_golden_hash() -> None:
    for (lesion, seed, extra), expected in GOLDEN.items():
        digest, n_bytes = session(lesion, seed, extra)
        assert n_bytes > 100_000, (lesion, n_bytes)
        assert digest == expected, f"{lesion} seed {seed} {extra}: {digest} ({n_bytes} B)"


if __name__ == "__main__":
    for lesion, seed, extra in GOLDEN:
        print(lesion, seed, extra, *session(lesion, seed, extra))
