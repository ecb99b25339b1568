"""Device time (µs, 32-bit in telemetry samples, 64-bit elsewhere) mapped to host time.

Every frame that carries a device time and arrives at host time h gives one
observation ``h - d = offset + transport delay``. Delays are never negative, so the
smallest difference seen in a short window is the best estimate of the offset in that
window; a straight line through those minima over the last minutes gives offset and
drift (a rig's crystal may run tens of ppm fast or slow).
"""

from __future__ import annotations

import threading
from collections import deque

import numpy as np
import numpy.typing as npt

_WRAP = 1 << 32
_HALF = 1 << 31


class TimeSync:
    def __init__(self, window_s: float = 1.0, history: int = 120) -> None:
        self.window_s = window_s
        self._minima: deque[tuple[float, float]] = deque(maxlen=history)  # (device_s, h - d)
        self._win_start_s: float | None = None
        self._win_min: tuple[float, float] | None = None
        self._last_full_us: int | None = None
        self._offset_s = 0.0
        self._drift = 0.0  # host seconds per device second, minus 1
        self._ref_s = 0.0  # device time the offset refers to
        self._have = False
        self._lock = threading.Lock()

    # ---------------------------------------------------------------- device time

    def unwrap_us(self, time_us_32: int) -> int:
        """A 32-bit sample time as the full device time, from the last full time seen."""
        last = self._last_full_us
        if last is None:
            return time_us_32
        delta = (time_us_32 - last) % _WRAP
        if delta >= _HALF:
            delta -= _WRAP
        return last + delta

    def unwrap_array_us(self, time_us_32: npt.NDArray[np.uint32]) -> npt.NDArray[np.int64]:
        last = self._last_full_us
        t = time_us_32.astype(np.int64)
        if last is None:
            return t
        # last + the step from last's low 32 bits to t, taken in [-2^31, 2^31)
        base = last - _HALF
        out: npt.NDArray[np.int64] = (t - base) % _WRAP + base
        return out

    # ---------------------------------------------------------------- observations

    def observe(self, device_time_us: int, host_time_s: float) -> None:
        """A frame stamped device_time_us (full, 64-bit) arrived at host_time_s."""
        with self._lock:
            if self._last_full_us is None or device_time_us > self._last_full_us:
                self._last_full_us = device_time_us
            d_s = device_time_us / 1e6
            diff = host_time_s - d_s
            if self._win_start_s is None or d_s - self._win_start_s >= self.window_s:
                if self._win_min is not None:
                    self._minima.append(self._win_min)
                    self._fit()
                self._win_start_s = d_s
                self._win_min = (d_s, diff)
            elif self._win_min is None or diff < self._win_min[1]:
                self._win_min = (d_s, diff)
            if not self._minima and self._win_min is not None:
                # until a window closes, the best guess is the smallest difference so far
                self._offset_s = (
                    self._win_min[1] if not self._have else min(self._offset_s, self._win_min[1])
                )
                self._ref_s = d_s
                self._have = True

    def _fit(self) -> None:
        pts = np.array(self._minima)
        if len(pts) >= 3 and pts[-1, 0] - pts[0, 0] > 0:
            drift, intercept = np.polyfit(pts[:, 0] - pts[-1, 0], pts[:, 1], 1)
            self._drift = float(drift)
            self._offset_s = float(intercept)
            self._ref_s = float(pts[-1, 0])
        else:
            self._offset_s = float(pts[:, 1].min())
            self._ref_s = float(pts[-1, 0])
            self._drift = 0.0
        self._have = True

    # ---------------------------------------------------------------- mapping

    @property
    def ready(self) -> bool:
        return self._have

    @property
    def offset_s(self) -> float:
        return self._offset_s

    @property
    def drift_ppm(self) -> float:
        return self._drift * 1e6

    def to_host_s(self, device_time_us: int | float) -> float:
        d_s = device_time_us / 1e6
        return d_s + self._offset_s + self._drift * (d_s - self._ref_s)

    def to_host_array_s(self, device_time_us: npt.NDArray[np.int64]) -> npt.NDArray[np.float64]:
        d_s = device_time_us.astype(np.float64) / 1e6
        out: npt.NDArray[np.float64] = d_s + self._offset_s + self._drift * (d_s - self._ref_s)
        return out
