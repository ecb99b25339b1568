"""The puncture detector (firmware_host/procedure/signals.py) on synthetic signals: a
sudden fall that is over is a puncture; a relaxation that goes on falling is not."""

from __future__ import annotations

import math

import numpy as np

from firmware_host.procedure.signals import DropDetector, ForceFilter, PunctureDetector

DT_S = 0.001


def feed(values: list[float], noise_n: float = 0.0, seed: int = 0) -> list[tuple[float, float]]:
    """Each value through the profile's 5 ms filter and the 10 ms detector (1 kHz)."""
    rng = np.random.default_rng(seed)
    filt = ForceFilter(0.005, DT_S)
    det = PunctureDetector(0.15, window_s=0.01)
    found = []
    for i, x in enumerate(values):
        v = filt.update((x + noise_n * float(rng.standard_normal()),))
        assert v is not None
        drop = det.update(i * DT_S, v)
        if drop is not None:
            found.append((i * DT_S, drop))
    return found


def cap(puncture_n: float, cut_n: float) -> list[float]:
    """A cap loaded at 8 N/s up to its puncture, then cut at ``cut_n`` (0.3 s each side)."""
    ramp = [min(puncture_n, 0.008 * i) for i in range(int(puncture_n / 0.008) + 1)]
    return [0.0] * 100 + ramp + [cut_n] * 300


def test_a_young_caps_fall_is_one_puncture_with_its_size() -> None:
    (hit,) = feed(cap(0.61, 0.18), noise_n=0.04)
    t_s, drop = hit
    assert 0.35 < drop < 0.5  # the filtered peak (lagging the ramp) down to the cut
    assert t_s < (100 + 77) * DT_S + 0.03  # reported two windows after the fall at most


def test_a_relaxation_that_goes_on_falling_is_not_a_puncture() -> None:
    # the tip leaves a 3 N cutting segment: the force relaxes with 100 ms, from 0.3 s on —
    # 0.29 N in its first 10 ms, a fall a plain drop detector would take for a puncture
    values = [3.0] * 300 + [3.0 * math.exp(-i / 100) for i in range(600)]
    plain = DropDetector(0.15, window_s=0.01)
    filt = ForceFilter(0.005, DT_S)
    assert any(plain.update(i * DT_S, filt.update((x,)) or 0.0) for i, x in enumerate(values))
    assert feed(values) == []
    assert feed(values, noise_n=0.04) == []


def test_noise_alone_is_not_a_puncture() -> None:
    assert feed([0.5] * 20_000, noise_n=0.04, seed=3) == []


def test_a_small_fall_is_not_a_puncture() -> None:
    assert feed([0.5] * 300 + [0.4] * 300) == []  # 0.1 N: under puncture_drop_n
