"""The liveness lease (docs/architecture.md §4): heartbeats go out only while the program
that owns the link shows life. A host whose main thread hangs while the rig moves must
let the device's watchdog stop it, exactly as a killed host does — over a real pty to a
device served in another process, in real time."""

from __future__ import annotations

import threading
import time
from collections.abc import Iterator

import pytest

from firmware_host.client import DeviceEvent, NeedleDriver
from protocol import DeviceState, EventCode, FaultFlags

from .served import ServedDevice


@pytest.fixture
def served() -> Iterator[ServedDevice]:
    dev = ServedDevice("--seed", "1")
    yield dev
    dev.close()


def _trip_listener(nd: NeedleDriver) -> tuple[threading.Event, list[float]]:
    tripped = threading.Event()
    seen_at_s: list[float] = []

    def on_event(event: DeviceEvent) -> None:  # runs on the link's reader thread
        if event.code is EventCode.WATCHDOG_TRIP:
            seen_at_s.append(time.monotonic())
            tripped.set()

    nd.add_event_listener(on_event)
    return tripped, seen_at_s


def test_a_hung_host_lets_the_watchdog_stop_the_moving_rig(served: ServedDevice) -> None:
    with NeedleDriver.open(served.path) as nd:
        nd.home(speed_mm_s=5.0)
        tripped, seen_at_s = _trip_listener(nd)
        nd.advance_mm(20.0, 2.0)
        nd.wait_s(0.4)  # the library's own wait keeps the lease: no trip while it waits
        assert not tripped.is_set() and nd.stats.lease_lapses == 0
        # The main thread hangs: it waits on an event nothing sets but the trip itself.
        hung_at_s = time.monotonic()
        hang = threading.Event()
        assert not hang.wait(0.6)  # never set: 0.6 s of a hung host
        assert tripped.is_set(), "heartbeats kept the watchdog fed while the host hung"
        # lease (150 ms) + watchdog (200 ms) + transit, from the last sign of life
        watchdog_s = nd.identity.watchdog_s
        assert seen_at_s[0] - hung_at_s <= nd.link.config.lease_s + watchdog_s + 0.05
        assert nd.stats.lease_lapses == 1
        st = nd.status()
        assert not st.moving and st.state is DeviceState.FAULT
        assert st.latched_faults & FaultFlags.WATCHDOG
        trip = [e for e in nd.events() if e.code is EventCode.WATCHDOG_TRIP]
        assert len(trip) == 1 and trip[0].value <= watchdog_s * 1000 + 5
        nd.clear_fault()


def test_keepalive_holds_the_lease_through_long_host_work(served: ServedDevice) -> None:
    with NeedleDriver.open(served.path) as nd:
        nd.home(speed_mm_s=5.0)
        tripped, _ = _trip_listener(nd)
        nd.advance_mm(5.0, 2.0)
        busy = threading.Event()
        for _ in range(8):  # 0.8 s of the host's own work, showing life every 0.1 s
            busy.wait(0.1)
            nd.keepalive()
        assert not tripped.is_set() and nd.stats.lease_lapses == 0
        st = nd.status()
        assert st.moving and not st.latched_faults
        nd.stop()
        assert nd.wait_idle(5.0).state is DeviceState.READY
