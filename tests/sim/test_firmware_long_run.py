"""A device up for months, a needle turned for hours (issue 17): the control tick's count
and the reported angle past 32 bits. The HIL suite cannot wait 49.7 days; the simulator
runs the same C core and can age it at once."""

from __future__ import annotations

import itertools
from collections.abc import Iterator

import pytest
import serial
from minihost import MiniHost

import sim_device  # noqa: F401
from protocol import Ack, EventCode, FaultFlags, Rotate, RotateMode

WRAP_TICKS = 1 << 32  # a 32-bit count of 1 ms ticks wraps after 49.7 days
INT32_MAX = (1 << 31) - 1


@pytest.fixture
def host() -> Iterator[MiniHost]:
    h = MiniHost(serial.serial_for_url("sim://?seed=1", timeout=0.1))
    yield h
    h.port.close()


def test_device_time_runs_on_past_the_32bit_tick_count(host: MiniHost) -> None:
    """49.7 days up, rotating across the wrap: device time goes on forward and the host,
    which keeps talking, never trips the watchdog."""
    fw = host.port.device
    fw.age(WRAP_TICKS - 1000)  # before any session: no watchdog to trip
    host.hello()
    before = host.status()
    assert isinstance(host.command(Rotate(RotateMode.CONTINUOUS, 30_000, 0)).message, Ack)
    host.pump(3.0)  # the wrap is 1 s in
    after = host.status()
    assert after.device_time_us > before.device_time_us >= (WRAP_TICKS - 1000) * 1000
    assert after.device_time_us >= WRAP_TICKS * 1000, "device time ran backwards at the wrap"
    assert not after.latched_faults & FaultFlags.WATCHDOG, "the watchdog tripped at the wrap"
    assert EventCode.WATCHDOG_TRIP not in host.event_codes()
    host.command(Rotate(RotateMode.STOP, 0, 0))


def test_angle_goes_on_changing_past_int32_centidegrees(host: MiniHost) -> None:
    """After ≈ 59,650 turns the angle in centidegrees leaves int32: it wraps (modulo 2^32)
    and goes on changing, never freezes while the needle turns."""
    fw = host.port.device
    host.hello()
    fw.rot.pos = (INT32_MAX - 9_000) / 100  # degrees: 90° short of the int32 edge
    assert isinstance(host.command(Rotate(RotateMode.CONTINUOUS, 60_000, 0)).message, Ack)
    angles = []
    for _ in range(6):
        host.pump(0.25)
        angles.append(host.status().angle_cdeg)
    host.command(Rotate(RotateMode.STOP, 0, 0))
    steps = [(b - a) % (1 << 32) for a, b in itertools.pairwise(angles)]
    assert all(0 < d < 1 << 31 for d in steps), f"the angle froze or ran back: {angles}"
    assert min(angles) < 0, f"the angle never wrapped: {angles}"
