"""The PIERCE procedure: profiles, the control loop and its outcome.

from firmware_host.procedure import run_procedure, load_profile, Outcome

with NeedleDriver.open("sim://?lesion=dense-calcified-cto") as nd:
    outcome = run_procedure(nd, load_profile("pierce"), target_depth_mm=45.0)
"""

from firmware_host.procedure.homing import AbortEvent, home_interruptibly
from firmware_host.procedure.loop import ProcedureError, run_procedure
from firmware_host.procedure.outcome import Outcome, Phase, ProcedureEvent, Progress, Result
from firmware_host.procedure.profile import (
    DEFAULT_PROFILE,
    Profile,
    ProfileError,
    builtin_names,
    load_profile,
    parse_profile,
)

__all__ = [
    "DEFAULT_PROFILE",
    "AbortEvent",
    "Outcome",
    "Phase",
    "ProcedureError",
    "ProcedureEvent",
    "Profile",
    "ProfileError",
    "Progress",
    "Result",
    "builtin_names",
    "home_interruptibly",
    "load_profile",
    "parse_profile",
    "run_procedure",
]
