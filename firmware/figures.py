"""The HIL suite on every device, its figures side by side in one table.

    python -m firmware.figures [--devices sim,posix,m3,rp2040] [--json]

runs ``pytest hil_tests`` against the in-process simulator (virtual clock), the C
firmware's posix port (a pty, real time), its Cortex-M3 image under QEMU and, when asked,
its Raspberry Pi Pico image under rp2040js (ptys, real time), each with its rig file, and
prints passed/skipped/failed and the safety figures the suite measured (device time, from
telemetry and events), plus the images' sizes. A device whose tools are missing is
reported as such, not run.
"""

from __future__ import annotations

import argparse
import json
import subprocess
import sys
import tempfile
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

from firmware.launch import FIRMWARE, RIG_CONFIG, PortUnavailable, build, image_size, running

REPO = FIRMWARE.parent
_TELEMETRY = "test_streams.py::test_telemetry_1khz_for_10s_without_loss"
# (row label, test node, figure name)
FIGURES: tuple[tuple[str, str, str], ...] = (
    ("stall cut-off after onset, ms", "test_safety.py::test_stall_cutoff_latency",
     "stall_latency_ms"),
    ("force-limit stop after over-force, ms", "test_safety.py::test_force_limit",
     "force_stop_latency_ms"),
    ("rotation at rest after force stop, ms", "test_safety.py::test_force_limit",
     "rotation_stop_after_force_limit_ms"),
    ("watchdog trip after silence, ms", "test_safety.py::test_watchdog_stops_motion_and_latches",
     "watchdog_trip_after_ms"),
    ("advance stopped after silence, ms",
     "test_safety.py::test_watchdog_stops_motion_and_latches",
     "advance_stopped_after_silence_ms"),
    ("e-stop: advance stopped after, ms", "test_safety.py::test_estop_latency",
     "estop_stop_latency_ms"),
    ("e-stop: rotation after, cdeg", "test_safety.py::test_estop_latency",
     "rotation_after_estop_cdeg"),
    ("e-stop ACK round trip (host), ms", "test_safety.py::test_estop_latency",
     "estop_ack_ms_host"),
    ("telemetry 1 kHz × 10 s: received", _TELEMETRY, "samples_received"),
    ("telemetry 1 kHz × 10 s: lost", _TELEMETRY, "samples_lost"),
    ("HELLO round trip (host), ms", "test_handshake.py::test_identity_matches_protocol_and_schema",
     "hello_round_trip_ms"),
    ("load cell: measured rate, Hz", "test_load_cell.py::test_identity_and_status_know_the_sensor",
     "load_cell_rate_hz"),
    ("load cell silent: fault after last fresh, ms",
     "test_load_cell.py::test_sensor_watchdog_on_a_silent_cell", "silent_to_fault_ms"),
    ("load under the drift filter (1 Hz), mN",
     "test_load_cell.py::test_drift_filter_and_tare_under_a_steady_load", "filtered_mn"),
    ("load after TARE, mN",
     "test_load_cell.py::test_drift_filter_and_tare_under_a_steady_load", "after_tare_mn"),
)  # fmt: skip


@contextmanager
def _device(name: str) -> Iterator[tuple[str, list[str]]]:
    """The suite's --port and --rig-config arguments for a device, alive while inside."""
    if name == "sim":
        yield "sim://", []
        return
    port = name if name in ("posix", "rp2040") else "m3"
    # the Pico's image declares a real rig (simulated = 0): its motion needs the opt-in
    opt_in = ["--allow-motion"] if port == "rp2040" else []
    with running(port) as dev:
        yield dev.path, ["--rig-config", str(RIG_CONFIG[port]), *opt_in]


def run_suite(name: str, workdir: Path) -> dict[str, Any]:
    report = workdir / f"{name}.hil.json"
    junit = workdir / f"{name}.xml"
    try:
        with _device(name) as (url, extra):
            proc = subprocess.run(
                [sys.executable, "-m", "pytest", "-q", "-p", "no:cacheprovider", "hil_tests",
                 "--port", url, *extra, "--junitxml", str(junit), "--hil-report", str(report)],
                cwd=REPO, capture_output=True, text=True, check=False,
            )  # fmt: skip
    except PortUnavailable as exc:
        return {"unavailable": str(exc)}
    if not report.exists():
        return {"unavailable": f"the suite did not run: {proc.stdout[-500:]}{proc.stderr[-500:]}"}
    data: dict[str, Any] = json.loads(report.read_text())
    return data


def m3_size(port: str = "m3") -> str:
    """arm-none-eabi-size of a cross-built image (text, data, bss): m3 or rp2040."""
    try:
        elf = build(port)
    except PortUnavailable as exc:
        return str(exc)
    s = image_size(elf)
    return (
        f"flash {s.flash_b} B ({s.flash_b / 1024:.1f} KiB: text {s.text_b} + data {s.data_b}), "
        f"RAM {s.ram_b} B ({s.ram_b / 1024:.1f} KiB: data {s.data_b} + bss {s.bss_b}, "
        "stack included)"
    )


def _counts(rep: dict[str, Any]) -> str:
    outcomes = [t["outcome"] for t in rep["tests"].values()]
    return "/".join(str(outcomes.count(k)) for k in ("passed", "skipped", "failed"))


def table(reports: dict[str, dict[str, Any]]) -> str:
    names = list(reports)
    lines = ["| | " + " | ".join(names) + " |", "|---|" + "---:|" * len(names)]

    def cell(rep: dict[str, Any], test: str, figure: str) -> str:
        if "unavailable" in rep:
            return "—"
        rec = rep["tests"].get(f"hil_tests/{test}")
        if rec is None or figure not in rec["figures"]:
            return rec["outcome"] if rec else "—"
        return f"{rec['figures'][figure]:g}"

    lines.append(
        "| passed / skipped / failed | "
        + " | ".join("not run" if "unavailable" in r else _counts(r) for r in reports.values())
        + " |"
    )
    for label, test, figure in FIGURES:
        lines.append(
            f"| {label} | " + " | ".join(cell(r, test, figure) for r in reports.values()) + " |"
        )
    return "\n".join(lines)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m firmware.figures", description=__doc__)
    parser.add_argument("--devices", default="sim,posix,m3")
    parser.add_argument("--json", action="store_true", help="print the reports as JSON")
    ns = parser.parse_args(argv)
    with tempfile.TemporaryDirectory(prefix="nd-figures-") as tmp:
        reports = {name: run_suite(name, Path(tmp)) for name in ns.devices.split(",")}
    if ns.json:
        print(json.dumps({"reports": reports, "m3_size": m3_size()}, indent=1))
        return 0
    print(table(reports))
    for name, rep in reports.items():
        if "unavailable" in rep:
            print(f"{name}: {rep['unavailable']}")
        else:
            failed = [k for k, t in rep["tests"].items() if t["outcome"] in ("failed", "error")]
            for k in failed:
                print(f"{name}: FAILED {k}: {rep['tests'][k].get('failure', '')}")
    if "m3" in ns.devices:
        print(f"Cortex-M3 image: {m3_size()}")
    if "rp2040" in ns.devices:
        print(f"RP2040 image: {m3_size('rp2040')}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
