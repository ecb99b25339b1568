"""The bounded escalation: the ceiling steps up after pecks without progress, never
above the profile's maximum, every step noted and drawn; a floor above it stalls."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import numpy as np
import pytest

from firmware_host.client import NeedleDriver
from firmware_host.plot import Trace, plot_trace
from firmware_host.procedure import (
    Outcome,
    ProfileError,
    load_profile,
    parse_profile,
    run_procedure,
)
from sim_device.families import build_lesion
from sim_device.lesions import registered

BLOCK = {
    "start_mm": 15.0,
    "length_mm": 8.0,
    "calcium_fraction": 0.3,
    "calcium_blocks": 1.0,
    "crack_force_n": 35.0,
    "stiffness_n_per_mm": 10.0,
    "fatigue_rev": 1.0,
    "chunk_mm": 2.4,
    "arc_deg": 360.0,
    "cap_puncture_n": 3.0,
}


def run_block(floor_n: float, profile: str, seed: int = 2) -> tuple[Outcome, Any]:
    lesion = build_lesion(
        f"escalation-test-{floor_n:g}-{profile}", {**BLOCK, "calcium_floor_n": floor_n}
    )
    with registered(lesion) as name, NeedleDriver.open(f"sim://?lesion={name}&seed={seed}") as nd:
        out = run_procedure(nd, profile, target_depth_mm=lesion.end_mm + 2.0)
        return out, nd.link.transport.port.device.rig


def steps(out: Outcome) -> list[dict[str, Any]]:
    return [e.fields for e in out.events if e.kind == "escalate"]


def test_a_block_above_the_ceiling_crosses_only_with_escalation() -> None:
    plain, _ = run_block(10.0, "pierce")
    assert plain.result.value == "stalled" and plain.escalations == 0
    out, _ = run_block(10.0, "pierce-escalate")
    assert out.result.value == "crossed"
    taken = steps(out)
    assert len(taken) == out.escalations >= 2
    # One step of 1 N at a time, from the profile's 8 N, each after a peck.
    assert [s["from_n"] for s in taken] == [8.0 + i for i in range(len(taken))]
    assert [s["force_ceiling_n"] for s in taken] == [9.0 + i for i in range(len(taken))]
    assert out.force_ceiling_n == taken[-1]["force_ceiling_n"] <= 12.0
    assert out.peak_force_n < 13.0  # the device's stall threshold in pierce-escalate


def test_a_floor_above_the_maximum_ends_a_clean_stall_at_the_maximum() -> None:
    out, rig = run_block(14.0, "pierce-escalate")
    assert out.result.value == "stalled"
    assert [s["force_ceiling_n"] for s in steps(out)] == [9.0, 10.0, 11.0, 12.0]
    assert out.force_ceiling_n == 12.0
    assert out.peak_force_n < 13.0 and rig.true_force_n < 13.0
    assert out.stalls == 1 and "pecks" in out.reason  # the host's policy, not a cut-off
    assert not [
        e
        for e in out.events
        if e.kind == "device_event"
        and e.fields["code"] != "HOMED"
        and e.fields["code"] != "TARGET_REACHED"
    ]


@pytest.mark.parametrize(
    ("escalate", "limits", "message"),
    [
        ("max_force_ceiling_n = 8.0", "", "must be above [advance] force_ceiling_n"),
        (
            "max_force_ceiling_n = 12.5",
            "stall_force_n = 12.0",
            "must be below [limits] stall_force_n",
        ),
        (
            "max_force_ceiling_n = 12.5",
            "stall_force_n = 13.0\nforce_limit_n = 15.0",
            "leaves no margin under [limits] force_limit_n",
        ),
    ],
)
def test_the_maximum_stays_under_the_device_limits(
    escalate: str, limits: str, message: str
) -> None:
    text = f"[escalate]\n{escalate}\n[limits]\n{limits}\n"
    with pytest.raises(ProfileError, match=message.replace("[", r"\[").replace("]", r"\]")):
        parse_profile(text, source="esc.toml")


def test_escalation_is_off_unless_the_profile_sets_a_maximum() -> None:
    assert load_profile("pierce").escalate.max_force_ceiling_n is None
    p = load_profile("pierce-escalate")
    assert p.escalate.max_force_ceiling_n == 12.0
    assert p.escalate.max_force_ceiling_n <= 0.8 * p.limits.force_limit_n
    assert p.escalate.max_force_ceiling_n < p.limits.stall_force_n


def test_the_plot_draws_the_ceiling_as_it_was_raised(tmp_path: Path) -> None:
    t = np.arange(0.0, 30.0, 0.01)
    notes = [
        {"t_s": 10.0, "kind": "escalate", "from_n": 8.0, "force_ceiling_n": 9.0, "n": 1},
        {"t_s": 20.0, "kind": "escalate", "from_n": 9.0, "force_ceiling_n": 10.0, "n": 2},
    ]
    trace = Trace(t, np.full_like(t, 5.0), t, notes=notes, force_ceiling_n=8.0)
    assert trace.ceiling_steps() == ([0.0, 10.0, 20.0, float(t[-1])], [8.0, 9.0, 10.0, 10.0])
    assert plot_trace(trace, tmp_path / "p.png").read_bytes()[:4] == b"\x89PNG"
