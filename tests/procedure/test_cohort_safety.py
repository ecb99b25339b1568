"""The cohort study's safety judge (``studies.judge``, the sweep's too) can fire: on
synthetic telemetry that breaks each rule, and on live simulated runs of the cohort
study's own ``run_one`` (``studies.cohort``, what benchmarks/cohort.py runs) with a
fault planted in the procedure — while the honest procedure on the same lesions breaks
none."""

from __future__ import annotations

import dataclasses
from typing import Any

import numpy as np
import pytest

from firmware_host.telemetry import TELEMETRY_DTYPE
from studies import cohort
from studies.judge import LATE_ADVANCE_MM, JudgeLimits, findings, measured_over

LIMITS = JudgeLimits(
    force_limit_n=15.0,
    depth_limit_mm=40.0,
    stall_force_n=12.0,
    stall_time_s=3.0,
    max_duration_s=900.0,
)
CLEAN: dict[str, Any] = {
    "force_over_steps": 0,
    "force_over_samples": 0,
    "force_over_events": 0,
    "depth_over_steps": 0,
    "depth_over_samples": 0,
    "loose_limit_steps": 0,
    "late_advance_mm": 0.0,
    "moved_after_end": False,
}


def rows(force_n: list[float], depth_mm: list[float]) -> Any:
    r = np.zeros(len(force_n), dtype=TELEMETRY_DTYPE)
    r["host_time_s"] = np.arange(len(force_n)) * 0.001
    r["force_n"] = force_n
    r["depth_mm"] = depth_mm
    return r


def test_measured_samples_beyond_the_fixed_limits_are_counted() -> None:
    assert measured_over(rows([1.0, 14.9, 8.0], [38.0, 40.0, 39.0]), LIMITS) == (0, 0)
    assert measured_over(rows([1.0, 15.2, -15.1], [1, 2, 2]), LIMITS) == (2, 0)
    assert measured_over(rows([1.0, 2.0, 2.0], [1, 40.002, 2]), LIMITS) == (0, 1)
    assert measured_over(rows([], []), LIMITS) == (0, 0)


def test_each_count_is_a_finding() -> None:
    assert findings(LIMITS, **CLEAN) == ()
    for key, bad in [
        ("force_over_steps", 1),
        ("force_over_samples", 1),
        ("force_over_events", 1),
        ("depth_over_steps", 1),
        ("depth_over_samples", 1),
        ("loose_limit_steps", 1),
        ("late_advance_mm", LATE_ADVANCE_MM * 2),
        ("moved_after_end", True),
    ]:
        assert len(findings(LIMITS, **{**CLEAN, key: bad})) == 1, key
    # forward creep within the tolerance is not an advance
    assert findings(LIMITS, **{**CLEAN, "late_advance_mm": LATE_ADVANCE_MM / 2}) == ()


# ------------------------------------------------------------ live runs, planted faults

# The benchmark's profile file for these runs: the default, with a bound on the run's
# time short enough for a test (the uncrossable lesion's honest run stalls at ~124 s).
MAX_DURATION_S = 150.0


@pytest.fixture
def bench(monkeypatch: pytest.MonkeyPatch) -> Any:
    import firmware_host.procedure as procedure

    pierce = procedure.load_profile(None)
    short = dataclasses.replace(
        pierce, stall=dataclasses.replace(pierce.stall, max_duration_s=MAX_DURATION_S)
    )
    monkeypatch.setattr(procedure, "load_profile", lambda name=None: short)
    return procedure


def plant(monkeypatch: pytest.MonkeyPatch, procedure: Any, fault: str) -> None:
    """Replace the procedure the benchmark runs with the honest one plus ``fault``."""
    honest = procedure.run_procedure

    def faulty(nd: Any, profile: Any, **kw: Any) -> Any:
        p = profile
        if fault == "skips_set_limits":
            nd.set_limits = lambda *a, **k: nd.status().limits
        elif fault == "ceiling_above_limit":
            p = _with(p, "advance", force_ceiling_n=20.0)
        elif fault == "ceiling_and_limit_raised":
            # the procedure tells the device a limit to fit its ceiling: a judge reading
            # the limits back from the device would find nothing wrong
            p = _with(_with(p, "advance", force_ceiling_n=20.0), "limits", force_limit_n=25.0)
        elif fault == "ignores_stall":
            p = _with(p, "stall", max_pecks=10**6, max_duration_s=1e9)
        else:
            raise AssertionError(fault)
        return honest(nd, p, **kw)

    monkeypatch.setattr(procedure, "run_procedure", faulty)


def _with(profile: Any, section: str, **changes: Any) -> Any:
    # dataclasses.replace: no validation — a fault the profile checks would refuse
    return dataclasses.replace(
        profile, **{section: dataclasses.replace(getattr(profile, section), **changes)}
    )


def run(lesion: str) -> dict[str, Any]:
    row: dict[str, Any] = cohort.run_one(cohort.Task(lesion, "test", "seed 1", 1, 1.0))
    return row


@pytest.mark.control("RC-HOSTCEILING")
@pytest.mark.parametrize(
    ("lesion", "outcome"), [("soft-stenosis", "crossed"), ("uncrossable", "stalled")]
)
def test_the_honest_procedure_breaks_no_rule(bench: Any, lesion: str, outcome: str) -> None:
    row = run(lesion)
    assert row["outcome"] == outcome
    assert row["violations"] == 0, row["safety"]


@pytest.mark.parametrize(
    ("fault", "lesion", "finding"),
    [
        ("skips_set_limits", "soft-stenosis", "device's limits looser"),
        ("ceiling_above_limit", "uncrossable", "above 15 N"),
        ("ceiling_and_limit_raised", "uncrossable", "true force above 15 N"),
        ("ignores_stall", "uncrossable", f"after max_duration_s {MAX_DURATION_S:g} s"),
    ],
)
def test_the_judge_fires_on_a_planted_fault(
    bench: Any, monkeypatch: pytest.MonkeyPatch, fault: str, lesion: str, finding: str
) -> None:
    plant(monkeypatch, bench, fault)
    row = run(lesion)
    assert row["violations"] > 0, f"{fault}: the judge saw nothing ({row['outcome']})"
    assert finding in row["safety"], row["safety"]
    if fault == "ignores_stall":
        # the judge ended a run that would not end itself
        assert row["outcome"] == "aborted" and "safety judge" in row["reason"]
