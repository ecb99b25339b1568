"""Signal conditioning for the control loop: the load cell is noisy, the loop must not be.

``ForceFilter`` is a first-order low-pass (exponential moving average with a time
constant, stepped per sample so it does not depend on how samples are batched),
and it keeps a short history of the filtered force so a sudden drop — a crack in
the calcium — can be told from noise: a drop counts only if the *filtered*
force falls by ``crack_drop_n`` within ``window_s``. The puncture detector is a
second pair: a faster filter and a ``DropDetector`` sized for a sub-newton cap's drop
(``puncture_drop_n``), fed only while the advance runs at a steady commanded speed.
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

    def hold_off(self, t_s: float) -> None:
        """Another detector reported this fall: start afresh, quiet for ``refractory_s``."""
        self._history.clear()
        self._quiet_until = t_s + self.refractory_s

    def reset(self) -> None:
        self._history.clear()
        self._quiet_until = -1e18


class PunctureDetector:
    """A puncture: a fall of at least ``drop_n`` within ``window_s`` that is *over* by the
    next window. A cap gives way in one go (Okamura 2004: a sudden force drop) and the
    force then holds or climbs again with the cutting; a tissue's viscoelastic relaxation
    (the tip leaving a segment) falls as far in the window after as in the one before.
    So a candidate fall is confirmed only if, over the window that starts one window
    after it, the signal falls by less than ``settle_fraction`` × its fall in the window
    before (from the candidate to one window later; at least ``drop_n``); it is reported
    then (two windows late) with its size: the peak before it to one window after."""

    def __init__(
        self,
        drop_n: float,
        window_s: float,
        settle_fraction: float = 0.5,
        refractory_s: float = 0.2,
    ) -> None:
        self.drop_n = drop_n
        self.window_s = window_s
        self.settle_fraction = settle_fraction
        self.refractory_s = refractory_s
        self._history: deque[tuple[float, float]] = deque()
        self._quiet_until = -1e18
        self._peak: float | None = None  # a candidate: the peak before its fall
        self._t_candidate = 0.0
        self._v_candidate = 0.0
        self._ref: float | None = None  # the value one window after the candidate
        self._t_ref = 0.0
        self._low = 0.0  # the lowest value in the window after _ref

    def update(self, t_s: float, value: float) -> float | None:
        """Feed one (time, value); returns a confirmed puncture's drop when one is."""
        if t_s < self._quiet_until:
            return None
        if self._peak is not None:
            return self._confirm(t_s, value)
        h = self._history
        h.append((t_s, value))
        while h and h[0][0] < t_s - self.window_s:
            h.popleft()
        peak = max(v for _, v in h)
        if peak - value >= self.drop_n:
            self._peak, self._t_candidate, self._ref = peak, t_s, None
            self._v_candidate = value
            h.clear()
        return None

    def _confirm(self, t_s: float, value: float) -> float | None:
        assert self._peak is not None
        if self._ref is None:
            if t_s >= self._t_candidate + self.window_s:
                self._ref, self._t_ref, self._low = value, t_s, value
            return None
        self._low = min(self._low, value)
        if t_s < self._t_ref + self.window_s:
            return None
        peak, ref = self._peak, self._ref
        self._peak = None
        self._history.append((t_s, value))
        # over: this window's fall is less than half the window's before (a relaxation's
        # next window falls almost as far, e^(-window/τ)), or under half of drop_n (noise)
        if ref - self._low < self.settle_fraction * max(self.drop_n, self._v_candidate - ref):
            self._history.clear()
            self._quiet_until = t_s + self.refractory_s
            return peak - ref
        return None  # still falling: a relaxation, not a puncture

    def hold_off(self, t_s: float) -> None:
        self._history.clear()
        self._peak = None
        self._quiet_until = t_s + self.refractory_s

    def reset(self) -> None:
        self._history.clear()
        self._peak = None
        self._quiet_until = -1e18
