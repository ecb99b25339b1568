"""Sensor noise source: Gaussian draws in blocks, so the 1 kHz tick indexes a list.

numpy's generator costs microseconds per call but well under a nanosecond per
value in a block; a Python list index is ~20 ns. The rig keeps the list and
the index in its own attributes and refills through ``refill()``.
"""

from __future__ import annotations

import numpy as np

NOISE_BLOCK = 4096


class NoiseBlocks:
    """Standard-normal values × scale, drawn NOISE_BLOCK at a time from one seeded generator."""

    __slots__ = ("_rng", "_scale")

    def __init__(self, rng: np.random.Generator, scale: float) -> None:
        self._rng = rng
        self._scale = scale

    def refill(self) -> list[float]:
        values: list[float] = (self._rng.standard_normal(NOISE_BLOCK) * self._scale).tolist()
        return values
