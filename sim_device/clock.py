"""The device's clock: integer microseconds advanced by the control tick.

In-process (``sim://``) the host reads the same object, so host timeouts and the
device's watchdog agree on what time it is and a run is reproducible. Served in
real time, the serve loop advances it to follow ``time.monotonic``.
"""

from __future__ import annotations


class VirtualClock:
    """Virtual time that moves only when the device is run (``now_us`` += tick)."""

    __slots__ = ("now_us",)

    def __init__(self, start_us: int = 0) -> None:
        self.now_us = start_us

    def monotonic(self) -> float:
        """Seconds of virtual time since the device booted (the ``Clock`` protocol)."""
        return self.now_us / 1_000_000

    def __repr__(self) -> str:
        return f"VirtualClock(now_us={self.now_us})"
