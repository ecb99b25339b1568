"""Link fault injection: corrupt, drop and duplicate bytes at given probabilities, and cut
the link for a while — seeded, so a run with faults is as reproducible as one without.

Faulty bytes are found by drawing the gap to the next one from a geometric
distribution, so a clean stretch costs one slice, not one random number per byte.
"""

from __future__ import annotations

import math
import random
from dataclasses import dataclass


@dataclass(frozen=True)
class LinkFaultConfig:
    corrupt: float = 0.0  # probability per byte that it arrives with a bit flipped
    drop: float = 0.0  # probability per byte that it is lost
    duplicate: float = 0.0  # probability per byte that it arrives twice
    cut_at_s: float | None = None  # the link is cut from this device time ...
    cut_for_s: float = 0.0  # ... for this long (nothing passes either way)

    def __post_init__(self) -> None:
        for name in ("corrupt", "drop", "duplicate"):
            p = getattr(self, name)
            if not 0.0 <= p <= 1.0:
                raise ValueError(f"{name}={p} must be a probability in [0, 1]")
        if self.corrupt + self.drop + self.duplicate > 1.0:
            raise ValueError("corrupt + drop + duplicate must not exceed 1")
        if self.cut_for_s < 0:
            raise ValueError(f"cut_for_s={self.cut_for_s} must be ≥ 0")

    @property
    def active(self) -> bool:
        return bool(self.corrupt or self.drop or self.duplicate or self.cut_at_s is not None)


class ByteFaults:
    """One direction of the link."""

    def __init__(self, config: LinkFaultConfig, seed: int) -> None:
        self.config = config
        self._rng = random.Random(seed)
        self._p = config.corrupt + config.drop + config.duplicate
        self._log_q = math.log1p(-self._p) if 0.0 < self._p < 1.0 else 0.0
        self._gap = self._draw_gap()
        self.corrupted = 0
        self.dropped = 0
        self.duplicated = 0
        self.cut_bytes = 0

    def _draw_gap(self) -> int:
        """Good bytes before the next faulty one."""
        if self._p <= 0.0:
            return 1 << 62
        if self._p >= 1.0:
            return 0
        u = self._rng.random()
        return int(math.log1p(-u) / self._log_q)

    def is_cut(self, now_s: float) -> bool:
        c = self.config
        return c.cut_at_s is not None and c.cut_at_s <= now_s < c.cut_at_s + c.cut_for_s

    def apply(self, data: bytes, now_s: float) -> bytes:
        if not data:
            return data
        if self.is_cut(now_s):
            self.cut_bytes += len(data)
            return b""
        n = len(data)
        gap = self._gap
        if gap >= n:
            self._gap = gap - n
            return data
        c = self.config
        rng = self._rng
        out = bytearray()
        i = 0
        while i + gap < n:
            out += data[i : i + gap]
            b = data[i + gap]
            x = rng.random() * self._p
            if x < c.corrupt:
                out.append(b ^ (1 << rng.randrange(8)))
                self.corrupted += 1
            elif x < c.corrupt + c.drop:
                self.dropped += 1
            else:
                out.append(b)
                out.append(b)
                self.duplicated += 1
            i += gap + 1
            gap = self._draw_gap()
        out += data[i:]
        self._gap = gap - (n - i)
        return bytes(out)

    def stats(self) -> dict[str, int]:
        return {
            "corrupted": self.corrupted,
            "dropped": self.dropped,
            "duplicated": self.duplicated,
            "cut_bytes": self.cut_bytes,
        }


class LinkFaults:
    """Both directions, each with its own seeded stream."""

    def __init__(self, config: LinkFaultConfig, seed: int) -> None:
        self.config = config
        self.to_device = ByteFaults(config, seed * 2 + 1)
        self.to_host = ByteFaults(config, seed * 2 + 2)

    def stats(self) -> dict[str, dict[str, int]]:
        return {"to_device": self.to_device.stats(), "to_host": self.to_host.stats()}
