"""Reading figures out of the device's own telemetry (device time, µs).

Every latency the suite reports is a difference of two device timestamps, so it means the
same on the simulator's virtual clock and on a rig: no host scheduling in it.
"""

from __future__ import annotations

from typing import Any

import numpy as np


def advance_stopped_at_us(samples: Any, after_us: int, tolerance_um: int = 0) -> int | None:
    """Device time of the first sample at/after ``after_us`` from which the commanded depth
    never increases again (the advance has stopped), or None if it kept advancing to the
    end of the record."""
    sel = samples[samples["t_us"] >= after_us]
    if len(sel) < 2:
        return None
    cmd = sel["commanded_depth_um"].astype(np.int64)
    # the commanded depth from sample i on never exceeds its value at i (+ tolerance)
    future_max = np.maximum.accumulate(cmd[::-1])[::-1]
    still = future_max <= cmd + tolerance_um
    idx = np.flatnonzero(still)
    if len(idx) == 0 or idx[0] == len(sel) - 1:
        return None  # only the last sample qualifies: it was still moving at the end
    return int(sel["t_us"][idx[0]])


def rotation_stopped_at_us(samples: Any, after_us: int) -> int | None:
    """Device time of the first sample at/after ``after_us`` from which the angle never
    changes again (the rotation is at rest), or None if it still turned at the end of the
    record."""
    sel = samples[samples["t_us"] >= after_us]
    if len(sel) < 2:
        return None
    angle = sel["angle_cdeg"].astype(np.int64)
    changed = np.flatnonzero(angle[1:] != angle[:-1])
    if len(changed) == 0:
        return int(sel["t_us"][0])
    last = int(changed[-1]) + 1  # the sample at which the angle last changed
    if last == len(sel) - 1:
        return None
    return int(sel["t_us"][last])


def encoder_stopped_at_us(samples: Any, before_us: int) -> int | None:
    """Device time of the last sample before ``before_us`` at which the encoder depth
    still increased (after it, the encoder stood still while the command went on)."""
    sel = samples[samples["t_us"] <= before_us]
    if len(sel) < 2:
        return None
    inc = np.flatnonzero(np.diff(sel["depth_um"].astype(np.int64)) > 0)
    if len(inc) == 0:
        return None
    return int(sel["t_us"][inc[-1] + 1])


def gaps(numbers: Any) -> int:
    """How many numbers are missing from a sequence that should count up by one."""
    n = np.asarray(numbers, dtype=np.int64)
    if len(n) < 2:
        return 0
    d = np.diff(n)
    return int(np.sum(d[d > 1] - 1))


def force_held_since_us(samples: Any, before_us: int, threshold_mn: int) -> int | None:
    """Device time of the first sample of the unbroken stretch of samples, ending at the
    last one at or before ``before_us``, whose force is at or above ``threshold_mn`` (a
    stall cut off by the force held at its threshold started there); None if that last
    sample's force is below it."""
    sel = samples[samples["t_us"] <= before_us]
    if len(sel) == 0:
        return None
    below = np.flatnonzero(sel["force_mn"].astype(np.int64) < threshold_mn)
    if len(below) and below[-1] == len(sel) - 1:
        return None
    first = int(below[-1]) + 1 if len(below) else 0
    return int(sel["t_us"][first])
