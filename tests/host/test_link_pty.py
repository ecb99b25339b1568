"""The link over a real pty against a scripted peer that misbehaves on purpose:
retransmission with the same seq, giving up, heartbeats, silence, unsolicited frames
while idle, and two threads sending at once."""

from __future__ import annotations

import itertools
import os
import statistics
import threading
from collections.abc import Callable, Iterator
from contextlib import contextmanager

import pytest

from firmware_host.errors import LinkLost, Timeout
from firmware_host.link import Link, LinkConfig
from firmware_host.transports import open_transport
from protocol import (
    Ack,
    Event,
    Frame,
    GetStatus,
    HeaderFlags,
    Heartbeat,
    Stop,
    Telemetry,
    TelemetrySample,
    pack_samples,
)
from protocol.schema import MSG_ID

from .helpers import Pty, ScriptedPeer


def _ack(peer: ScriptedPeer, frame: Frame) -> None:
    if frame.seq:
        peer.send(Ack(MSG_ID[type(frame.message)]), frame.seq)


@pytest.fixture
def pty() -> Iterator[Pty]:
    p = Pty()
    yield p
    p.close()


def _link(pty: Pty, **cfg: float) -> Link:
    return Link(open_transport(pty.path), LinkConfig(**cfg))  # type: ignore[arg-type]


@contextmanager
def _connected(
    pty: Pty, answer: Callable[[ScriptedPeer, Frame], None], **cfg: float
) -> Iterator[tuple[ScriptedPeer, Link]]:
    """A scripted peer on the pty's far end answering with ``answer``, a link on its near
    end (``cfg``: LinkConfig's settings); both closed at the block's end."""
    peer = ScriptedPeer(pty.master, answer)
    link = _link(pty, **cfg)
    try:
        yield peer, link
    finally:
        link.close()
        peer.stop()


def _sync(link: Link) -> None:
    """A GET_STATUS the peer answers: its reply comes after the peer has read everything
    sent before it (one byte stream, read in order), so the peer's record is complete."""
    assert isinstance(link.request(GetStatus()).message, Ack)


def test_retransmits_with_same_seq_and_flag(pty: Pty) -> None:
    copies: list[Frame] = []

    def answer_from_the_second_copy(peer: ScriptedPeer, frame: Frame) -> None:
        if isinstance(frame.message, Stop):
            copies.append(frame)
            if len(copies) >= 2:  # the first copy "lost"; a loaded machine may send more
                _ack(peer, frame)
        elif isinstance(frame.message, GetStatus):
            _ack(peer, frame)

    with _connected(pty, answer_from_the_second_copy, initial_rto_s=0.05) as (_, link):
        reply = link.request(Stop())
        _sync(link)
        assert isinstance(reply.message, Ack)
        assert len(copies) >= 2
        assert [c.seq for c in copies] == [copies[0].seq] * len(copies)
        assert copies[0].flags == 0
        assert all(c.flags & HeaderFlags.RETRANSMIT for c in copies[1:])
        assert link.stats.retransmits == len(copies) - 1
        assert reply.seq == copies[0].seq


def test_gives_up_with_timeout_after_bound(pty: Pty) -> None:
    def answer_status_only(peer: ScriptedPeer, frame: Frame) -> None:
        if isinstance(frame.message, GetStatus):
            _ack(peer, frame)

    # the peer never answers the STOP
    cfg = {"initial_rto_s": 0.02, "max_rto_s": 0.04, "max_retries": 3}
    with _connected(pty, answer_status_only, **cfg) as (peer, link):
        with pytest.raises(Timeout) as info:
            link.request(Stop())
        assert isinstance(info.value, TimeoutError)
        _sync(link)  # the peer has read every copy the link sent before giving up
        stops = [f for f in peer.received if isinstance(f.message, Stop)]
        assert len(stops) == 4  # first try + 3 retries, all the same seq
        assert len({f.seq for f in stops}) == 1
        assert link.stats.timeouts == 1


def test_heartbeats_every_50_ms_while_open(pty: Pty) -> None:
    stamps_ms: list[int] = []

    def stamp(peer: ScriptedPeer, frame: Frame) -> None:
        if isinstance(frame.message, Heartbeat):
            stamps_ms.append(frame.message.uptime_ms)  # the host's clock as it sent it

    with _connected(pty, stamp) as (peer, link):
        # (waiting in the link: the owner holds its liveness lease, heartbeats go out)
        assert link.wait_until(lambda: len(stamps_ms) >= 9, 5.0)
        gaps = [b - a for a, b in itertools.pairwise(stamps_ms)]
        # never sooner than 50 ms (the ms stamp rounds down), and 50 ms apart: the median
        # gap — which a gap stretched by a busy machine does not move — within 25 ms
        assert min(gaps) >= 49 and statistics.median(gaps) <= 75, gaps
        assert all(f.seq == 0 for f in peer.received if isinstance(f.message, Heartbeat))


def test_silent_device_is_link_lost(pty: Pty) -> None:
    with _connected(pty, lambda p, f: None, silence_timeout_s=0.2) as (peer, link):
        peer.send(Heartbeat(1))  # the device spoke once, then went silent
        assert link.wait_until(lambda: link.lost is not None, 3.0)
        assert "silent" in str(link.lost)
        with pytest.raises(LinkLost):
            link.request(Stop())


def test_telemetry_and_events_arrive_without_any_command(pty: Pty) -> None:
    with _connected(pty, lambda p, f: None) as (peer, link):
        got: list[Frame] = []
        done = threading.Event()

        def listener(frame: Frame) -> None:
            got.append(frame)
            if isinstance(frame.message, Event):
                done.set()

        link.add_listener(listener)
        samples = pack_samples([TelemetrySample(i, i, i, 0, 0, 2, 0, 1) for i in range(10)])
        peer.send(Telemetry(0, samples))
        peer.send(Telemetry(15, samples))  # 5 samples lost in between
        peer.send(Event(1, 1000, 10, 0))
        assert done.wait(5.0)
        assert [type(f.message) for f in got] == [Telemetry, Telemetry, Event]
        assert link.stats.telemetry_samples == 20
        assert link.stats.telemetry_samples_lost == 5


def test_duplicate_reply_is_stray_not_confused(pty: Pty) -> None:
    def ack_twice(peer: ScriptedPeer, frame: Frame) -> None:
        if frame.seq:
            _ack(peer, frame)
            _ack(peer, frame)

    with _connected(pty, ack_twice) as (_, link):
        link.request(Stop())
        link.request(Stop())
        assert link.wait_until(lambda: link.stats.replies_stray >= 2, 5.0)


def test_two_threads_get_their_own_replies(pty: Pty) -> None:
    with _connected(pty, _ack) as (_, link):
        errors: list[BaseException] = []

        def worker(msg: Stop | GetStatus) -> None:
            try:
                for _ in range(200):
                    reply = link.request(msg)
                    assert isinstance(reply.message, Ack)
                    assert reply.message.command_id == MSG_ID[type(msg)]
            except BaseException as exc:  # collected, re-raised in the main thread
                errors.append(exc)

        threads = [threading.Thread(target=worker, args=(m,)) for m in (Stop(), GetStatus())]
        for t in threads:
            t.start()
        for t in threads:
            t.join(30)
        assert not errors
        assert link.stats.frames_out >= 400


def test_port_dying_is_link_lost_for_waiters_and_callers(pty: Pty) -> None:
    peer = ScriptedPeer(pty.master, lambda p, f: None)
    link = _link(pty)
    try:
        peer.stop()
        os.close(pty.master)  # the far end goes away (a USB cable pulled)
        assert link.wait_until(lambda: link.lost is not None, 5.0)
        with pytest.raises(LinkLost):
            link.request(Stop())
    finally:
        link.close()


def test_a_wait_ends_with_what_has_arrived_while_the_reader_lets_frames_gather(
    pty: Pty,
) -> None:
    """The reader batches reads (read_coalesce_s) to save CPU, but a waiter — a control
    loop's period — must see data as fresh as the device sent it: wait_s ends by taking
    in what is already on the port."""
    with _connected(pty, lambda p, f: None, read_coalesce_s=0.5) as (peer, link):
        numbers: list[int] = []
        first = threading.Event()

        def listener(frame: Frame) -> None:
            if isinstance(frame.message, Telemetry):
                numbers.append(frame.message.first_sample_number)
                first.set()

        link.add_listener(listener)
        samples = pack_samples([TelemetrySample(i, i, i, 0, 0, 2, 0, 1) for i in range(10)])
        peer.send(Telemetry(0, samples))
        assert first.wait(5.0)  # the reader took it in, and now lets frames gather
        peer.send(Telemetry(10, samples))
        link.wait_s(0.02)  # far shorter than the reader's 0.5 s pause
        assert numbers == [0, 10], numbers
