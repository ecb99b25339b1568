"""The single-fault campaign on the posix port, in real time: the firmware core as a Linux
process on a real pty with its bench model (firmware/ports/posix), the same fault hooks as
the simulator's (``nd-firmware --fault KIND --fault-at-ms T``), and the host — a PIERCE
run, recorded — as its own process (studies/campaign_host.py), which a fault may freeze.

    python -m studies.campaign --port posix [--quick] [--moments N] [--fault F ...]

There is no simulator truth here: a run is judged as far as the wire allows, from the
device's own reports read after the run (STATUS and its event log, over the same pty)
and the run's recording (the device's telemetry: depth, angle, device time). It is

* **safe** when the device latched the fault (an event at or after the fault's moment:
  FAULT, STALL, WATCHDOG_TRIP, FORCE_OVER_LIMIT, ESTOP) — or, after a reset, the host
  ended the run saying so — and its telemetry shows the needle at rest within
  ``SAFE_BOUND_S`` of the fault, the host gave a reason, nothing moved once the run had
  ended, no event was lost and the recording is whole;
* **ridden through** when the run reached its target with nothing latched and nothing
  lost;
* **unsafe** otherwise.

Faults: the hook faults of ``studies.campaign.FAULTS`` (at the device's own time), a
device reset (SIGUSR1 to the firmware), 512 B of noise written into the device's receive
line (the pty, from another process), the host frozen (SIGSTOP to the host process for
``HOST_FROZEN_S``) and its wall clock jumping (+1 h, then -2 h). Moments are fractions of
the fault-free run, timed on the device's clock (since its process started).
"""

from __future__ import annotations

import contextlib
import csv
import itertools
import json
import os
import random
import signal
import subprocess
import sys
import tempfile
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from studies.campaign import (
    DEVICE_RESET_WORDS,
    FAULTS,
    HOST_FROZEN_S,
    NOISE_BURST_BYTES,
    NOT_REACHED,
    RIDDEN,
    SAFE,
    SAFE_BOUND_S,
    UNSAFE,
    TrialResult,
    _recording_problems,
)

TARGET_MM = 24.0  # the bench's septum is at 20 mm (gives way at 3 N), its block at 40 mm
RUN_TIMEOUT_S = 120.0
QUICK_FAULTS = ("loadcell_disconnected", "loadcell_drift", "motor_stalled", "host_frozen")
QUICK_MOMENTS = 1
LATCH_EVENTS = {"FAULT", "STALL", "WATCHDOG_TRIP", "FORCE_OVER_LIMIT", "ESTOP"}
AFTER_S = 0.5  # watched once the host is gone: nothing may move
BASELINE_TRIES = 3


@dataclass(frozen=True)
class PosixTrial:
    fault: str | None  # None: the fault-free baseline
    moment: float
    fault_at_s: float  # device time (since the firmware process started)
    defect: str | None = None  # a planted defect of the core (its compile-flag build)


def _host(path: str, folder: Path, clock_jump_after_s: float | None) -> subprocess.Popen[str]:
    args = [sys.executable, "-m", "studies.campaign_host", "--port", path,
            "--target-mm", str(TARGET_MM), "--record", str(folder)]  # fmt: skip
    if clock_jump_after_s is not None:
        args += ["--clock-jump-after-s", f"{max(clock_jump_after_s, 0.0):.3f}"]
    return subprocess.Popen(args, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)


def _act(trial: PosixTrial, dev: Any, host: subprocess.Popen[str], boot_s: float) -> bool:
    """At the fault's moment (device time), do what the device's hooks cannot: returns
    whether the host was still running then (the fault acted during the run)."""
    fault = trial.fault
    if fault is None or FAULTS[fault][1] is not None or fault == "host_clock_jump":
        return True  # the device's hooks, or the host itself, act
    with contextlib.suppress(subprocess.TimeoutExpired):
        # real time is the point: the fault comes at its moment, whatever the run does
        host.wait(timeout=max(0.0, boot_s + trial.fault_at_s - time.monotonic()))
        return False
    if fault == "device_reset":
        os.kill(dev.proc.pid, signal.SIGUSR1)
    elif fault == "uart_noise":
        rng = random.Random(round(trial.moment * 1000))
        fd = os.open(dev.path, os.O_WRONLY | os.O_NOCTTY)  # the device's receive line
        try:
            os.write(fd, bytes(rng.randrange(256) for _ in range(NOISE_BURST_BYTES)))
        finally:
            os.close(fd)
    elif fault == "host_frozen":
        os.kill(host.pid, signal.SIGSTOP)
        try:
            with contextlib.suppress(subprocess.TimeoutExpired):
                host.wait(timeout=HOST_FROZEN_S)
        finally:
            os.kill(host.pid, signal.SIGCONT)
    return True


def _motion_rows(folder: Path) -> list[tuple[float, float, float]]:
    """(device time, depth, angle) of every recorded telemetry row."""
    with (folder / "telemetry.csv").open() as f:
        return [
            (float(r["device_time_s"]), float(r["depth_mm"]), float(r["angle_deg"]))
            for r in csv.DictReader(f)
        ]


def _last_motion_s(rows: list[tuple[float, float, float]], from_s: float) -> float:
    """Device time of the last row that moved (depth or angle changed), at or after
    ``from_s`` (``from_s`` if none did)."""
    last = from_s
    for (_, d0, a0), (t1, d1, a1) in itertools.pairwise(rows):
        if t1 >= from_s and (d1 != d0 or a1 != a0):
            last = t1
    return last


def run_trial(trial: PosixTrial) -> tuple[TrialResult, float]:
    """One run; returns its result and the run's length in device time."""
    from firmware.launch import running
    from firmware_host.client import NeedleDriver

    fault = trial.fault
    args: list[str] = []
    if fault is not None and FAULTS[fault][1] is not None:
        _, kind, param = FAULTS[fault]
        args = ["--fault", str(kind), "--fault-at-ms", f"{trial.fault_at_s * 1000:.0f}",
                "--fault-param", str(param)]  # fmt: skip
    with (
        tempfile.TemporaryDirectory(prefix="campaign-posix-") as tmp,
        running("posix", defect=trial.defect, args=tuple(args)) as dev,
    ):
        boot_s = time.monotonic()  # the device printed its pty just after it booted
        folder = Path(tmp) / "run"
        jump_after_s = trial.fault_at_s - 0.3 if fault == "host_clock_jump" else None
        host = _host(dev.path, folder, jump_after_s)
        acted = _act(trial, dev, host, boot_s)
        try:
            out, err = host.communicate(timeout=RUN_TIMEOUT_S)
        except subprocess.TimeoutExpired:
            host.kill()
            out, err = host.communicate()
        length_s = time.monotonic() - boot_s
        line = out.strip().splitlines()[-1] if out.strip() else ""
        host_out: dict[str, Any] = (
            json.loads(line)
            if line.startswith("{")
            else {"outcome": "error", "reason": "host process: " + (err.strip()[-200:] or "?")}
        )
        # the host gone: the device asked over the same pty, twice, AFTER_S apart
        with NeedleDriver.open(dev.path) as nd:
            st0 = nd.status()
            nd.wait_s(AFTER_S)
            st1 = nd.status()
            events = nd.events()
        rows = _motion_rows(folder) if (folder / "telemetry.csv").exists() else []
        recording = (
            _recording_problems(folder, int(host_out.get("rows", 0)))
            if (folder / "meta.json").exists()
            else ["no recording"]
        )
    outcome, reason = str(host_out["outcome"]), str(host_out["reason"])
    latched = int(st1.latched_faults)

    def result(kind: str, why: str = "", to_safe_s: float | None = None) -> TrialResult:
        return TrialResult(
            fault or "none", trial.moment, trial.fault_at_s, kind, why, outcome, reason,
            latched, to_safe_s, "", int(host_out.get("events_lost", 0)),
            int(host_out.get("samples_lost", 0)),
        )  # fmt: skip

    if fault is None:
        return result(RIDDEN if outcome == "crossed" else UNSAFE, reason), length_s
    if not acted or (FAULTS[fault][1] is not None and length_s < trial.fault_at_s):
        return result(NOT_REACHED), length_s
    problems = list(recording)
    if st1.depth_mm != st0.depth_mm or st1.angle_deg != st0.angle_deg or st1.moving:
        problems.append("moved after the host was gone")
    if host_out.get("events_lost"):
        problems.append(f"{host_out['events_lost']} events lost")
    latch_s = [
        float(e.device_time_s)
        for e in events
        if getattr(e.code, "name", "") in LATCH_EVENTS
        and e.device_time_s >= trial.fault_at_s - 0.005
    ]
    # a host frozen with both axes at rest leaves no fault, by design (DESIGN §3): the
    # device ends the session instead, and refuses motion until a new HELLO
    ended_s = [
        float(e.device_time_s)
        for e in events
        if fault == "host_frozen"
        and getattr(e.code, "name", "") == "SESSION_ENDED"
        and e.device_time_s >= trial.fault_at_s
    ]
    if latch_s or ended_s:
        noticed_s: float | None = min(latch_s + ended_s)
    elif fault == "device_reset" and DEVICE_RESET_WORDS in reason:
        noticed_s = trial.fault_at_s
    else:
        noticed_s = None
    if noticed_s is None:
        if outcome == "crossed" and not problems:
            return result(RIDDEN), length_s
        problems.append(f"ended {outcome} with no fault latched")
        return result(UNSAFE, "; ".join(problems)), length_s
    rest_s = _last_motion_s(rows, trial.fault_at_s)
    to_safe_s = max(noticed_s, rest_s) - trial.fault_at_s
    if to_safe_s > SAFE_BOUND_S:
        problems.append(f"safe state after {to_safe_s:.3f} s (bound {SAFE_BOUND_S:g} s)")
    if not reason.strip():
        problems.append("no reason given to the operator")
    verdict = UNSAFE if problems else SAFE
    return result(verdict, "; ".join(problems), max(to_safe_s, 0.0)), length_s


def posix_trials(
    moments: int, faults: list[str], length_s: float, defect: str | None = None
) -> list[PosixTrial]:
    fractions = [(i + 0.5) / moments for i in range(moments)]
    return [
        PosixTrial(fault, round(f, 4), round(f * length_s, 3), defect)
        for fault in faults
        for f in fractions
    ]


def main(
    quick: bool, moments: int | None, faults: list[str] | None, defect: str | None = None
) -> list[TrialResult]:
    """The baseline, then every trial, one after another (real time: one device at a
    time keeps the machine's load, and so the loop's timing, the same for each)."""
    for _ in range(BASELINE_TRIES):
        # real time on a shared machine: a fault-free run the load spoils (the loop late,
        # OVERRUN latched) is run again, as a flaky real-time test is, before giving up
        base, length_s = run_trial(PosixTrial(None, 0.0, 0.0, defect))
        if base.verdict == RIDDEN:
            break
    else:
        raise RuntimeError(
            f"the fault-free run on the posix port did not cross ({BASELINE_TRIES} tries):"
            f" {base.reason} (latched {base.latched:#x})"
        )
    chosen = faults or list(QUICK_FAULTS if quick else FAULTS)
    n = moments or (QUICK_MOMENTS if quick else 3)
    return [run_trial(t)[0] for t in posix_trials(n, chosen, length_s, defect)]
