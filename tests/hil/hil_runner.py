"""Running the HIL suite as an engineer would: pytest in a subprocess, results read back
from its JUnit XML and its JSON figures report."""

from __future__ import annotations

import json
import os
import subprocess
import sys
import xml.etree.ElementTree as ET
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import pytest

from firmware.launch import real_time_process

REPO = Path(__file__).resolve().parents[2]
# One timeout policy. pytest-timeout's `timeout` in pyproject.toml bounds every test; a test
# that runs HIL suites in subprocesses is marked suite_timeout(N) instead: N suite runs of
# at most SUITE_TIMEOUT_S each (run_hil's own timeout, which therefore fires first and
# fails with the suite's output, not a stack dump) plus a margin for the test's own work.
# tests/hil/test_hil_timeouts.py holds every test here to it.
SUITE_TIMEOUT_S = 240.0
SUITE_MARGIN_S = 60.0
# Work that runs in virtual time (a suite on sim://, a mutant's build and suite) cannot be
# made late by the machine's load, but makes the real-time tests beside it late: it yields
# to them. Any user may lower a process's priority (raising it needs root).
BULK_NICE = 10


def lower_priority() -> None:
    """preexec_fn of a virtual-time job: BULK_NICE below its parent."""
    os.nice(BULK_NICE)


def suite_timeout(runs: int = 1) -> pytest.MarkDecorator:
    """The pytest-timeout marker of a test that runs ``runs`` HIL suites, one at a time."""
    return pytest.mark.timeout(runs * SUITE_TIMEOUT_S + SUITE_MARGIN_S)


@dataclass
class HilRun:
    returncode: int
    output: str
    outcomes: dict[str, str] = field(default_factory=dict)  # "test_x.py::name" -> outcome
    skip_reasons: dict[str, str] = field(default_factory=dict)
    report: dict[str, Any] | None = None
    failures: dict[str, str] = field(default_factory=dict)  # failed test -> its message

    def failed(self) -> list[str]:
        return sorted(k for k, v in self.outcomes.items() if v in ("failed", "error"))

    def why(self, tail_chars: int = 1500) -> str:
        """What an assertion on this run should say: each failed test's first failure
        message and the figures it recorded (the cause, where a cascade follows it), then
        the end of the output."""
        figures = {
            test.split("/")[-1]: entry.get("figures", {})
            for test, entry in (self.report or {}).get("tests", {}).items()
        }
        lines = [
            f"{test}: {self.failures.get(test, '')[:600]}  figures {figures.get(test, {})}"
            for test in self.failed()
        ]
        return "\n".join([*lines, "...", self.output[-tail_chars:]])


def read_junit(path: Path) -> tuple[dict[str, str], dict[str, str], dict[str, str]]:
    """outcomes, skip reasons and failure messages, keyed "test_x.py::name"."""
    outcomes: dict[str, str] = {}
    reasons: dict[str, str] = {}
    failures: dict[str, str] = {}
    for case in ET.parse(path).getroot().iter("testcase"):
        module = case.get("classname", "").split(".")[-1]
        key = f"{module}.py::{case.get('name')}"
        outcome = "passed"
        for child in case:
            if child.tag in ("failure", "error", "skipped"):
                outcome = {"failure": "failed"}.get(child.tag, child.tag)
                if child.tag == "skipped":
                    reasons[key] = child.get("message", "")
                else:
                    failures[key] = child.get("message", "")
        outcomes[key] = outcome
    return outcomes, reasons, failures


def run_hil(
    args: list[str],
    workdir: Path,
    name: str = "run",
    timeout_s: float = SUITE_TIMEOUT_S,
    realtime: bool = True,
) -> HilRun:
    """``pytest hil_tests ARGS --junitxml WORKDIR/NAME.xml`` in a fresh interpreter: at a
    real-time priority against a device that keeps real time (``realtime``), else (sim://,
    virtual time) below the tests that do."""
    assert timeout_s <= SUITE_TIMEOUT_S, f"a suite run gets at most {SUITE_TIMEOUT_S} s"
    junit = workdir / f"{name}.xml"
    cmd = [
        sys.executable,
        "-m",
        "pytest",
        "-q",
        "-p",
        "no:cacheprovider",
        "hil_tests",
        "--junitxml",
        str(junit),
        *args,
    ]
    proc = subprocess.run(
        cmd,
        cwd=REPO,
        capture_output=True,
        text=True,
        timeout=timeout_s,
        # the bench's host: its heartbeats on time under load
        preexec_fn=real_time_process if realtime else lower_priority,
    )
    run = HilRun(proc.returncode, proc.stdout + proc.stderr)
    if junit.exists():
        run.outcomes, run.skip_reasons, run.failures = read_junit(junit)
    report = workdir / f"{name}.hil.json"
    if report.exists():
        run.report = json.loads(report.read_text())
    return run
