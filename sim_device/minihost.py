"""A minimal protocol-v1 host for the simulator's own tests and benchmark.

Not the host library (that is firmware_host/): no retransmission, no threads. It
works on any pyserial-like port — ``sim://`` (virtual time: every read runs the
device) or a real pty/socket (machine time) — sends heartbeats while it waits, and
keeps every telemetry batch and event it sees.
"""

from __future__ import annotations

import time
from collections.abc import Callable
from typing import Any

from protocol import (
    HOST_HEARTBEAT_MS,
    PROTOCOL_VERSION,
    SCHEMA_HASH,
    Event,
    Frame,
    Heartbeat,
    Hello,
    StreamDecoder,
    Telemetry,
    encode,
)
from protocol.schema import Message


class NoReply(TimeoutError):
    pass


class MiniHost:
    def __init__(self, port: Any, *, heartbeat: bool = True) -> None:
        self.port = port
        self.decoder = StreamDecoder()
        self.virtual = bool(getattr(port, "virtual", False))
        self.clock: Callable[[], float] = port.clock.monotonic if self.virtual else time.monotonic
        self.seq = 0
        self.heartbeat = heartbeat
        self.telemetry: list[Frame] = []
        self.events: list[Frame] = []
        self.others: list[Frame] = []
        self._last_hb_s = -1.0

    def next_seq(self) -> int:
        self.seq = self.seq % 0xFFFF + 1
        return self.seq

    def send(self, msg: Message, seq: int | None = None, flags: int = 0) -> int:
        if seq is None:
            seq = self.next_seq()
        self.port.write(encode(msg, seq, flags))
        return seq

    def hello(self, schema_hash: int = SCHEMA_HASH) -> Frame:
        return self.command(Hello(PROTOCOL_VERSION, schema_hash))

    def _beat(self, now_s: float) -> None:
        if self.heartbeat and now_s - self._last_hb_s >= HOST_HEARTBEAT_MS / 1000:
            self.port.write(encode(Heartbeat(int(now_s * 1000) & 0xFFFF_FFFF)))
            self._last_hb_s = now_s

    def _read(self, timeout_s: float) -> list[Frame]:
        port = self.port
        port.timeout = max(timeout_s, 0.0)
        if self.virtual:
            data = port.read(65536)  # returns whatever the device sent first
        else:
            data = port.read(1)  # a real port's read waits for all it was asked for
            if data:
                waiting = port.in_waiting
                if waiting:
                    data += port.read(waiting)
        frames = self.decoder.feed(data) if data else []
        for f in frames:
            kind = type(f.message)
            if kind is Telemetry:
                self.telemetry.append(f)
            elif kind is Event:
                self.events.append(f)
        return frames

    def command(
        self, msg: Message, timeout_s: float = 1.0, seq: int | None = None, flags: int = 0
    ) -> Frame:
        """Send a command, wait for the reply echoing its seq (heartbeats kept going)."""
        seq = self.send(msg, seq, flags)
        return self.wait_reply(seq, timeout_s)

    def wait_reply(self, seq: int, timeout_s: float = 1.0) -> Frame:
        deadline = self.clock() + timeout_s
        while True:
            now = self.clock()
            if now >= deadline:
                raise NoReply(f"no reply to seq {seq} within {timeout_s} s")
            self._beat(now)
            for f in self._read(min(deadline - now, HOST_HEARTBEAT_MS / 1000)):
                if f.seq == seq and type(f.message) not in (Telemetry, Event, Heartbeat):
                    return f
                if f.seq and type(f.message) not in (Telemetry, Event, Heartbeat):
                    self.others.append(f)

    def pump(self, seconds: float, until: Callable[[], bool] | None = None) -> None:
        """Let ``seconds`` pass (or until ``until()``), reading and heartbeating."""
        deadline = self.clock() + seconds
        while True:
            now = self.clock()
            if now >= deadline or (until is not None and until()):
                return
            self._beat(now)
            for f in self._read(min(deadline - now, HOST_HEARTBEAT_MS / 1000)):
                if f.seq and type(f.message) not in (Telemetry, Event, Heartbeat):
                    self.others.append(f)

    def event_codes(self) -> list[int]:
        return [f.message.code for f in self.events if isinstance(f.message, Event)]
