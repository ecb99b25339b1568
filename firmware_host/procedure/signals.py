"""Signal conditioning for the control loop: the load cell is noisy, the loop must not be.

``ForceFilter`` is a first-order low-pass (exponential moving average with a time
constant, stepped per sample so it does not depend on how samples are batched),
and it keeps a short history of the filtered force so a sudden drop — a crack in
the calcium — can be told from noise: a drop counts only if the *filtered*
force falls by ``crack_drop_n`` within ``window_s``.
"""

from __future__ import annotations

import math
from collections import deque


class ForceFilter:
    def __init__(self, tau_s: float, sample_period_s: float = 0.001) -> None:
        self.tau_s = tau_s
        self._alpha = 1.0 - math.exp(-sample_period_s / tau_s)
        self._period_s = sample_period_s
        self.value_n: float | None = None

    def update(self, samples_n: list[float] | tuple[float, ...]) -> float | None:
        v = self.value_n
        a = self._alpha
        for x in samples_n:
            v = x if v is None else v + a * (x - v)
        self.value_n = v
        return v


class DropDetector:
    """Sees a fall of at least ``drop_n`` in a signal within ``window_s``."""

    def __init__(self, drop_n: float, window_s: float = 0.05, refractory_s: float = 0.2) -> None:
        self.drop_n = drop_n
        self.window_s = window_s
        # One crack drops the filtered force over a few filter time constants: after a
        # drop is reported, the rest of that fall is not reported again.
        self.refractory_s = refractory_s
        self._quiet_until = -1e18
        self._history: deque[tuple[float, float]] = deque()

    def update(self, t_s: float, value: float) -> float | None:
        """Feed one (time, value); returns the size of the drop when one is seen."""
        h = self._history
        if t_s < self._quiet_until:
            h.clear()
            h.append((t_s, value))
            return None
        h.append((t_s, value))
        while h and h[0][0] < t_s - self.window_s:
            h.popleft()
        peak = max(v for _, v in h)
        if peak - value >= self.drop_n:
            # Start afresh so one crack is reported once.
            h.clear()
            h.append((t_s, value))
            self._quiet_until = t_s + self.refractory_s
            return peak - value
        return None

    def reset(self) -> None:
        self._history.clear()
        self._quiet_until = -1e18
