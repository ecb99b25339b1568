"""The unchanged HIL suite against the reference firmware in C (firmware/), posix port:
a Linux process on a real pty, in real time, built with AddressSanitizer and UBSan so a
memory error or undefined behaviour in the core fails the run too. And the planted-defect
idea carried over: each defect is a compile flag, and the test written for it fails.

The clean run and the defect runs share the two cores (two suites at a time)."""

from __future__ import annotations

import concurrent.futures
from collections.abc import Iterator
from pathlib import Path

import pytest
from hil_runner import HilRun, run_hil

from firmware.launch import DEFECTS, RIG_CONFIG, PortUnavailable, check_tools, running

# The conformance test written to catch each defect (the simulator's, test_hil_defect_matrix).
CAUGHT_BY: dict[str, str] = {
    "no_repeat_detection": "test_exactly_once.py::test_lost_reply_resend_executes_once",
    "watchdog_disabled": "test_safety.py::test_watchdog_stops_motion_and_latches",
    "limit_off_by_one_step": "test_motion_limits.py::test_soft_limit_refuses_target_beyond",
    "stall_cutoff_disabled": "test_safety.py::test_stall_cutoff_latency",
}
# only the catching test's module, to keep each defect run short
_SELECT = {name: test.split("::")[1] for name, test in CAUGHT_BY.items()}


def _suite(name: str, defect: str | None, workdir: Path) -> tuple[HilRun, str]:
    with running("posix", defect=defect, sanitize=True) as dev:
        args = ["--port", dev.path, "--rig-config", str(RIG_CONFIG["posix"])]
        if defect is not None:
            args += ["-k", _SELECT[defect]]
        run = run_hil(args, workdir, name)
    return run, dev.stderr()


@pytest.fixture(scope="module")
def runs(
    tmp_path_factory: pytest.TempPathFactory,
) -> Iterator[dict[str, concurrent.futures.Future[tuple[HilRun, str]]]]:
    try:
        check_tools("posix")
    except PortUnavailable as exc:
        pytest.skip(str(exc))
    workdir = tmp_path_factory.mktemp("hil-firmware")
    with concurrent.futures.ThreadPoolExecutor(max_workers=2) as pool:
        yield {
            name: pool.submit(_suite, name, None if name == "clean" else name, workdir)
            for name in ("clean", *DEFECTS)
        }


def test_every_firmware_defect_has_a_catching_test() -> None:
    assert set(CAUGHT_BY) == set(DEFECTS)
    assert len(DEFECTS) >= 3


def test_suite_passes_on_the_posix_port(
    runs: dict[str, concurrent.futures.Future[tuple[HilRun, str]]],
) -> None:
    run, stderr = runs["clean"].result()
    assert run.returncode == 0, run.output[-3000:]
    assert run.failed() == []
    assert len(run.outcomes) >= 25
    # the only skip: the bench's block stands in front of the hard travel (rig.toml says so)
    skipped = {k for k, v in run.outcomes.items() if v == "skipped"}
    assert skipped <= {"test_motion_limits.py::test_hard_travel_limit"}, run.skip_reasons
    assert run.report is not None
    device = run.report["device"]
    assert device["serial_number"] == "ND-POSIX-0001" and device["clock"] == "machine"
    tests = run.report["tests"]
    telemetry = tests["hil_tests/test_streams.py::test_telemetry_1khz_for_10s_without_loss"]
    assert telemetry["figures"]["samples_lost"] == 0
    assert telemetry["figures"]["samples_received"] >= 10_000
    stall = tests["hil_tests/test_safety.py::test_stall_cutoff_latency"]["figures"]
    assert 0 <= stall["stall_latency_ms"] <= 10
    # the sanitizers said nothing, and the process ended by our SIGTERM with its counters
    assert "runtime error" not in stderr and "AddressSanitizer" not in stderr, stderr
    assert "ticks, longest" in stderr, stderr


@pytest.mark.parametrize("defect", DEFECTS)
def test_defect_is_caught_on_the_posix_port(
    defect: str, runs: dict[str, concurrent.futures.Future[tuple[HilRun, str]]]
) -> None:
    run, _ = runs[defect].result()
    assert run.returncode == 1, (
        f"suite exit {run.returncode} against {defect}:\n{run.output[-2000:]}"
    )
    assert run.outcomes.get(CAUGHT_BY[defect]) == "failed", (
        f"{defect}: {CAUGHT_BY[defect]} did not fail; outcomes {run.outcomes}"
    )
