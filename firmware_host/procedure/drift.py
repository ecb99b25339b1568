"""A load cell whose reading walks steadily down: a drifting offset hides a real force.

A bridge's offset drifts with temperature by millinewtons a minute — the device's
continuous-tare high-pass (SET_LOAD_CELL's drift corner) is for that. A *failing* cell
(a cracked gauge, a bridge leg losing excitation, creep in a damaged flexure) walks by
newtons a second, and no filter removes it: a ramp through a high-pass of time
constant τ comes out as a constant error rate × τ, and the device's force limit, which
reads the force before that filter, under-reads by the whole drift. The needle would be
pushed harder than the reading says.

The physics gives two tests a single channel can make. At rest (the advance axis
still: a hold, a dwell, the spin-up, at the target) the true force stands or falls
suddenly (calcium cracking) — it does not walk down at a steady rate, second after
second. So the watch takes the fresh samples at rest in steps of ``step_s``: when each
step's mean is below the one before by at least ``max_fall_n_s × step_s``, ``STEPS``
times in a row, the reading is drifting. A crack is one large step, not a staircase;
noise does not fall every step. While the needle advances, a falling force is real (the
tip leaving a cap into the lumen), but a *pull*, a reading below ``ADVANCING_FLOOR_N``,
is not: the device tared the cell at home, out of tissue, and tissue only resists a
needle moving forward. Only a reading falling is judged: an over-reading cell is on the
safe side (the procedure holds early, the device's force limit trips early).

The run then ends in a fault and the procedure e-stops the rig, so the device holds the
fault latched until the operator clears it (and re-homes: a re-tare). It is the
procedure's control; the device has no drift check of its own (docs/safety:
RC-DRIFTWATCH).
"""

from __future__ import annotations

import itertools
from dataclasses import dataclass

from protocol import NO_FORCE_MN

STEPS = 4  # consecutive falling steps that make a drift
MIN_STEP_S = 0.08  # a step holds at least this long, and at least two fresh samples
# the lowest reading a forward advance may give: noise is hundredths of a newton, a
# needle moving forward is never pulled
ADVANCING_FLOOR_N = -0.3
FLOOR_SAMPLES = 2
# what a sample carries when the device has no valid reading (the core's
# ND_FORCE_INVALID_MN): no force at all — the device has latched LOAD_CELL
NO_READING_N = NO_FORCE_MN / 1000.0


@dataclass(frozen=True)
class Drift:
    """What the watch saw: the fall and its rate."""

    fall_n: float
    rate_n_s: float
    over_s: float

    def words(self) -> str:
        if self.over_s == 0.0:
            seen = f"read {-self.fall_n:.2f} N while the needle advanced (tissue never pulls it)"
        else:
            seen = (
                f"fell {self.fall_n:.2f} N in {self.over_s:.1f} s at a steady "
                f"{self.rate_n_s:.2f} N/s with the needle at rest"
            )
        return (
            f"load cell reading drifting: {seen}; a failing cell hides real force: "
            "check the cell, clear the fault and re-home (a re-tare)"
        )


class FloorWatch:
    """Fresh samples during a forward advance: ``FLOOR_SAMPLES`` in a row below
    ``ADVANCING_FLOOR_N`` are a drift. Two, not one: the sample that closes an advance
    (the axis stopping, its flag not yet clear) may carry a gripping tissue's friction at
    rest, which can read as a light pull."""

    def __init__(self) -> None:
        self._below = 0

    def reset(self) -> None:
        self._below = 0

    def update(self, force_n: float) -> Drift | None:
        self._below = self._below + 1 if force_n < ADVANCING_FLOOR_N else 0
        if self._below >= FLOOR_SAMPLES:
            return Drift(fall_n=-force_n, rate_n_s=0.0, over_s=0.0)
        return None


class DriftWatch:
    """Fed the fresh samples (device time, force) in order; says when they drift."""

    def __init__(self, max_fall_n_s: float, sample_period_s: float) -> None:
        self.max_fall_n_s = max_fall_n_s
        self.step_s = max(MIN_STEP_S, 2.0 * sample_period_s)
        self._start_s: float | None = None  # the current step's first sample
        self._sum_n = 0.0
        self._count = 0
        self._means: list[tuple[float, float]] = []  # (step start, mean) of the last steps

    def reset(self) -> None:
        """Start again (the needle moving: a falling force may be real then)."""
        self._start_s = None
        self._sum_n = 0.0
        self._count = 0
        self._means.clear()

    def update(self, t_s: float, force_n: float) -> Drift | None:
        found = None
        if self._start_s is None:
            self._start_s = t_s
        elif t_s - self._start_s >= self.step_s and self._count >= 2:
            self._close_step()
            self._start_s = t_s
            if len(self._means) > STEPS:
                found = self._staircase()
        self._sum_n += force_n
        self._count += 1
        return found

    def _close_step(self) -> None:
        assert self._start_s is not None
        self._means.append((self._start_s, self._sum_n / self._count))
        del self._means[: -(STEPS + 1)]
        self._sum_n = 0.0
        self._count = 0

    def _staircase(self) -> Drift | None:
        """Every one of the last STEPS steps down by at least the bound's share."""
        means = self._means
        for (t0, m0), (t1, m1) in itertools.pairwise(means):
            if m0 - m1 < self.max_fall_n_s * (t1 - t0):
                return None
        over_s = means[-1][0] - means[0][0]
        fall_n = means[0][1] - means[-1][1]
        return Drift(fall_n=fall_n, rate_n_s=fall_n / over_s, over_s=over_s)
