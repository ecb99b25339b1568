"""Lesion families: plausible lesions drawn from documented parameter ranges.

A family is a recipe, not a folder of files: a sweep can cover 10⁴ lesions by naming
a family, the ranges to draw from and a seed. Every family member has the same
shape — a proximal fibrous cap, fibrous occlusion body, and ``calcium_blocks``
calcium blocks (together ``calcium_fraction`` of the length) spread evenly through
it — and every parameter below has a default range with its source (docs/simulator.md,
"Lesion families"). A parameter is given as

* a number: fixed for every member;
* ``[lo, hi]``: drawn uniformly per member (integers for ``calcium_blocks``);
* ``{ from = lo, to = hi, step = s }``: a grid, every value taken (crossed with the
  other grids, ``count`` members drawn at each grid point).

Draws come from ``numpy.random.default_rng(seed)`` in a fixed order, so the same
family spec gives the same lesions on any machine.
"""

from __future__ import annotations

import itertools
import math
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Any

import numpy as np

from sim_device.lesions import Lesion, LesionError, parse_lesion


@dataclass(frozen=True)
class ParamRange:
    lo: float
    hi: float
    unit: str
    source: str
    integer: bool = False


# The default range of every family parameter, and where it comes from.
PARAMS: dict[str, ParamRange] = {
    "start_mm": ParamRange(15.0, 30.0, "mm", "estimate: the library's lesions start at 15–30 mm"),
    "length_mm": ParamRange(
        10.0, 60.0, "mm", "estimate of BTK/BTA lesion lengths, as cohort-2021 (10–60 mm)"
    ),
    "calcium_fraction": ParamRange(
        0.35, 0.6, "", "estimate, as cohort-2021 ('severely calcified', Takei 2021)"
    ),
    "calcium_blocks": ParamRange(1, 5, "", "estimate, as cohort-2021 (1–5 blocks)", integer=True),
    "calcium_floor_n": ParamRange(
        3.0, 15.0, "N", "domain notes: 3–15 N to crack calcium with a 0.9 mm tip (estimate)"
    ),
    "crack_force_n": ParamRange(
        28.0, 50.0, "N", "the library's cohort-2021 (28.6–49.9 N unrotated; estimate)"
    ),
    "stiffness_n_per_mm": ParamRange(8.0, 15.0, "N/mm", "the library's cohort-2021 (estimate)"),
    "fatigue_rev": ParamRange(0.7, 1.4, "rev", "the library's cohort-2021 (estimate)"),
    "chunk_mm": ParamRange(1.5, 3.0, "mm", "the library's cohort-2021 (estimate)"),
    "arc_deg": ParamRange(
        180.0, 360.0, "°", "estimate: concentric (360°) to eccentric-calcium's 180° arc"
    ),
    "cap_puncture_n": ParamRange(
        0.6,
        1.5,
        "N",
        "Thind et al.: proximal caps of rabbit CTOs 2–15 weeks old, 0.61–1.52 N (as cohort-2021)",
    ),
}

CAP_MM = 1.0
MIN_GAP_MM = 0.5  # fibrous tissue before, between and after the calcium blocks


class FamilyError(ValueError):
    """A family spec that cannot be drawn from (one line: the parameter and the problem)."""


def _grid(where: str, spec: Mapping[str, Any]) -> list[float]:
    keys = set(spec)
    if keys != {"from", "to", "step"}:
        raise FamilyError(f"{where}: a grid is {{ from = .., to = .., step = .. }}, got {keys}")
    lo, hi, step = (float(spec[k]) for k in ("from", "to", "step"))
    if step <= 0 or hi < lo:
        raise FamilyError(f"{where}: a grid needs step > 0 and to >= from")
    n = math.floor((hi - lo) / step + 1e-9) + 1
    return [round(lo + i * step, 9) for i in range(n)]


def _check_value(where: str, name: str, value: float) -> None:
    rng = PARAMS[name]
    if not math.isfinite(value) or value < 0:
        raise FamilyError(f"{where} = {value}: must be a finite number >= 0")
    if name == "calcium_fraction" and not 0 < value < 1:
        raise FamilyError(f"{where} = {value}: must be within (0, 1)")
    if name == "arc_deg" and not 0 < value <= 360:
        raise FamilyError(f"{where} = {value}: must be within (0, 360]")
    if rng.integer and value != int(value):
        raise FamilyError(f"{where} = {value}: must be an integer")


def draw_params(
    spec: Mapping[str, Any], count: int, seed: int, *, where: str = "family"
) -> list[dict[str, float]]:
    """The parameters of every member: every grid point × ``count`` draws."""
    unknown = sorted(set(spec) - set(PARAMS))
    if unknown:
        raise FamilyError(
            f"{where}: unknown parameter(s) {', '.join(unknown)} (known: {', '.join(PARAMS)})"
        )
    if count < 1:
        raise FamilyError(f"{where}: count must be >= 1, got {count}")
    fixed: dict[str, float] = {}
    drawn: dict[str, tuple[float, float]] = {}
    grids: dict[str, list[float]] = {}
    for name in PARAMS:
        value = spec.get(name, [PARAMS[name].lo, PARAMS[name].hi])
        at = f"{where}: {name}"
        if isinstance(value, bool):
            raise FamilyError(f"{at} must be a number, [lo, hi] or a grid, not a boolean")
        if isinstance(value, int | float):
            _check_value(at, name, float(value))
            fixed[name] = float(value)
        elif isinstance(value, list):
            if len(value) != 2 or not all(isinstance(v, int | float) for v in value):
                raise FamilyError(f"{at} = {value}: a range is [lo, hi]")
            lo, hi = float(value[0]), float(value[1])
            if hi < lo:
                raise FamilyError(f"{at} = {value}: hi must be >= lo")
            _check_value(at, name, lo)
            _check_value(at, name, hi)
            drawn[name] = (lo, hi)
        elif isinstance(value, dict):
            grids[name] = _grid(at, value)
            for v in grids[name]:
                _check_value(at, name, v)
        else:
            raise FamilyError(f"{at} must be a number, [lo, hi] or a grid")
    rng = np.random.default_rng(seed)
    out: list[dict[str, float]] = []
    names = list(grids)
    for point in itertools.product(*(grids[n] for n in names)):
        for _ in range(count):
            params = dict(fixed)
            params.update(zip(names, point, strict=True))
            for name, (lo, hi) in drawn.items():
                if PARAMS[name].integer:
                    params[name] = float(rng.integers(int(lo), int(hi) + 1))
                else:
                    params[name] = round(float(rng.uniform(lo, hi)), 4)
            out.append(params)
    return out


def build_lesion(name: str, params: Mapping[str, float]) -> Lesion:
    """One family member from its parameters: cap, then fibrous gaps and calcium blocks."""
    p = {k: float(v) for k, v in params.items()}
    blocks = int(p["calcium_blocks"])
    length = p["length_mm"]
    body = length - CAP_MM
    calcium_mm = p["calcium_fraction"] * length
    gap_mm = (body - calcium_mm) / (blocks + 1)
    if blocks < 1 or gap_mm < MIN_GAP_MM:
        raise FamilyError(
            f"{name}: {blocks} calcium blocks of {calcium_mm:.1f} mm leave no room in "
            f"{length:.1f} mm (need {MIN_GAP_MM} mm of fibrous tissue around each)"
        )
    floor = p["calcium_floor_n"]
    segments: list[dict[str, Any]] = [
        {"tissue": "cap", "length_mm": CAP_MM, "puncture_force_n": p["cap_puncture_n"]}
    ]
    for _ in range(blocks):
        segments.append({"tissue": "fibrous", "length_mm": gap_mm})
        segments.append(
            {
                "tissue": "calcium",
                "length_mm": calcium_mm / blocks,
                "crack_force_n": max(p["crack_force_n"], floor),
                "min_crack_force_n": floor,
                "stiffness_n_per_mm": p["stiffness_n_per_mm"],
                "fatigue_rev": p["fatigue_rev"],
                "chunk_mm": p["chunk_mm"],
                "arc_deg": p["arc_deg"],
            }
        )
    segments.append({"tissue": "fibrous", "length_mm": gap_mm})
    data = {
        "name": name,
        "description": "generated: " + ", ".join(f"{k}={v:g}" for k, v in sorted(p.items())),
        "start_mm": p["start_mm"],
        "tags": ["generated", "calcified", "cto"],
        "segment": segments,
    }
    try:
        return parse_lesion(data, source=f"family member {name}")
    except LesionError as exc:
        raise FamilyError(str(exc)) from None


def features(lesion: Lesion) -> dict[str, float]:
    """What the sweep's figures plot against, for any lesion (file or family): its
    length, its hardest calcium floor, its narrowest calcium arc, its calcium length."""
    calcium = [s for s in lesion.segments if s.tissue == "calcium"]
    return {
        "length_mm": round(lesion.length_mm, 4),
        "calcium_floor_n": max((s.params["min_crack_force_n"] for s in calcium), default=math.nan),
        "calcium_arc_deg": min((s.params["arc_deg"] for s in calcium), default=math.nan),
        "calcium_mm": round(sum(s.length_mm for s in calcium), 4),
    }


def range_table() -> Sequence[tuple[str, str, str, str]]:
    """(parameter, default range, unit, source) for docs/simulator.md."""
    return [(name, f"{r.lo:g}–{r.hi:g}", r.unit, r.source) for name, r in PARAMS.items()]
