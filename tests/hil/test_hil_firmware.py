"""The unchanged HIL suite against the reference firmware in C (firmware/), on both ports,
in real time over a real pty:

* posix: a Linux process, built with AddressSanitizer and UBSan so a memory error or
  undefined behaviour in the core fails the run too;
* m3: the Cortex-M3 image (ARM MPS2 AN385) under QEMU — the same core cross-compiled with
  arm-none-eabi-gcc, driven by SysTick and UART interrupts. Skipped with one line saying
  what to install when the toolchain or QEMU is missing (`.ci/run` installs them).

And the planted-defect idea carried over: each defect is a compile flag, and the test
written for it fails (all four on posix, one on the M3 image to show the same holds there).

And the posix bench without its block (rig-full-travel.toml), driven to its hard travel.

The suites that must pass run one at a time (real time: an ASan build and QEMU sharing two
cores made each other late); the planted defects run beside them (class Runs)."""

from __future__ import annotations

import concurrent.futures
from collections.abc import Iterator
from pathlib import Path

import pytest
from hil_runner import HilRun, run_hil, suite_timeout

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
    "limit_off_by_one_step": "test_motion_limits.py::test_soft_limit_refuses_target_beyond[mm]",
    "stall_cutoff_disabled": "test_safety.py::test_stall_cutoff_latency",
    # the bench's load cell converts at 80 samples/s: most 1 kHz samples hold its force
    "fresh_bit_always": "test_load_cell.py::test_fresh_bit_marks_each_conversion",
}
# only the catching test's module, to keep each defect run short
_SELECT = {name: test.split("::")[1] for name, test in CAUGHT_BY.items()}
M3_DEFECT = "watchdog_disabled"
FLASH_BUDGET_B = 32 * 1024  # the smallest MCUs a rig would use
RAM_BUDGET_B = 16 * 1024
# The posix bench with its block removed: the advance can be driven to the hard travel.
# What a bench may skip: the block stands in front of the hard travel (rig.toml says so);
# a device fresh from boot is made by the in-process simulator only.
BENCH_SKIPS = {
    "test_motion_limits.py::test_hard_travel_limit",
    "test_edges.py::test_a_fresh_device_keeps_its_hard_limits_until_set",
    "test_edges.py::test_a_fresh_device_keeps_its_first_reply",
    # the bench's cell converts at 80 samples/s: a 50 Hz hum is beyond its Nyquist rate
    "test_load_cell.py::test_lowpass_and_notch_take_noise_and_hum_out",
    # the bench's cell is rated 50 N, beyond the thrust: rig-lc-saturation.toml's is 2 N
    "test_load_cell.py::test_saturation_latches",
    # faults only the in-process simulator makes through the wire (its fault injection):
    # a frozen reading, an amplifier's fault, a failed encoder read, a force held to the
    # mN, a late control loop (the posix port's is tests/hil/test_firmware_main_loop.py)
    "test_load_cell.py::test_a_frozen_reading_latches_stuck",
    "test_load_cell.py::test_an_amplifier_fault_latches_no_reading",
    "test_safety.py::test_a_failed_encoder_read_latches_encoder_alone",
    "test_safety.py::test_a_force_held_exactly_at_the_stall_force_stalls",
    "test_safety.py::test_a_late_control_loop_halts_and_latches_overrun",
    "test_safety.py::test_a_motor_that_stops_turning_is_cut_off_and_stays_cut_off",
}
FULL_TRAVEL_RIG = RIG_CONFIG["posix"].with_name("rig-full-travel.toml")
NO_BLOCK_ARGS = ("--block-mm", "-1")
# The posix bench with a load cell rated for 2 N: the septum loads it beyond its rail.
SATURATION_RIG = {
    port: RIG_CONFIG[port].with_name("rig-lc-saturation.toml") for port in ("posix", "m3")
}
LOW_RAIL_ARGS = ("--lc-rail-n", "2")
MUST_PASS = ("clean", "full-travel", "lc-saturation")
VARIANTS = {"posix": (*MUST_PASS, *CAUGHT_BY), "m3": ("clean", "lc-saturation", M3_DEFECT)}
# The M3 image under QEMU runs what its port can get wrong on its own — the link, the
# reply cache over a UART, 1 kHz telemetry, the safety paths' timing, the load cell at
# 80 SPS — here; the whole suite (~2 minutes) is make hil-m3. The core's logic is the
# posix port's and the simulator's, where the whole suite runs in make test.
M3_SUBSET = (
    "test_handshake or test_lost_reply_resend_executes_once"
    " or test_telemetry_1khz_for_10s_without_loss or test_force_limit"
    " or test_stall_cutoff_latency or test_watchdog_stops_motion_and_latches"
    " or test_estop_latency or test_bye or test_fresh_bit_marks_each_conversion"
    " or test_sensor_watchdog_on_a_silent_cell"
)
# The Raspberry Pi Pico image under rp2040js runs a subset of the suite here (the whole one
# is ~2 minutes: make hil-rp2040); tests/hil/test_hil_rp2040.py has the rest of its checks.
RP2040_SUBSET = (
    "test_handshake or test_lost_reply_resend_executes_once or test_stall_cutoff_latency"
    " or test_sensor_watchdog_on_a_silent_cell"
)


class Runs:
    """The suites, in two lanes of one suite at a time, started with the module; each test
    waits for its own. Lane "pass" runs what must pass (the clean suites, the full travel):
    they run in real time, and two of them sharing two cores (an ASan build, QEMU) make
    each other late. Lane "fail" runs the planted defects beside them: each only has to
    show its catching test failing, which a late machine cannot turn into a pass."""

    def __init__(self, workdir: Path) -> None:
        self._lanes = {
            "pass": concurrent.futures.ThreadPoolExecutor(1, "hil-pass"),
            "fail": concurrent.futures.ThreadPoolExecutor(1, "hil-fail"),
        }
        self._jobs: dict[str, concurrent.futures.Future[tuple[HilRun, str]]] = {}
        for port, variants in (
            ("posix", [*MUST_PASS, *CAUGHT_BY]),
            ("m3", ["clean", "lc-saturation", M3_DEFECT]),
            ("rp2040", ["clean", M3_DEFECT]),
        ):
            if _available(port) is not None:
                continue
            for variant in variants:
                lane = self._lanes["pass" if variant in MUST_PASS else "fail"]
                self._jobs[f"{port}-{variant}"] = lane.submit(_suite, port, variant, workdir)

    def result(self, port: str, variant: str = "clean") -> tuple[HilRun, str]:
        """``variant``: "clean", a defect's name, "full-travel" (posix without a block) or
        "lc-saturation" (posix or m3 with a 2 N load cell)."""
        missing = _available(port)
        if missing is not None:
            pytest.skip(missing)
        return self._jobs[f"{port}-{variant}"].result()

    def close(self) -> None:
        for lane in self._lanes.values():
            lane.shutdown(wait=True, cancel_futures=True)


def _suite(port: str, variant: str, workdir: Path) -> tuple[HilRun, str]:
    rig = RIG_CONFIG[port]
    defect: str | None = None
    launch_args: tuple[str, ...] = ()
    select: list[str] = []
    if variant == "full-travel":
        rig, launch_args, select = FULL_TRAVEL_RIG, NO_BLOCK_ARGS, ["-k", "test_hard_travel_limit"]
    elif variant == "lc-saturation":
        rig, launch_args = SATURATION_RIG[port], LOW_RAIL_ARGS
        select = ["-k", "test_saturation_latches"]
    elif variant != "clean":
        defect, select = variant, ["-k", _SELECT[variant]]
    elif port == "rp2040":
        select = ["-k", RP2040_SUBSET]
    elif port == "m3":
        select = ["-k", M3_SUBSET]
    if port == "rp2040":
        select.append("--allow-motion")  # its image declares a real rig (simulated = 0)
    # the clean run is the sanitizers' (a memory error anywhere in the core fails it); a
    # defect run only has to show its catching test failing
    sanitize = port == "posix" and variant == "clean"
    with running(port, defect=defect, sanitize=sanitize, args=launch_args) as dev:
        args = ["--port", dev.path, "--rig-config", str(rig), *select]
        run = run_hil(args, workdir, f"{port}-{variant}")
    return run, dev.stderr()


def _available(port: str) -> str | None:
    try:
        check_tools(port)
    except PortUnavailable as exc:
        return str(exc)
    return None


_started: Runs | None = None


def start_runs(workdir: Path) -> Runs:
    """The suites, started once: by the session as its virtual-time tests begin (the root
    conftest.py: they use one core, these real-time suites the other — make test's wall
    time is otherwise these suites' ~4 minutes of waiting), or else by this module."""
    global _started
    if _started is None:
        _started = Runs(workdir)
    return _started


@pytest.fixture(scope="module")
def runs(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Runs]:
    r = start_runs(tmp_path_factory.mktemp("hil-firmware"))
    yield r
    r.close()


def test_every_firmware_defect_has_a_catching_test() -> None:
    from test_hil_defect_matrix import CAUGHT_BY as ON_THE_SIMULATOR
    from test_hil_mutants import CAUGHT_BY as MUTANTS_ON_THE_SIMULATOR

    assert set(ON_THE_SIMULATOR) | set(MUTANTS_ON_THE_SIMULATOR) == set(DEFECTS)
    assert set(CAUGHT_BY) <= set(DEFECTS) and len(CAUGHT_BY) >= 3
    for defect, test in CAUGHT_BY.items():
        if defect in ON_THE_SIMULATOR:
            assert ON_THE_SIMULATOR[defect] == test  # the same test catches it on both
        else:  # a mutant: on the simulator's ideal sensor another test may catch it
            assert defect in MUTANTS_ON_THE_SIMULATOR


@suite_timeout(2)
def test_suite_passes_on_the_posix_port(runs: Runs) -> None:
    run, stderr = runs.result("posix")
    assert run.returncode == 0, run.why()
    assert run.failed() == []
    assert len(run.outcomes) >= 25
    # the skips a bench may make (BENCH_SKIPS)
    skipped = {k for k, v in run.outcomes.items() if v == "skipped"}
    assert skipped <= BENCH_SKIPS, run.skip_reasons
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


@suite_timeout(2)
@pytest.mark.parametrize("defect", sorted(CAUGHT_BY))
def test_defect_is_caught_on_the_posix_port(defect: str, runs: Runs) -> None:
    run, _ = runs.result("posix", defect)
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


@suite_timeout(2)
def test_suite_passes_on_the_cortex_m3_image(runs: Runs) -> None:
    run, _ = runs.result("m3")
    assert run.returncode == 0, run.why()
    assert run.failed() == [] and len(run.outcomes) >= 12
    skipped = {k for k, v in run.outcomes.items() if v == "skipped"}
    assert skipped <= BENCH_SKIPS, run.skip_reasons
    assert run.report is not None
    assert run.report["device"]["serial_number"] == "ND-M3-QEMU-0001"
    tests = run.report["tests"]
    telemetry = tests["hil_tests/test_streams.py::test_telemetry_1khz_for_10s_without_loss"]
    assert telemetry["figures"]["samples_lost"] == 0
    stall = tests["hil_tests/test_safety.py::test_stall_cutoff_latency"]["figures"]
    assert 0 <= stall["stall_latency_ms"] <= 10


@suite_timeout(2)
def test_a_planted_defect_is_caught_on_the_cortex_m3_image(runs: Runs) -> None:
    run, _ = runs.result("m3", M3_DEFECT)
    assert run.returncode == 1, run.output[-2000:]
    assert run.outcomes.get(CAUGHT_BY[M3_DEFECT]) == "failed", run.outcomes


@suite_timeout(2)
def test_posix_port_is_driven_to_its_hard_travel(runs: Runs) -> None:
    """The bench without its block (rig-full-travel.toml): test_hard_travel_limit drives
    the advance at full speed to the hard travel and back — which rig.toml's block at
    40 mm never lets it do."""
    run, _ = runs.result("posix", "full-travel")
    hard = "test_motion_limits.py::test_hard_travel_limit"
    assert run.outcomes == {hard: "passed"}, (run.outcomes, run.skip_reasons, run.output[-2000:])
    assert run.report is not None
    figures = run.report["tests"][f"hil_tests/{hard}"]["figures"]
    assert figures["deepest_encoder_um"] == figures["travel_um"] == 150_000


@suite_timeout(2)
def test_suite_subset_passes_on_the_rp2040(runs: Runs) -> None:
    run, stderr = runs.result("rp2040")
    assert run.returncode == 0, run.why()
    assert run.failed() == [] and 6 <= len(run.outcomes) <= 15, run.outcomes
    assert run.report is not None
    assert run.report["device"]["serial_number"] == "ND-RP2040-0001"
    stall = run.report["tests"]["hil_tests/test_safety.py::test_stall_cutoff_latency"]["figures"]
    assert 0 <= stall["stall_latency_ms"] <= 10
    # the HX711 silenced by the harness's slip ring (the needle turning backward): the
    # core's sensor watchdog latched LOAD_CELL, as on the other ports
    silent = run.report["tests"][
        "hil_tests/test_load_cell.py::test_sensor_watchdog_on_a_silent_cell"
    ]
    assert silent["outcome"] == "passed", silent
    # the harness's report as it stopped: no watchdog reset, the HX711 never powered down
    assert "watchdog resets 0" in stderr and "HX711 power-downs 0" in stderr, stderr[-2000:]


@suite_timeout(2)
def test_a_planted_defect_is_caught_on_the_rp2040(runs: Runs) -> None:
    run, _ = runs.result("rp2040", M3_DEFECT)
    assert run.returncode == 1, run.output[-2000:]
    assert run.outcomes.get(CAUGHT_BY[M3_DEFECT]) == "failed", run.outcomes


@suite_timeout(1)
@pytest.mark.parametrize("port", ["posix", "m3"])
def test_the_port_saturates_its_low_rated_load_cell(runs: Runs, port: str) -> None:
    """The bench whose load cell is rated 2 N (rig-lc-saturation.toml): the septum loads
    it beyond its rail, and the device latches LOAD_CELL (SATURATED) — the bench of
    rig.toml, rated 50 N, can never reach its rail. On the M3 image the rail is compiled
    in (make LC_RAIL_N=2)."""
    run, _ = runs.result(port, "lc-saturation")
    saturation = "test_load_cell.py::test_saturation_latches"
    assert run.outcomes == {saturation: "passed"}, (
        run.outcomes,
        run.skip_reasons,
        run.output[-2000:],
    )
