"""The C firmware's main loop on the posix port (issue 17), driven in real time over its
pty, the late loop made by the port's own fault hook (--fault tick_overrun): a loop held
up past the board's bound (200 ticks) drops the ticks it missed instead of replaying them
unchecked, halts what moved and latches OVERRUN; a loop that hangs is reset by the MCU
watchdog (emulated with an interval timer) into the boot state, the carriage where it
stood. Both counted: STATUS.tick_overruns, the port's stderr."""

from __future__ import annotations

import contextlib
import os
import signal
from collections.abc import Iterator

import pytest
import serial

from firmware.launch import Device, PortUnavailable, running
from firmware_host.client import NeedleDriver
from firmware_host.errors import LinkLost
from firmware_host.link import LinkConfig
from protocol.schema import DeviceState, EventCode, FaultFlags

# the bench board's bound (firmware/bench/bench.c): a loop later than this drops ticks
MAX_LATE_TICKS = 200
HW_WATCHDOG_S = 1.0
PATIENT = LinkConfig(silence_timeout_s=3.0)


BENCH = ("--start-mm", "1", "--seed", "3")
FAULT_AT_S = 3.0  # the late loop, by the bench's fault hook: well inside the advance below


@contextlib.contextmanager
def _firmware(*extra: str) -> Iterator[Device]:
    try:
        with running("posix", args=(*BENCH, *extra)) as dev:
            yield dev
    except PortUnavailable as exc:
        pytest.skip(str(exc))


@pytest.fixture
def firmware() -> Iterator[Device]:
    with _firmware() as dev:
        yield dev


def _late_loop(late_ms: int, *extra: str) -> contextlib.AbstractContextManager[Device]:
    """The port's own fault hook (firmware/faults, as the single-fault campaign's): at
    FAULT_AT_S of its uptime the main loop sleeps late_ms once, nothing running meanwhile."""
    at_ms = str(int(FAULT_AT_S * 1000))
    return _firmware(
        "--fault", "tick_overrun", "--fault-at-ms", at_ms, "--fault-param", str(late_ms), *extra
    )


def _advancing(drv: NeedleDriver) -> None:
    drv.home(speed_mm_s=5.0, timeout_s=20.0)
    drv.move_to_mm(15.0, speed_mm_s=2.0)  # 7 s of advance: under way at FAULT_AT_S
    assert drv.status().moving


def _through_the_fault(drv: NeedleDriver, late_ms: int) -> int:
    """Keep the link until the device is 0.1 s past its late loop; the overrun count from
    before it."""
    st = drv.status()
    assert st.device_time_s < FAULT_AT_S, "set up too slowly: the fault came first"
    drv.wait_s(FAULT_AT_S - st.device_time_s + late_ms / 1000 + 0.1)
    return int(st.counters.tick_overruns)


@pytest.mark.control("RC-LOOPBOUND")
def test_a_loop_held_up_past_its_bound_halts_motion_and_latches_overrun() -> None:
    late_ms = MAX_LATE_TICKS * 3  # 600 ticks, 3x the bound
    # a host that waits out the silent device (its default: lost after 0.5 s of silence)
    with (
        _late_loop(late_ms) as firmware,
        NeedleDriver.open(firmware.path, link_config=PATIENT) as drv,
    ):
        _advancing(drv)
        before = _through_the_fault(drv, late_ms)
        st = drv.status()
        assert st.latched_faults & FaultFlags.OVERRUN, st.latched_faults
        assert st.state == DeviceState.FAULT and not st.moving, st
        assert st.counters.tick_overruns - before >= MAX_LATE_TICKS * 2, st.counters
        depth_mm = st.depth_mm
        drv.wait_s(0.2)
        assert drv.status().depth_mm == depth_mm  # halted: not one more step
        fault_events = [e for e in drv.events() if e.code == EventCode.FAULT]
        assert fault_events and fault_events[-1].value == FaultFlags.OVERRUN
        drv.clear_fault()


def test_a_short_hold_up_is_caught_up_and_counted_without_a_fault() -> None:
    late_ms = 30  # 30 ticks: within the bound
    # the link watchdog at 2 s: this test's host is the test process itself, not a
    # real-time one, and starved beside a second test run it went silent for 200 ms
    # (WATCHDOG, not what this test is about; the HIL suite proves the watchdog)
    with (
        _late_loop(late_ms, "--watchdog-ms", "2000") as firmware,
        NeedleDriver.open(firmware.path) as drv,
    ):
        _advancing(drv)
        before = _through_the_fault(drv, late_ms)
        st = drv.status()
        assert not st.latched_faults and st.moving, st
        assert st.counters.tick_overruns - before >= 20, st.counters
        drv.stop()


@pytest.mark.control("RC-HWWATCHDOG")
def test_a_hung_loop_is_reset_by_the_watchdog_into_the_boot_state(firmware: Device) -> None:
    drv = NeedleDriver.open(firmware.path)
    try:
        _advancing(drv)
        uptime_before_s = drv.status().device_time_s
        os.kill(firmware.proc.pid, signal.SIGUSR2)  # the main loop hangs
        with pytest.raises(LinkLost, match="device silent"):
            drv.wait_s(HW_WATCHDOG_S * 3)  # the host hears nothing ...
    finally:
        with contextlib.suppress(LinkLost):
            drv.close()
    # ... until the watchdog resets the device, which then speaks again (a heartbeat)
    with serial.Serial(firmware.path, timeout=HW_WATCHDOG_S * 3) as raw:
        assert raw.read(1), "the device never came back"
    assert "watchdog reset" in firmware.stderr(), firmware.stderr()
    with NeedleDriver.open(firmware.path) as drv:
        st = drv.status()
        # the boot state: a new device time, nothing moving, not homed, BOOT its first event
        assert st.device_time_s < uptime_before_s + HW_WATCHDOG_S, st
        assert not st.moving and not st.homed, st
        assert [e.code for e in drv.events()][:1] == [EventCode.BOOT]
        # the carriage stayed where the reset found it: depth counts from there, and the
        # motor is not driven back to where it stood at the first boot
        depth_mm = st.depth_mm
        drv.wait_s(0.3)
        assert drv.status().depth_mm == depth_mm == pytest.approx(0.0, abs=0.01)
