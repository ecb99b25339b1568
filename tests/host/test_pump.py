"""firmware_host/pump.py on its own: heartbeats (virtual time and a real pty), the reader
standing aside while a caller reads, read batching that never delays a caller's reply, and
a lost port reported once."""

from __future__ import annotations

import itertools
import os
import statistics
import threading
import time
from collections.abc import Iterator
from types import SimpleNamespace

import pytest

import firmware_host.pump as pump_module
import sim_device  # noqa: F401  (registers sim://)
from firmware_host.errors import LinkLost
from firmware_host.pump import Pump
from firmware_host.transports import open_transport
from firmware_host.transports.serial import SerialTransport
from protocol import (
    HOST_HEARTBEAT_MS,
    Ack,
    Frame,
    GetStatus,
    Heartbeat,
    StreamDecoder,
    encode,
)

from .helpers import Pty, ScriptedPeer

PERIOD_MS = HOST_HEARTBEAT_MS


class Inbox:
    """The pump's frame callback: every frame, with the thread that delivered it."""

    def __init__(self) -> None:
        self.frames: list[tuple[Frame, str]] = []
        self.cond = threading.Condition()

    def __call__(self, frames: list[Frame], n_bytes: int) -> None:
        name = threading.current_thread().name
        with self.cond:
            self.frames.extend((f, name) for f in frames)
            self.cond.notify_all()

    def wait_for(self, n: int, timeout_s: float = 5.0) -> bool:
        with self.cond:
            return self.cond.wait_for(lambda: len(self.frames) >= n, timeout_s)


def _frames(data: bytes) -> list[Frame]:
    return StreamDecoder().feed(data)


def _heartbeat_times_ms(frames: list[Frame]) -> list[int]:
    return [f.message.uptime_ms for f in frames if isinstance(f.message, Heartbeat)]


# ------------------------------------------------------------ virtual time (sim://)


def _sim_pump(heartbeats: bool = True) -> tuple[Pump, list[tuple[int, bytes]]]:
    """A pump on sim://, and every write the device received with its device time."""
    transport = open_transport("sim://?seed=1&watchdog_ms=60000")
    assert isinstance(transport, SerialTransport)
    device = transport.port.sim
    received: list[tuple[int, bytes]] = []
    host_write = device.host_write

    def record(data: bytes) -> None:
        received.append((device.clock.now_us, bytes(data)))
        host_write(data)

    device.host_write = record
    pump = Pump(transport, Inbox())
    pump.heartbeats_enabled = heartbeats
    return pump, received


def test_virtual_heartbeats_go_out_every_period_of_virtual_time() -> None:
    pump, received = _sim_pump()
    while pump.now() < 2.0:
        pump.run(2.0 - pump.now())  # one long wait, as a host waiting for a reply
    frames = StreamDecoder().feed(b"".join(data for _, data in received))
    times_ms = _heartbeat_times_ms(frames)
    assert len(times_ms) == pump.heartbeats_out == 2000 // PERIOD_MS + 1
    assert times_ms[0] == 0  # the first at once
    assert all(b - a == PERIOD_MS for a, b in itertools.pairwise(times_ms))
    # each reached the device at the virtual time it carries
    arrival_ms = [t_us // 1000 for t_us, data in received]
    assert arrival_ms == times_ms


def test_on_beat_hears_every_heartbeat_sent_at_its_time() -> None:
    pump, received = _sim_pump()
    beats: list[float] = []
    pump.on_beat = beats.append  # public: may be set after the pump is made
    while pump.now() < 1.0:
        pump.run(1.0 - pump.now())
    sent_ms = _heartbeat_times_ms(StreamDecoder().feed(b"".join(d for _, d in received)))
    assert len(beats) == pump.heartbeats_out == len(sent_ms)
    assert [round(t * 1000) for t in beats] == sent_ms


def test_virtual_heartbeats_stop_when_disabled() -> None:
    pump, received = _sim_pump(heartbeats=False)
    while pump.now() < 1.0:
        pump.run(1.0 - pump.now())
    assert received == [] and pump.heartbeats_out == 0


# ------------------------------------------------------------ real ports (a pty)


@pytest.fixture
def pty() -> Iterator[Pty]:
    p = Pty()
    yield p
    p.close()


def _pty_pump(pty: Pty, inbox: Inbox, slice_s: float = 0.05, coalesce_s: float = 0.0) -> Pump:
    return Pump(open_transport(pty.path), inbox, slice_s=slice_s, coalesce_s=coalesce_s)


def test_real_heartbeats_from_the_reader_thread_one_period_apart(pty: Pty) -> None:
    peer = ScriptedPeer(pty.master, lambda p, f: None)
    transport = open_transport(pty.path)
    writers: list[tuple[str, bytes]] = []  # (writing thread, bytes) of every write
    write = transport.write

    def spy(data: bytes) -> None:
        writers.append((threading.current_thread().name, bytes(data)))
        write(data)

    transport.write = spy  # type: ignore[method-assign]
    pump = Pump(transport, Inbox())
    pump.start()
    try:
        assert peer.wait_for(lambda rx: len(_heartbeat_times_ms(rx)) >= 9)
    finally:
        pump.close()
        peer.stop()
        transport.close()
    reader = f"pump {transport.name}"
    beat_writers = [
        name for name, data in writers if _heartbeat_times_ms(StreamDecoder().feed(data))
    ]
    assert len(beat_writers) >= 9 and set(beat_writers) == {reader}, set(beat_writers)
    gaps_ms = [b - a for a, b in itertools.pairwise(_heartbeat_times_ms(peer.received))]
    # never sooner than a period after the last (the ms stamp rounds down: ≥ period − 1),
    # and one period apart: the median gap (a gap stretched by a busy machine does not
    # move it) within half a period of it
    assert min(gaps_ms) >= PERIOD_MS - 1, gaps_ms
    assert statistics.median(gaps_ms) <= 1.5 * PERIOD_MS, gaps_ms


class _SeenAside(threading.Event):
    """A pump's closing event that notes when the reader thread waits on it: the reader
    waits on it only while it stands aside for a caller (Pump._reader_main)."""

    def __init__(self) -> None:
        super().__init__()
        self.aside = threading.Event()

    def wait(self, timeout: float | None = None) -> bool:
        if threading.current_thread().name.startswith("pump "):
            self.aside.set()
        return super().wait(timeout)


def test_reader_stands_aside_while_a_caller_reads(pty: Pty) -> None:
    inbox = Inbox()
    pump = _pty_pump(pty, inbox, slice_s=0.02)
    pump.heartbeats_enabled = False
    seen = _SeenAside()
    pump._closing = seen  # before start(): the reader takes its closing event then
    pump.start()
    try:
        # the reader takes what arrives while nobody waits
        os.write(pty.master, encode(Heartbeat(1)))
        assert inbox.wait_for(1)
        assert inbox.frames[0][1].startswith("pump ")
        pump.enter_caller()
        try:
            # once the reader has seen the caller (it stands aside: waits, reads nothing),
            # every frame is the caller's to read, on its own thread
            assert seen.aside.wait(5.0), "the reader never stood aside for the caller"
            for i in range(20):
                os.write(pty.master, encode(Heartbeat(2 + i)))
                deadline = pump.now() + 5.0
                while len(inbox.frames) < 2 + i and pump.now() < deadline:
                    pump.run(0.05)
        finally:
            pump.leave_caller()
        me = threading.current_thread().name
        assert [name for _, name in inbox.frames[1:]] == [me] * 20
        # and after the caller leaves, the reader takes over again
        os.write(pty.master, encode(Heartbeat(99)))
        assert inbox.wait_for(22)
        assert inbox.frames[-1][1].startswith("pump ")
    finally:
        pump.close()
        pump.transport.close()


def test_read_batching_does_not_delay_a_callers_reply(
    pty: Pty, monkeypatch: pytest.MonkeyPatch
) -> None:
    def answer(peer: ScriptedPeer, frame: Frame) -> None:
        if isinstance(frame.message, GetStatus):
            peer.send(Ack(1), frame.seq)

    # The reader's pause between reads (its coalesce_s sleep) held open by the test: the
    # caller's reply must come while the reader still pauses, however long that is.
    pausing, release = threading.Event(), threading.Event()

    def sleep(seconds: float) -> None:
        if threading.current_thread().name.startswith("pump "):
            pausing.set()
            release.wait(30.0)
        else:
            time.sleep(seconds)

    monkeypatch.setattr(pump_module, "time", SimpleNamespace(sleep=sleep, monotonic=time.monotonic))
    peer = ScriptedPeer(pty.master, answer)
    inbox = Inbox()
    pump = _pty_pump(pty, inbox, slice_s=5.0, coalesce_s=1.0)
    pump.heartbeats_enabled = False
    pump.start()
    try:
        # a frame the reader takes: it then pauses before it looks again
        peer.send(Heartbeat(1))
        assert inbox.wait_for(1)
        assert pausing.wait(5.0), "the reader did not pause after its read"
        pump.enter_caller()
        try:
            pump.write(encode(GetStatus(), 7))
            deadline = time.monotonic() + 5.0  # a failure guard, not a measurement
            while len(inbox.frames) < 2 and time.monotonic() < deadline:
                pump.run(0.05)
        finally:
            pump.leave_caller()
        assert len(inbox.frames) == 2, "the reply waited for the reader's pause"
        assert not release.is_set()  # the reader has been pausing all along
        reply, thread = inbox.frames[1]
        assert reply.seq == 7 and isinstance(reply.message, Ack)
        assert thread == threading.current_thread().name  # read by the caller itself
    finally:
        release.set()
        pump.close()
        peer.stop()
        pump.transport.close()


def test_a_lost_port_is_reported_once(pty: Pty) -> None:
    lost: list[LinkLost] = []
    reported = threading.Event()

    def on_lost(exc: LinkLost) -> None:
        lost.append(exc)
        reported.set()

    pump = Pump(open_transport(pty.path), Inbox(), on_lost=on_lost)
    pump.start()
    try:
        pty.close()  # the far end goes away
        assert reported.wait(5.0)
        # the caller that reads next gets LinkLost too, but it is not reported again;
        # nor by the heartbeat that can no longer be written
        with pytest.raises(LinkLost):
            pump.run(0.05)
        pump.tick(pump.now() + 1.0)
        assert len(lost) == 1
    finally:
        pump.close()
        pump.transport.close()
