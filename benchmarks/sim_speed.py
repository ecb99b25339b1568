"""Simulator speed: in-process real-time factor and the 18-lesion cohort's wall time.

    .venv/bin/python benchmarks/sim_speed.py [--json] [--quick]

* ``realtime_factor``: virtual seconds / wall seconds of one in-process ``sim://`` run at
  1 kHz (telemetry 1 kHz, batches of 10, host heartbeats every 50 ms), driven by a minimal
  host on the library's Pump (tests/sim/minihost.py), that homes and then advances with
  rotation through a whole lesion (goal ≥ 200 on a 2-core machine of today's speed).
* ``cohort_wall_s``: wall time of the 18 cohort-2021 lesions, each driven by a simple
  advance-and-rotate loop (advance at 1 mm/s, 30 rpm; after a stall: clear, re-home, go
  again), spread over 2 worker processes (goal ≤ 30 s on 2 cores).
* Baseline, measured in the same run: the rig alone (``Rig.step`` with the same motion, no
  firmware, no protocol): ``rig_only_realtime_factor`` — the floor of the whole device, which
  runs the rig every tick; ``realtime_factor_vs_rig_only`` is the share of the rig's own
  speed that the whole device keeps (machine speed cancels out of it: compare this across
  machines, the absolute figure only within one run). Per-tick costs in µs too:
  ``device_tick_us`` − ``rig_step_us`` is what firmware, protocol and host add per tick.
* ``device_only_vs_rig_only``: the simulated device alone (the firmware's C core and the
  rig, its output discarded, no host) as a share of the rig alone's speed — what running
  the firmware costs the simulator (goal ≥ 0.7).
"""

from __future__ import annotations

import argparse
import json
import sys
import time
from concurrent.futures import ProcessPoolExecutor
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

import serial

import sim_device  # noqa: F401
from protocol import (
    ClearFault,
    EventCode,
    Home,
    Move,
    MoveMode,
    Rotate,
    RotateMode,
    SetTelemetry,
)

# The simulator tests' mini host (tests/sim/minihost.py): the host library's Pump run
# inline with nothing else on top, so that the figure is the device's and the pump's.
sys.path.insert(0, str(Path(__file__).resolve().parent.parent / "tests" / "sim"))
from minihost import MiniHost

LESION = "dense-calcified-cto"
SPEED_UM_S = 1000
RATE_MRPM = 30_000


def drive_lesion(lesion_name: str, seed: int = 1) -> dict[str, Any]:
    """Home, then advance with rotation to 3 mm past the lesion's end; re-home after a stall."""
    from sim_device.lesions import load_lesion

    lesion = load_lesion(lesion_name)
    target_um = round((lesion.end_mm + 3.0) * 1000)
    port = serial.serial_for_url(f"sim://?lesion={lesion_name}&seed={seed}", timeout=0.1)
    host = MiniHost(port)
    fw = port.device
    wall0 = time.perf_counter()
    host.hello()
    host.command(SetTelemetry(1000, 10))
    stalls = 0
    reached = False
    while not reached and stalls <= 5:
        n_homed = host.event_codes().count(EventCode.HOMED)
        host.command(Home(5000))

        def homed(n: int = n_homed) -> bool:
            return host.event_codes().count(EventCode.HOMED) > n

        host.pump(60.0, until=homed)
        host.command(Rotate(RotateMode.CONTINUOUS, RATE_MRPM, 0))
        host.command(Move(MoveMode.ABSOLUTE, target_um, SPEED_UM_S))
        seen = len(host.events)

        def done(seen: int = seen) -> bool:
            codes = [f.message.code for f in host.events[seen:]]  # type: ignore[union-attr]
            return any(
                c in (EventCode.TARGET_REACHED, EventCode.STALL, EventCode.FORCE_OVER_LIMIT)
                for c in codes
            )

        host.pump(600.0, until=done)
        codes = [f.message.code for f in host.events[seen:]]  # type: ignore[union-attr]
        reached = EventCode.TARGET_REACHED in codes
        if not reached:
            stalls += 1
            host.command(ClearFault())
    wall = time.perf_counter() - wall0
    virtual = fw.clock.monotonic()
    samples = fw.samples_sent
    return {
        "lesion": lesion_name,
        "crossed": reached,
        "stalls": stalls,
        "virtual_s": virtual,
        "wall_s": wall,
        "samples": samples,
        "telemetry_frames": len(host.telemetry),
    }


def rig_only(lesion_name: str, virtual_s: float, seed: int = 1) -> float:
    """Seconds of wall time for the rig alone over the same motion (the baseline)."""
    from sim_device.lesions import load_lesion
    from sim_device.rig_model import Rig

    rig = Rig(load_lesion(lesion_name), seed=seed)
    ticks = round(virtual_s * 1000)
    depth_mm = rig.needle_depth_mm
    step_mm = SPEED_UM_S / 1e6
    deg_per_tick = RATE_MRPM / 1000 * 6 / 1000
    angle = 0.0
    t0 = time.perf_counter()
    for _ in range(ticks):
        depth_mm += step_mm
        angle += deg_per_tick
        rig.step(0.001, depth_mm, angle)
    return time.perf_counter() - t0


def device_only(lesion_name: str, virtual_s: float, seed: int = 1) -> float:
    """Seconds of wall time for firmware + rig over the same motion with no host reading
    (its output is discarded in one go): the device's own share of the cost."""
    port = serial.serial_for_url(f"sim://?lesion={lesion_name}&seed={seed}&watchdog_ms=65535")
    host = MiniHost(port, heartbeat=False)
    fw = port.device
    host.hello()
    host.command(SetTelemetry(1000, 10))
    host.command(Home(5000))
    host.pump(10.0, until=lambda: EventCode.HOMED in host.event_codes())
    host.command(Rotate(RotateMode.CONTINUOUS, RATE_MRPM, 0))
    from sim_device.lesions import load_lesion

    target_um = round((load_lesion(lesion_name).end_mm + 3.0) * 1000)
    host.command(Move(MoveMode.ABSOLUTE, target_um, SPEED_UM_S))
    ticks = round(virtual_s * 1000)
    t0 = time.perf_counter()
    for _ in range(ticks // 1000):
        fw.run_ticks(1000)
        fw.take_output()  # discarded: the device's own cost, not the host's
    return time.perf_counter() - t0


def cohort_wall_s(workers: int) -> tuple[float, list[dict[str, Any]]]:
    from sim_device.lesions import cohort

    names = [lesion.name for lesion in cohort("cohort-2021")]
    t0 = time.perf_counter()
    with ProcessPoolExecutor(max_workers=workers) as pool:
        results = list(pool.map(drive_lesion, names))
    return time.perf_counter() - t0, results


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--json", action="store_true", help="print one JSON object")
    ap.add_argument("--workers", type=int, default=2)
    ap.add_argument("--quick", action="store_true", help="no cohort")
    ns = ap.parse_args()

    # Best of a few repeats, the device run and its rig-only baseline taking turns, so
    # that machine load hits both alike.
    wall_s = rig_wall_s = dev_wall = float("inf")
    for _ in range(3):
        one = drive_lesion(LESION)
        wall_s = min(wall_s, one["wall_s"])
        rig_wall_s = min(rig_wall_s, rig_only(LESION, one["virtual_s"]))
        dev_wall = min(dev_wall, device_only(LESION, one["virtual_s"]))
    virtual_s = one["virtual_s"]
    rtf = virtual_s / wall_s
    rig_rtf = virtual_s / rig_wall_s
    out: dict[str, Any] = {
        "realtime_factor": round(rtf, 1),
        "realtime_goal": 200,
        "rig_only_realtime_factor": round(rig_rtf, 1),
        "realtime_factor_vs_rig_only": round(rtf / rig_rtf, 3),
        "device_tick_us": round(wall_s / (virtual_s * 1000) * 1e6, 2),
        "rig_step_us": round(rig_wall_s / (virtual_s * 1000) * 1e6, 2),
        "added_per_tick_us": round((wall_s - rig_wall_s) / (virtual_s * 1000) * 1e6, 2),
        "device_only_realtime_factor": round(virtual_s / dev_wall, 1),
        # the simulated device (firmware core + rig, no host) against the rig alone
        "device_only_vs_rig_only": round(rig_wall_s / dev_wall, 3),
        "run_lesion": LESION,
        "run_virtual_s": round(virtual_s, 3),
        "run_crossed": one["crossed"],
    }
    if not ns.quick:
        cohort_s, results = cohort_wall_s(ns.workers)
        out |= {
            "cohort_wall_s": round(cohort_s, 2),
            "cohort_goal_s": 30,
            "cohort_workers": ns.workers,
            "cohort_virtual_s": round(sum(r["virtual_s"] for r in results), 1),
            "cohort_crossed": sum(r["crossed"] for r in results),
            "cohort_lesions": len(results),
        }
    if ns.json:
        print(json.dumps(out))
        return 0
    print(
        f"real-time factor {out['realtime_factor']}x (goal {out['realtime_goal']}x) = "
        f"{out['realtime_factor_vs_rig_only']:.3f} of the rig alone "
        f"({out['rig_only_realtime_factor']}x, measured in this run)"
    )
    for key, value in out.items():
        print(f"{key:28} {value}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
