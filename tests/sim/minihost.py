"""A minimal protocol-v1 host for the simulator's own tests.

Not the host library's client: no retransmission, no reader thread — it reads only while it
waits, on its own thread. Its I/O is the library's Pump (firmware_host/pump.py) run inline:
on ``sim://`` every wait runs the device in virtual time; on a real pty or socket it reads
the port with the machine's clock. Heartbeats go out while it waits (``heartbeat = False``
stops them); every telemetry batch and event it sees is kept.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from firmware_host.errors import LinkLost
from firmware_host.pump import Pump
from firmware_host.transports.serial import SerialTransport
from protocol import (
    HOST_HEARTBEAT_MS,
    PROTOCOL_VERSION,
    SCHEMA_HASH,
    Event,
    Frame,
    GetStatus,
    Heartbeat,
    Hello,
    Status,
    Telemetry,
    encode,
)
from protocol.schema import Message

_HEARTBEAT_S = HOST_HEARTBEAT_MS / 1000.0
_NOT_REPLIES = (Telemetry, Event, Heartbeat)


class NoReply(TimeoutError):
    pass


class MiniHost:
    def __init__(self, port: Any, *, heartbeat: bool = True) -> None:
        self.port = port  # the pyserial port (sim://: its ``device`` for fault injection)
        self._pump = Pump(SerialTransport(str(port.port), port), self._take)
        self._pump.heartbeats_enabled = heartbeat
        self.decoder = self._pump.decoder
        self.virtual = self._pump.virtual
        self.clock: Callable[[], float] = self._pump.now
        self.seq = 0
        self.telemetry: list[Frame] = []
        self.events: list[Frame] = []
        self.others: list[Frame] = []
        self._inbox: list[Frame] = []  # replies not yet claimed by wait_reply

    @property
    def heartbeat(self) -> bool:
        return self._pump.heartbeats_enabled

    @heartbeat.setter
    def heartbeat(self, on: bool) -> None:
        self._pump.heartbeats_enabled = on

    def _take(self, frames: list[Frame], n_bytes: int) -> None:
        for f in frames:
            kind = type(f.message)
            if kind is Telemetry:
                self.telemetry.append(f)
            elif kind is Event:
                self.events.append(f)
            elif kind is not Heartbeat:
                self._inbox.append(f)

    def next_seq(self) -> int:
        self.seq = self.seq % 0xFFFF + 1
        return self.seq

    def send(self, msg: Message, seq: int | None = None, flags: int = 0) -> int:
        if seq is None:
            seq = self.next_seq()
        self._pump.write(encode(msg, seq, flags))
        return seq

    def hello(self, schema_hash: int = SCHEMA_HASH) -> Frame:
        return self.command(Hello(PROTOCOL_VERSION, schema_hash))

    def _run(self, timeout_s: float) -> None:
        pump = self._pump
        if not self.virtual:
            pump.tick(pump.now())  # no reader thread: our waits send the heartbeats
        try:
            pump.run(min(timeout_s, _HEARTBEAT_S))
        except LinkLost as exc:
            raise ConnectionError(str(exc)) from exc

    def _file_replies(self, seq: int | None) -> Frame | None:
        """The reply to ``seq`` if it came; every other reply goes to ``others``."""
        found = None
        for f in self._inbox:
            if found is None and seq is not None and f.seq == seq:
                found = f
            elif f.seq:
                self.others.append(f)
        self._inbox.clear()
        return found

    def command(
        self, msg: Message, timeout_s: float = 1.0, seq: int | None = None, flags: int = 0
    ) -> Frame:
        """Send a command, wait for the reply echoing its seq (heartbeats kept going)."""
        seq = self.send(msg, seq, flags)
        return self.wait_reply(seq, timeout_s)

    def status(self) -> Status:
        """GET_STATUS, answered."""
        msg = self.command(GetStatus()).message
        assert isinstance(msg, Status), msg
        return msg

    def wait_reply(self, seq: int, timeout_s: float = 1.0) -> Frame:
        deadline = self.clock() + timeout_s
        while True:
            found = self._file_replies(seq)
            if found is not None:
                return found
            now = self.clock()
            if now >= deadline:
                raise NoReply(f"no reply to seq {seq} within {timeout_s} s")
            self._run(deadline - now)

    def pump(self, seconds: float, until: Callable[[], bool] | None = None) -> None:
        """Let ``seconds`` pass (or until ``until()``), reading and heartbeating."""
        deadline = self.clock() + seconds
        while True:
            self._file_replies(None)
            now = self.clock()
            if now >= deadline or (until is not None and until()):
                return
            self._run(deadline - now)

    def event_codes(self) -> list[int]:
        return [f.message.code for f in self.events if isinstance(f.message, Event)]
