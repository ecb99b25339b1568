"""Homing that an abort can interrupt, without anything raised into the link.

``NeedleDriver.home()`` blocks until the axis is homed. Interrupting it means raising
from a signal handler into whatever the main thread is doing — possibly the link,
between taking its I/O lock and the ``try`` that releases it, after which STOP and
ESTOP could not be sent. So homing here is: send HOME, then wait in short slices with
the driver's own wait, and look at the abort event between slices. The caller stops
the rig when it sees the abort.
"""

from __future__ import annotations

import threading
from typing import TYPE_CHECKING

from firmware_host.errors import DeviceFault, Timeout
from firmware_host.waiting import AbortEvent, abort_reason, wait_driver_idle

if TYPE_CHECKING:
    from firmware_host.client import DeviceStatus
    from firmware_host.driver import Driver

HOME_SLICE_S = 0.05

__all__ = ["AbortEvent", "abort_reason", "home_interruptibly"]


def home_interruptibly(
    nd: Driver,
    *,
    speed_mm_s: float,
    timeout_s: float,
    abort: threading.Event | None,
    slice_s: float = HOME_SLICE_S,
) -> DeviceStatus | None:
    """Home the advance axis; the status once homed, or None as soon as ``abort`` is
    seen set (within ``slice_s``; the axis may still be moving: stop it).

    Raises DeviceFault when a fault ends the homing or it ends unhomed, Timeout when
    the axis still moves after ``timeout_s`` (the rig then still moves: stop it)."""
    if abort is not None and abort.is_set():
        return None
    nd.start_home(speed_mm_s)
    status = wait_driver_idle(
        nd,
        poll_s=slice_s,
        timeout_s=timeout_s,
        on_timeout=lambda _: Timeout(f"{nd.url}: still homing after {timeout_s:g} s"),
        abort=abort,
    )
    if status is None:
        return None
    if status.stopped_by_fault:
        raise DeviceFault(
            f"{nd.url}: homing stopped in state {status.state.name}",
            int(status.latched_faults),
        )
    if not status.homed:
        raise DeviceFault(f"{nd.url}: homing ended without the axis homed", 0)
    return status
