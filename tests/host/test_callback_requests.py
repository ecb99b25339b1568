"""Requests from inside the library's callbacks: a telemetry subscriber, an event listener,
a link listener or a wait_until predicate may ask the device (status(), stop(), estop());
a callback may not wait (wait_s, wait_until, wait_idle, home): it runs on the thread that
delivers the frames the wait would wait for, so it is refused at once with CallbackWait.

Each test would hang on the old link (the request waited on the very thread or lock that
delivers its reply), so each is bounded by a small timeout: a hang fails, it does not stall
the suite."""

from __future__ import annotations

import os
import threading
from collections.abc import Iterator
from typing import Any

import numpy as np
import pytest

from firmware_host.client import DeviceEvent, DeviceStatus, NeedleDriver
from firmware_host.errors import CallbackWait
from firmware_host.link import Link, LinkConfig
from firmware_host.transports import open_transport
from protocol import (
    Ack,
    DeviceState,
    Frame,
    GetStatus,
    Telemetry,
    TelemetrySample,
    encode,
    pack_samples,
)
from protocol.schema import MSG_ID

from .helpers import Pty, ScriptedPeer

# ------------------------------------------------------------------ sim:// (virtual time)


@pytest.fixture
def nd() -> Iterator[NeedleDriver]:
    with NeedleDriver.open("sim://?seed=1") as driver:
        driver.home()
        driver.set_telemetry(1000, 10)
        yield driver


@pytest.mark.timeout(10)
def test_a_telemetry_subscriber_stops_the_rig_where_it_decides(nd: NeedleDriver) -> None:
    """The use that matters: a subscriber sees the depth pass a mark and e-stops. The rig
    halts there (within a few control ticks of the batch that crossed it), not at the
    move's target."""
    seen: list[DeviceStatus] = []

    def guard(rows: Any) -> None:
        if not seen and float(np.max(rows["depth_mm"])) >= 1.0:
            nd.estop()
            seen.append(nd.status())

    nd.telemetry.subscribe(guard)
    nd.advance_mm(5.0, 2.0)
    final = nd.wait_idle(10.0)
    assert len(seen) == 1 and seen[0].state is DeviceState.ESTOPPED
    assert final.state is DeviceState.ESTOPPED
    assert 1.0 <= final.depth_mm <= 1.05, final.depth_mm  # 2 mm/s: 10 ms of travel is 0.02 mm


@pytest.mark.timeout(10)
def test_an_event_listener_asks_for_status(nd: NeedleDriver) -> None:
    asked: list[tuple[str, DeviceStatus]] = []
    nd.add_event_listener(lambda e: asked.append((e.name, nd.status())))
    nd.advance_mm(0.5, 2.0)
    nd.wait_idle(10.0)
    assert [name for name, _ in asked] == ["TARGET_REACHED"]
    assert asked[0][1].depth_mm == pytest.approx(0.5, abs=0.01)


@pytest.mark.timeout(10)
def test_a_wait_until_predicate_asks_for_status(nd: NeedleDriver) -> None:
    nd.advance_mm(1.0, 2.0)
    assert nd.wait_until(lambda: nd.status().depth_mm >= 0.5, 5.0)
    assert 0.5 <= nd.status().depth_mm < 1.0


@pytest.mark.timeout(10)
def test_a_wait_inside_a_callback_is_refused_with_the_rule(nd: NeedleDriver) -> None:
    refused: list[BaseException] = []

    def on_event(event: DeviceEvent) -> None:
        for wait in (lambda: nd.wait_s(0.1), lambda: nd.wait_until(lambda: False, 0.1)):
            try:
                wait()
            except CallbackWait as exc:
                refused.append(exc)

    nd.add_event_listener(on_event)
    nd.advance_mm(0.5, 2.0)
    nd.wait_idle(10.0)  # the caller's own wait is fine
    assert len(refused) == 2
    message = str(refused[0])
    assert "callback" in message and "return from the callback" in message
    assert "\n" not in message


@pytest.mark.timeout(10)
def test_home_inside_a_callback_is_refused_before_anything_is_sent(nd: NeedleDriver) -> None:
    """home() sends HOME and then waits: refused in a callback, it must not have sent it
    (a refusal that leaves the rig homing is no refusal)."""
    after: list[DeviceState] = []

    def on_event(event: DeviceEvent) -> None:
        with pytest.raises(CallbackWait):
            nd.home()
        after.append(nd.status().state)

    nd.add_event_listener(on_event)
    nd.advance_mm(0.5, 2.0)
    assert nd.wait_idle(10.0).state is DeviceState.READY
    assert after == [DeviceState.READY]  # not HOMING


# ------------------------------------------------------------------ a real pty, real threads


def _ack(peer: ScriptedPeer, frame: Frame) -> None:
    if frame.seq:
        peer.send(Ack(MSG_ID[type(frame.message)]), frame.seq)


@pytest.fixture
def link_on_pty(pty_pair: Pty) -> Iterator[tuple[ScriptedPeer, Link]]:
    peer = ScriptedPeer(pty_pair.master, _ack)
    link = Link(open_transport(pty_pair.path), LinkConfig())
    try:
        yield peer, link
    finally:
        link.close()
        peer.stop()


def _batch(first: int) -> Telemetry:
    return Telemetry(
        first, pack_samples([TelemetrySample(i, i, i, 0, 0, 2, 0, 1) for i in range(10)])
    )


@pytest.mark.timeout(10)
def test_a_predicate_makes_requests_on_a_real_port(
    link_on_pty: tuple[ScriptedPeer, Link],
) -> None:
    """The waiter's predicate runs a request: its reply must not need the waiter's own lock
    (the old wait_until held its condition around the predicate, and the reply's arrival
    took that condition: the thread waited for itself)."""
    _, link = link_on_pty
    replies: list[Frame] = []

    def three_replies() -> bool:
        replies.append(link.request(GetStatus()))
        return len(replies) >= 3

    assert link.wait_until(three_replies, 5.0)
    assert all(isinstance(f.message, Ack) for f in replies)


@pytest.mark.timeout(10)
def test_a_listener_on_the_reader_thread_makes_a_request_and_order_is_kept(
    pty_pair: Pty, link_on_pty: tuple[ScriptedPeer, Link]
) -> None:
    """A listener (on the reader thread) asks the device while more telemetry is arriving:
    it gets its reply (it reads the port itself), and the frames taken in meanwhile reach
    the listeners after it returns — in the order sent, the listener never re-entered,
    no batch counted lost or twice."""
    peer, link = link_on_pty
    firsts: list[int] = []
    replies: list[Frame] = []
    reader: list[threading.Thread] = []
    depth = [0, 0]  # now, deepest
    done = threading.Event()

    def listener(frame: Frame) -> None:
        if not isinstance(frame.message, Telemetry):
            return
        depth[0] += 1
        depth[1] = max(depth)
        first = frame.message.first_sample_number
        firsts.append(first)
        if first == 0:
            reader.append(threading.current_thread())
            peer.send(_batch(20))  # on the wire before the request's reply
            replies.append(link.request(GetStatus()))
            peer.send(_batch(30))
        if first == 30:
            done.set()
        depth[0] -= 1

    link.add_listener(listener)
    # batches 0 and 10 in one write: one read decodes both, and 0's listener asks
    # the device before 10 is delivered
    os.write(pty_pair.master, encode(_batch(0)) + encode(_batch(10)))
    assert done.wait(5.0)
    assert reader[0] is not threading.main_thread()  # it ran on the link's reader
    assert len(replies) == 1 and isinstance(replies[0].message, Ack)
    assert firsts == [0, 10, 20, 30]
    assert depth[1] == 1  # never called from inside itself
    assert link.stats.telemetry_samples == 40 and link.stats.telemetry_samples_lost == 0
