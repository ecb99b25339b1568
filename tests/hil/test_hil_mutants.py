"""Conformance tests with no planted defect can fail too: each mutant (tests/hil/mutant_run.py)
breaks one more behaviour, and the test written for it must fail."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import pytest
from hil_runner import REPO, SUITE_TIMEOUT_S, lower_priority, read_junit, suite_timeout
from mutant_run import MUTANTS

CAUGHT_BY = {
    "estop_decelerates": "test_safety.py::test_estop_latency",
    "force_limit_ignored": "test_safety.py::test_force_limit",
    "event_log_empty": "test_streams.py::test_event_gap_recovered_with_get_events",
    "home_offset": "test_motion_limits.py::test_homing",
    "fault_leaves_rotation": "test_safety.py::test_force_limit",
    # issue 17: the blind spots an independent read found (hil_tests/test_edges.py)
    "reply_cache_one_entry": "test_edges.py::test_old_resend_executes_once[retransmit]",
    "cache_only_on_retransmit": "test_edges.py::test_old_resend_executes_once[plain]",
    "force_limit_push_only": "test_edges.py::test_force_limit_when_pulling",
    "stall_force_off_rotating": "test_edges.py::test_force_held_stall_while_rotating",
    "hello_clears_estop": "test_edges.py::test_estop_latch_survives_hello",
    "stop_ignored_homing": "test_edges.py::test_stop_during_home_ends_it",
    "relative_limit_on_increment": "test_edges.py::test_relative_move_limit_is_on_the_result",
    "crc_skipped_for_move": "test_edges.py::test_bad_crc_is_dropped_for_every_command",
    "by_angle_32bit": "test_edges.py::test_rotate_by_large_angle",
    "event_oldest_off_by_one": "test_edges.py::test_event_log_beyond_its_size",
    # issue 18: the load cell (hil_tests/test_load_cell.py)
    "tare_ignored": "test_load_cell.py::test_drift_filter_and_tare_under_a_steady_load",
    "no_tare_at_home": "test_load_cell.py::test_drift_filter_and_tare_under_a_steady_load",
    "drift_filter_off": "test_load_cell.py::test_drift_filter_and_tare_under_a_steady_load",
    "drift_filter_blinds_limit": (
        "test_load_cell.py::test_drift_filter_and_tare_under_a_steady_load"
    ),
    "sensor_watchdog_disabled": "test_load_cell.py::test_sensor_watchdog_on_a_silent_cell",
    "saturation_ignored": "test_load_cell.py::test_saturation_latches",
    # on the ideal sensor every sample is fresh: it is the silence that shows a held one
    "fresh_bit_always": "test_load_cell.py::test_sensor_watchdog_on_a_silent_cell",
}


def test_every_mutant_has_a_catching_test() -> None:
    assert set(CAUGHT_BY) == set(MUTANTS)


@suite_timeout()
@pytest.mark.parametrize("mutant", sorted(MUTANTS))
def test_mutant_is_caught(mutant: str, tmp_path: Path) -> None:
    expected = CAUGHT_BY[mutant]
    junit = tmp_path / "mutant.xml"
    name = expected.split("::")[1].split("[")[0]
    proc = subprocess.run(
        [
            sys.executable,
            str(REPO / "tests" / "hil" / "mutant_run.py"),
            mutant,
            "-k",
            name,
            "--junitxml",
            str(junit),
        ],
        cwd=REPO,
        preexec_fn=lower_priority,  # virtual time: the real-time tests beside it go first
        capture_output=True,
        text=True,
        timeout=SUITE_TIMEOUT_S,
    )
    assert proc.returncode == 1, proc.stdout[-3000:] + proc.stderr[-2000:]
    outcomes, _, _ = read_junit(junit)
    assert outcomes.get(expected) == "failed", outcomes
