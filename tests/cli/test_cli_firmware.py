"""needlectl against the reference firmware in C (firmware/, posix port) as an operator
drives a rig: info, home, and a PIERCE run with --target-mm that crosses the bench's septum
and is stopped cleanly by the device's stall cut-off at its block — the same commands and
output as on the simulator, checked through the recording. The PIERCE run on the Raspberry
Pi Pico image under rp2040js too (the same bench at its pins)."""

from __future__ import annotations

import json
from collections.abc import Iterator
from pathlib import Path
from typing import TYPE_CHECKING

import pytest

from firmware.launch import Device, PortUnavailable, running
from firmware_host.recorder import read_events

if TYPE_CHECKING:
    from conftest import Cli

# A short bench so the run takes seconds: septum at 4 mm, block at 8 mm, carriage at 1 mm.
SEPTUM_MM = 4.0
BLOCK_MM = 8.0
BENCH = ("--membrane-mm", "4", "--block-mm", "8", "--start-mm", "1", "--seed", "7")


def _on_the_short_bench(port: str) -> Iterator[Device]:
    """A port of the C firmware with the short bench; the test skips where its tools are
    missing."""
    try:
        with running(port, args=BENCH) as dev:
            yield dev
    except PortUnavailable as exc:
        pytest.skip(str(exc))


@pytest.fixture
def firmware() -> Iterator[Device]:
    yield from _on_the_short_bench("posix")


def test_info_reports_the_c_firmware(cli: Cli, firmware: Device) -> None:
    proc = cli.run("--port", firmware.path, "--json", "info")
    assert proc.returncode == 0, proc.stderr
    info = json.loads(proc.stdout)
    assert info["serial_number"] == "ND-POSIX-0001" and info["simulated"] is True
    assert info["schema_matches"] is True and info["session_armed"] is True
    assert info["firmware"] == "1.0.0"


def test_lines_name_the_firmware_bench_model_not_a_served_simulator(
    cli: Cli, firmware: Device
) -> None:
    proc = cli.run("--port", firmware.path, "status")
    assert proc.returncode == 0, proc.stderr
    line = proc.stdout.splitlines()[0]
    assert line.endswith("SIMULATED (the firmware's bench model ND-POSIX-0001, no lesion)"), line
    assert "served simulator" not in proc.stdout


def test_routine_commands_do_not_fill_the_event_log(cli: Cli, firmware: Device) -> None:
    # each command ends its session with BYE: no SESSION_ENDED per command (issue 17)
    for command in ("status", "info", "home", "status"):
        assert cli.run("--port", firmware.path, command).returncode == 0
    proc = cli.run("--port", firmware.path, "--json", "events")
    codes = [json.loads(line)["code"] for line in proc.stdout.splitlines()]
    assert codes == ["BOOT", "HOMED"], codes


def test_a_target_short_of_the_septum_says_nothing_was_punctured(
    cli: Cli, firmware: Device
) -> None:
    port = firmware.path
    assert cli.run("--port", port, "home").returncode == 0
    proc = cli.run(
        *("--port", port, "--yes", "run", "pierce", "--target-mm", str(SEPTUM_MM - 1)),
        timeout_s=60,
    )
    assert proc.returncode == 0, proc.stderr
    line = proc.stdout.splitlines()[-1]
    assert line.startswith("CROSSED: reached the target depth with no puncture"), line
    assert "is the target short of the lesion?" in line and "0 punctures" in line, line


@pytest.fixture
def rp2040() -> Iterator[Device]:
    """The Raspberry Pi Pico image under rp2040js with the same short bench at its pins."""
    yield from _on_the_short_bench("rp2040")


def test_run_crosses_the_septum_and_stalls_cleanly_at_the_block(
    cli: Cli, firmware: Device, tmp_path: Path
) -> None:
    _pierce_crosses_the_septum_and_stalls_at_the_block(cli, firmware.path, tmp_path)


def test_run_on_the_rp2040_crosses_the_septum_and_stalls_cleanly_at_the_block(
    cli: Cli, rp2040: Device, tmp_path: Path
) -> None:
    """The same run on the emulated Pico: its HX711 converts at 80 SPS and its advance moves
    in microsteps (one every 1.25 ms at the procedure's 0.5 mm/s) — the harness's bench
    read a request between two microsteps as a needle at rest and turned the punctured
    septum's grip into a -0.3 N pull, which the drift watch took for a failing cell (the
    run ended in a FAULT at 21.8 mm of the default bench)."""
    _pierce_crosses_the_septum_and_stalls_at_the_block(cli, rp2040.path, tmp_path)


def _pierce_crosses_the_septum_and_stalls_at_the_block(cli: Cli, port: str, tmp_path: Path) -> None:
    # --yes: the Pico's image declares a real rig (simulated = 0)
    home = cli.run("--port", port, "--yes", "--json", "home")
    assert home.returncode == 0 and json.loads(home.stdout)["homed"] is True, home.stderr
    run_dir = tmp_path / "run"
    proc = cli.run(
        *("--port", port, "--yes", "--json", "run", "pierce"),
        *("--target-mm", str(BLOCK_MM + 2), "--record", str(run_dir)),
        timeout_s=90,
    )
    # exit 6: the procedure ended without crossing (stalled), the rig stopped
    assert proc.returncode == 6, (proc.stdout, proc.stderr)
    outcome = json.loads(proc.stdout.splitlines()[-1])
    assert outcome["outcome"] == "stalled", outcome
    assert outcome["depth_mm"] == pytest.approx(BLOCK_MM, abs=0.05)
    # the thrust (10 N) is what stopped it: below the profile's force limit (15 N)
    assert 9.0 <= outcome["peak_force_n"] <= 10.5, outcome
    # the septum gave way while advancing: a puncture, not a calcium crack
    assert outcome["latched_faults"] == ["STALL"] and outcome["punctures"] >= 1, outcome
    assert outcome["cracks"] == 0, outcome
    events = read_events(run_dir / "events.jsonl")
    codes = [e["code"] for e in events if e["source"] == "device" and e["kind"] == "event"]
    assert "STALL" in codes and "FORCE_OVER_LIMIT" not in codes, codes
    # the septum gave way on the way: the force fell by more than 2 N near 4 mm
    rows = (run_dir / "telemetry.csv").read_text().splitlines()
    header = rows[0].split(",")
    depth_i, force_i = header.index("depth_mm"), header.index("force_n")
    samples = [(float(r.split(",")[depth_i]), float(r.split(",")[force_i])) for r in rows[1:]]
    near = [f for d, f in samples if SEPTUM_MM <= d <= SEPTUM_MM + 2.0]
    assert max(near) >= 2.5 and min(near[near.index(max(near)) :]) <= 0.6, max(near)
    assert cli.run("plot", str(run_dir)).returncode == 0
