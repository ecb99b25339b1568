"""What a PIERCE run reports: live progress while it runs, and its outcome at the end."""

from __future__ import annotations

import enum
from dataclasses import asdict, dataclass, field
from typing import Any


class Result(enum.StrEnum):
    CROSSED = "crossed"  # the needle reached the target depth
    STALLED = "stalled"  # the lesion would not yield within the stall policy (or device stall)
    ABORTED = "aborted"  # the operator stopped it (abort event, Ctrl-C)
    FAULT = "fault"  # the device latched a fault, or the link failed


class Phase(enum.StrEnum):
    SETUP = "setup"  # limits, telemetry, homing
    SPIN_UP = "spin-up"  # rotation started, no advance yet
    ADVANCE = "advance"  # advancing under the force ceiling
    HOLD = "hold"  # force at the ceiling: advance paused, rotation goes on
    PECK = "peck"  # backing off after a long hold
    DWELL = "dwell"  # backed off, rotating, before re-advancing
    WITHDRAW = "withdraw"  # crossed; going back to home because the profile asks
    STOPPING = "stopping"  # bringing the rig to rest
    DONE = "done"


@dataclass(frozen=True)
class Progress:
    """Given to ``on_progress`` a few times a second and at every phase change."""

    phase: Phase
    depth_mm: float
    target_depth_mm: float
    force_n: float  # filtered
    force_ceiling_n: float
    elapsed_s: float  # since the run began (homing included)
    holds: int = 0
    pecks: int = 0
    # Since the first motion after homing: the clock of the outcome's duration_s, so a
    # display that shows it ends where "in X s" does. None while homing (setup).
    motion_s: float | None = None


@dataclass(frozen=True)
class ProcedureEvent:
    """One thing the procedure did or saw, at procedure time ``t_s`` (from its start)."""

    t_s: float
    kind: str  # hold_start, hold_end, crack, peck, stall, device_event, ...
    fields: dict[str, Any] = field(default_factory=dict)


@dataclass(frozen=True)
class Outcome:
    result: Result
    reason: str  # one line: why it ended this way
    target_depth_mm: float
    final_depth_mm: float  # where the encoder says the needle is at the end
    duration_s: float  # from the first motion to rest, on the driver's clock
    peak_force_n: float  # highest raw load-cell sample seen while running
    hold_time_s: float  # total time spent holding at the ceiling
    holds: int
    pecks: int
    stalls: int  # host-declared stall (0/1) plus device stall cut-offs seen
    cracks: int  # sudden force drops during holds: calcium cracking under loaded rotation
    events: tuple[ProcedureEvent, ...] = ()
    soft_depth_limit_mm: float = 0.0
    force_limit_n: float = 0.0
    clock_start_s: float = 0.0  # the driver clock when the run began: event t_s counts from here
    # Crossed with a profile that withdraws: True once back home, False when the
    # withdrawal failed (the reason says why; the rig is stopped where it was). Else None.
    withdrawn: bool | None = None
    # The deepest the needle went (after a withdrawal, final_depth_mm is ~0).
    deepest_depth_mm: float = 0.0
    # Steps of the profile's bounded escalation taken, and the ceiling in force at the end.
    escalations: int = 0
    # Sudden force drops while advancing: a cap (or septum) giving way under the needle —
    # crack_drop_n's, or the puncture detector's sized for the published 0.6–1.5 N caps.
    # (From force alone; checked against the simulator's truth: the cohort's 15 of 15 and
    # the archetypes' 5 of 5 in every condition, one false — soft-stenosis's crack while
    # advancing; off with a load cell below 40 samples/s: docs/procedure.md, "Noise".)
    punctures: int = 0
    force_ceiling_n: float = 0.0

    @property
    def crossed(self) -> bool:
        return self.result is Result.CROSSED

    # ``outcome.outcome`` reads naturally in CLI code printing the result word.
    @property
    def outcome(self) -> str:
        return self.result.value

    def to_dict(self) -> dict[str, Any]:
        d = asdict(self)
        d["outcome"] = self.result.value
        del d["result"]
        d["depth_mm"] = self.final_depth_mm
        d["events"] = [{"t_s": e.t_s, "kind": e.kind, **e.fields} for e in self.events]
        return d
