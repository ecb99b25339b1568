"""The unchanged HIL suite against the reference firmware in C (firmware/), on both ports,
in real time over a real pty:

* posix: a Linux process, built with AddressSanitizer and UBSan so a memory error or
  undefined behaviour in the core fails the run too;
* m3: the Cortex-M3 image (ARM MPS2 AN385) under QEMU — the same core cross-compiled with
  arm-none-eabi-gcc, driven by SysTick and UART interrupts. Skipped with one line saying
  what to install when the toolchain or QEMU is missing (`.ci/run` installs them).

And the planted-defect idea carried over: each defect is a compile flag, and the test
written for it fails (all four on posix, one on the M3 image to show the same holds there).

The runs wait on the device most of the time: three suites at a time share the two cores."""

from __future__ import annotations

import concurrent.futures
from collections.abc import Iterator
from pathlib import Path

import pytest
from hil_runner import HilRun, run_hil

from firmware.launch import (
    DEFECTS,
    RIG_CONFIG,
    PortUnavailable,
    build,
    check_tools,
    image_size,
    running,
)

# The conformance test written to catch each defect, for the four run on the posix port
# here (every defect and mutant is run on the simulator's build of the same core:
# test_hil_defect_matrix.py, test_hil_mutants.py).
CAUGHT_BY: dict[str, str] = {
    "no_repeat_detection": "test_exactly_once.py::test_lost_reply_resend_executes_once",
    "watchdog_disabled": "test_safety.py::test_watchdog_stops_motion_and_latches",
    "limit_off_by_one_step": "test_motion_limits.py::test_soft_limit_refuses_target_beyond",
    "stall_cutoff_disabled": "test_safety.py::test_stall_cutoff_latency",
}
# only the catching test's module, to keep each defect run short
_SELECT = {name: test.split("::")[1] for name, test in CAUGHT_BY.items()}
M3_DEFECT = "watchdog_disabled"
FLASH_BUDGET_B = 32 * 1024  # the smallest MCUs a rig would use
RAM_BUDGET_B = 16 * 1024
Runs = dict[str, "concurrent.futures.Future[tuple[HilRun, str]]"]


def _suite(port: str, defect: str | None, workdir: Path) -> tuple[HilRun, str]:
    name = f"{port}-{defect or 'clean'}"
    with running(port, defect=defect, sanitize=port == "posix") as dev:
        args = ["--port", dev.path, "--rig-config", str(RIG_CONFIG[port])]
        if defect is not None:
            args += ["-k", _SELECT[defect]]
        run = run_hil(args, workdir, name)
    return run, dev.stderr()


def _available(port: str) -> str | None:
    try:
        check_tools(port)
    except PortUnavailable as exc:
        return str(exc)
    return None


@pytest.fixture(scope="module")
def runs(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Runs]:
    workdir = tmp_path_factory.mktemp("hil-firmware")
    jobs: list[tuple[str, str | None]] = []
    if _available("m3") is None:
        jobs += [("m3", None), ("m3", M3_DEFECT)]  # the longest first
    if _available("posix") is None:
        jobs += [("posix", None), *(("posix", d) for d in CAUGHT_BY)]
    with concurrent.futures.ThreadPoolExecutor(max_workers=3) as pool:
        yield {
            f"{port}-{defect or 'clean'}": pool.submit(_suite, port, defect, workdir)
            for port, defect in jobs
        }


def _result(runs: Runs, key: str) -> tuple[HilRun, str]:
    port = key.split("-")[0]
    missing = _available(port)
    if missing is not None:
        pytest.skip(missing)
    return runs[key].result()


def test_every_firmware_defect_has_a_catching_test() -> None:
    from test_hil_defect_matrix import CAUGHT_BY as ON_THE_SIMULATOR
    from test_hil_mutants import CAUGHT_BY as MUTANTS_ON_THE_SIMULATOR

    assert set(ON_THE_SIMULATOR) | set(MUTANTS_ON_THE_SIMULATOR) == set(DEFECTS)
    assert set(CAUGHT_BY) <= set(DEFECTS) and len(CAUGHT_BY) >= 3
    for defect, test in CAUGHT_BY.items():
        assert ON_THE_SIMULATOR[defect] == test  # the same test catches it on both


def test_suite_passes_on_the_posix_port(runs: Runs) -> None:
    run, stderr = _result(runs, "posix-clean")
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


@pytest.mark.parametrize("defect", sorted(CAUGHT_BY))
def test_defect_is_caught_on_the_posix_port(defect: str, runs: Runs) -> None:
    run, _ = _result(runs, f"posix-{defect}")
    assert run.returncode == 1, (
        f"suite exit {run.returncode} against {defect}:\n{run.output[-2000:]}"
    )
    assert run.outcomes.get(CAUGHT_BY[defect]) == "failed", (
        f"{defect}: {CAUGHT_BY[defect]} did not fail; outcomes {run.outcomes}"
    )


def test_m3_image_fits_the_smallest_mcus() -> None:
    missing = _available("m3")
    if missing is not None:
        pytest.skip(missing)
    size = image_size(build("m3"))
    assert size.flash_b <= FLASH_BUDGET_B, size
    assert size.ram_b <= RAM_BUDGET_B, size  # the 2 KiB stack is a .bss-like section


def test_suite_passes_on_the_cortex_m3_image(runs: Runs) -> None:
    run, _ = _result(runs, "m3-clean")
    assert run.returncode == 0, run.output[-3000:]
    assert run.failed() == [] and len(run.outcomes) >= 25
    skipped = {k for k, v in run.outcomes.items() if v == "skipped"}
    assert skipped <= {"test_motion_limits.py::test_hard_travel_limit"}, run.skip_reasons
    assert run.report is not None
    assert run.report["device"]["serial_number"] == "ND-M3-QEMU-0001"
    tests = run.report["tests"]
    telemetry = tests["hil_tests/test_streams.py::test_telemetry_1khz_for_10s_without_loss"]
    assert telemetry["figures"]["samples_lost"] == 0
    stall = tests["hil_tests/test_safety.py::test_stall_cutoff_latency"]["figures"]
    assert 0 <= stall["stall_latency_ms"] <= 10


def test_a_planted_defect_is_caught_on_the_cortex_m3_image(runs: Runs) -> None:
    run, _ = _result(runs, f"m3-{M3_DEFECT}")
    assert run.returncode == 1, run.output[-2000:]
    assert run.outcomes.get(CAUGHT_BY[M3_DEFECT]) == "failed", run.outcomes
