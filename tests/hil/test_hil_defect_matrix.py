"""The suite must catch bad firmware: against every planted defect at least one
conformance test fails — the one written for it — and on the clean simulator all pass.

Each run is the whole suite in its own interpreter (``pytest hil_tests --port
"sim://?defect=NAME"``), two at a time on two cores; the runs start when the module
does and each test waits for its own.
"""

from __future__ import annotations

import concurrent.futures
from collections.abc import Iterator
from pathlib import Path

import pytest
from hil_runner import HilRun, run_hil, suite_timeout

from sim_device.core_build import DEFECTS

# The conformance test written to catch each defect (others may fail too).
CAUGHT_BY: dict[str, str] = {
    "no_repeat_detection": "test_exactly_once.py::test_lost_reply_resend_executes_once",
    "watchdog_disabled": "test_safety.py::test_watchdog_stops_motion_and_latches",
    "limit_off_by_one_step": "test_motion_limits.py::test_soft_limit_refuses_target_beyond[mm]",
    "stall_cutoff_disabled": "test_safety.py::test_stall_cutoff_latency",
    "telemetry_counter_stuck": "test_streams.py::test_telemetry_1khz_for_10s_without_loss",
    "nak_reason_swapped": "test_nak.py::test_nak_reason[NOT_HOMED]",
}
RUNS = ["clean", *sorted(DEFECTS)]
Matrix = dict[str, "concurrent.futures.Future[HilRun]"]


@pytest.fixture(scope="module")
def matrix(
    tmp_path_factory: pytest.TempPathFactory,
) -> Iterator[dict[str, concurrent.futures.Future[HilRun]]]:
    workdir: Path = tmp_path_factory.mktemp("hil-matrix")
    with concurrent.futures.ThreadPoolExecutor(max_workers=2) as pool:
        futures = {
            name: pool.submit(
                run_hil,
                ["--port", "sim://" if name == "clean" else f"sim://?defect={name}"],
                workdir,
                name,
                realtime=False,
            )
            for name in RUNS
        }
        yield futures


def test_every_defect_has_a_catching_test() -> None:
    assert set(CAUGHT_BY) == set(DEFECTS), "a planted defect with no test meant to catch it"


@suite_timeout()
def test_clean_simulator_passes(matrix: Matrix) -> None:
    run = matrix["clean"].result()
    assert run.returncode == 0, run.why()
    assert run.failed() == []
    assert len(run.outcomes) >= 25
    # every conformance test ran: nothing is skipped on the in-process simulator
    skipped = {k: v for k, v in run.outcomes.items() if v == "skipped"}
    assert skipped == {}, run.skip_reasons
    # the figures report sits next to the JUnit XML, and says what was measured
    assert run.report is not None, "no NAME.hil.json next to the JUnit XML"
    assert run.report["device"]["simulated"] is True
    tests = run.report["tests"]
    telemetry = tests["hil_tests/test_streams.py::test_telemetry_1khz_for_10s_without_loss"]
    assert telemetry["figures"]["samples_lost"] == 0
    assert telemetry["figures"]["samples_received"] >= 10_000
    stall = tests["hil_tests/test_safety.py::test_stall_cutoff_latency"]["figures"]
    assert 0 <= stall["stall_latency_ms"] <= 10
    assert all(t["outcome"] == "passed" for t in tests.values())


@pytest.mark.parametrize("defect", sorted(DEFECTS))
@suite_timeout()
def test_defect_is_caught(defect: str, matrix: Matrix) -> None:
    run = matrix[defect].result()
    assert run.returncode == 1, (
        f"suite exit {run.returncode} against {defect}:\n{run.output[-2000:]}"
    )
    assert run.failed(), f"the suite passed a device with {defect}"
    expected = CAUGHT_BY[defect]
    assert run.outcomes.get(expected) == "failed", (
        f"{defect}: {expected} did not fail; failures were {run.failed()}"
    )
    # the lab's JSON says the same, with the assertion's first line
    assert run.report is not None
    rec = run.report["tests"][f"hil_tests/{expected}"]
    assert rec["outcome"] == "failed" and rec["failure"], rec
