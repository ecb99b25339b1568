"""needlectl against a device in another process, in real time, on a pty — the simulator
(`needlectl sim serve --pty`) and the reference firmware in C (firmware/, posix port): state
persists between commands, as on a rig, and Ctrl-C mid-run leaves the device stopped —
checked through the device itself."""

from __future__ import annotations

import json
import signal
import subprocess
import time
from collections.abc import Iterator
from pathlib import Path
from typing import TYPE_CHECKING, Any

import pytest

from firmware.launch import PortUnavailable, running
from firmware_host.recorder import read_events

if TYPE_CHECKING:
    from conftest import Cli


@pytest.fixture(params=["sim-serve", "c-firmware"])
def served(cli: Cli, request: pytest.FixtureRequest) -> Iterator[str]:
    """A device on a pty, yields its path: a simulated rig served by `needlectl sim serve
    --pty`, or the C reference firmware's posix port (its bench: a septum at 20 mm, a
    block at 40 mm)."""
    if request.param == "c-firmware":
        try:
            with running("posix") as dev:
                yield dev.path
            assert dev.proc.returncode == 0, dev.stderr()
        except PortUnavailable as exc:
            pytest.skip(str(exc))
        return
    with cli.served_sim() as (port, proc):
        yield port
    assert proc.returncode == 0


def _json(cli: Cli, port: str, *args: str) -> dict[str, Any]:
    proc = cli.run("--port", port, "--json", *args)
    assert proc.returncode == 0, proc.stderr
    return json.loads(proc.stdout)  # type: ignore[no-any-return]


def _start_run(cli: Cli, port: str, marker: str, run_dir: Path) -> subprocess.Popen[str]:
    """`needlectl run pierce --target-mm 48 --record RUN_DIR` on the served device, once
    its log shows marker (the run still going)."""
    run = ("run", "pierce", "--target-mm", "48", "--record", str(run_dir))
    return cli.start_until(port, marker, *run)


def test_a_served_device_keeps_its_state_between_commands(cli: Cli, served: str) -> None:
    port = served
    assert _json(cli, port, "status")["state"] == "UNHOMED"
    # Each needlectl leaves with the rig at rest and says BYE: the session ends in order,
    # unlogged, latching nothing — no fault between commands, ever.
    for _ in range(3):
        s = _json(cli, port, "status")
        assert s["latched_faults"] == [] and s["state"] == "UNHOMED", s
    line = cli.one_line_error(cli.run("--port", port, "jog", "--advance-mm", "1"), 4)
    assert "NOT_HOMED" in line and "sim serve" not in line  # that hint is for sim:// only
    assert _json(cli, port, "home")["homed"] is True
    d = _json(
        cli,
        port,
        "jog",
        "--advance-mm",
        "2",
        "--speed-mm-s",
        "2",
        "--rotate-deg",
        "90",
        "--rate-rpm",
        "60",
    )
    assert d["depth_mm"] == pytest.approx(2.0, abs=0.02) and d["moving"] is False
    assert d["angle_deg"] == pytest.approx(90.0, abs=1.0)
    s = _json(cli, port, "status")
    assert s["depth_mm"] == pytest.approx(2.0, abs=0.02) and s["homed"] is True  # kept
    # A run starts from home only (a run killed mid-procedure leaves the needle deep,
    # with only a WATCHDOG latched): refused, nothing moves, home first.
    line = cli.one_line_error(cli.run("--port", port, "run", "pierce", "--target-mm", "40"), 4)
    assert "2.00 mm" in line and "`needlectl home` first" in line
    s = _json(cli, port, "status")
    assert s["depth_mm"] == pytest.approx(2.0, abs=0.02) and s["moving"] is False
    assert "ESTOP" in _json(cli, port, "estop")["latched_faults"]
    line = cli.one_line_error(cli.run("--port", port, "jog", "--advance-mm", "1"), 4)
    assert "ESTOPPED" in line and "needlectl clear" in line  # not cleared behind your back
    assert _json(cli, port, "clear")["latched_faults"] == []
    assert "ESTOP" not in _json(cli, port, "status")["latched_faults"]
    # The advice after an e-stop or stall is clear, then home: a jog back is refused
    # (the position is not trusted), homing drives the needle back to the switch.
    line = cli.one_line_error(cli.run("--port", port, "jog", "--advance-mm", "-1"), 4)
    assert "NOT_HOMED" in line
    d = _json(cli, port, "home")
    assert d["homed"] is True and d["depth_mm"] == pytest.approx(0.0, abs=0.01)
    proc = cli.run("--port", port, "--json", "events")
    codes = [json.loads(x)["code"] for x in proc.stdout.splitlines()]
    assert codes[0] == "BOOT" and "HOMED" in codes and "ESTOP" in codes
    assert codes[-1] in ("HOMED", "FAULT_CLEARED")
    assert "WATCHDOG_TRIP" not in codes and "SESSION_ENDED" not in codes, codes
    assert _json(cli, port, "status")["latched_faults"] == []


def test_sigint_mid_run_stops_the_device_and_completes_the_record(
    cli: Cli, served: str, tmp_path: Path
) -> None:
    run_dir = tmp_path / "run"
    proc = _start_run(cli, served, "needlectl.run: phase advance", run_dir)
    # The needle is being driven forward now. A second needlectl meanwhile is told the
    # port is busy (ports are opened exclusively), and changes nothing.
    line = cli.one_line_error(cli.run("--port", served, "stop"), 3)
    assert served in line and "busy" in line.lower()
    last = cli.interrupt(proc, signal.SIGINT, 130)
    assert last.startswith("needlectl: run aborted by SIGINT"), last
    # The device, asked afresh: at rest, short of the target, nothing commanded, nothing
    # latched (needlectl stopped it before leaving: its session ended without a fault).
    s = _json(cli, served, "status")
    assert s["moving"] is False and 0 < s["depth_mm"] < 48
    assert s["commanded_depth_mm"] == pytest.approx(s["depth_mm"], abs=0.05)
    assert s["latched_faults"] == []
    # needlectl stopped it itself while it still held the link (not the watchdog after
    # it left): "stopped" is written only once the device ACKed STOP and then reported
    # itself at rest.
    events = read_events(run_dir / "events.jsonl")
    kinds = [e["kind"] for e in events]
    assert "stopped" in kinds and "stop_failed" not in kinds
    assert kinds.index("stopped") < kinds.index("operator_signal")
    # ...and it notes the depth the device came to rest at, read after the stop.
    (stopped,) = [e for e in events if e["kind"] == "stopped"]
    assert stopped["depth_mm"] == pytest.approx(s["depth_mm"], abs=0.005)
    assert _json(cli, served, "status")["depth_mm"] == pytest.approx(s["depth_mm"], abs=0.01)
    meta = json.loads((run_dir / "meta.json").read_text())
    assert meta["summary"]["outcome"] == "aborted" and "end_time_utc" in meta
    assert "end" in kinds
    assert cli.run("plot", str(run_dir)).returncode == 0
    assert (run_dir / "plot.png").stat().st_size > 10_000


def test_sigint_while_homing_stops_the_axis(cli: Cli, served: str) -> None:
    """Homing is one blocking library call: the signal interrupts it and needlectl
    stops the rig before leaving."""
    proc = cli.start_until(served, "needlectl: homing at", "home", "--speed-mm-s", "0.05")
    last = cli.interrupt(proc, signal.SIGINT, 130)
    assert last.startswith("needlectl: SIGINT while homing: STOP sent"), last
    s = _json(cli, served, "status")
    assert s["moving"] is False and s["homed"] is False and s["state"] != "HOMING"


def test_sim_serve_on_tcp(cli: Cli) -> None:
    proc = subprocess.Popen(
        [str(cli.path), "sim", "serve", "--tcp", "127.0.0.1:0", "--lesion", "fibrous-cto"],
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
    )
    try:
        assert proc.stdout is not None
        where = proc.stdout.readline().strip()  # HOST:PORT
        d = _json(cli, f"socket://{where}", "info")
        assert d["simulated"] is True and d["port"] == f"socket://{where}"
    finally:
        proc.send_signal(signal.SIGINT)
        proc.communicate(timeout=10)
    assert proc.returncode == 0


def test_sigterm_while_the_run_homes_is_recorded_as_sigterm(
    cli: Cli, served: str, tmp_path: Path
) -> None:
    run_dir = tmp_path / "run"
    proc = _start_run(cli, served, "needlectl.run: phase setup", run_dir)
    last = cli.interrupt(proc, signal.SIGTERM, 143)
    assert last.startswith("needlectl: run aborted by SIGTERM"), last
    events = read_events(run_dir / "events.jsonl")
    (end,) = [e for e in events if e["kind"] == "end"]
    assert end["outcome"] == "aborted"
    assert "SIGTERM" in end["reason"] and "Ctrl-C" not in end["reason"], end
    assert [e["signal"] for e in events if e["kind"] == "operator_signal"] == ["SIGTERM"]
    meta = json.loads((run_dir / "meta.json").read_text())
    assert "SIGTERM" in meta["summary"]["reason"]
    s = _json(cli, served, "status")
    assert s["moving"] is False and s["state"] != "HOMING"


def test_status_after_a_kill_mid_run_explains_watchdog_never_as_normal(
    cli: Cli, served: str
) -> None:
    """issue 12: after `kill -9` mid-run, `status` said the WATCHDOG trip was "normal
    between commands" with the needle deep in the lesion. A host lost mid-motion is
    never normal: status says what happened and what to do."""
    # well into the advance
    proc = cli.start_until(
        served, "needlectl.run: depth 1 mm", "run", "pierce", "--target-mm", "48"
    )
    proc.kill()
    proc.communicate(timeout=10)
    # Each status is a session of its own that moves nothing: the device, left moving by
    # the killed host, latches WATCHDOG within its period whatever a status does.
    deadline = time.monotonic() + 10.0
    while "WATCHDOG" not in _json(cli, served, "status")["latched_faults"]:
        assert time.monotonic() < deadline, "no WATCHDOG after the host was killed mid-run"
    status = cli.run("--port", served, "status")
    assert status.returncode == 0, status.stderr
    assert "latched faults: WATCHDOG" in status.stdout, status.stdout
    assert "a host went silent while the rig moved and the device stopped it" in status.stdout
    assert "needlectl clear" in status.stdout
    assert "normal" not in status.stdout.lower()
    d = _json(cli, served, "status")
    assert d["depth_mm"] > 0.5 and "WATCHDOG" in d["latched_faults"]
