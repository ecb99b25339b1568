"""The test results of a run, per control id, from pytest's JUnit XML."""

from __future__ import annotations

import xml.etree.ElementTree as ET
from collections import defaultdict
from dataclasses import dataclass
from pathlib import Path

from safety_case import CONTROL_PROPERTY

PASSED, FAILED, SKIPPED = "passed", "failed", "skipped"


class JunitError(ValueError):
    """The JUnit file is missing or unreadable: one line."""


@dataclass(frozen=True)
class TestResult:
    test_id: str  # classname::name, as the JUnit file has it
    status: str  # PASSED, FAILED (failure or error) or SKIPPED


def _status(case: ET.Element) -> str:
    if case.find("failure") is not None or case.find("error") is not None:
        return FAILED
    if case.find("skipped") is not None:
        return SKIPPED
    return PASSED


def results_by_control(path: Path) -> dict[str, list[TestResult]]:
    """Every test of the run that carries a control id, under each of its ids."""
    try:
        root = ET.parse(path).getroot()
    except FileNotFoundError:
        raise JunitError(f"no JUnit results at {path}: run the tests first (make test)") from None
    except (OSError, ET.ParseError) as exc:
        raise JunitError(f"cannot read the JUnit results {path}: {exc}") from None
    out: dict[str, list[TestResult]] = defaultdict(list)
    for case in root.iter("testcase"):
        controls = [
            p.get("value", "")
            for p in case.iterfind("properties/property")
            if p.get("name") == CONTROL_PROPERTY
        ]
        if not controls:
            continue
        result = TestResult(f"{case.get('classname', '')}::{case.get('name', '')}", _status(case))
        for control in dict.fromkeys(controls):
            out[control].append(result)
    return dict(out)
