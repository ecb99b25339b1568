"""The single-fault campaign's quick mode (make test): every modelled fault, at two
moments of a PIERCE run on the simulator's C core, reaches the safe state within the
bound — and a planted defect in a control shows as unsafe runs, so the campaign's judge
is shown firing."""

from __future__ import annotations

import pytest

from protocol import FaultFlags
from studies.campaign import (
    DEVICE_RESET_WORDS,
    FAULTS,
    KNOWN_GAPS,
    NOT_REACHED,
    RIDDEN,
    SAFE,
    SAFE_BOUND_S,
    UNSAFE,
    Trial,
    TrialResult,
    main,
    run,
    summarise,
    trials,
)

QUICK_MOMENTS = 2


@pytest.fixture(scope="module")
def quick() -> list[TrialResult]:
    return run(
        trials(
            lesion="soft-stenosis", seed=1, moments=QUICK_MOMENTS, defect=None, faults=list(FAULTS)
        )
    )


@pytest.mark.control("RC-SAFESTATE", "RC-LOADCELL", "RC-STUCK", "RC-ENCODER", "RC-WATCHDOG")
def test_every_single_fault_reaches_the_safe_state_in_bound(quick: list[TrialResult]) -> None:
    s = summarise(quick)
    assert s.not_reached == 0 and s.tried == len(FAULTS) * QUICK_MOMENTS
    unsafe = [r for r in quick if r.verdict == UNSAFE and r.fault not in KNOWN_GAPS]
    assert unsafe == [] and s.unsafe == 0
    assert 0 < s.worst_time_to_safe_s <= SAFE_BOUND_S
    # every fault of a sensor or an actuator is latched and stopped, none ridden through
    for r in quick:
        if FAULTS[r.fault][1] not in (None, "tick_overrun") and r.fault not in KNOWN_GAPS:
            assert r.verdict == SAFE and r.latched, r


@pytest.mark.control("RC-NORESUME")
def test_a_device_reset_mid_run_ends_it_and_nothing_moves_again(
    quick: list[TrialResult],
) -> None:
    resets = [r for r in quick if r.fault == "device_reset"]
    assert resets and all(r.verdict == SAFE and r.outcome == "fault" for r in resets)
    assert all(DEVICE_RESET_WORDS in r.reason for r in resets)
    assert all(r.time_to_safe_s is not None and r.time_to_safe_s < 0.1 for r in resets)


@pytest.mark.control("RC-DRIFTWATCH")
def test_a_drifting_load_cell_is_caught_and_latched_in_words(quick: list[TrialResult]) -> None:
    drifts = [r for r in quick if r.fault == "loadcell_drift"]
    assert drifts and all(r.verdict == SAFE for r in drifts)
    assert all("load cell reading drifting" in r.reason for r in drifts)
    assert all(r.latched & FaultFlags.ESTOP for r in drifts)  # held until cleared


@pytest.mark.control("RC-WALLCLOCK")
def test_the_host_wall_clock_jumping_changes_nothing(quick: list[TrialResult]) -> None:
    jumps = [r for r in quick if r.fault == "host_clock_jump"]
    assert jumps and all(r.verdict == RIDDEN and r.outcome == "crossed" for r in jumps)
    assert all(r.events_lost == 0 and r.samples_lost == 0 for r in jumps)


def test_the_drift_watch_off_shows_as_unsafe() -> None:
    # the procedure with its drift watch never fed: the drifting cell is caught late by
    # the device's force limit (its reading past -15 N), or not at all
    results = run(
        trials(
            lesion="soft-stenosis", seed=1, moments=QUICK_MOMENTS, defect="drift_watch_off",
            faults=["loadcell_drift"],
        )
    )  # fmt: skip
    verdicts = [r.verdict for r in results]
    # none caught in bound; late in the run the crossing may come before it matters
    assert UNSAFE in verdicts and SAFE not in verdicts


def _one_planted_trial(defect: str, fault: str) -> list[TrialResult]:
    """One moment of one fault on soft-stenosis, with a control's defect planted."""
    return run(trials(lesion="soft-stenosis", seed=1, moments=1, defect=defect, faults=[fault]))


def test_a_recording_stamped_from_the_stepped_wall_clock_shows_as_unsafe() -> None:
    # the recorder's end read from the wall clock at the end (before RC-WALLCLOCK)
    results = _one_planted_trial("wall_clock_end", "host_clock_jump")
    assert [r.verdict for r in results] == [UNSAFE]
    assert "wall-clock span" in results[0].why


def test_a_planted_defect_in_a_control_shows_as_unsafe() -> None:
    # the core built without its watchdog: a host frozen mid-run leaves the needle driven
    # with nothing latched (the stall cut-off's defect shows the same way, in the full
    # campaign: docs/safety/README.md)
    results = _one_planted_trial("watchdog_disabled", "host_frozen")
    assert [r.verdict for r in results] == [UNSAFE]
    assert "no fault latched" in results[0].why


def test_the_campaign_prints_faults_by_moments_and_its_figures(
    capsys: pytest.CaptureFixture[str],
) -> None:
    assert main(["--quick", "--moments", "1", "--fault", "encoder_lost"]) == 0
    out = capsys.readouterr().out.splitlines()
    assert out[0].split()[:5] == ["fault", "tried", "safe", "ridden", "unsafe"]
    assert out[1].split()[:5] == ["encoder_lost", "1", "1", "0", "0"]
    assert out[-1].startswith("campaign: soft-stenosis seed 1: 1 faults x 1 moments, 1 acted:")
    assert "0 unsafe" in out[-1] and "worst time to safe state" in out[-1]


def test_a_moment_after_the_run_is_not_counted() -> None:
    late = Trial("encoder_lost", 9.0, "soft-stenosis", 1, None, 10_000.0)
    assert [r.verdict for r in run([late])] == [NOT_REACHED]


def test_the_posix_campaign_refuses_what_it_cannot_do_in_one_line(
    capsys: pytest.CaptureFixture[str],
) -> None:
    # (the posix campaign itself is real time, ~13 s a run: not in make test; its figures
    # and command are in docs/safety/README.md)
    assert main(["--port", "posix", "--lesion", "fibrous-cto"]) == 2
    assert main(["--port", "posix", "--defect", "no_such_defect"]) == 2
    err = capsys.readouterr().err.splitlines()
    assert len(err) == 2 and all(line.startswith("campaign: --port posix") for line in err)
