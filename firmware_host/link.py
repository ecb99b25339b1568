"""The link: one transport, frames in and out, replies matched to commands, retransmission,
heartbeats, liveness and statistics (docs/architecture.md §2, §4).

The I/O itself is the Pump's (firmware_host/pump.py), one code path for both kinds of port:

* Real ports: the pump's reader thread decodes everything continuously (telemetry and
  events never wait for a command) and sends the heartbeats — but only while the owner
  holds its liveness lease (it made a request, waited or called keepalive() within
  ``lease_s``), so a hung host program stops feeding the device's watchdog. A caller waiting
  for a reply does *not* get it through the thread: it announces itself, the reader stands
  aside, and the caller reads the port itself under the I/O lock. The reply path has no
  thread hand-off (a queue hand-off alone costs ≈ 50 µs on a pty; platform notes).
* Virtual ports (``sim://``): no thread at all. Every wait pumps the port, which runs the
  device on its virtual clock; heartbeats go out from the pump by virtual time.

Exactly once: a command keeps its seq across retransmissions (flagged RETRANSMIT); the
device answers a repeat from its reply cache without executing it again.
"""

from __future__ import annotations

import collections
import contextlib
import logging
import threading
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

from firmware_host.errors import CallbackWait, LinkLost, Timeout
from firmware_host.pump import DELIMITER, Pump
from firmware_host.transports.base import Transport
from protocol import (
    DEVICE_HEARTBEAT_MS,
    HOST_HEARTBEAT_MS,
    REPLY_TO,
    SAMPLE_DTYPE,
    Ack,
    EncodeError,
    Event,
    EventLog,
    Frame,
    HeaderFlags,
    Heartbeat,
    Identity,
    Status,
    Telemetry,
    encode,
)
from protocol import Nak as NakMsg
from protocol.schema import MSG_ID, Message

log = logging.getLogger(__name__)

_REPLY_TYPES = (Ack, NakMsg, Identity, Status, EventLog)
_RTT_WINDOW = 1000  # round trips kept for the p99
_SAMPLE_MOD = 1 << 32
_RETRANSMIT = int(HeaderFlags.RETRANSMIT)
_SAMPLE_BYTES = int(SAMPLE_DTYPE.itemsize)
# Every frame we send is preceded by a delimiter (docs/protocol.md): line noise since the
# last frame then ends as a garbage "frame" of its own instead of being glued to ours,
# so the first command after noise (an ESTOP) is not lost to a CRC failure and a
# retransmission. The decoder treats the empty frame between two delimiters as nothing.
_DELIM = DELIMITER


@dataclass
class LinkConfig:
    """Retransmission and liveness parameters (seconds of the link's clock)."""

    initial_rto_s: float = 0.1  # before any round trip was measured
    min_rto_s: float = 0.02  # the device answers on its next 1 ms control tick
    max_rto_s: float = 0.5
    max_retries: int = 8  # then Timeout (outcome of that command: not executed or unknown)
    heartbeat_s: float = HOST_HEARTBEAT_MS / 1000.0
    # The device sends something at least every 100 ms; 5 missed = the link is gone.
    silence_timeout_s: float = 5 * DEVICE_HEARTBEAT_MS / 1000.0
    reader_slice_s: float = 0.05  # longest a reader/pump blocks before rechecking timers
    # Real ports: after a read the reader waits this long before it looks again, so 1 kHz
    # telemetry (100 batches/s) costs a wake-up per few batches, not one each (CPU: see
    # benchmarks/link.py). Frames reach listeners at most this late while nobody waits on
    # the link — but a wait (wait_s / wait_until, e.g. a control loop's period) ends by
    # taking in whatever has arrived, so whoever waits sees data as fresh as the device
    # sent it; replies are not delayed either (their caller reads them itself).
    read_coalesce_s: float = 0.05
    # Liveness lease: heartbeats go out only while the link's owner showed life (a request,
    # a wait, a pump, keepalive()) within this long. It is shorter than the device's
    # 200 ms watchdog, so a hung host program (not just a dead process) lets the watchdog
    # stop the rig; the library's own waits renew it every reader_slice_s at most.
    lease_s: float = 0.15


@dataclass
class LinkStats:
    bytes_out: int = 0
    bytes_in: int = 0
    frames_out: int = 0
    frames_in: int = 0
    crc_failures: int = 0
    frames_bad: int = 0  # every dropped incoming frame (CRC, malformed, oversize, unknown id)
    retransmits: int = 0
    timeouts: int = 0  # commands given up after max_retries
    replies_stray: int = 0  # replies to no waiting command (late, duplicated, replayed twice)
    heartbeats_out: int = 0
    lease_lapses: int = 0  # times the owner fell silent past lease_s (heartbeats withheld)
    telemetry_samples: int = 0
    telemetry_samples_lost: int = 0  # exact, from the device's sample counter
    # device events gone from its log before the host could fetch them (counted and
    # reported to event listeners by the client as an EVENTS_LOST notice)
    events_lost: int = 0
    rtt_smoothed_s: float | None = None
    rtt_var_s: float = 0.0
    rtt_samples_s: collections.deque[float] = field(
        default_factory=lambda: collections.deque(maxlen=_RTT_WINDOW), repr=False
    )

    @property
    def rtt_p99_s(self) -> float | None:
        if not self.rtt_samples_s:
            return None
        ordered = sorted(self.rtt_samples_s)
        return ordered[min(len(ordered) - 1, int(0.99 * len(ordered)))]

    def as_dict(self) -> dict[str, Any]:
        out = {k: v for k, v in self.__dict__.items() if k != "rtt_samples_s"}
        out["rtt_p99_s"] = self.rtt_p99_s
        return out


@dataclass(frozen=True)
class LoggedFrame:
    host_time_s: float
    direction: str  # "out" or "in"
    seq: int
    flags: int
    message: Message

    def __str__(self) -> str:
        flags = HeaderFlags(self.flags & 0x3)
        flag_text = f" {flags.name}" if self.flags else ""
        return (
            f"{self.host_time_s:12.6f} {self.direction:3} seq={self.seq:5}{flag_text} "
            f"{type(self.message).__name__}{tuple(self.message)!r}"
        )


class _Pending:
    # No Event: a waiting caller either reads the port itself or is blocked on the I/O
    # lock, which whoever holds it releases after every read (and so after our reply).
    # Only a thread holding the I/O lock (the one feeding the decoder) sets ``frame``.
    __slots__ = ("frame", "msg_id", "retransmitted", "sent_at_s", "seq")

    def __init__(self, seq: int, msg_id: int) -> None:
        self.seq = seq
        self.msg_id = msg_id
        self.frame: Frame | None = None
        self.sent_at_s = 0.0
        self.retransmitted = False


FrameListener = Callable[[Frame], None]


class Link:
    """Owns one transport. Use ``request`` for commands, ``add_listener`` for the rest."""

    def __init__(self, transport: Transport, config: LinkConfig | None = None) -> None:
        self.transport = transport
        self.clock = transport.clock
        self.virtual = transport.virtual
        self.config = config or LinkConfig()
        cfg = self.config
        self.stats = LinkStats()
        # (host_time_s, "in"/"out", seq, flags, message): tuples, cheap on the hot path
        self.frame_log: collections.deque[tuple[float, str, int, int, Message]] = collections.deque(
            maxlen=100
        )
        self._pump = Pump(
            transport,
            self._on_input,
            heartbeat_s=cfg.heartbeat_s,
            allowed=self._lease_ok,
            beat=self._send_heartbeat,
            on_timer=self._check_silence,
            on_lost=self._set_lost,
            slice_s=cfg.reader_slice_s,
            coalesce_s=cfg.read_coalesce_s,
            reentrant=True,  # a callback's request reads its own reply (wait_until)
        )
        self._decoder = self._pump.decoder
        self._now: Callable[[], float] = self._pump.now
        self._state_lock = threading.Lock()  # seq allocation + its entry in the pending table
        self._changed = threading.Condition(threading.Lock())  # notified on every frame in
        self._waiters = 0  # threads in wait_until (real ports)
        # seq -> command awaiting its reply. Single dict operations need no lock (GIL).
        self._pending: dict[int, _Pending] = {}
        self._next_seq = 0
        self._listeners: list[FrameListener] = []
        # Frames for the listeners, in the order decoded. A callback's own request takes in
        # frames (its reply, and what came before it) while the listeners are busy with an
        # earlier one: those wait here for the delivery under way, so listeners see the
        # stream in order and are never re-entered.
        self._deliveries: collections.deque[Frame] = collections.deque()
        self._delivering: int | None = None  # the thread running the callbacks, if any
        self._frames_in_gen = 0  # frames taken in: a waiter's "anything new?"
        self._lost: LinkLost | None = None
        self._last_rx_s: float | None = None  # None until the device first speaks
        self._owner_seen_s = self._now()  # last sign of life of the owner
        self._lease_lapsed = False
        self._expected_sample: int | None = None
        self._pump.start()

    # ------------------------------------------------------------ public API

    @property
    def name(self) -> str:
        return self.transport.name

    @property
    def lost(self) -> LinkLost | None:
        return self._lost

    @property
    def heartbeats_enabled(self) -> bool:
        return self._pump.heartbeats_enabled

    @heartbeats_enabled.setter
    def heartbeats_enabled(self, on: bool) -> None:
        """Tests may switch the heartbeats off to trip the device's watchdog."""
        self._pump.heartbeats_enabled = on

    @property
    def on_beat(self) -> Callable[[float], None] | None:
        """Called with the link's time of every heartbeat sent (the pump's hook)."""
        return self._pump.on_beat

    @on_beat.setter
    def on_beat(self, hook: Callable[[float], None] | None) -> None:
        self._pump.on_beat = hook

    @property
    def in_callback(self) -> bool:
        """True on the thread running the listeners now (inside a telemetry/event callback)."""
        return self._delivering == threading.get_ident()

    def check_may_wait(self) -> None:
        """Raise CallbackWait inside a telemetry/event callback (see wait_until). Calls
        that send something before they wait (home) check first, so that a refused call
        sends nothing."""
        if self.in_callback:
            raise CallbackWait(
                f"{self.name}: a wait (wait_s, wait_until, wait_idle, home) inside a "
                "telemetry/event callback would wait for frames only the callback's return "
                "delivers: return from the callback and wait on your own thread (requests "
                "such as status(), stop(), estop() do work in a callback)"
            )

    def add_listener(self, listener: FrameListener) -> None:
        """Called with every unsolicited frame (telemetry, events, heartbeats), on the
        thread that decoded it (the reader, or a caller reading for itself), in the order
        sent. A listener may make requests (its thread reads its own reply); it may not
        wait (CallbackWait): see wait_until."""
        self._listeners.append(listener)

    def remove_listener(self, listener: FrameListener) -> None:
        with contextlib.suppress(ValueError):
            self._listeners.remove(listener)

    def request(self, msg: Message, *, max_retries: int | None = None) -> Frame:
        """Send a command and return its reply frame (ACK, NAK, IDENTITY, STATUS, EVENT_LOG).

        Retransmits with the same seq until a reply comes, then gives up with Timeout.
        Raises LinkLost if the port dies or the device falls silent. NAK is returned, not
        raised: the caller knows what a refusal means for it.
        """
        # The reply path is kept lean: every µs of host Python here is a µs of round trip
        # (benchmarks/link.py). Work that can wait for the device is done after the write.
        if self._lost is not None:
            raise LinkLost(str(self._lost))
        retries = self.config.max_retries if max_retries is None else max_retries
        msg_id = MSG_ID[type(msg)]
        pending_table = self._pending
        pump = self._pump
        with self._state_lock:
            seq = self._alloc_seq()
            pending = _Pending(seq, msg_id)
            pending_table[seq] = pending
        pump.enter_caller()  # the reader stands aside: we read our reply ourselves
        try:
            wire = _DELIM + encode(msg, seq)
            attempt = 0
            rto_s = self._rto_s()
            now = self._now
            while True:
                pending.sent_at_s = sent_at_s = now()
                self._write_frame(wire, msg, seq, attempt > 0, sent_at_s)
                if self._wait_reply(pending, sent_at_s + rto_s):
                    frame = pending.frame
                    assert frame is not None
                    return frame
                attempt += 1
                if attempt > retries:
                    self.stats.timeouts += 1
                    raise Timeout(
                        f"{self.name}: no reply to {type(msg).__name__} (seq {seq}) after "
                        f"{attempt} tries; it was not executed, or its reply was lost every time"
                    )
                pending.retransmitted = True
                wire = _DELIM + encode(msg, seq, int(HeaderFlags.RETRANSMIT))
                self.stats.retransmits += 1
                rto_s = min(rto_s * 2.0, self.config.max_rto_s)
        finally:
            pending_table.pop(seq, None)
            pump.leave_caller()

    def keepalive(self) -> None:
        """Renew the liveness lease: the owner is alive. Long-running consumers that do
        their own work between the library's calls call this at least every lease_s
        (a request, wait or pump renews it too); without it the heartbeats stop and the
        device's watchdog stops the rig."""
        self._renew(self._now())

    def send(self, msg: Message, seq: int = 0) -> None:
        """Send a frame that expects no reply (HEARTBEAT; tests)."""
        self._raise_if_lost()
        self._owner_seen_s = self._now()
        self._write_frame(_DELIM + encode(msg, seq), msg, seq, False, self._now())

    def wait_until(self, predicate: Callable[[], bool], timeout_s: float) -> bool:
        """Let the link run (frames in, heartbeats out) until predicate() or timeout.
        The predicate is checked after every batch of frames. True if it came true.

        The predicate may make requests (it runs with no lock of the link held). A wait
        inside a listener is refused with CallbackWait: the listener runs on the thread
        that delivers frames, so nothing it waits for could arrive before it returns."""
        self.check_may_wait()
        deadline = self.clock.monotonic() + timeout_s
        if self.virtual:
            while True:
                if predicate():
                    return True
                now = self.clock.monotonic()
                if now >= deadline:
                    return False
                self._pump_for(deadline - now)
        # The predicate runs with no lock held: it may make a request, whose reply this
        # thread may read itself (notifying the condition on the way). Frames that come
        # between the predicate and the wait show as a changed _frames_in_gen.
        with self._changed:
            self._waiters += 1
        try:
            while True:
                seen = self._frames_in_gen
                if predicate():
                    return True
                self._raise_if_lost()
                now = self._now()
                self._renew(now)  # waiting in the library is a sign of life
                remaining = deadline - now
                if remaining <= 0:
                    # fresh on demand: what arrived while the reader let frames gather
                    # (read_coalesce_s) is taken in before the waiter looks at it
                    self._take_in_waiting()
                    return predicate()
                with self._changed:
                    if self._frames_in_gen == seen and self._lost is None:
                        self._changed.wait(min(remaining, self.config.reader_slice_s))
        finally:
            with self._changed:
                self._waiters -= 1

    def _take_in_waiting(self) -> None:
        """Real ports: decode the bytes already waiting on the port, now (not at the
        reader's next batch), from a waiter's thread."""
        if self._lost is not None:
            return
        # (a loss is recorded by the pump; the caller's next step raises it)
        with contextlib.suppress(LinkLost, OSError, ValueError):
            self._pump.drain()

    def wait_s(self, seconds: float) -> None:
        """Let time pass with the link kept alive (virtual time on sim://)."""
        self.wait_until(lambda: self._lost is not None, seconds)
        self._raise_if_lost()

    def pump(self, timeout_s: float = 0.0) -> None:
        """Virtual ports: run the port up to timeout_s. Real ports: nothing (the reader runs)."""
        if self.virtual:
            self._pump_for(timeout_s)

    def dump(self) -> str:
        """The last frames each way, one a line, for a report when something goes wrong."""
        return "\n".join(str(LoggedFrame(*f)) for f in list(self.frame_log))

    def close(self) -> None:
        self._pump.close()
        self.transport.close()
        if self._lost is None:
            self._lost = LinkLost(f"{self.name}: link closed")
            self._set_lost(self._lost)

    # ------------------------------------------------------------ internals

    def _alloc_seq(self) -> int:
        # 1..65535, skipping 0 (unsequenced heartbeats) and any seq still awaiting a reply
        while True:
            self._next_seq = self._next_seq % 0xFFFF + 1
            if self._next_seq not in self._pending:
                return self._next_seq

    def _rto_s(self) -> float:
        cfg = self.config
        srtt = self.stats.rtt_smoothed_s
        if srtt is None:
            return cfg.initial_rto_s
        return min(max(srtt + 4.0 * self.stats.rtt_var_s, cfg.min_rto_s), cfg.max_rto_s)

    def _renew(self, now: float) -> None:
        """The owner is alive at ``now``; a heartbeat withheld while it was not goes out
        at once (from this thread) rather than at the reader's next wake-up."""
        self._owner_seen_s = now
        if self._lease_lapsed and now >= self._pump.next_heartbeat_s:
            self._pump.tick(now)

    def _raise_if_lost(self) -> None:
        if self._lost is not None:
            raise LinkLost(str(self._lost))

    def _set_lost(self, exc: LinkLost) -> None:
        if self._lost is None:
            self._lost = exc
            log.warning("%s", exc)
        with self._changed:
            self._changed.notify_all()

    def _write_frame(
        self, wire: bytes, msg: Message, seq: int, retransmit: bool, now_s: float
    ) -> None:
        try:
            self._pump.write(wire)
        except LinkLost as exc:
            self._set_lost(exc)
            raise
        # (after the write: this bookkeeping overlaps the device's turn)
        stats = self.stats
        stats.bytes_out += len(wire)
        stats.frames_out += 1
        self.frame_log.append((now_s, "out", seq, _RETRANSMIT if retransmit else 0, msg))

    def _wait_reply(self, pending: _Pending, deadline_s: float) -> bool:
        """Read for ourselves until our reply is in or deadline_s passes."""
        now = self._now
        run = self._pump.run
        while True:
            if pending.frame is not None:
                return True
            if self._lost is not None:
                raise LinkLost(str(self._lost))
            t = now()
            self._owner_seen_s = t  # a caller waiting for its reply is alive
            remaining = deadline_s - t
            if remaining <= 0:
                return False
            run(remaining)  # virtual: runs the device; real: reads the port ourselves

    def _pump_for(self, timeout_s: float) -> None:
        """Virtual transports: heartbeats by virtual time, then read (running the device)."""
        self._owner_seen_s = self._now()  # only the owner pumps a virtual port
        self._raise_if_lost()
        self._pump.run(timeout_s)

    def _send_heartbeat(self, now: float) -> None:
        beat = Heartbeat(int(now * 1000) & 0xFFFFFFFF)
        self._write_frame(_DELIM + encode(beat), beat, 0, False, now)
        self.stats.heartbeats_out += 1

    def _check_silence(self, now: float) -> None:
        """Declare the link lost when the device has been silent too long."""
        last = self._last_rx_s
        if last is not None and now - last > self.config.silence_timeout_s and not self._lost:
            self._set_lost(
                LinkLost(
                    f"{self.name}: device silent for {now - last:.2f} s "
                    "(unplugged, powered off or crashed?)"
                )
            )

    def _lease_ok(self, now: float) -> bool:
        silent_s = now - self._owner_seen_s
        if silent_s <= self.config.lease_s:
            self._lease_lapsed = False
            return True
        if not self._lease_lapsed:
            self._lease_lapsed = True
            self.stats.lease_lapses += 1
            log.warning(
                "%s: owner silent for %.3f s: heartbeats withheld, the device's watchdog "
                "will stop the rig (call keepalive() in long work)",
                self.name,
                silent_s,
            )
        return False

    def _on_input(self, frames: list[Frame], n_bytes: int) -> None:
        """Dispatch the frames of one read. Called with the pump's I/O lock held.

        Replies complete their request at once; the rest goes to the listeners in order. If
        a listener is running already (this is its own request reading its reply), the
        frames join the queue that delivery is working through, not a nested one."""
        stats = self.stats
        stats.bytes_in += n_bytes
        dstats = self._decoder.stats
        stats.crc_failures = dstats.crc_failures
        stats.frames_bad = dstats.frames_bad
        if not frames:
            return
        now = self._now()
        self._last_rx_s = now
        log_append = self.frame_log.append
        deliveries = self._deliveries
        for frame in frames:
            stats.frames_in += 1
            msg = frame.message
            log_append((now, "in", frame.seq, frame.flags, msg))
            if isinstance(msg, _REPLY_TYPES):
                self._complete(frame, msg, now)
                continue
            if isinstance(msg, Telemetry) and not self._count_samples(msg):
                continue  # a duplicated batch
            deliveries.append(frame)
        if self._delivering is None:
            self._delivering = threading.get_ident()
            try:
                while deliveries:
                    frame = deliveries.popleft()
                    for listener in self._listeners:
                        try:
                            listener(frame)
                        except Exception:
                            log.exception("telemetry/event listener failed")
            finally:
                self._delivering = None
        self._frames_in_gen += 1
        if self._waiters:
            with self._changed:
                self._changed.notify_all()

    def _complete(self, frame: Frame, msg: Message, now: float) -> None:
        # No lock: only the thread holding the I/O lock gets here, and the pending table's
        # single lookups are atomic.
        pending = self._pending.get(frame.seq)
        if pending is None or pending.frame is not None or not _answers(msg, pending.msg_id):
            self.stats.replies_stray += 1
            return
        # Karn: a reply to a retransmitted command cannot tell which copy it answers.
        # (Recorded before the caller is released: stats are current when request returns.)
        if not pending.retransmitted:
            self._observe_rtt(now - pending.sent_at_s)
        pending.frame = frame

    def _observe_rtt(self, rtt_s: float) -> None:
        stats = self.stats
        stats.rtt_samples_s.append(rtt_s)
        srtt = stats.rtt_smoothed_s
        if srtt is None:
            stats.rtt_smoothed_s = rtt_s
            stats.rtt_var_s = rtt_s / 2.0
        else:
            err = rtt_s - srtt
            stats.rtt_smoothed_s = srtt + err / 8.0
            stats.rtt_var_s += ((err if err >= 0.0 else -err) - stats.rtt_var_s) / 4.0

    def _count_samples(self, msg: Telemetry) -> bool:
        """Exact lost-sample accounting from the device's sample counter (mod 2^32).
        False for a batch already seen (a duplicate)."""
        count = len(msg.samples) // _SAMPLE_BYTES
        first = msg.first_sample_number
        expected = self._expected_sample
        if expected is not None:
            ahead = (first - expected) % _SAMPLE_MOD
            if ahead >= _SAMPLE_MOD // 2:
                return False  # older than what we have: a duplicate
            self.stats.telemetry_samples_lost += ahead
        self._expected_sample = (first + count) % _SAMPLE_MOD
        self.stats.telemetry_samples += count
        return True


def _answers(msg: Message, command_id: int) -> bool:
    """Does this reply belong to a command with this message id?"""
    if isinstance(msg, _ACK_TYPES):
        return bool(msg.command_id == command_id)
    expected = _REPLY_BY_ID.get(command_id)
    return expected is not None and isinstance(msg, expected)


_ACK_TYPES = (Ack, NakMsg)
_REPLY_BY_ID: dict[int, type[Any]] = {MSG_ID[c]: r for c, r in REPLY_TO.items()}

__all__ = ["EncodeError", "Event", "Link", "LinkConfig", "LinkStats", "LoggedFrame"]
