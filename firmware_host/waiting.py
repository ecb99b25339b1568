"""Waiting until the rig is idle: the one polling loop of the host library, the CLI,
homing and the HIL suite (each brings its own status call, clock and wait).

It asks for the status, hands it to ``on_status``, returns it once no axis moves, and
otherwise lets ``poll_s`` pass with the caller's own wait (which keeps the link alive,
and on ``sim://`` runs the device). An ``abort`` seen set — looked at before every
status — ends the wait with None at once (the axis may still move: the caller stops
it); at ``timeout_s`` the exception ``on_timeout(last status)`` makes is raised.
"""

from __future__ import annotations

import threading
from collections.abc import Callable
from typing import TYPE_CHECKING, TypeVar

if TYPE_CHECKING:
    from firmware_host.client import DeviceStatus
    from firmware_host.driver import Driver

S = TypeVar("S")


class AbortEvent(threading.Event):
    """A ``threading.Event`` that can say why it was set (needlectl: which signal).

    ``run_procedure`` and ``home_interruptibly`` take any ``threading.Event``; with
    this one the outcome's reason names the cause."""

    def __init__(self) -> None:
        super().__init__()
        self.reason = ""
        self.by_operator = True

    def set_because(self, reason: str, *, by_operator: bool = True) -> None:
        """Set, saying why. ``by_operator=False``: no one asked (the rig server's
        dead-man, its client lost): the reason alone is the outcome's, never "aborted by
        the operator"."""
        self.reason = reason
        self.by_operator = by_operator
        self.set()


def abort_reason(abort: threading.Event | None, default: str) -> str:
    why = getattr(abort, "reason", "")
    if why and not getattr(abort, "by_operator", True):
        return why
    return f"{default} ({why})" if why else default


def wait_until_idle(
    status: Callable[[], S],
    moving: Callable[[S], bool],
    *,
    now: Callable[[], float],
    wait_s: Callable[[float], None],
    poll_s: float,
    timeout_s: float,
    on_timeout: Callable[[S], BaseException],
    abort: threading.Event | None = None,
    on_status: Callable[[S], None] | None = None,
) -> S | None:
    """The first status with no axis moving; None if ``abort`` was set first."""
    deadline_s = now() + timeout_s
    while True:
        if abort is not None and abort.is_set():
            return None
        last = status()
        if on_status is not None:
            on_status(last)
        if not moving(last):
            return last
        if now() >= deadline_s:
            raise on_timeout(last)
        wait_s(poll_s)


def wait_driver_idle(
    nd: Driver,
    *,
    poll_s: float,
    timeout_s: float,
    on_timeout: Callable[[DeviceStatus], BaseException],
    abort: threading.Event | None = None,
    on_status: Callable[[DeviceStatus], None] | None = None,
) -> DeviceStatus | None:
    """wait_until_idle on a driver: its status, its clock, its wait (link kept alive)."""
    return wait_until_idle(
        nd.status,
        lambda status: status.moving,
        now=nd.clock.monotonic,
        wait_s=nd.wait_s,
        poll_s=poll_s,
        timeout_s=timeout_s,
        on_timeout=on_timeout,
        abort=abort,
        on_status=on_status,
    )
