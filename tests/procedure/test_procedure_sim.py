"""The PIERCE procedure against the simulator (sim://, virtual clock): every outcome, and
the rig at rest afterwards — checked through the device's own truth, not the outcome."""

from __future__ import annotations

import dataclasses
import re
import threading
from collections.abc import Iterator
from contextlib import contextmanager
from typing import Any

import pytest

from firmware_host.client import NeedleDriver
from firmware_host.procedure import (
    Outcome,
    Phase,
    ProcedureError,
    Progress,
    Result,
    load_profile,
    run_procedure,
)
from firmware_host.procedure.profile import Profile
from protocol import FaultFlags
from sim_device.lesions import load_lesion

MARGIN_MM = 3.0


@contextmanager
def rig(lesion: str, seed: int = 1, extra: str = "") -> Iterator[NeedleDriver]:
    with NeedleDriver.open(f"sim://?lesion={lesion}&seed={seed}{extra}") as nd:
        yield nd


def firmware(nd: NeedleDriver) -> Any:
    return nd.link.transport.port.device  # type: ignore[attr-defined]


def target_for(lesion: str) -> float:
    return load_lesion(lesion).end_mm + MARGIN_MM


def pierce(nd: NeedleDriver, lesion: str, **kwargs: Any) -> Outcome:
    """The default profile through ``lesion`` to its end + MARGIN_MM."""
    return run_procedure(nd, "pierce", target_depth_mm=target_for(lesion), **kwargs)


def assert_rig_at_rest(nd: NeedleDriver, seconds: float = 1.0) -> None:
    """Nothing moves now, nor over the next seconds of device time (truth from the rig)."""
    fw = firmware(nd)
    port = nd.link.transport.port  # type: ignore[attr-defined]
    depth0, angle0 = fw.rig.needle_depth_mm, fw.rig.angle_deg
    assert not fw.adv.active and not fw.rot.active
    port.advance_s(seconds)
    assert fw.rig.needle_depth_mm == depth0
    assert fw.rig.angle_deg == angle0


def quick_stall_profile() -> Profile:
    # Short holds so a stall is declared in seconds of device time, not minutes.
    p = load_profile("pierce")
    return dataclasses.replace(
        p,
        hold=dataclasses.replace(p.hold, max_hold_s=3.0),
        stall=dataclasses.replace(p.stall, max_pecks=2),
    )


@pytest.mark.control("RC-TARGET")
def test_soft_stenosis_is_crossed_and_the_needle_stays_at_target() -> None:
    target = target_for("soft-stenosis")
    with rig("soft-stenosis") as nd:
        out = run_procedure(nd, "pierce", target_depth_mm=target)
        assert out.result is Result.CROSSED, out.reason
        assert out.final_depth_mm == pytest.approx(target, abs=0.02)
        assert abs(firmware(nd).rig.needle_depth_mm - target) < 0.02
        assert out.peak_force_n < out.force_limit_n
        assert_rig_at_rest(nd)


@pytest.mark.control("RC-LIMITSRESTORE")
def test_the_device_limits_are_put_back_when_the_run_ends() -> None:
    # The profile's limits govern the run only: a later jog must not run under them
    # (issue 17: a 12 N stall force left on a 10 N bench, where it can never fire).
    with rig("soft-stenosis") as nd:
        before = nd.status().limits
        profile = load_profile("pierce")
        assert profile.limits.stall_force_n != before.stall_force_n  # else proves nothing
        out = run_procedure(nd, profile, target_depth_mm=target_for("soft-stenosis"))
        assert out.result is Result.CROSSED, out.reason
        assert nd.status().limits == before
        assert "limits_restored" in [e.kind for e in out.events]


def test_dense_calcium_needs_holds_and_cracks_and_is_crossed() -> None:
    target = target_for("dense-calcified-cto")
    progress: list[Progress] = []
    with rig("dense-calcified-cto") as nd:
        out = run_procedure(nd, None, target_depth_mm=target, on_progress=progress.append)
        assert out.result is Result.CROSSED, out.reason
        assert out.holds >= 3 and out.cracks >= 3
        assert out.hold_time_s > 0
        assert out.peak_force_n < load_profile("pierce").limits.stall_force_n
        fw = firmware(nd)
        assert fw.rig.cracks >= 3  # the calcium really cracked (truth)
        assert fw.latched == 0
        assert_rig_at_rest(nd)
    phases = {p.phase for p in progress}
    assert {Phase.ADVANCE, Phase.HOLD, Phase.DONE} <= phases
    assert all(p.target_depth_mm == target for p in progress)
    times = [p.elapsed_s for p in progress]
    assert times == sorted(times)
    kinds = [e.kind for e in out.events]
    assert kinds.count("hold_start") == out.holds == kinds.count("hold_end")


def test_a_cap_giving_way_is_a_puncture_not_a_crack() -> None:
    """Drops while advancing are noted as punctures, drops during holds as cracks — held
    against what the simulator counted (the truth): a cap-only lesion has punctures and
    no cracks; dense calcium has cracks, never more than really happened."""
    for lesion in ("fibrous-cto", "dense-calcified-cto"):
        with rig(lesion) as nd:
            out = run_procedure(nd, None, target_depth_mm=target_for(lesion))
            assert out.result is Result.CROSSED, out.reason
            truth = firmware(nd).rig
            kinds = [e.kind for e in out.events]
            assert kinds.count("puncture") == out.punctures
            assert kinds.count("crack") == out.cracks
            assert 0 < out.punctures <= truth.punctures, (lesion, out.punctures)
            assert out.cracks <= truth.cracks, (lesion, out.cracks, truth.cracks)
            if truth.cracks == 0:
                assert out.cracks == 0, lesion  # fibrous-cto: its caps were not "cracks"
            else:
                assert out.cracks >= 3, lesion


@pytest.mark.parametrize("lesion", ["cohort-2021-07", "cohort-2021-05", "cohort-2021-15"])
def test_a_young_caps_puncture_is_noted(lesion: str) -> None:
    """cohort-2021's caps give way at 0.61–1.50 N during the 2 mm/s approach, a drop far
    under crack_drop_n: the puncture detector (puncture_drop_n, fresh samples, a steady
    commanded speed) notes each, once, against the simulator's truth. The youngest three."""
    with rig(lesion, extra="&noise=2") as nd:
        out = pierce(nd, lesion)
        truth = firmware(nd).rig
        assert out.result is Result.CROSSED, out.reason
        assert truth.punctures == 1
        assert out.punctures == 1, [e for e in out.events if e.kind == "puncture"]
        assert "no puncture" not in out.reason
        (note,) = [e for e in out.events if e.kind == "puncture"]
        cap = load_lesion(lesion).segments[0]
        assert cap.start_mm < note.fields["depth_mm"] < cap.end_mm


def test_without_the_puncture_detector_a_young_cap_goes_unnoted() -> None:
    # the control: the same run with puncture_drop_n = 0 (only crack_drop_n drops)
    p = load_profile("pierce")
    off = dataclasses.replace(p, hold=dataclasses.replace(p.hold, puncture_drop_n=0.0))
    with rig("cohort-2021-07") as nd:
        out = run_procedure(nd, off, target_depth_mm=target_for("cohort-2021-07"))
        assert out.result is Result.CROSSED and firmware(nd).rig.punctures == 1
        assert out.punctures == 0 and "no puncture on the way" in out.reason


def test_a_load_cell_too_slow_for_the_puncture_detector_is_named_in_the_reason() -> None:
    with rig("cohort-2021-07", extra="&load_cell=hx711-10") as nd:
        out = pierce(nd, "cohort-2021-07")
        assert out.result is Result.CROSSED and firmware(nd).rig.punctures == 1
        assert out.punctures == 0
        assert "the 10 Hz load cell is too slow to see a young cap's puncture" in out.reason


SOFT_ONLY = """\
name = "soft-and-fibrous"
start_mm = 15.0
[[segment]]
tissue = "soft"
length_mm = 4.0
[[segment]]
tissue = "fibrous"
length_mm = 4.0
[[segment]]
tissue = "soft"
length_mm = 3.0
[[segment]]
tissue = "lumen"
length_mm = 2.0
[[segment]]
tissue = "fibrous"
length_mm = 3.0
"""


@pytest.mark.parametrize(
    ("lesion", "extra"),
    [
        ("cohort-2021-04", "&noise=2"),  # soft + calcium, no cap
        ("eccentric-calcium", "&noise=2&load_cell=hx711-80"),
        ("cohort-2021-10", "&noise=2&load_cell=hx711-80"),
        ("SOFT_ONLY", "&noise=2"),  # tissue changes at a steady speed, nothing to puncture
        ("SOFT_ONLY", "&noise=2&load_cell=hx711-80"),
        # at 10 Hz the tip leaving calcium looked as sudden as a puncture: detector off
        ("cohort-2021-04", "&load_cell=hx711-10"),
    ],
)
def test_no_puncture_is_noted_on_a_lesion_without_a_cap(
    tmp_path: Any, lesion: str, extra: str
) -> None:
    if lesion == "SOFT_ONLY":
        path = tmp_path / "soft.toml"
        path.write_text(SOFT_ONLY)
        lesion = str(path)
    with rig(lesion, extra=extra) as nd:
        out = run_procedure(nd, "pierce", target_depth_mm=load_lesion(lesion).end_mm + 3.0)
        assert out.result is Result.CROSSED, out.reason
        assert firmware(nd).rig.punctures == 0
        assert out.punctures == 0, [e for e in out.events if e.kind == "puncture"]


def test_uncrossable_ends_stalled_with_the_rig_stopped() -> None:
    target = target_for("uncrossable")
    with rig("uncrossable") as nd:
        out = run_procedure(nd, quick_stall_profile(), target_depth_mm=target)
        assert out.result is Result.STALLED, out.reason
        assert out.pecks == 2 and out.stalls == 1
        assert "no progress after 2 pecks" in out.reason
        fw = firmware(nd)
        assert fw.rig.needle_depth_mm < load_lesion("uncrossable").segments[2].start_mm + 1.0
        assert out.peak_force_n < out.force_limit_n
        assert_rig_at_rest(nd)
    assert [e.kind for e in out.events if e.kind in ("peck", "stall")] == [
        "peck",
        "peck",
        "stall",
    ]


def test_an_estop_asked_for_through_the_abort_event_is_an_abort_not_a_fault() -> None:
    """Another terminal's e-stop (the rig server sets the run's abort event, then sends
    ESTOP): the device then reports ESTOPPED, and a command the procedure had in flight is
    refused — the run ends ABORTED with the abort's reason, not FAULT."""
    abort = threading.Event()
    with rig("dense-calcified-cto") as nd:

        def on_progress(p: Progress) -> None:
            if p.phase is Phase.ADVANCE and not abort.is_set():
                abort.set()
                nd.estop()  # the e-stop lands before the procedure looks at the event

        out = pierce(
            nd,
            "dense-calcified-cto",
            on_progress=on_progress,
            abort=abort,
        )
        assert out.result is Result.ABORTED, out.reason
        assert "e-stopped" not in out.reason
        nd.clear_fault()


def test_abort_mid_hold_stops_the_rig_first() -> None:
    abort = threading.Event()
    seen: list[Progress] = []

    def on_progress(p: Progress) -> None:
        seen.append(p)
        if p.phase is Phase.HOLD:
            abort.set()

    with rig("dense-calcified-cto") as nd:
        out = pierce(
            nd,
            "dense-calcified-cto",
            on_progress=on_progress,
            abort=abort,
        )
        assert out.result is Result.ABORTED
        assert out.holds == 1
        kinds = [e.kind for e in out.events]
        assert kinds.index("hold_start") < kinds.index("end") < kinds.index("stopped")
        assert_rig_at_rest(nd)
        # The abort took effect within a control period or two of the hold starting.
        hold_t = next(e.t_s for e in out.events if e.kind == "hold_start")
        end_t = next(e.t_s for e in out.events if e.kind == "end")
        assert end_t - hold_t < 0.05


@pytest.mark.control("RC-CTRLC")
def test_ctrl_c_from_the_progress_callback_aborts_and_stops() -> None:
    def on_progress(p: Progress) -> None:
        if p.phase is Phase.ADVANCE and p.depth_mm > 5.0:
            raise KeyboardInterrupt

    with rig("soft-stenosis") as nd:
        out = run_procedure(nd, "pierce", target_depth_mm=20.0, on_progress=on_progress)
        assert out.result is Result.ABORTED and "Ctrl-C" in out.reason
        assert_rig_at_rest(nd)


@pytest.mark.control("RC-LINKLOST")
def test_link_lost_mid_advance_ends_in_fault_with_the_rig_stopped() -> None:
    # The link goes silent 15 s in (homing takes ~1.5 s, the needle is advancing).
    target = target_for("fibrous-cto")
    with rig("fibrous-cto", extra="&cut_at_s=15&cut_for_s=30") as nd:
        out = run_procedure(nd, "pierce", target_depth_mm=target)
        assert out.result is Result.FAULT
        assert "link" in out.reason or "answer" in out.reason
        fw = firmware(nd)
        assert fw.watchdog_trips == 1  # the device stopped itself: nobody could tell it
        assert 5.0 < fw.rig.needle_depth_mm < target - 5.0
        assert out.final_depth_mm < target - 5.0
        assert_rig_at_rest(nd)
        assert any(e.kind in ("stop_failed", "stopped") for e in out.events)


def test_a_device_stall_ends_the_run_stalled() -> None:
    # The advance motor dies mid-run: the device's following-error cut-off stops it.
    with rig("soft-stenosis", extra="&fault=motor_stall&fault_at_s=10") as nd:
        out = pierce(nd, "soft-stenosis")
        assert out.result is Result.STALLED
        assert "device" in out.reason
        assert out.stalls == 1
        assert_rig_at_rest(nd)


def test_withdraw_profile_brings_the_needle_home_after_crossing() -> None:
    with rig("soft-stenosis") as nd:
        out = run_procedure(nd, "pierce-withdraw", target_depth_mm=target_for("soft-stenosis"))
        assert out.result is Result.CROSSED
        assert out.final_depth_mm == pytest.approx(0.0, abs=0.02)
        assert any(e.kind == "target_reached" for e in out.events)
        assert_rig_at_rest(nd)


def test_oscillating_profile_crosses_calcium() -> None:
    with rig("eccentric-calcium") as nd:
        out = run_procedure(nd, "pierce-oscillate", target_depth_mm=target_for("eccentric-calcium"))
        assert out.result is Result.CROSSED, out.reason
        assert out.holds >= 1
        assert_rig_at_rest(nd)


def test_noisy_load_cell_does_not_cause_a_false_stall() -> None:
    # Load cell noise doubled: same lesion, still crossed, no peck.
    with rig("dense-calcified-cto", seed=4, extra="&noise=2") as nd:
        out = pierce(nd, "dense-calcified-cto")
        assert out.result is Result.CROSSED, out.reason
        assert out.stalls == 0


@pytest.mark.control("RC-TARGET")
def test_target_beyond_the_device_is_refused_before_any_motion() -> None:
    with rig("soft-stenosis") as nd:
        with pytest.raises(ProcedureError, match="beyond the device's travel 150 mm"):
            run_procedure(nd, "pierce", target_depth_mm=149.0)
        with pytest.raises(ValueError, match="no target depth"):
            run_procedure(nd, "pierce")
        assert not firmware(nd).homed  # nothing moved, not even homing


def outcome_figures(out: Outcome) -> dict[str, Any]:
    return out.to_dict()


def test_same_seed_same_outcome_and_figures() -> None:
    target = target_for("eccentric-calcium")
    results = []
    for seed in (7, 7, 8):
        with rig("eccentric-calcium", seed=seed, extra="&noise=2") as nd:
            results.append(outcome_figures(run_procedure(nd, "pierce", target_depth_mm=target)))
    assert results[0] == results[1]
    assert results[0]["outcome"] == "crossed"
    assert results[2] != results[0]  # a different seed is a different run


@pytest.mark.control("RC-STUCK")
@pytest.mark.parametrize("device_checks", [True, False])
def test_a_frozen_load_cell_ends_the_run_in_fault(device_checks: bool) -> None:
    # The load cell sticks 15 s in, mid-approach. The device's own check latches a fault
    # in 200 ms; with that check off (a firmware without it) the host's second line —
    # a reading that never changes by one LSB for 0.5 s — ends the run and e-stops the
    # rig, so the device holds it latched all the same.
    target = target_for("dense-calcified-cto")
    with rig("dense-calcified-cto", extra="&fault=loadcell_stuck&fault_at_s=15") as nd:
        firmware(nd).loadcell_stuck_check = device_checks
        out = run_procedure(nd, "pierce", target_depth_mm=target)
        assert out.result is Result.FAULT
        if device_checks:
            assert out.reason == "the device latched a fault: " + (
                "load cell (no valid reading: disconnected, frozen or at its rail)"
            )
        else:
            assert "load cell reading frozen" in out.reason
            assert firmware(nd).latched == FaultFlags.ESTOP
        end_t = next(e.t_s for e in out.events if e.kind == "end")
        assert end_t < 15.0 + 0.5 + 0.1
        assert out.final_depth_mm < target_for("dense-calcified-cto") - 10
        assert_rig_at_rest(nd)


def test_a_recorded_run_carries_the_notes_and_plots_them(tmp_path: Any) -> None:
    from firmware_host.plot import load_run, plot_run
    from firmware_host.recorder import Recorder, read_events

    profile = load_profile("pierce")
    target = target_for("eccentric-calcium")
    with rig("eccentric-calcium") as nd:
        rec = Recorder(tmp_path / "run", nd, profile=profile.to_dict())
        out = run_procedure(nd, profile, target_depth_mm=target, recorder=rec)
        rec.close(**out.to_dict())
    host = [e for e in read_events(tmp_path / "run") if e["source"] == "host"]
    kinds = [e["kind"] for e in host]
    assert kinds.count("hold_start") == kinds.count("hold_end") == out.holds >= 1
    assert kinds.count("crack") == out.cracks
    assert kinds[-3:] == ["end", "stopped", "limits_restored"]
    trace = load_run(tmp_path / "run")
    assert len(trace.holds()) == out.holds
    assert trace.outcome == "crossed" and trace.target_depth_mm == target
    assert trace.force_ceiling_n == profile.advance.force_ceiling_n
    assert plot_run(tmp_path / "run").stat().st_size > 10_000


def test_an_abort_set_before_the_run_moves_nothing_and_setup_is_reported() -> None:
    abort = threading.Event()
    abort.set()
    seen: list[Progress] = []
    with rig("soft-stenosis") as nd:
        out = run_procedure(
            nd, "pierce", target_depth_mm=20.0, abort=abort, on_progress=seen.append
        )
        assert out.result is Result.ABORTED
        assert not firmware(nd).homed  # not even homing started
        assert_rig_at_rest(nd)
    assert seen[0].phase is Phase.SETUP


@pytest.mark.parametrize(
    ("section", "key", "value", "words"),
    [
        ("advance", "speed_mm_s", 5.5, "[advance] speed_mm_s = 5.5 mm/s"),
        ("advance", "approach_speed_mm_s", 8.0, "[advance] approach_speed_mm_s = 8 mm/s"),
        ("peck", "speed_mm_s", 6.0, "[peck] speed_mm_s = 6 mm/s"),
        ("target", "withdraw_speed_mm_s", 9.0, "[target] withdraw_speed_mm_s = 9 mm/s"),
        ("rotation", "rate_rpm", 121.0, "[rotation] rate_rpm = 121 rpm"),
    ],
)
@pytest.mark.control("RC-PROFILECHECK")
def test_every_speed_in_the_profile_is_checked_before_any_motion(
    section: str, key: str, value: float, words: str
) -> None:
    # Each is within the profile's own range but above the device's (5 mm/s, 120 rpm):
    # the run is refused before homing, not ended in a fault halfway.
    p = load_profile("pierce")
    if key == "speed_mm_s" and section == "advance":
        p = dataclasses.replace(
            p, advance=dataclasses.replace(p.advance, speed_mm_s=value, approach_speed_mm_s=value)
        )
    else:
        part = getattr(p, section)
        p = dataclasses.replace(p, **{section: dataclasses.replace(part, **{key: value})})
    with rig("soft-stenosis") as nd:
        with pytest.raises(ProcedureError, match=re.escape(words)) as info:
            run_procedure(nd, p, target_depth_mm=20.0)
        assert "above the device's max_" in str(info.value)
        assert not firmware(nd).homed  # nothing moved, not even homing
        assert_rig_at_rest(nd)


def test_a_slow_withdraw_after_crossing_is_not_a_stall() -> None:
    # max_duration_s bounds the crossing; the way back (39 mm at 0.2 mm/s, ~195 s)
    # may take longer than the whole run was allowed, and the outcome stays crossed.
    p = load_profile("pierce-withdraw")
    p = dataclasses.replace(
        p,
        target=dataclasses.replace(p.target, withdraw_speed_mm_s=0.2),
        stall=dataclasses.replace(p.stall, max_duration_s=60.0),
    )
    with rig("soft-stenosis") as nd:
        out = run_procedure(nd, p, target_depth_mm=target_for("soft-stenosis"))
        assert out.result is Result.CROSSED, out.reason
        assert out.withdrawn is True and out.stalls == 0
        assert out.final_depth_mm == pytest.approx(0.0, abs=0.02)
        assert out.duration_s > 60.0
        assert_rig_at_rest(nd)


@pytest.mark.parametrize(
    ("fault", "why"),
    [
        ("motor_stall", "not back home within"),  # the loop's own deadline
        ("loadcell_disconnected", "the device latched a fault"),
    ],
)
def test_a_withdraw_that_fails_keeps_the_crossing_and_says_so(fault: str, why: str) -> None:
    # soft-stenosis is crossed ~23 s in; the rig fails at 30 s, mid-withdrawal.
    with rig("soft-stenosis", extra=f"&fault={fault}&fault_at_s=30") as nd:
        out = run_procedure(nd, "pierce-withdraw", target_depth_mm=target_for("soft-stenosis"))
        assert out.result is Result.CROSSED
        assert out.withdrawn is False
        assert out.reason.startswith("reached the target depth; the withdrawal failed: " + why)
        fw = firmware(nd)
        assert 1.0 < fw.rig.needle_depth_mm < target_for("soft-stenosis") - 1.0
        assert out.final_depth_mm == pytest.approx(fw.rig.needle_depth_mm, abs=0.05)
        kinds = [e.kind for e in out.events]
        assert kinds.index("withdraw") < kinds.index("withdraw_failed") < kinds.index("end")
        assert_rig_at_rest(nd)


def test_a_profile_that_stays_reports_no_withdrawal() -> None:
    with rig("soft-stenosis") as nd:
        out = pierce(nd, "soft-stenosis")
        assert out.result is Result.CROSSED and out.withdrawn is None


def test_the_stopped_note_holds_the_depth_the_rig_came_to_rest_at() -> None:
    # Abort while the needle travels at the approach speed (2 mm/s): it brakes over a
    # few hundredths of a mm after the last telemetry the loop saw.
    abort = threading.Event()

    def on_progress(p: Progress) -> None:
        if p.phase is Phase.ADVANCE and p.depth_mm > 5.0:
            abort.set()

    with rig("soft-stenosis") as nd:
        out = run_procedure(
            nd, "pierce", target_depth_mm=20.0, on_progress=on_progress, abort=abort
        )
        assert out.result is Result.ABORTED
        (stopped,) = [e for e in out.events if e.kind == "stopped"]
        truth_mm = nd.status().depth_mm
        assert stopped.fields["depth_mm"] == pytest.approx(truth_mm, abs=0.001)
        assert out.final_depth_mm == pytest.approx(truth_mm, abs=0.001)
        assert_rig_at_rest(nd)


class _AbortAfter:
    """The driver, passed through, except that its wait sets ``abort`` once ``after_s``
    of driver time have passed: an operator stopping the run at a chosen moment."""

    def __init__(self, nd: NeedleDriver, abort: threading.Event, after_s: float) -> None:
        self._nd = nd
        self._abort = abort
        self._at_s = nd.clock.monotonic() + after_s

    def __getattr__(self, name: str) -> Any:
        return getattr(self._nd, name)

    def wait_s(self, seconds: float) -> None:
        self._nd.wait_s(seconds)
        if self._nd.clock.monotonic() >= self._at_s:
            self._abort.set()


def test_an_abort_while_homing_stops_the_homing_at_once() -> None:
    # Homing takes ~1.5 s here; the operator stops 0.3 s in. The homing is not left to
    # finish: the run ends within a slice of the abort, unhomed, the rig at rest.
    from firmware_host.procedure import AbortEvent

    abort = AbortEvent()
    with rig("soft-stenosis") as nd:
        fw = firmware(nd)
        fw.rig.needle_depth_mm = 3.0  # somewhere short of the switch: homing has a way to go
        out = run_procedure(
            _AbortAfter(nd, abort, 0.3), "pierce", target_depth_mm=20.0, abort=abort
        )
        assert out.result is Result.ABORTED and out.reason == "aborted by the operator"
        assert not fw.homed
        end_t = next(e.t_s for e in out.events if e.kind == "end")
        assert end_t < 0.3 + 0.1
        assert_rig_at_rest(nd)
    abort = AbortEvent()
    abort.set_because("SIGTERM")
    with rig("soft-stenosis") as nd:
        out = run_procedure(nd, "pierce", target_depth_mm=20.0, abort=abort)
        assert out.reason == "aborted by the operator (SIGTERM)"


def test_a_refusal_that_crosses_a_device_stop_ends_as_what_the_device_did() -> None:
    """The device stops on its own between the host's last look and its next command (a
    stall latched at the block just before the next advance arrives, seen on the posix
    bench under load): the command is refused LATCHED_FAULT, and the run ends as what
    the device did — in its words — not as "device refused Move". Made deterministic
    here: the device is e-stopped just before the procedure's first advance."""
    with rig("soft-stenosis") as nd:
        move = nd.move_to_mm

        def stopped_first(*args: Any, **kwargs: Any) -> Any:
            if nd.status().homed:  # the advance, not homing's own moves
                nd.estop()
            return move(*args, **kwargs)

        nd.move_to_mm = stopped_first  # type: ignore[method-assign]
        out = pierce(nd, "soft-stenosis")
        assert out.result is Result.FAULT
        assert out.reason == "the device is e-stopped", out.reason
        assert_rig_at_rest(nd)
