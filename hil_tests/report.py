"""The figures each test measured, kept as JSON next to the JUnit XML.

A test records figures through the ``hil_figures`` fixture (``hil_figures["rtt_ms"] = 1.2``);
each figure also goes into the JUnit XML as a property of its test case. At the end of the
session the plugin writes one JSON document::

    {"suite": "needle-driver HIL", "port": ..., "device": {...identity...},
     "started_utc": ..., "finished_utc": ..., "summary": {"passed": n, ...},
     "tests": {"<nodeid>": {"outcome": "passed", "duration_s": ..., "figures": {...},
                            "skip_reason"?: ..., "failure"?: "<one line>"}}}
"""

from __future__ import annotations

import json
import math
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path
from typing import Any


def _plain(value: Any) -> Any:
    """Numbers as plain JSON numbers (numpy scalars included); NaN/inf as null."""
    if hasattr(value, "item"):
        value = value.item()
    if isinstance(value, float):
        # host-clock figures come out as 0.9999999999998899: 4 decimals is plenty
        return round(value, 4) if math.isfinite(value) else None
    if isinstance(value, dict):
        return {str(k): _plain(v) for k, v in value.items()}
    if isinstance(value, list | tuple):
        return [_plain(v) for v in value]
    return value


@dataclass
class TestRecord:
    outcome: str = "unknown"
    duration_s: float = 0.0
    figures: dict[str, Any] = field(default_factory=dict)
    skip_reason: str | None = None
    failure: str | None = None


@dataclass
class HilReport:
    port: str
    started_utc: str = field(default_factory=lambda: datetime.now(UTC).isoformat())
    device: dict[str, Any] = field(default_factory=dict)
    tests: dict[str, TestRecord] = field(default_factory=dict)

    def record(self, nodeid: str) -> TestRecord:
        return self.tests.setdefault(nodeid, TestRecord())

    def to_json(self) -> dict[str, Any]:
        summary: dict[str, int] = {}
        for rec in self.tests.values():
            summary[rec.outcome] = summary.get(rec.outcome, 0) + 1
        tests: dict[str, Any] = {}
        for nodeid, rec in self.tests.items():
            item: dict[str, Any] = {
                "outcome": rec.outcome,
                "duration_s": round(rec.duration_s, 4),
                "figures": _plain(rec.figures),
            }
            if rec.skip_reason:
                item["skip_reason"] = rec.skip_reason
            if rec.failure:
                item["failure"] = rec.failure
            tests[nodeid] = item
        return {
            "suite": "needle-driver HIL conformance",
            "port": self.port,
            "device": _plain(self.device),
            "started_utc": self.started_utc,
            "finished_utc": datetime.now(UTC).isoformat(),
            "summary": summary,
            "tests": tests,
        }

    def write(self, path: Path) -> None:
        path.parent.mkdir(parents=True, exist_ok=True)
        tmp = path.with_name(path.name + ".tmp")
        tmp.write_text(json.dumps(self.to_json(), indent=2) + "\n", encoding="utf-8")
        tmp.replace(path)


def report_path(hil_report: str | None, junitxml: str | None) -> Path | None:
    """Where the JSON goes: --hil-report if given, else next to --junitxml
    (``report.xml`` → ``report.hil.json``), else nowhere (no litter in plain runs)."""
    if hil_report:
        return Path(hil_report)
    if junitxml:
        j = Path(junitxml)
        return j.with_name(j.stem + ".hil.json")
    return None
