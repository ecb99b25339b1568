"""Needle–tissue force model: tissue types, their parameters, and the compiled profile.

The model (docs/simulator.md explains it with sources):

    F = F_dyn + F_elastic

* ``F_dyn`` — shaft friction along the inserted length (Okamura 2004: friction
  along the shaft; Karnopp-style smooth sign of the tip velocity) reduced by
  rotation, plus the tip's cutting force when the tip advances through tissue
  (Okamura: roughly constant per tissue; Khadem 2016 / Lin & Huang 2020: grows
  with speed, falls with rotation). It follows its target through a fast rise
  and a slower viscoelastic relaxation (filtered in the rig).
* ``F_elastic`` — a *barrier* (fibrous cap or calcium) in front of the tip
  stores force like a spring, ``stiffness × compression``, until its crack
  (puncture) threshold is reached; then a chunk breaks, the face moves on and
  the force drops. For calcium the threshold falls from ``crack_force_n``
  towards ``min_crack_force_n`` with the accumulated *loaded rotation*
  (revolutions × force / reference force): slow rotation under load is what
  cracks it. A cap is punctured in one go (Okamura's puncture event).

This module holds the tissue table and turns a lesion's segments into flat
per-segment constants (Python lists) so the rig's 1 kHz step needs no lookups.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from typing import Protocol

# Tissue types and their parameters, each with its default. Sources and which
# numbers are estimates: docs/simulator.md, section "Tissue parameters".
TISSUE_DEFAULTS: Mapping[str, Mapping[str, float]] = {
    # open or guidewire-tracked lumen: almost nothing to cut
    "lumen": {"friction_n_per_mm": 0.005, "tip_force_n": 0.0},
    # soft plaque / organised thrombus
    "soft": {"friction_n_per_mm": 0.015, "tip_force_n": 0.4},
    # fibrous occlusion body
    "fibrous": {"friction_n_per_mm": 0.03, "tip_force_n": 1.2},
    # fibrous cap: a spring until it is punctured, then cut like fibrous tissue
    "cap": {
        "friction_n_per_mm": 0.03,
        "tip_force_n": 0.8,
        "stiffness_n_per_mm": 4.0,
        "puncture_force_n": 1.0,
    },
    # calcium: a spring that cracks chunk by chunk; tip_force_n is the cut
    # through the cracked (crushed) chunk
    "calcium": {
        "friction_n_per_mm": 0.04,
        "tip_force_n": 1.0,
        "stiffness_n_per_mm": 10.0,
        "crack_force_n": 25.0,
        "min_crack_force_n": 5.0,
        "fatigue_rev": 1.0,
        "chunk_mm": 2.0,
        "damage_carry": 0.3,
        # eccentric calcium: the calcified arc of the wall, centred on this bevel angle;
        # loaded rotation wears it only while the bevel faces the arc
        "arc_deg": 360.0,
        "arc_center_deg": 0.0,
    },
}

BARRIER_TISSUES = frozenset({"cap", "calcium"})


class SegmentLike(Protocol):
    """What the compiler needs from a lesion segment (lesions.Segment)."""

    @property
    def tissue(self) -> str: ...
    @property
    def start_mm(self) -> float: ...
    @property
    def end_mm(self) -> float: ...
    @property
    def params(self) -> Mapping[str, float]: ...


@dataclass
class Barrier:
    """A cap or calcium segment: mutable crack state plus its constants."""

    start_mm: float
    end_mm: float
    stiffness_n_per_mm: float
    crack_force_n: float  # threshold with no damage
    min_crack_force_n: float  # threshold floor after unlimited loaded rotation
    inv_fatigue_rev: float  # 1 / fatigue_rev; 0 = rotation does not help (cap)
    chunk_mm: float  # length that breaks at one crack
    damage_carry: float  # fraction of damage the next chunk inherits
    chunk_factors: list[float]  # per-chunk threshold multipliers (seeded variation)
    arc_half_deg: float = 180.0  # half the calcified arc; 180 = concentric
    arc_center_deg: float = 0.0  # bevel angle (mod 360) facing the arc's centre
    face_mm: float = 0.0  # depth of the first uncracked material
    damage: float = 0.0  # loaded revolutions (rev × F / F_ref) on the current chunk
    chunk_index: int = 0


@dataclass
class Profile:
    """Flat per-segment constants covering all depths.

    Gaps between segments and the depths before and after the lesion are
    filled with empty space (no friction, no cutting), so the rig's segment
    lookup never falls off either end.
    """

    start_mm: list[float]
    end_mm: list[float]
    friction_n_per_mm: list[float]
    friction_before_n: list[float]  # friction of everything shallower than start_mm[i]
    tip_force_n: list[float]
    barriers: list[Barrier]


def compile_profile(
    segments: Sequence[SegmentLike],
    chunk_variation: float,
    normal: Callable[[int], Sequence[float]],
) -> Profile:
    """Flatten segments (sorted, non-overlapping) into a Profile.

    ``normal(n)`` returns n standard-normal draws for the per-chunk threshold
    variation (called in segment order, so a seed gives the same lesion).
    """
    big = 1e9
    starts: list[float] = []
    ends: list[float] = []
    fric: list[float] = []
    tip: list[float] = []
    barriers: list[Barrier] = []
    cursor = -big
    for seg in segments:
        if seg.start_mm > cursor:
            starts.append(cursor)
            ends.append(seg.start_mm)
            fric.append(0.0)
            tip.append(0.0)
        starts.append(seg.start_mm)
        ends.append(seg.end_mm)
        p = seg.params
        fric.append(p["friction_n_per_mm"])
        tip.append(p["tip_force_n"])
        cursor = seg.end_mm
        if seg.tissue in BARRIER_TISSUES:
            length_mm = seg.end_mm - seg.start_mm
            if seg.tissue == "cap":
                barrier = Barrier(
                    start_mm=seg.start_mm,
                    end_mm=seg.end_mm,
                    stiffness_n_per_mm=p["stiffness_n_per_mm"],
                    crack_force_n=p["puncture_force_n"],
                    min_crack_force_n=p["puncture_force_n"],
                    inv_fatigue_rev=0.0,
                    chunk_mm=length_mm,
                    damage_carry=0.0,
                    chunk_factors=[1.0],
                )
            else:
                n_chunks = max(1, int(length_mm / p["chunk_mm"] + 0.999999))
                # clipped to ±2 σ so that no chunk is a lottery ticket
                factors = [1.0 + chunk_variation * max(-2.0, min(2.0, z)) for z in normal(n_chunks)]
                barrier = Barrier(
                    start_mm=seg.start_mm,
                    end_mm=seg.end_mm,
                    stiffness_n_per_mm=p["stiffness_n_per_mm"],
                    crack_force_n=p["crack_force_n"],
                    min_crack_force_n=p["min_crack_force_n"],
                    inv_fatigue_rev=1.0 / p["fatigue_rev"],
                    chunk_mm=p["chunk_mm"],
                    damage_carry=p["damage_carry"],
                    chunk_factors=factors,
                    arc_half_deg=p["arc_deg"] / 2.0,
                    arc_center_deg=p["arc_center_deg"] % 360.0,
                )
            barrier.face_mm = seg.start_mm
            barriers.append(barrier)
    starts.append(cursor)
    ends.append(big)
    fric.append(0.0)
    tip.append(0.0)
    before: list[float] = []
    acc = 0.0
    for s, e, f in zip(starts, ends, fric, strict=True):
        before.append(acc)
        if e < big:
            acc += (e - max(s, -big)) * f if s > -big else 0.0
    return Profile(starts, ends, fric, before, tip, barriers)


def friction_at_n(profile: Profile, tip_mm: float) -> float:
    """Shaft friction (no rotation, full sliding) with the tip at tip_mm.

    Reference implementation for tests; the rig inlines the same sum.
    """
    for i in range(len(profile.start_mm)):
        if profile.start_mm[i] <= tip_mm < profile.end_mm[i]:
            return (
                profile.friction_before_n[i]
                + (tip_mm - profile.start_mm[i]) * (profile.friction_n_per_mm[i])
            )
    return profile.friction_before_n[-1]
