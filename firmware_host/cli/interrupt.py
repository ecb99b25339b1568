"""SIGINT/SIGTERM during motion: stop the rig first, then leave with 130/143.

Two modes. While needlectl's own loop polls the device (jog, run), a signal only
sets ``event`` (a threading.Event the loop and the procedure watch) so the link is
never torn mid-frame. While a blocking library call runs (homing), a signal
raises ``Interrupted`` out of it; the caller then stops the rig. A second signal
always raises, so an operator is never stuck.
"""

from __future__ import annotations

import signal
import threading
from collections.abc import Iterator
from contextlib import contextmanager
from types import FrameType

from firmware_host.cli.exits import Interrupted

SIGNALS = (signal.SIGINT, signal.SIGTERM)


class StopRequest:
    def __init__(self) -> None:
        self.event = threading.Event()
        self.signum: int | None = None
        self.raise_now = False  # set while a blocking call runs

    @property
    def signal_name(self) -> str:
        return signal.Signals(self.signum).name if self.signum is not None else "signal"

    @property
    def requested(self) -> bool:
        return self.event.is_set()

    def _handler(self, signum: int, frame: FrameType | None) -> None:
        first = self.signum is None
        self.signum = signum if first else self.signum
        self.event.set()
        if self.raise_now or not first:
            raise Interrupted(signum, f"interrupted by {signal.Signals(signum).name}")

    @contextmanager
    def blocking(self) -> Iterator[None]:
        """Around a blocking library call: a signal interrupts it."""
        if self.event.is_set():
            raise Interrupted(self.signum or signal.SIGINT)
        self.raise_now = True
        try:
            yield
        finally:
            self.raise_now = False

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
