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
from firmware_host.link import LinkConfig
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


@pytest.mark.control("RC-WATCHDOG")
def test_a_hung_host_lets_the_watchdog_stop_the_moving_rig(served: ServedDevice) -> None:
    with NeedleDriver.open(served.path) as nd:
        nd.home(speed_mm_s=5.0)
        tripped, _ = _trip_listener(nd)
        nd.advance_mm(20.0, 2.0)
        nd.wait_s(0.4)  # the library's own wait keeps the lease: no trip while it waits
        assert not tripped.is_set() and nd.stats.lease_lapses == 0
        # The main thread hangs: it waits on the trip itself, which only the device's
        # watchdog can bring (a plain event, nothing the link counts as a sign of life).
        beats_before = nd.stats.heartbeats_out
        assert tripped.wait(10.0), "heartbeats kept the watchdog fed while the host hung"
        # The heartbeats stopped within the lease of the last sign of life: sent at most a
        # period apart while the lease held (one more may have been on its way as the
        # count was read) — counted by the link itself, whatever the machine's load.
        cfg = nd.link.config
        beats = nd.stats.heartbeats_out - beats_before
        assert beats <= cfg.lease_s / cfg.heartbeat_s + 2, f"{beats} heartbeats while hung"
        assert nd.stats.lease_lapses == 1
        watchdog_s = nd.identity.watchdog_s
        st = nd.status()
        assert not st.moving and st.state is DeviceState.FAULT
        assert st.latched_faults & FaultFlags.WATCHDOG
        trip = [e for e in nd.events() if e.code is EventCode.WATCHDOG_TRIP]
        assert len(trip) == 1 and trip[0].value <= watchdog_s * 1000 + 5
        nd.clear_fault()


def test_keepalive_holds_the_lease_through_long_host_work(served: ServedDevice) -> None:
    # A lease of 0.6 s against life shown every 0.1 s: 0.5 s of margin for a busy machine
    # to wake this thread late; the work lasts more than three leases.
    with NeedleDriver.open(served.path, link_config=LinkConfig(lease_s=0.6)) as nd:
        nd.home(speed_mm_s=5.0)
        tripped, _ = _trip_listener(nd)
        nd.advance_mm(10.0, 2.0)
        busy = threading.Event()
        for _ in range(20):  # 2 s of the host's own work, showing life every 0.1 s
            busy.wait(0.1)
            nd.keepalive()
        assert not tripped.is_set() and nd.stats.lease_lapses == 0
        st = nd.status()
        assert st.moving and not st.latched_faults
        nd.stop()
        assert nd.wait_idle(5.0).state is DeviceState.READY
