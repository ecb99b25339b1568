"""The suite's own view of the wire: frames in and out of one port, and everything received.

A conformance suite must control exactly what goes on the wire — send a frame with a
chosen seq twice, send a field the host library would refuse, stop the heartbeat — so it
does not go through the host library's link. It uses the protocol codec on one of the host
library's transports (``firmware_host.transports.open_transport``: a device path,
``socket://``, ``usb://VID:PID``, ``sim://``), so ports open, fail and time out as they do
for every other program.

The I/O is the host library's Pump (firmware_host/pump.py), as for the link — two ways
to run, one API:

* virtual (``sim://`` in-process, ``transport.virtual``): no thread. Every wait pumps the
  port, whose ``read`` runs the device forward in virtual time; heartbeats go out from the
  pump by virtual time.
* real: the pump's reader thread decodes everything continuously and sends the
  heartbeats; waits block on a condition variable the frame callback notifies.

Everything received is kept: replies by seq, telemetry samples (numbered, device time
unwrapped to 64 bit), events in arrival order, so a test can judge afterwards from the
device's own record (device time), which holds on the simulator and on hardware alike.
"""

from __future__ import annotations

import contextlib
import struct
import threading
from collections import deque
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

import numpy as np

from firmware_host.errors import LinkLost
from firmware_host.pump import Pump
from firmware_host.transports import Clock, Transport
from protocol import (
    HEADER_FORMAT,
    HOST_HEARTBEAT_MS,
    PROTOCOL_VERSION,
    SAMPLE_DTYPE,
    Event,
    EventLog,
    Frame,
    HeaderFlags,
    Heartbeat,
    Telemetry,
    encode,
    frame_body,
    sample_array,
)
from protocol.schema import Message

HEARTBEAT_PERIOD_S = HOST_HEARTBEAT_MS / 1000.0
# Telemetry samples as the suite keeps them: the wire record plus its number and 64-bit time.
KEPT_SAMPLE_DTYPE = np.dtype(
    [(name, SAMPLE_DTYPE.fields[name][0]) for name in SAMPLE_DTYPE.names]
    + [("number", "<u8"), ("t_us", "<u8")]
)
_U32 = 1 << 32


class LinkClosed(ConnectionError):
    """The port went away (the far end closed, the cable was pulled)."""


@dataclass
class TelemetryLog:
    """Every telemetry sample received, with the counter's story told honestly."""

    batches: list[Any] = field(default_factory=list)  # KEPT_SAMPLE_DTYPE arrays
    count: int = 0
    lost: int = 0  # samples skipped by the counter (first_sample_number ahead of expected)
    repeated: int = 0  # samples whose number was not ahead of the previous (counter stuck)
    next_number: int | None = None
    empty_frames: int = 0  # TELEMETRY frames with no sample (protocol §7: never sent)
    _last_raw_us: int | None = None
    _wrap_us: int = 0

    def add(self, msg: Telemetry) -> None:
        raw = sample_array(msg)
        n = len(raw)
        if n == 0:
            self.empty_frames += 1
            return
        kept = np.empty(n, dtype=KEPT_SAMPLE_DTYPE)
        for name in SAMPLE_DTYPE.names:
            kept[name] = raw[name]
        first = int(msg.first_sample_number)
        kept["number"] = first + np.arange(n, dtype=np.uint64)
        # Sample time is u32 µs (wraps every 71.6 min): unwrap against the previous sample.
        t = raw["time_us"].astype(np.int64)
        steps = np.diff(
            np.concatenate(([self._last_raw_us if self._last_raw_us is not None else int(t[0])], t))
        )
        wraps = np.cumsum(steps < -(_U32 // 2)) * _U32
        kept["t_us"] = (t + self._wrap_us + wraps).astype(np.uint64)
        self._wrap_us += int(wraps[-1])
        self._last_raw_us = int(t[-1])
        if self.next_number is not None:
            if first > self.next_number:
                self.lost += first - self.next_number
            elif first < self.next_number:
                self.repeated += min(n, self.next_number - first)
        self.next_number = max(self.next_number or 0, first + n)
        self.batches.append(kept)
        self.count += n

    def mark(self) -> int:
        """A position in the log; ``since(mark)`` gives the samples received after it."""
        return len(self.batches)

    def since(self, mark: int = 0, until: int | None = None) -> Any:
        """The samples received after ``mark`` (and before the mark ``until``)."""
        batches = self.batches[mark:until]
        if not batches:
            return np.empty(0, dtype=KEPT_SAMPLE_DTYPE)
        return np.concatenate(batches)


@dataclass
class Received:
    """Everything the device sent, as the suite keeps it."""

    replies: dict[int, list[Frame]] = field(default_factory=dict)
    events: list[Event] = field(default_factory=list)
    dropped_events: list[Event] = field(default_factory=list)  # withheld on purpose (gap tests)
    telemetry: TelemetryLog = field(default_factory=TelemetryLog)
    heartbeat_uptimes_ms: list[int] = field(default_factory=list)  # the device's HEARTBEATs
    # the seqs seen on TELEMETRY, EVENT and HEARTBEAT frames (protocol §2: always 0)
    unsequenced_seqs: set[int] = field(default_factory=set)
    unsequenced_flags: set[int] = field(default_factory=set)  # and their header flags (0)
    last: deque[Frame] = field(default_factory=lambda: deque(maxlen=200))


class Wire:
    """Frames to and from one device; see the module docstring."""

    def __init__(self, transport: Transport) -> None:
        self.transport = transport
        self.name = transport.name
        self.virtual: bool = bool(transport.virtual)
        self.clock: Clock = transport.clock
        # the pyserial object behind a serial transport (sim://: the simulator's port, whose
        # ``device`` tests may use for fault injection); None for other transports
        self.port: Any = getattr(transport, "port", None)
        self.received = Received()
        self.drop_event_numbers: set[int] = set()
        self._next_seq = 0
        self._cond = threading.Condition()
        self._error: BaseException | None = None
        # (slice 20 ms: a real reader rechecks its timers that often; frames reach the suite
        # as soon as they arrive — no read coalescing: tests time the device's replies)
        self._pump = Pump(
            transport,
            self._take,
            heartbeat_s=HEARTBEAT_PERIOD_S,
            on_lost=self._on_lost,
            slice_s=0.02,
        )
        self.decoder = self._pump.decoder
        self._pump.start()

    @property
    def heartbeats_enabled(self) -> bool:
        return self._pump.heartbeats_enabled

    @heartbeats_enabled.setter
    def heartbeats_enabled(self, on: bool) -> None:
        self._pump.heartbeats_enabled = on

    # ------------------------------------------------------------------ sending

    def next_seq(self) -> int:
        self._next_seq = self._next_seq % 0xFFFF + 1  # 1..65535, never 0 (heartbeats)
        with self._cond:  # a seq used again after a wrap: forget its old replies
            self.received.replies.pop(self._next_seq, None)
        return self._next_seq

    def write(self, data: bytes) -> None:
        if self._error is not None:
            raise LinkClosed(f"{self.name}: {self._error}")
        try:
            self._pump.write(data)
        except LinkLost as exc:
            raise LinkClosed(str(exc)) from exc

    def send(self, msg: Message, seq: int | None = None, flags: int = 0) -> int:
        """Send one message; returns its seq (a fresh one unless given)."""
        if seq is None:
            seq = 0 if isinstance(msg, Heartbeat) else self.next_seq()
        self.write(encode(msg, seq=seq, flags=flags))
        return seq

    def send_raw(self, msg_id: int, payload: bytes, seq: int | None = None, flags: int = 0) -> int:
        """Send a hand-built frame (an unknown id, a field out of range): CRC and COBS are
        correct, the content is whatever the test wants."""
        if seq is None:
            seq = self.next_seq()
        body = struct.pack(HEADER_FORMAT, PROTOCOL_VERSION, msg_id, flags, seq) + payload
        self.write(frame_body(body))
        return seq

    def resend(self, msg: Message, seq: int) -> None:
        """The same command again with the same seq, marked as a retransmission."""
        self.send(msg, seq=seq, flags=HeaderFlags.RETRANSMIT)

    # ------------------------------------------------------------------ receiving

    def _on_lost(self, exc: LinkLost) -> None:
        self._error = exc
        with self._cond:
            self._cond.notify_all()

    def _take(self, frames: list[Frame], n_bytes: int = 0) -> None:
        rec = self.received
        with self._cond:
            for fr in frames:
                rec.last.append(fr)
                msg = fr.message
                if isinstance(msg, Telemetry | Event | Heartbeat):
                    rec.unsequenced_seqs.add(fr.seq)
                    rec.unsequenced_flags.add(fr.flags)
                if isinstance(msg, Telemetry):
                    rec.telemetry.add(msg)
                elif isinstance(msg, Event):
                    if msg.number in self.drop_event_numbers:
                        self.drop_event_numbers.discard(msg.number)
                        rec.dropped_events.append(msg)
                    else:
                        rec.events.append(msg)
                elif isinstance(msg, Heartbeat):
                    rec.heartbeat_uptimes_ms.append(msg.uptime_ms)
                else:
                    rec.replies.setdefault(fr.seq, []).append(fr)
            self._cond.notify_all()

    def _run(self, until_s: float) -> None:
        """Virtual mode: run the device (by reading) until ``until_s`` on its clock, or until
        something arrives; heartbeats go out on time."""
        try:
            self._pump.run(until_s - self.clock.monotonic())
        except LinkLost as exc:
            raise LinkClosed(str(exc)) from exc

    def wait_for(self, predicate: Callable[[], bool], timeout_s: float) -> bool:
        """Wait until ``predicate()`` holds (checked whenever frames arrive) or the timeout
        passes on the link's clock (virtual time on the simulator). Returns the predicate."""
        deadline = self.clock.monotonic() + timeout_s
        if self.virtual:
            while True:
                if predicate():
                    return True
                if self.clock.monotonic() >= deadline:
                    return False
                self._run(deadline)
        with self._cond:
            while True:
                if predicate():
                    return True
                if self._error is not None:
                    raise LinkClosed(f"{self.name}: {self._error}")
                left = deadline - self.clock.monotonic()
                if left <= 0:
                    return False
                self._cond.wait(left)

    def wait_s(self, seconds: float) -> None:
        """Let time pass (virtual time on the simulator), receiving and heartbeating."""
        self.wait_for(lambda: False, seconds)

    def reply(self, seq: int, timeout_s: float) -> Frame | None:
        """The first reply with this seq (already received, or arriving within the timeout)."""
        got = self.wait_for(lambda: bool(self.received.replies.get(seq)), timeout_s)
        return self.received.replies[seq][0] if got else None

    def drain(self) -> None:
        """Take in whatever is already waiting, without letting time pass."""
        if self.virtual:
            try:
                self._pump.drain()
            except LinkLost as exc:
                raise LinkClosed(str(exc)) from exc

    def dump(self, max_frames: int = 25) -> str:
        """The last frames received (telemetry and heartbeats summarised), for a failure."""
        with self._cond:
            frames = list(self.received.last)
        tl = self.received.telemetry
        lines = [
            f"telemetry: {tl.count} samples, {tl.lost} lost, {tl.repeated} repeated; "
            f"decoder: {self.decoder.stats}"
        ]
        shown = [f for f in frames if not isinstance(f.message, Telemetry | Heartbeat)]
        for fr in shown[-max_frames:]:
            lines.append(f"seq {fr.seq:5d} flags {fr.flags:#04x} {fr.message!r}")
        return "\n".join(lines)

    def close(self) -> None:
        self._pump.close()
        with contextlib.suppress(Exception):  # closing a port that is already gone
            self.transport.close()


def events_of(log: EventLog) -> list[Event]:
    """An EVENT_LOG's records as Event messages (same fields)."""
    from protocol import event_array

    return [
        Event(int(r["number"]), int(r["time_us"]), int(r["code"]), int(r["value"]))
        for r in event_array(log)
    ]
