"""SIGINT/SIGTERM during motion: stop the rig first, then leave with 130/143.

The first signal never raises: it records which signal it was and sets ``event``
(an AbortEvent, whose reason names the signal), and every motion loop — homing, jog,
the procedure — looks at it between short waits and stops the rig itself. Raising
from the handler instead would throw into whatever the main thread was doing, the
link included: between taking its I/O lock and the ``try`` that releases it, the
exception would leave the lock held and STOP/ESTOP could no longer be sent.

A second signal does raise ``Interrupted``: the operator insists (a link that no
longer answers keeps the loops waiting for its timeouts), and the caller then tries
an ESTOP; if the link is wedged, the device's watchdog stops the rig once needlectl
has gone quiet.
"""

from __future__ import annotations

import signal
from collections.abc import Iterator
from contextlib import contextmanager
from types import FrameType

from firmware_host.cli.exits import Interrupted
from firmware_host.waiting import AbortEvent

SIGNALS = (signal.SIGINT, signal.SIGTERM)


class StopRequest:
    def __init__(self) -> None:
        self.event = AbortEvent()
        self.signum: int | None = None

    @property
    def signal_name(self) -> str:
        return signal.Signals(self.signum).name if self.signum is not None else "signal"

    @property
    def requested(self) -> bool:
        return self.event.is_set()

    def _handler(self, signum: int, frame: FrameType | None) -> None:
        if self.signum is None:
            self.signum = signum
            self.event.set_because(signal.Signals(signum).name)
            return
        raise Interrupted(signum, f"interrupted again by {signal.Signals(signum).name}")

    def check_before_motion(self) -> None:
        """A signal that came while connecting or asking: leave before anything moves."""
        if self.signum is not None:
            raise Interrupted(self.signum, f"{self.signal_name} before any motion: nothing moved")


@contextmanager
def stop_on_signals() -> Iterator[StopRequest]:
    """Install the handlers for the duration of the motion; restore them after."""
    request = StopRequest()
    previous = {s: signal.getsignal(s) for s in SIGNALS}
    for s in SIGNALS:
        signal.signal(s, request._handler)
    try:
        yield request
    finally:
        for s, h in previous.items():
            signal.signal(s, h)
