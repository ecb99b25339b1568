"""`run` and `plot` through the console script on the in-process simulator (virtual
time: a minute-long procedure takes seconds), and `make demo`'s module. SIGTERM mid-run
on a served simulator, which can be asked afterwards how the run left it."""

from __future__ import annotations

import json
import signal
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path
from typing import TYPE_CHECKING

import pytest

from firmware_host.recorder import read_events

if TYPE_CHECKING:
    from conftest import Cli

SOFT = "sim://?lesion=soft-stenosis&seed=2"
PNG_MAGIC = b"\x89PNG\r\n\x1a\n"


def test_run_json_crossed_records_a_plottable_folder(cli: Cli, tmp_path: Path) -> None:
    run_dir = tmp_path / "run"
    proc = cli.run("--json", "--port", SOFT, "run", "pierce", "--record", str(run_dir))
    assert proc.returncode == 0, proc.stderr
    assert proc.stderr == ""
    d = json.loads(proc.stdout)
    assert d["outcome"] == "crossed"
    for key in ("depth_mm", "duration_s", "peak_force_n", "events", "target_depth_mm"):
        assert key in d, key
    assert abs(d["depth_mm"] - d["target_depth_mm"]) < 0.1
    # the procedure's notes and the device's events, one timeline, in time order
    times = [e["t_s"] for e in d["events"]]
    assert times == sorted(times)
    kinds = [e["kind"] for e in d["events"]]
    assert "device_event" in kinds and kinds.index("device_event") < kinds.index("end")
    assert d["record_dir"] == str(run_dir)
    meta = json.loads((run_dir / "meta.json").read_text())
    assert meta["summary"]["outcome"] == "crossed" and meta["rows"] > 1000
    kinds = [e["kind"] for e in read_events(run_dir / "events.jsonl")]
    assert kinds[0] == "home" and "end" in kinds
    proc = cli.run("plot", str(run_dir))
    assert proc.returncode == 0, proc.stderr
    assert (run_dir / "plot.png").read_bytes()[:8] == PNG_MAGIC
    # the same folder again is refused: a run folder holds one run
    line = cli.one_line_error(cli.run("--port", SOFT, "run", "pierce", "--record", str(run_dir)), 2)
    assert "not empty" in line


def test_run_that_does_not_cross_exits_6_with_the_outcome(cli: Cli) -> None:
    proc = cli.run("--json", "--port", "sim://?lesion=uncrossable&seed=1", "run", "pierce")
    line = cli.one_line_error(proc, 6)
    assert "not crossed" in line
    # Homing is what retracts: after a stall the device refuses a jog until re-homed.
    assert "`needlectl clear`, then `needlectl home` (drives the needle back" in line
    assert "jog" not in line
    # not recorded: no plot to see, and the line says how to get one
    assert "see the plot" not in line and "not recorded: --record DIR" in line
    d = json.loads(proc.stdout)
    assert d["outcome"] == "stalled" and d["pecks"] >= 1 and d["depth_mm"] < d["target_depth_mm"]


def test_a_stall_points_at_the_plot_when_recorded(tmp_path: Path) -> None:
    from types import SimpleNamespace

    from firmware_host.cli.runcmd import _failure_line
    from firmware_host.procedure import Result

    stalled = SimpleNamespace(
        result=Result.STALLED, reason="no progress", final_depth_mm=25.5, withdrawn=None
    )
    line = _failure_line(stalled, None, [], tmp_path / "run")
    assert f"see the plot (needlectl plot {tmp_path / 'run'})" in line


def test_run_refuses_impossible_targets_before_moving(cli: Cli) -> None:
    # checked against the device's travel: refused, 4 (docs/operator.md §7)
    line = cli.one_line_error(cli.run("run", "pierce", "--target-mm", "149"), 4)
    assert "travel" in line
    cli.one_line_error(cli.run("run", "pierce", "--target-mm", "-5"), 2)
    cli.one_line_error(cli.run("plot", "/nonexistent/run"), 2)


@pytest.fixture
def served_sim(cli: Cli) -> Iterator[str]:
    """A simulated rig in another process (`needlectl sim serve --pty`), in real time: it
    outlives the needlectl that drives it, so it can be asked afterwards how it was left."""
    with cli.served_sim() as (port, _):
        yield port


def test_sigterm_mid_run_stops_and_leaves_a_complete_record(
    cli: Cli, served_sim: str, tmp_path: Path
) -> None:
    """SIGTERM once the needle has advanced 1 mm (watched on -v's trace): the procedure
    stops the rig, the record says so, the exit code is 143. On a served simulator, so the
    device itself is asked afterwards whether it was stopped (as test_cli_served does
    for SIGINT): at rest, nothing latched — not left moving for its watchdog to catch."""
    run_dir = tmp_path / "run"
    run = ["run", "pierce", "--target-mm", "48", "--record", str(run_dir)]
    proc = cli.start_until(served_sim, "needlectl.run: depth 1 mm", *run)
    last = cli.interrupt(proc, signal.SIGTERM, 143, timeout_s=60)
    assert last.startswith("needlectl: run aborted by SIGTERM"), last
    meta = json.loads((run_dir / "meta.json").read_text())
    assert meta["summary"]["outcome"] == "aborted"
    events = read_events(run_dir / "events.jsonl")
    kinds = [e["kind"] for e in events]
    assert "operator_signal" in kinds and kinds.index("end") < kinds.index("operator_signal")
    # stopped by needlectl while it still held the link, before it noted the signal
    assert "stopped" in kinds and "stop_failed" not in kinds, kinds
    assert kinds.index("stopped") < kinds.index("operator_signal")
    (stopped,) = [e for e in events if e["kind"] == "stopped"]
    # The device, asked afresh: at rest where the record says, short of the target,
    # nothing commanded, nothing latched (a host gone mid-motion would have left WATCHDOG).
    status = cli.run("--port", served_sim, "--json", "status")
    assert status.returncode == 0, status.stderr
    s = json.loads(status.stdout)
    assert s["moving"] is False and s["latched_faults"] == [], s
    assert s["depth_mm"] == pytest.approx(stopped["depth_mm"], abs=0.005)
    assert s["commanded_depth_mm"] == pytest.approx(s["depth_mm"], abs=0.05)
    assert 1 <= s["depth_mm"] < 48
    assert cli.run("plot", str(run_dir)).returncode == 0


def test_demo_module_runs_records_and_plots(tmp_path: Path) -> None:
    proc = subprocess.run(
        [sys.executable, "-m", "firmware_host.demo", str(tmp_path / "runs")],
        capture_output=True,
        text=True,
        timeout=120,
        check=False,
    )
    assert proc.returncode == 0, proc.stdout + proc.stderr
    (run_dir,) = (tmp_path / "runs").iterdir()
    assert (run_dir / "plot.png").read_bytes()[:8] == PNG_MAGIC
    assert "CROSSED" in proc.stdout and str(run_dir / "plot.png") in proc.stdout
    # the demo's lesion has one cap (seed 1: deterministic): counted in plain English
    assert ", 1 puncture, 0 stalls" in proc.stdout, proc.stdout


@pytest.mark.parametrize(
    ("query", "code", "outcome", "words"),
    [
        ("cut_at_s=5&cut_for_s=10", 3, "fault", "link lost"),
        ("fault=loadcell_disconnected&fault_at_s=5", 5, "fault", "LOAD_CELL"),
        ("fault=motor_stall&fault_at_s=5", 6, "stalled", "STALL"),
    ],
)
def test_a_run_ended_by_the_link_or_the_rig_has_its_exit_code(
    cli: Cli, query: str, code: int, outcome: str, words: str
) -> None:
    proc = cli.run("--json", "--port", f"sim://?lesion=soft-stenosis&{query}", "run", "pierce")
    line = cli.one_line_error(proc, code)
    assert words in line
    d = json.loads(proc.stdout)
    assert d["outcome"] == outcome and d["depth_mm"] < d["target_depth_mm"]


def test_a_crossing_whose_withdrawal_failed_says_so_and_exits_5(cli: Cli) -> None:
    # Crossed ~23 s in; the load cell is lost at 30 s, on the way back.
    port = "sim://?lesion=soft-stenosis&seed=2&fault=loadcell_disconnected&fault_at_s=30"
    proc = cli.run("--json", "--port", port, "run", "pierce-withdraw")
    line = cli.one_line_error(proc, 5)
    assert line.startswith("needlectl: crossed, but the withdrawal failed:"), line
    assert "LOAD_CELL" in line and "needlectl home" in line
    d = json.loads(proc.stdout)
    assert d["outcome"] == "crossed" and d["withdrawn"] is False
    assert 1.0 < d["depth_mm"] < d["target_depth_mm"] - 1.0


def test_a_withdrawing_run_reports_the_deepest_depth_and_the_withdrawal(cli: Cli) -> None:
    proc = cli.run("--port", SOFT, "run", "pierce-withdraw")
    assert proc.returncode == 0, proc.stderr
    target = float(proc.stdout.split(" of ", 1)[1].split(" mm", 1)[0])
    assert proc.stdout.startswith(
        f"CROSSED: reached the target depth; deepest {target:.2f} of {target:.2f} mm,"
        " then withdrawn to 0.00 mm"
    ), proc.stdout
    d = json.loads(cli.run("--json", "--port", SOFT, "run", "pierce-withdraw").stdout)
    assert d["deepest_depth_mm"] == pytest.approx(d["target_depth_mm"], abs=0.05)
    assert d["depth_mm"] == pytest.approx(0.0, abs=0.02) and d["withdrawn"] is True


def test_the_progress_bar_ends_on_the_outcomes_clock(tmp_path: Path) -> None:
    """On a terminal (a real pty), the bar's last time and the outcome's "in X s" are one
    clock — from the first motion — not 56.1 s against 54.5 s (homing counted in one)."""
    import os
    import pty
    import re

    from conftest import NEEDLECTL

    master, slave = pty.openpty()
    env = {k: v for k, v in os.environ.items() if k != "NEEDLECTL_PORT"}
    env.update(COLUMNS="160", TERM="xterm")
    proc = subprocess.Popen(
        [str(NEEDLECTL), "--port", SOFT, "run", "pierce"],
        stdin=subprocess.DEVNULL,
        stdout=slave,
        stderr=slave,
        env=env,
    )
    os.close(slave)
    chunks = []
    while True:
        try:
            data = os.read(master, 65536)
        except OSError:  # EIO: the child closed the pty
            break
        if not data:
            break
        chunks.append(data)
    os.close(master)
    assert proc.wait(timeout=60) == 0
    text = re.sub(r"\x1b\[[0-9;?]*[A-Za-z]", "", b"".join(chunks).decode(errors="replace"))
    bar_s = [float(x) for x in re.findall(r"\bt +([0-9.]+) s", text)]
    (outcome_s,) = [float(x) for x in re.findall(r"CROSSED: .* in ([0-9.]+) s", text)]
    assert bar_s and abs(bar_s[-1] - outcome_s) <= 0.25, (bar_s[-1], outcome_s)
