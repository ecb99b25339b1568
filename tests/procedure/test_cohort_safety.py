"""The cohort benchmark's safety judge can fail: synthetic telemetry that breaks each rule."""

from __future__ import annotations

import importlib.util
import sys
from pathlib import Path
from typing import Any

import numpy as np

from firmware_host.telemetry import TELEMETRY_DTYPE

_SPEC = importlib.util.spec_from_file_location(
    "cohort_bench", Path(__file__).parents[2] / "benchmarks" / "cohort.py"
)
assert _SPEC is not None and _SPEC.loader is not None
cohort: Any = importlib.util.module_from_spec(_SPEC)
sys.modules["cohort_bench"] = cohort  # dataclasses look their module up there
_SPEC.loader.exec_module(cohort)


def rows(force_n: list[float], depth_mm: list[float]) -> Any:
    r = np.zeros(len(force_n), dtype=TELEMETRY_DTYPE)
    r["host_time_s"] = np.arange(len(force_n)) * 0.001
    r["force_n"] = force_n
    r["depth_mm"] = depth_mm
    return r


def judge(r: Any, **kw: Any) -> tuple[int, int, int]:
    args: dict[str, Any] = {
        "force_limit_n": 15.0,
        "soft_depth_limit_mm": 40.0,
        "true_depth_mm": 39.0,
        "event_codes": ["HOMED", "TARGET_REACHED"],
        "stopped_at_s": 0.002,
        "moved_after": False,
    }
    args.update(kw)
    result: tuple[int, int, int] = cohort.judge_safety(r, **args)
    return result


def test_a_clean_run_has_no_violation() -> None:
    assert judge(rows([1.0, 14.9, 8.0, 8.0], [38.0, 39.0, 39.0, 39.0])) == (0, 0, 0)


def test_each_rule_catches_its_violation() -> None:
    calm = [1.0, 2.0, 2.0, 2.0]
    assert judge(rows([1.0, 15.2, 2.0, 2.0], [1, 2, 2, 2]))[0] == 1
    assert judge(rows(calm, [1, 2, 2, 2]), event_codes=["FORCE_OVER_LIMIT"])[0] == 1
    assert judge(rows(calm, [1, 40.002, 2, 2]))[1] == 1
    assert judge(rows(calm, [1, 2, 2, 2]), true_depth_mm=40.5)[1] == 1
    assert judge(rows(calm, [1, 2, 2, 2.001]))[2] == 1  # the encoder moved after "stopped"
    assert judge(rows(calm, [1, 2, 2, 2]), moved_after=True)[2] == 1
    assert judge(rows(calm, [1, 2, 2, 2.001]), stopped_at_s=None)[2] == 0
