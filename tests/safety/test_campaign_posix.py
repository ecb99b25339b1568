"""The posix port (a Linux process on a pty, the bench model as its rig) has the same
fault hooks as the simulator (firmware/faults, nd-firmware --fault) and the same answer
to them: a single fault mid-move is latched and stops the motion within the campaign's
bound; a reset (SIGUSR1) leaves a device that refuses motion until homed. Real time,
real pty, real process."""

from __future__ import annotations

import os
import signal
from collections.abc import Callable, Iterator
from contextlib import contextmanager

import pytest

from firmware.launch import Device, PortUnavailable, running
from firmware_host.client import DeviceStatus, NeedleDriver
from firmware_host.errors import Nak
from protocol import EventCode, FaultFlags, NakReason
from studies.campaign import SAFE_BOUND_S

FAULT_AT_MS = 1500  # device time: after homing (~0.5 s), mid-move
# The host here is this test's own process, in the test run's session, not a real-time
# one: under a second test run it may be silent 200 ms, and the device's watchdog would
# end the move before its fault (it did: WATCHDOG while homing). These tests are about the
# hooks; the watchdog is proved by the HIL suite's lanes, whose host keeps real time.
HOST_WATCHDOG_ARGS = ("--watchdog-ms", "5000")


def poll(nd: NeedleDriver, ready: Callable[[DeviceStatus], bool], timeout_s: float) -> DeviceStatus:
    """STATUS every 20 ms (the link kept alive between) until ``ready`` or the timeout."""
    st = nd.status()
    waited_s = 0.0
    while not ready(st) and waited_s < timeout_s:
        nd.wait_s(0.02)
        waited_s += 0.02
        st = nd.status()
    return st


@contextmanager
def posix(*args: str) -> Iterator[Device]:
    try:
        with running("posix", args=(*HOST_WATCHDOG_ARGS, *args)) as dev:
            yield dev
    except PortUnavailable as exc:
        pytest.skip(str(exc))


@pytest.mark.control("RC-SAFESTATE")
@pytest.mark.parametrize(
    ("fault", "latched"),
    [("loadcell_disconnected", FaultFlags.LOAD_CELL), ("motor_stalled", FaultFlags.STALL)],
)
def test_a_hooked_fault_mid_move_is_latched_and_stops_it(fault: str, latched: int) -> None:
    with (
        posix("--fault", fault, "--fault-at-ms", str(FAULT_AT_MS)) as dev,
        NeedleDriver.open(dev.path) as nd,
    ):
        nd.home(speed_mm_s=10.0)
        nd.move_to_mm(30.0, speed_mm_s=5.0)
        st = poll(nd, lambda s: bool(s.latched_faults) and not s.moving, timeout_s=5.0)
        assert st.latched_faults & latched and not st.moving
        assert st.depth_mm < 29.0  # stopped short of the target
        latch = [e for e in nd.events() if e.code in (EventCode.FAULT, EventCode.STALL)]
        # The hook strikes at the process's clock (hal_time_us), events carry the tick's
        # device time: a loop catching up on late ticks runs ticks stamped earlier than
        # the clock reads, by at most the late ticks it counts (STATUS tick_overruns).
        lag_s = st.counters.tick_overruns / 1000
        assert latch, "nothing latched"
        after_s = latch[0].device_time_s - FAULT_AT_MS / 1000
        assert -lag_s <= after_s <= SAFE_BOUND_S, (after_s, lag_s)


@pytest.mark.control("RC-HOMING")
def test_a_reset_mid_move_leaves_a_device_that_refuses_motion() -> None:
    with posix() as dev, NeedleDriver.open(dev.path) as nd:
        nd.home(speed_mm_s=10.0)
        nd.move_to_mm(30.0, speed_mm_s=5.0)
        os.kill(dev.proc.pid, signal.SIGUSR1)
        assert not poll(nd, lambda s: not s.homed, timeout_s=2.0).homed
        depth_mm = nd.status().depth_mm
        nd.wait_s(0.5)
        st = nd.status()
        assert not st.moving and st.depth_mm == depth_mm
        with pytest.raises(Nak) as refused:
            nd.move_to_mm(35.0, speed_mm_s=5.0)
        assert refused.value.reason in (NakReason.NOT_ARMED, NakReason.NOT_HOMED)
