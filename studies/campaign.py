"""The single-fault campaign: one fault at each of many moments of a PIERCE run, on the
firmware's C core in the simulator, each run judged from the simulator's truth.

    python -m studies.campaign [--quick] [--defect NAME] [--moments N] [--json FILE]
    python -m studies.campaign --port posix [--quick] ...   (real time: campaign_posix.py)

Faults (``FAULTS``): most go through the fault hooks between the core and its HAL
(firmware/faults/fault_hooks.h, the same hooks the posix port's bench model has); a
device reset, UART noise and a frozen host act on the simulated device and its link; the
host's wall clock jumping acts on the host process (time-machine). Every run is recorded.
A run is

* **safe** when the needle has come to rest and the fault is latched on the device (or,
  for a reset, the run ended in fault with the host saying why) within ``SAFE_BOUND_S``
  of the fault, nothing moves afterwards, the safety judge (``studies.judge``) found no
  broken rule, the host lost no event and the recording is whole
  (``_recording_problems``);
* **ridden through** when the run reached its target with no broken rule, nothing
  latched and nothing lost: the fault made no difference to safety (noise the CRC
  dropped, a late tick the watchdog tolerated, a wall clock nothing reads, a fault after
  the crossing's last advance);
* **unsafe** otherwise — the figure that must stay 0. A planted defect in a control
  (``--defect watchdog_disabled`` …, or a host control's: ``HOST_DEFECTS``) must show
  here.

Moments are fractions of the fault-free run's length (homing included), so a fault lands
during homing, advance, hold-and-rotate and crossing alike.
"""

from __future__ import annotations

import argparse
import contextlib
import functools
import itertools
import json
import logging
import multiprocessing
import random
import sys
import tempfile
import time
from collections.abc import Callable
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any

SAFE_BOUND_S = 1.0  # the campaign's promise: safe state within this of any single fault
QUICK_LESION = "soft-stenosis"
FULL_LESION = "fibrous-cto"
MARGIN_MM = 3.0
NOISE_BURST_BYTES = 512
HOST_FROZEN_S = 2.0
# the host's wall clock (time.time, datetime.now) stepped forward an hour, and CLOCK_BACK_S
# later back two (NTP after a dead RTC battery, an operator setting the clock): nothing
# that times the run may read it (the link, the procedure and the recorder read the
# monotonic clock; the recording's wall-clock times come from its start)
CLOCK_JUMP_S = 3600.0
CLOCK_BACK_S = 0.5
# the hook faults' parameters: a drift that under-reads by 2 N/s, 1 mm of missed encoder
# counts, the loop late by 300 ms (beyond the 200 ms watchdog)
DRIFT_MN_S = -2000
ENCODER_JUMP_NM = -1_000_000
OVERRUN_MS = 300

# fault name -> (what it is, in words; the hook kind or None for a device-level fault,
# the hook's parameter)
FAULTS: dict[str, tuple[str, str | None, int]] = {
    "loadcell_stuck": ("load cell reading frozen", "loadcell_stuck", 0),
    "loadcell_disconnected": ("load cell disconnected", "loadcell_disconnected", 0),
    "loadcell_saturated": ("load cell at its rail", "loadcell_saturated", 0),
    "loadcell_drift": ("load cell drifting -2 N/s", "loadcell_drift", DRIFT_MN_S),
    "encoder_lost": ("encoder lost", "encoder_lost", 0),
    "encoder_jump": ("encoder jumps 1 mm", "encoder_jump", ENCODER_JUMP_NM),
    "motor_stalled": ("advance motor stalled", "motor_stalled", 0),
    "driver_disabled": ("motor drivers disabled", "driver_disabled", 0),
    "tick_overrun": ("control loop 300 ms late", "tick_overrun", OVERRUN_MS),
    "device_reset": ("device reset mid-run", None, 0),
    "uart_noise": (f"{NOISE_BURST_BYTES} B of noise on the UART", None, 0),
    "host_frozen": (f"host frozen {HOST_FROZEN_S:g} s", None, 0),
    "host_clock_jump": (
        f"host wall clock +{CLOCK_JUMP_S / 3600:g} h, then -{2 * CLOCK_JUMP_S / 3600:g} h",
        None,
        0,
    ),
}
# Faults no control detects yet: reported, and not held to 0 unsafe. (Empty: a drifting
# load cell, the last, is the procedure's drift watch's, RC-DRIFTWATCH.)
KNOWN_GAPS: dict[str, str] = {}

# what the host says when the device reset mid-run (firmware_host/procedure/loop.py)
DEVICE_RESET_WORDS = "the device reset mid-run"

SAFE, RIDDEN, UNSAFE, NOT_REACHED = "safe", "ridden through", "unsafe", "not reached"

# Planted defects of the host's own controls (the core's are its compile-flag variants,
# sim_device.core_build.VARIANTS): the procedure's drift watch never fed; the recorder's
# end time read from the wall clock at the end.
HOST_DEFECTS = ("drift_watch_off", "wall_clock_end")


@contextlib.contextmanager
def _host_defect(name: str | None) -> Any:
    if name not in HOST_DEFECTS:
        yield
        return
    import datetime as dt

    from firmware_host.procedure import loop
    from firmware_host.recorder import Recorder

    target, attr, planted = {
        "drift_watch_off": (loop._Run, "watch_drift", lambda *_: None),
        "wall_clock_end": (
            Recorder, "_end_time_utc", lambda *_: dt.datetime.now(dt.UTC).isoformat()
        ),
    }[name]  # fmt: skip
    kept = target.__dict__[attr]
    setattr(target, attr, planted)
    try:
        yield
    finally:
        setattr(target, attr, kept)


@dataclass(frozen=True)
class Trial:
    fault: str
    moment: float  # fraction of the fault-free run
    lesion: str
    seed: int
    defect: str | None
    fault_at_s: float  # from the start of the run (device time)


@dataclass(frozen=True)
class TrialResult:
    fault: str
    moment: float
    fault_at_s: float
    verdict: str  # SAFE, RIDDEN, UNSAFE or NOT_REACHED
    why: str  # for UNSAFE: what was wrong; else ""
    outcome: str  # the procedure's result
    reason: str  # ... and its one line for the operator
    latched: int  # the device's latched fault flags at the end
    time_to_safe_s: float | None  # fault -> at rest with the fault latched / reported
    judge: str  # the safety judge's findings ("ok")
    events_lost: int
    samples_lost: int = 0  # telemetry samples the link counted lost (not judged: a reset
    # restarts the device's counter)


class _Watch:
    """Wraps ``rig.step`` after the judge's: when the needle last moved or turned, and
    when the device first had a fault latched at or after the fault's moment."""

    def __init__(self, firmware: Any, from_us: int) -> None:
        rig = firmware.rig
        clock = firmware.clock
        self.from_us = from_us
        self.last_motion_us = 0
        self.latched_us: int | None = None
        inner = rig.step

        def step(dt_s: float, motor_depth_mm: float, angle_deg: float) -> None:
            depth, angle = rig.needle_depth_mm, rig.angle_deg
            inner(dt_s, motor_depth_mm, angle_deg)
            now = clock.now_us
            if rig.needle_depth_mm != depth or rig.angle_deg != angle:
                self.last_motion_us = now
            if self.latched_us is None and now >= from_us and firmware.latched:
                self.latched_us = now

        rig.step = step


def _inject(trial: Trial, device: Any, at_us: int, wall: Any = None) -> Callable[[], bool]:
    """Schedule the trial's fault at device time ``at_us``; returns "has it acted?".
    ``wall``: the host's wall clock (a time_machine traveller) for a clock jump."""
    fw = device.firmware
    _, hook, param = FAULTS[trial.fault]
    acted = [False]

    def at(action: Callable[[], object]) -> None:
        def run() -> None:
            acted[0] = True
            action()

        fw.at(at_us, run)

    if hook is not None:
        fw.arm_fault(hook, at_us, param)
        at(lambda: None)
    elif trial.fault == "device_reset":
        at(fw.reset)
    elif trial.fault == "uart_noise":
        rng = random.Random(trial.seed * 1000 + round(trial.moment * 1000))
        at(lambda: fw.receive(bytes(rng.randrange(256) for _ in range(NOISE_BURST_BYTES))))
    elif trial.fault == "host_frozen":
        _freeze_host(device, at_us, round(HOST_FROZEN_S * 1e6))
        at(lambda: None)
    elif trial.fault == "host_clock_jump":
        at(lambda: wall.shift(CLOCK_JUMP_S))
        fw.at(at_us + round(CLOCK_BACK_S * 1e6), lambda: wall.shift(-2 * CLOCK_JUMP_S))
    return lambda: acted[0]


def _recording_problems(folder: Path, rows_received: int) -> list[str]:
    """What the run folder lost or got wrong: every telemetry row the link delivered is
    on disk; the host's notes are in the order of its monotonic clock; the wall-clock
    start and end agree with the monotonic duration (a stepped wall clock must not show).
    (A row's host_time_s is the device's time mapped through the link's time sync, not a
    host clock reading: a device clock step — a reset, the simulator's late loop — bends
    that mapping, and it is not judged here.)"""
    import datetime as dt

    from firmware_host.recorder import EVENTS_FILE, META_FILE, TELEMETRY_FILE

    out = []
    meta = json.loads((folder / META_FILE).read_text())
    if "end_time_utc" not in meta:
        return ["recording never closed (the host died mid-run?)"]
    with (folder / TELEMETRY_FILE).open() as f:
        rows = sum(1 for _ in f) - 1
    if rows != rows_received:
        out.append(f"recording has {rows} telemetry rows of {rows_received} received")
    notes = [json.loads(line) for line in (folder / EVENTS_FILE).read_text().splitlines()]
    host_s = [float(n["host_time_s"]) for n in notes if n.get("source") == "host"]
    if any(b < a for a, b in itertools.pairwise(host_s)):
        out.append("recording's host notes go back in time")
    wall_s = (
        dt.datetime.fromisoformat(meta["end_time_utc"])
        - dt.datetime.fromisoformat(meta["start_time_utc"])
    ).total_seconds()
    mono_s = float(meta["end_host_time_s"]) - float(meta["start_host_time_s"])
    if abs(wall_s - mono_s) > 1e-3:
        out.append(f"recording's wall-clock span {wall_s:.3f} s, monotonic {mono_s:.3f} s")
    return out


def _freeze_host(device: Any, from_us: int, for_us: int) -> None:
    """The host stops (SIGSTOP) for a while: it sends nothing and reads nothing; what the
    device sent meanwhile waits for it, as in a pty's buffer."""
    clock = device.clock
    write, take = device.host_write, device.host_take
    held = bytearray()  # the pty's buffer: what the device sent while the host slept

    def frozen() -> bool:
        return bool(from_us <= clock.now_us < from_us + for_us)

    def host_write(data: bytes) -> None:
        if not frozen():
            write(data)

    def host_take() -> bytes:
        held.extend(take())
        if frozen():
            return b""
        out = bytes(held)
        held.clear()
        return out

    device.host_write = host_write
    device.host_take = host_take


def run_trial(trial: Trial) -> TrialResult:
    from firmware_host.client import NeedleDriver
    from firmware_host.errors import NeedleDriverError
    from firmware_host.procedure import load_profile, run_procedure
    from firmware_host.recorder import Recorder
    from sim_device.lesions import load_lesion
    from studies.judge import JudgeLimits, SafetyJudge

    profile = load_profile("pierce")
    target = round(load_lesion(trial.lesion).end_mm + MARGIN_MM, 3)
    url = f"sim://?lesion={trial.lesion}&seed={trial.seed}"
    if trial.defect and trial.defect not in HOST_DEFECTS:
        url += f"&defect={trial.defect}"
    with contextlib.ExitStack() as stack:
        stack.enter_context(_host_defect(trial.defect))
        folder = Path(stack.enter_context(tempfile.TemporaryDirectory(prefix="campaign-")))
        wall = None
        if trial.fault == "host_clock_jump":
            import time_machine  # the wall clock only: time.monotonic is left alone

            wall = stack.enter_context(time_machine.travel(time.time(), tick=True))
        nd = stack.enter_context(NeedleDriver.open(url))
        port: Any = nd.link.transport.port  # type: ignore[attr-defined]
        device, fw = port.sim, port.device
        at_us = fw.clock.now_us + round(trial.fault_at_s * 1e6)
        limits = JudgeLimits.fixed(profile, nd.identity, target)
        judge = SafetyJudge(nd, limits)
        watch = _Watch(fw, at_us)
        acted = _inject(trial, device, at_us, wall)
        recorder = Recorder(folder, nd, mcap=False)
        try:
            out = run_procedure(
                nd, profile, target_depth_mm=target, abort=judge.abort, recorder=recorder
            )
            outcome, reason = out.result.value, out.reason
        except NeedleDriverError as exc:  # the procedure's own errors are outcomes
            outcome, reason = "error", str(exc)
        ended_us = fw.clock.now_us
        # a link the fault left dead: the rig is watched below all the same
        with contextlib.suppress(NeedleDriverError):
            judge.watch_after()
        verdict = judge.close()
        recorder.close()
        events_lost = int(nd.link.stats.events_lost)
        recording = _recording_problems(folder, int(nd.link.stats.telemetry_samples))
        samples_lost = int(nd.link.stats.telemetry_samples_lost)
    rest_from_us = fw.clock.now_us
    fw.run_ticks(1000)  # the host gone: nothing may move
    moved_late = watch.last_motion_us > rest_from_us
    latched = fw.latched

    def result(kind: str, why: str = "", to_safe_s: float | None = None) -> TrialResult:
        return TrialResult(
            trial.fault, trial.moment, trial.fault_at_s, kind, why, outcome, reason,
            latched, to_safe_s, verdict.safety, events_lost, samples_lost,
        )  # fmt: skip

    if not acted():
        return result(NOT_REACHED)
    problems = list(verdict.findings)
    if moved_late:
        problems.append("moved after the host was gone")
    if events_lost:
        problems.append(f"{events_lost} events lost")
    problems += recording
    reached = outcome == "crossed"
    # when the fault was latched (or, after a reset, the run ended saying why)
    if watch.latched_us is not None:
        noticed_us: int | None = watch.latched_us
    elif trial.fault == "device_reset" and outcome in ("fault", "aborted", "error"):
        noticed_us = ended_us
    else:
        noticed_us = None
    if noticed_us is None:
        if reached and not problems:
            return result(RIDDEN)
        problems.append(f"ended {outcome} with no fault latched")
        return result(UNSAFE, "; ".join(problems))
    to_safe_s = (max(noticed_us, watch.last_motion_us) - at_us) / 1e6
    if to_safe_s > SAFE_BOUND_S:
        problems.append(f"safe state after {to_safe_s:.3f} s (bound {SAFE_BOUND_S:g} s)")
    if not reason.strip():
        problems.append("no reason given to the operator")
    return result(UNSAFE if problems else SAFE, "; ".join(problems), max(to_safe_s, 0.0))


@functools.cache
def baseline_s(lesion: str, seed: int) -> float:
    """Length of the fault-free run (device time, homing included)."""
    from firmware_host.client import NeedleDriver
    from firmware_host.procedure import load_profile, run_procedure
    from sim_device.lesions import load_lesion

    with NeedleDriver.open(f"sim://?lesion={lesion}&seed={seed}") as nd:
        t0 = nd.clock.monotonic()
        target = round(load_lesion(lesion).end_mm + MARGIN_MM, 3)
        run_procedure(nd, load_profile("pierce"), target_depth_mm=target)
        return float(nd.clock.monotonic() - t0)


def trials(
    *, lesion: str, seed: int, moments: int, defect: str | None, faults: list[str]
) -> list[Trial]:
    length_s = baseline_s(lesion, seed)
    fractions = [(i + 0.5) / moments for i in range(moments)]
    return [
        Trial(fault, round(f, 4), lesion, seed, defect, round(f * length_s, 3))
        for fault in faults
        for f in fractions
    ]


def _quiet() -> None:
    # a frozen host's lost link is the fault itself: its warning (one per run) is noise
    logging.getLogger("firmware_host").setLevel(logging.ERROR)


def run(trial_list: list[Trial], processes: int = 1) -> list[TrialResult]:
    if processes <= 1:
        return [run_trial(t) for t in trial_list]
    with multiprocessing.get_context("spawn").Pool(processes, initializer=_quiet) as pool:
        return pool.map(run_trial, trial_list, chunksize=1)


@dataclass(frozen=True)
class Summary:
    tried: int  # faults x moments that acted during the run
    safe: int
    ridden_through: int
    unsafe: int  # the figure that must be 0 (known gaps apart)
    unsafe_known_gaps: int  # unsafe runs of a fault listed in KNOWN_GAPS
    not_reached: int
    worst_time_to_safe_s: float
    worst: str  # which fault and moment


def summarise(results: list[TrialResult]) -> Summary:
    acted = [r for r in results if r.verdict != NOT_REACHED]
    unsafe = [r for r in acted if r.verdict == UNSAFE]
    gaps = [r for r in unsafe if r.fault in KNOWN_GAPS]
    timed = [r for r in acted if r.verdict == SAFE and r.time_to_safe_s is not None]
    worst = max(timed, key=lambda r: r.time_to_safe_s or 0.0, default=None)
    return Summary(
        tried=len(acted),
        safe=sum(r.verdict == SAFE for r in acted),
        ridden_through=sum(r.verdict == RIDDEN for r in acted),
        unsafe=len(unsafe) - len(gaps),
        unsafe_known_gaps=len(gaps),
        not_reached=len(results) - len(acted),
        worst_time_to_safe_s=(worst.time_to_safe_s or 0.0) if worst else 0.0,
        worst=f"{worst.fault} at {worst.moment:g}" if worst else "",
    )


def table(results: list[TrialResult]) -> str:
    """Faults x outcomes, one line each, then the unsafe runs."""
    lines = [f"{'fault':<24}{'tried':>6}{'safe':>6}{'ridden':>8}{'unsafe':>8}{'worst s':>9}  note"]
    for fault, (words, _, _) in FAULTS.items():
        rows = [r for r in results if r.fault == fault and r.verdict != NOT_REACHED]
        if not any(r.fault == fault for r in results):
            continue
        times = [r.time_to_safe_s for r in rows if r.verdict == SAFE and r.time_to_safe_s]
        note = words + (f" — known gap: {KNOWN_GAPS[fault]}" if fault in KNOWN_GAPS else "")
        lines.append(
            f"{fault:<24}{len(rows):>6}{sum(r.verdict == SAFE for r in rows):>6}"
            f"{sum(r.verdict == RIDDEN for r in rows):>8}"
            f"{sum(r.verdict == UNSAFE for r in rows):>8}"
            f"{max(times, default=0.0):>9.3f}  {note}"
        )
    for r in results:
        if r.verdict == UNSAFE:
            lines.append(f"  UNSAFE {r.fault} at {r.moment:g} ({r.fault_at_s:g} s): {r.why}")
    return "\n".join(lines)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m studies.campaign", description=__doc__)
    parser.add_argument("--quick", action="store_true", help="2 moments of a short lesion")
    parser.add_argument("--moments", type=int, default=None, help="moments per fault")
    parser.add_argument("--lesion", default=None, help="the lesion of the PIERCE run")
    parser.add_argument("--seed", type=int, default=1)
    parser.add_argument(
        "--defect",
        default=None,
        help="a planted defect: of the core (sim_device.core_build.VARIANTS) or of a host"
        f" control ({', '.join(HOST_DEFECTS)})",
    )
    parser.add_argument("--fault", action="append", choices=list(FAULTS), help="only these")
    parser.add_argument("--processes", type=int, default=1, help="local processes")
    parser.add_argument("--json", type=Path, default=None, help="every trial as JSON here")
    parser.add_argument(
        "--port",
        choices=("sim", "posix"),
        default="sim",
        help="sim: the simulator, judged from its truth; posix: the posix port in real time,"
        " judged from the wire (studies/campaign_posix.py)",
    )
    args = parser.parse_args(argv)
    if args.port == "posix":
        return _main_posix(args)
    moments = args.moments or (2 if args.quick else 20)
    if moments < 1:
        parser.error("--moments must be at least 1")
    lesion = args.lesion or (QUICK_LESION if args.quick else FULL_LESION)
    from sim_device.core_build import VARIANTS, CoreBuildError
    from sim_device.lesions import LesionError

    if args.defect is not None and args.defect not in (*VARIANTS, *HOST_DEFECTS):
        print(f"campaign: unknown defect {args.defect!r}", file=sys.stderr)
        return 2
    # a frozen host's lost link is the fault itself: its warning (one per run) is noise here
    logging.getLogger("firmware_host").setLevel(logging.ERROR)
    wall0 = time.perf_counter()
    try:
        trial_list = trials(
            lesion=lesion,
            seed=args.seed,
            moments=moments,
            defect=args.defect,
            faults=args.fault or list(FAULTS),
        )
        results = run(trial_list, args.processes)
    except (LesionError, CoreBuildError) as exc:
        print(f"campaign: {exc}", file=sys.stderr)
        return 2
    n_faults = len(FAULTS if not args.fault else args.fault)
    return _report(
        results,
        f"{lesion} seed {args.seed}",
        n_faults,
        moments,
        args,
        wall0,
        known_gaps=True,
    )


def _report(
    results: list[TrialResult],
    where: str,
    n_faults: int,
    moments: int,
    args: argparse.Namespace,
    wall0: float,
    known_gaps: bool,
) -> int:
    """The table, the one-line summary, the JSON if asked; exit 1 if any run was unsafe."""
    s = summarise(results)
    print(table(results))
    gaps = f" (+{s.unsafe_known_gaps} known gaps)" if known_gaps else ""
    print(
        f"campaign: {where}{' defect ' + args.defect if args.defect else ''}:"
        f" {n_faults} faults x {moments} moments, {s.tried} acted:"
        f" {s.safe} safe, {s.ridden_through} ridden through, {s.unsafe} unsafe{gaps};"
        f" worst time to safe state {s.worst_time_to_safe_s:.3f} s ({s.worst});"
        f" bound {SAFE_BOUND_S:g} s; {time.perf_counter() - wall0:.1f} s wall"
    )
    if args.json:
        args.json.write_text(
            json.dumps({"summary": asdict(s), "trials": [asdict(r) for r in results]}, indent=1)
        )
    return 1 if s.unsafe else 0


def _main_posix(args: argparse.Namespace) -> int:
    from firmware.launch import PortUnavailable
    from studies import campaign_posix

    if args.moments is not None and args.moments < 1:
        print("campaign: --moments must be at least 1", file=sys.stderr)
        return 2
    from sim_device.core_build import VARIANTS

    if args.lesion is not None or args.processes != 1:
        print("campaign: --port posix takes no --lesion or --processes", file=sys.stderr)
        return 2
    if args.defect is not None and args.defect not in VARIANTS:
        print(f"campaign: --port posix: unknown core defect {args.defect!r}", file=sys.stderr)
        return 2
    wall0 = time.perf_counter()
    try:
        results = campaign_posix.main(args.quick, args.moments, args.fault, args.defect)
    except (PortUnavailable, RuntimeError) as exc:
        print(f"campaign: {exc}".splitlines()[0], file=sys.stderr)
        return 2
    faults = len({r.fault for r in results})
    return _report(
        results,
        f"posix port, real time, target {campaign_posix.TARGET_MM:g} mm",
        faults,
        len(results) // max(faults, 1),
        args,
        wall0,
        known_gaps=False,
    )


if __name__ == "__main__":
    sys.exit(main())
