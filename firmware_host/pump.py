"""One I/O pump: bytes from a transport, decoded into frames handed to a callback, and the
host's heartbeats out. The host library's link, the HIL suite's wire and the simulator
tests' mini host all run on it (docs/architecture.md §4).

* Virtual ports (``sim://``): no thread. ``run(timeout_s)`` reads once — which runs the
  device forward in virtual time until it sends something or the timeout, capped at the
  next heartbeat, has passed — and sends the heartbeat when it is due by virtual time.
* Real ports: ``start()`` starts a reader thread that decodes whatever arrives and sends the
  heartbeats on time. A caller waiting for its own reply still reads the port itself
  (``enter_caller``, ``run``, ``leave_caller``): the reader stands aside while it does, so
  the reply path has no thread hand-off (≈ 50 µs on a pty; platform notes).

Heartbeat policy: a period, a switch (``heartbeats_enabled``; tests turn it off to trip
the watchdog), an optional ``allowed(now)`` (the link's liveness lease) and an optional
``beat(now)`` that sends it (default: a delimiter and a HEARTBEAT frame). A heartbeat
withheld by ``allowed`` goes out at the next ``tick`` that allows it. ``on_beat(now)``
(public, may be set at any time) hears of every heartbeat sent: the rig server times
them with it.

Reading in batches (real ports, ``coalesce_s``): after a read the reader waits that long
before it looks again, so a 1 kHz stream in batches of 10 costs one wake-up per few frames
instead of one per frame; frames then reach the callback at most ``coalesce_s`` late.
Replies are not delayed: their caller reads them itself.
"""

from __future__ import annotations

import select
import threading
import time
from collections.abc import Callable

from firmware_host.errors import LinkLost
from firmware_host.transports.base import MONOTONIC, Transport
from protocol import HOST_HEARTBEAT_MS, Frame, Heartbeat, StreamDecoder, encode

READ_BYTES = 65536
DELIMITER = b"\x00"
_CALLER_GRACE_S = 0.002  # the reader stays aside this long after a caller leaves
# The shortest read on a virtual port: never a zero timeout, which would not let the
# device run (the port rounds it up to one control tick).
_MIN_VIRTUAL_READ_S = 1e-6

# (frames decoded from one read — possibly none —, bytes read)
FramesCallback = Callable[[list[Frame], int], None]


class Pump:
    """Reads one transport, decodes, hands frames over, sends heartbeats; see the module."""

    def __init__(
        self,
        transport: Transport,
        on_frames: FramesCallback,
        *,
        heartbeat_s: float = HOST_HEARTBEAT_MS / 1000.0,
        allowed: Callable[[float], bool] | None = None,
        beat: Callable[[float], None] | None = None,
        on_beat: Callable[[float], None] | None = None,
        on_timer: Callable[[float], None] | None = None,
        on_lost: Callable[[LinkLost], None] | None = None,
        slice_s: float = 0.05,
        coalesce_s: float = 0.0,
        reentrant: bool = False,
    ) -> None:
        self.transport = transport
        self.name = transport.name
        self.virtual = bool(transport.virtual)
        self.clock = transport.clock
        # The machine's clock read directly: one Python call less on the reply path.
        self.now: Callable[[], float] = (
            time.monotonic if transport.clock is MONOTONIC else transport.clock.monotonic
        )
        self.decoder = StreamDecoder()
        self.on_frames = on_frames
        self.heartbeat_s = heartbeat_s
        self.heartbeats_enabled = True
        self.heartbeats_out = 0
        self.next_heartbeat_s = self.now()
        self._allowed = allowed
        self._beat = beat or self._send_heartbeat
        self.on_beat = on_beat
        self._withheld = False  # a heartbeat was due but not allowed
        self._on_timer = on_timer
        self._on_lost = on_lost
        self.slice_s = slice_s
        self.coalesce_s = coalesce_s
        # Whoever reads the port and feeds the decoder. ``reentrant`` (the link's): a
        # telemetry or event callback runs with it held (the frames are delivered from inside
        # the read), and a request made in that callback reads its own reply — on the same
        # thread, through this lock again; a plain lock made that thread wait for itself
        # (docs/architecture.md §6, "Callbacks"). Owners whose callbacks never read (the
        # HIL suite's wire) keep the plain lock.
        self.io_lock: threading.Lock | threading.RLock = (
            threading.RLock() if reentrant else threading.Lock()
        )
        self._write_lock = threading.Lock()
        self._callers_lock = threading.Lock()
        self._callers = 0  # callers reading for themselves (the reader stands aside)
        self._caller_left_s = -1.0
        self._closing = threading.Event()
        self._lost = False
        self._reader: threading.Thread | None = None
        self._reader_ident: int | None = None
        self._fd = transport.fileno()

    # ------------------------------------------------------------ writing

    def write(self, data: bytes) -> None:
        """Write bytes as one piece (frames from two threads never interleave)."""
        with self._write_lock:
            self.transport.write(data)

    def tick(self, now: float) -> None:
        """Send the heartbeat if it is due and allowed; then the owner's timer hook."""
        if self.heartbeats_enabled and now >= self.next_heartbeat_s - 1e-9:
            if self._allowed is None or self._allowed(now):
                self._withheld = False
                self.next_heartbeat_s = now + self.heartbeat_s
                try:
                    self._beat(now)
                    self.heartbeats_out += 1
                    if self.on_beat is not None:
                        self.on_beat(now)
                except LinkLost as exc:
                    self._lose(exc)
            else:
                self._withheld = True
        if self._on_timer is not None:
            self._on_timer(now)

    def _send_heartbeat(self, now: float) -> None:
        self.write(DELIMITER + encode(Heartbeat(int(now * 1000) & 0xFFFFFFFF)))

    # ------------------------------------------------------------ reading

    def run(self, timeout_s: float) -> None:
        """Let the port run for up to timeout_s on this thread, taking in what arrives.

        Virtual: heartbeats by virtual time, then one read that runs the device. Real: one
        read for a caller (call enter_caller first, so that the reader stays aside). A
        broken port raises LinkLost."""
        if self.virtual:
            now = self.now()
            self.tick(now)
            if self.heartbeats_enabled and not self._withheld:
                timeout_s = min(timeout_s, self.next_heartbeat_s - now)
            with self.io_lock:  # two threads may wait at once: one runs the device
                self._read(max(timeout_s, _MIN_VIRTUAL_READ_S))
            self.tick(self.now())
            return
        if timeout_s <= 0:
            return
        io_lock = self.io_lock
        # Another caller (or the reader, briefly) may hold the port: it decodes what comes,
        # then releases the lock. (The untimed try first: the usual case, and cheaper.)
        if not io_lock.acquire(False) and not io_lock.acquire(timeout=timeout_s):
            return
        if self._reader_ident == threading.get_ident():
            # a callback on the reader thread reading for itself: the reader's timers
            # (heartbeats, silence) are this thread's job meanwhile
            self.tick(self.now())
        try:
            self._read(timeout_s if timeout_s < self.slice_s else self.slice_s)
        finally:
            io_lock.release()

    def drain(self) -> None:
        """Take in whatever is already waiting, without letting (virtual) time pass."""
        with self.io_lock:
            self._read(0.0)

    def enter_caller(self) -> None:
        with self._callers_lock:
            self._callers += 1

    def leave_caller(self) -> None:
        with self._callers_lock:
            self._callers -= 1
            self._caller_left_s = self.now()

    def _read(self, timeout_s: float) -> None:
        """Read once and feed the decoder (the I/O lock held)."""
        try:
            data = self.transport.read(READ_BYTES, timeout_s)
        except LinkLost as exc:
            self._lose(exc)
            raise
        if data:
            self.on_frames(self.decoder.feed(data), len(data))

    def _lose(self, exc: LinkLost) -> None:
        """Report a lost port to the owner, once: the first report names the cause; the
        reader, a caller's read and a heartbeat's write that fail after it do not repeat it
        (a caller's read still raises)."""
        if self._lost:
            return
        self._lost = True
        if self._on_lost is not None:
            self._on_lost(exc)

    # ------------------------------------------------------------ the reader thread

    def start(self) -> None:
        """Real ports: start the reader thread (virtual ports run only when run())."""
        if self.virtual or self._reader is not None:
            return
        self._reader = threading.Thread(
            target=self._reader_main, name=f"pump {self.name}", daemon=True
        )
        self._reader.start()

    def _wait_s(self, now: float) -> float:
        """How long the reader may block before a timer needs it."""
        if not self.heartbeats_enabled or self._withheld:
            return self.slice_s  # nothing to send until the owner renews (tick sends it)
        return max(0.0, min(self.slice_s, self.next_heartbeat_s - now))

    def _reader_main(self) -> None:
        self._reader_ident = threading.get_ident()
        fd = self._fd
        now_fn = self.now
        closing = self._closing
        poll = None
        if fd is not None:
            poll = select.poll()
            poll.register(fd, select.POLLIN)
        while not closing.is_set():
            now = now_fn()
            self.tick(now)
            if self._lost:
                return
            if self._callers or now - self._caller_left_s < _CALLER_GRACE_S:
                # Callers read the port themselves. Polling (not being woken at each
                # caller's exit) keeps the reader off the reply path.
                closing.wait(_CALLER_GRACE_S)
                continue
            wait_s = self._wait_s(now)
            try:
                if poll is not None:
                    if not poll.poll(wait_s * 1000.0) or not self.io_lock.acquire(False):
                        continue
                elif not self.io_lock.acquire(timeout=wait_s):
                    continue
                try:
                    # decode under the same lock hold: bytes reach the decoder in order
                    self._read(0.0 if poll is not None else 0.005)
                finally:
                    self.io_lock.release()
            except (LinkLost, OSError, ValueError) as exc:
                if not closing.is_set():
                    self._lose(exc if isinstance(exc, LinkLost) else LinkLost(str(exc)))
                return
            if self.coalesce_s > 0.0:
                # let a few more frames gather (timers still served on time)
                # (a plain sleep: an Event wait costs a lock and a condition each time)
                time.sleep(min(self.coalesce_s, self._wait_s(now_fn())))

    def close(self) -> None:
        """Stop the reader (the transport is the owner's to close)."""
        self._closing.set()
        reader = self._reader
        if reader is not None and reader is not threading.current_thread():
            reader.join(timeout=1.0)
