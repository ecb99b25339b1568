"""Device commands through the console script against the in-process simulator (sim://),
and every kind of bad port or bad input giving its one-line error and exit code."""

from __future__ import annotations

import json
import os
import shutil
import signal
import subprocess
import sys
import tempfile
import time
from collections.abc import Iterator
from pathlib import Path
from typing import TYPE_CHECKING

import pytest

from firmware.launch import stop
from protocol import SCHEMA_HASH

if TYPE_CHECKING:
    from conftest import Cli


def _json(proc: subprocess.CompletedProcess[str]) -> dict:  # type: ignore[type-arg]
    assert proc.returncode == 0, proc.stderr
    assert proc.stderr == "", proc.stderr
    lines = proc.stdout.splitlines()
    assert len(lines) == 1, proc.stdout
    return json.loads(lines[0])  # type: ignore[no-any-return]


def test_info_json_is_the_simulators_identity(cli: Cli) -> None:
    d = _json(cli.run("--json", "info"))
    assert d["simulated"] is True
    # hashes are integers in JSON and hex in the human lines (docs/operator.md §12)
    assert d["schema_hash"] == d["host_schema_hash"] == SCHEMA_HASH
    assert d["travel_limit_mm"] > 0 and d["force_limit_n"] > 0 and d["port"] == "sim://"
    human = cli.run("info").stdout.splitlines()
    assert f"schema_hash              {SCHEMA_HASH:#010x}" in human
    assert f"host_schema_hash         {SCHEMA_HASH:#010x}" in human


def test_status_json_has_the_documented_keys_with_units(cli: Cli) -> None:
    d = _json(cli.run("status", "--json"))
    for key in ("state", "homed", "depth_mm", "angle_deg", "force_n", "latched_faults", "link"):
        assert key in d, key
    assert d["state"] == "UNHOMED" and d["homed"] is False and d["latched_faults"] == []
    assert d["link"]["frames_in"] >= 2 and d["link"]["crc_failures"] == 0


def test_status_human_is_short_and_names_the_port(cli: Cli) -> None:
    proc = cli.run("status", env={"NEEDLECTL_PORT": "sim://?lesion=fibrous-cto&seed=4"})
    assert proc.returncode == 0 and proc.stderr == ""
    assert proc.stdout.startswith("UNHOMED, NOT homed, depth 0.000 mm")
    assert "port: sim://?lesion=fibrous-cto&seed=4" in proc.stdout


def _popen(cli: Cli, env: dict[str, str], *args: str) -> subprocess.Popen[str]:
    return subprocess.Popen(
        [str(cli.path), *args],
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        stdin=subprocess.DEVNULL,
        text=True,
        env=env,
    )


@pytest.fixture
def rig_server(cli: Cli) -> Iterator[tuple[str, dict[str, str]]]:
    """One device that keeps its state between commands: `needlectl sim serve --pty`,
    owned by `needlectl serve` (so a second terminal can stop a move another started).
    Yields the device's pty and the environment every needlectl must run with."""
    runtime = tempfile.mkdtemp(prefix="wt-ndrt-")  # short: a Unix socket path fits 108 B
    env = {k: v for k, v in os.environ.items() if k not in ("NEEDLECTL_PORT", "NEEDLECTL_TOKEN")}
    env["NEEDLECTL_RUNTIME_DIR"] = runtime
    env["NEEDLECTL_RUNS_DIR"] = os.path.join(runtime, "runs")
    procs: list[subprocess.Popen[str]] = []
    try:
        # the link watchdog at 2 s, not 200 ms: these tests are about what each command
        # reports, and a server starved beside a second test run tripped it mid-jog (the
        # watchdog is the HIL suite's and tests/server's dead-man tests')
        sim = _popen(
            cli, env, "sim", "serve", "--pty", "--lesion", "soft-stenosis", "--seed", "1",
            "--watchdog-ms", "2000",
        )  # fmt: skip
        procs.append(sim)
        port = sim.stdout.readline().strip()  # its first line is its pty
        assert port.startswith("/dev/"), (port, sim.stderr.read())
        server = _popen(cli, env, "--port", port, "--json", "serve", "--http-port", "0")
        procs.append(server)
        line = server.stdout.readline()  # its first line says where it serves
        assert line, server.stderr.read()
        yield port, env
    finally:
        for proc in reversed(procs):
            stop(proc, signal.SIGINT, timeout_s=15)
        shutil.rmtree(runtime, ignore_errors=True)


def test_home_estop_clear_stop_each_report_the_state_after(
    cli: Cli, rig_server: tuple[str, dict[str, str]]
) -> None:
    """On one served device, so that each command meets what the one before it left:
    stop ends a move another terminal started, clear releases the e-stop it latched."""
    port, env = rig_server

    def run(*args: str) -> dict:  # type: ignore[type-arg]
        return _json(cli.run("--port", port, "--json", *args, env=env))

    d = run("home")
    assert (
        d["homed"] is True and d["state"] == "READY" and d["depth_mm"] == pytest.approx(0, abs=0.01)
    )
    # a long slow jog from a second terminal; stop it from this one while it moves
    jog = _popen(cli, env, "--port", port, "jog", "--advance-mm", "20", "--speed-mm-s", "1")
    try:
        deadline = time.monotonic() + 30.0
        while not (moving := run("status"))["moving"]:
            assert jog.poll() is None and time.monotonic() < deadline, jog.communicate()
        assert moving["depth_mm"] < 20
        d = run("stop")
        # the state the moment STOP was ACKed: braking (a controlled stop), nothing latched
        assert d["done"] == "stopped" and d["latched_faults"] == [], d
        while (d := run("status"))["moving"]:  # the device comes to rest by itself
            assert time.monotonic() < deadline, d
        stopped_mm = d["depth_mm"]
        assert d["state"] == "READY" and 0 < stopped_mm < 19, d  # short of the 20 mm asked
        # the jog's own needlectl ends too, reporting where the needle came to rest
        # (it exits 0, "jogged", although its move was cut short: not judged here)
        out, err = jog.communicate(timeout=30)
        assert f"depth {stopped_mm:.3f} mm" in out, (jog.returncode, out, err)
    finally:
        if jog.poll() is None:
            jog.kill()
            jog.communicate()
    d = run("status")
    assert d["moving"] is False and d["depth_mm"] == pytest.approx(stopped_mm, abs=0.01)
    d = run("estop")
    assert d["state"] == "ESTOPPED" and d["latched_faults"] == ["ESTOP"]
    d = run("status")
    assert d["state"] == "ESTOPPED" and d["latched_faults"] == ["ESTOP"]  # latched: kept
    d = run("clear")
    assert d["latched_faults"] == [] and d["state"] == "UNHOMED", d  # e-stop unhomes
    assert run("status")["latched_faults"] == []


def test_events_are_json_lines_numbered_from_boot(cli: Cli) -> None:
    proc = cli.run("--json", "events")
    assert proc.returncode == 0, proc.stderr
    events = [json.loads(line) for line in proc.stdout.splitlines()]
    assert events[0]["number"] == 1 and events[0]["code"] == "BOOT"
    assert [e["number"] for e in events] == list(range(1, len(events) + 1))


def test_jog_on_a_fresh_simulator_is_refused_with_a_hint(cli: Cli) -> None:
    line = cli.one_line_error(cli.run("jog", "--advance-mm", "1"), 4)
    assert "NOT_HOMED" in line and "needlectl home" in line and "sim serve --pty" in line
    line = cli.one_line_error(cli.run("jog"), 2)
    assert "nothing to do" in line


def test_bad_ports_and_bad_lesions(cli: Cli, tmp_path: Path) -> None:
    line = cli.one_line_error(cli.run("--port", str(tmp_path / "ttyNOPE"), "status"), 3)
    assert "ttyNOPE" in line
    line = cli.one_line_error(cli.run("--port", "socket://127.0.0.1:1", "info"), 3)
    assert "127.0.0.1:1" in line
    line = cli.one_line_error(cli.run("--port", "sim://?lesion=no-such-lesion", "status"), 2)
    assert "no-such-lesion" in line and "sim lesions" in line
    bad = tmp_path / "bad.toml"
    bad.write_text('name = "x"\n[[segment]]\ntissue = "granite"\nlength_mm = 3\n')
    line = cli.one_line_error(cli.run("--port", f"sim://?lesion={bad}", "status"), 2)
    assert "granite" in line
    line = cli.one_line_error(cli.run("sim", "serve", "--pty", "--lesion", str(bad)), 2)
    assert "granite" in line  # the server refuses it before serving anything
    bad.write_text("this is [not toml\n")
    cli.one_line_error(cli.run("--port", f"sim://?lesion={bad}", "status"), 2)


@pytest.fixture
def held_pty() -> Iterator[str]:
    """A pty whose slave another process holds open exclusively (as a second
    needlectl or a terminal program would)."""
    master, slave = os.openpty()
    path = os.ttyname(slave)
    holder = subprocess.Popen(
        [
            sys.executable,
            "-c",
            "import serial, sys; s = serial.Serial(sys.argv[1], exclusive=True);"
            " print('held', flush=True); sys.stdin.read()",
            path,
        ],
        stdin=subprocess.PIPE,
        stdout=subprocess.PIPE,
        text=True,
    )
    try:
        assert holder.stdout is not None and holder.stdout.readline().strip() == "held"
        yield path
    finally:
        holder.kill()
        holder.wait()
        os.close(slave)
        os.close(master)


@pytest.mark.control("RC-EXCLUSIVE")
def test_busy_port_is_a_one_line_link_error(cli: Cli, held_pty: str) -> None:
    line = cli.one_line_error(cli.run("--port", held_pty, "status"), 3)
    assert held_pty in line and "busy" in line.lower()


def test_bad_profiles_fail_before_connecting(cli: Cli, tmp_path: Path) -> None:
    line = cli.one_line_error(cli.run("run", "no-such-profile"), 2)
    assert "no-such-profile" in line and "pierce" in line
    prof = tmp_path / "p.toml"
    prof.write_text("[advance]\nspeed_mm_s = 900.0\n")
    line = cli.one_line_error(cli.run("run", str(prof), "--target-mm", "30"), 2)
    assert "speed_mm_s" in line
    prof.write_text("[advance]\nsped_mm_s = 0.5\n")
    assert "sped_mm_s" in cli.one_line_error(cli.run("run", str(prof)), 2)
    # a busy port must not matter: the profile is checked first
    line = cli.one_line_error(cli.run("--port", "/dev/nonexistent", "run", str(prof)), 2)


def test_verbose_shows_the_traceback(cli: Cli) -> None:
    proc = cli.run("-v", "--port", "sim://?lesion=no-such-lesion", "status")
    assert proc.returncode == 2
    assert "Traceback" in proc.stderr
    assert proc.stderr.rstrip().splitlines()[-1].startswith("needlectl: bad lesion")
