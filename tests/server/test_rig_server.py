"""`needlectl serve`: the CLI through the server (same output and exit codes), a stop
from a second terminal, the dead-man rule, a second server refused, a client that stops
reading cut off."""

from __future__ import annotations

import json
import os
import pwd
import signal
import socket
import stat
import subprocess
import time
from pathlib import Path
from typing import Any

import pytest
import websocket

from conftest import (
    NEEDLECTL,
    Served,
    start_run,
    start_server,
    stop_process,
    wait_phase_advance,
)
from firmware_host.recorder import read_events


def _next(
    ws: websocket.WebSocket, kind: str, pred: Any = None, within_s: float = 60.0
) -> dict[str, Any]:
    """The next message of one type (that pred accepts), as the server sends it; a
    failure, not a hang, if none comes within_s."""
    deadline_s = time.monotonic() + within_s
    while time.monotonic() < deadline_s:
        msg: dict[str, Any] = json.loads(ws.recv())
        if msg.get("type") == kind and (pred is None or pred(msg)):
            return msg
    pytest.fail(f"no {kind} message as expected within {within_s:g} s")


def test_commands_give_the_same_answers_through_the_server(
    sim_pty: str, runtime_env: dict[str, str]
) -> None:
    def cli(*args: str) -> subprocess.CompletedProcess[str]:
        return subprocess.run(
            [str(NEEDLECTL), "--port", sim_pty, *args],
            capture_output=True,
            text=True,
            env=runtime_env,
            timeout=60,
            check=False,
        )

    direct_info = json.loads(cli("--json", "info").stdout)
    direct_refusal = cli("jog", "--advance-mm", "1")
    served = start_server(sim_pty, runtime_env)
    try:
        assert served.json("info") == direct_info
        refusal = served.cli("jog", "--advance-mm", "1")
        assert (refusal.returncode, refusal.stderr) == (4, direct_refusal.stderr)
        assert "NOT_HOMED" in refusal.stderr
        status = served.json("status")
        assert status["state"] == "UNHOMED" and status["port"] == sim_pty
        assert status["link"]["telemetry_samples"] > 0  # the server's session streams
        text = served.cli("status").stdout.splitlines()
        assert text[0].startswith("UNHOMED, NOT homed") and text[-1] == f"port: {sim_pty}"
        # between commands the server holds the session: nothing latches, ever
        assert served.json("home")["latched_faults"] == []
        assert served.json("status")["latched_faults"] == []
    finally:
        stop_process(served.proc)
    assert served.proc.returncode == 0
    # the server gone, the port is the CLI's again (its lock died with it)
    assert json.loads(cli("--json", "status").stdout)["homed"] is True


@pytest.mark.control("RC-ESTOP")
def test_estop_from_a_second_terminal_stops_a_run_at_once(served: Served) -> None:
    run = start_run(served)
    wait_phase_advance(run)
    estop = served.cli("estop")
    assert estop.returncode == 0, estop.stderr
    assert "ESTOP" in estop.stdout
    _, err = run.communicate(timeout=30)
    assert run.returncode == 5, err
    last = err.rstrip().splitlines()[-1]
    assert last.startswith("needlectl: run stopped:") and "ESTOP from client" in last
    s = served.json("status")
    assert s["moving"] is False and 0 < s["depth_mm"] < 48 and "ESTOP" in s["latched_faults"]
    assert served.json("clear")["latched_faults"] == []


def test_stop_from_a_second_terminal_ends_the_run_without_a_fault(served: Served) -> None:
    run = start_run(served, "--json")
    wait_phase_advance(run)
    assert served.cli("stop").returncode == 0
    out, err = run.communicate(timeout=30)
    assert run.returncode == 5, err
    result = json.loads(out)
    assert result["outcome"] == "aborted" and "STOP from client" in result["reason"]
    s = served.json("status")
    assert s["moving"] is False and s["latched_faults"] == []
    assert s["depth_mm"] == pytest.approx(result["final_depth_mm"], abs=0.01)


@pytest.mark.control("RC-RUNOWNER")
def test_refused_commands_from_a_second_terminal_change_nothing(served: Served) -> None:
    """Terminal A runs PIERCE; terminal B's jog, home and second run are refused — and
    change nothing: A's run goes on, ended later by a STOP of ours (issue 21: B's refused
    jog sent a STOP that ended A's run; B's run was told to home first)."""
    run = start_run(served, "--json")
    wait_phase_advance(run)
    jog = served.cli("--yes", "jog", "--advance-mm", "1")
    assert jog.returncode == 4 and "BUSY" in jog.stderr, (jog.returncode, jog.stderr)
    home = served.cli("--yes", "home")
    assert home.returncode == 4 and "BUSY" in home.stderr, (home.returncode, home.stderr)
    second = served.cli("--yes", "run", "pierce", "--target-mm", "48")
    assert second.returncode == 4, second.stderr
    assert "another client's run is going" in second.stderr and "home" not in second.stderr
    assert run.poll() is None  # A's run was not ended by any of them...
    assert served.json("status")["moving"] is True
    assert served.cli("stop").returncode == 0  # ...only by this STOP
    out, err = run.communicate(timeout=30)
    assert run.returncode == 5, err
    assert json.loads(out)["outcome"] == "aborted"


@pytest.mark.control("RC-CTRLC")
def test_sigint_of_the_run_through_the_server_is_130_as_directly(served: Served) -> None:
    run = start_run(served)
    wait_phase_advance(run)
    run.send_signal(signal.SIGINT)
    _, err = run.communicate(timeout=30)
    assert run.returncode == 130, err
    assert err.rstrip().splitlines()[-1].startswith("needlectl: run aborted by SIGINT")
    assert served.json("status")["moving"] is False


@pytest.mark.control("RC-DEADMAN")
def test_dead_man_the_run_stops_when_its_client_is_killed(served: Served) -> None:
    run_dir = served.runs_dir / "dead-man"
    watcher = served.ws(["state", "notes"])
    run = start_run(served, "--record", "dead-man")
    wait_phase_advance(run)
    _next(watcher, "state", lambda m: m["run"] is not None and m["status"]["depth_mm"] > 0.5)
    run.kill()  # SIGKILL: no handler runs in the client
    run.wait(timeout=10)
    note = _next(watcher, "note", lambda m: "dead-man" in m["text"])
    assert "dead-man" in note["text"] and "gone" in note["text"]
    state = _next(watcher, "state", lambda m: m["run"] is None)  # the run has ended
    watcher.close()
    s = served.json("status")
    assert s["moving"] is False and 0 < s["depth_mm"] < 48 and s["latched_faults"] == []
    assert state["status"]["depth_mm"] == pytest.approx(s["depth_mm"], abs=0.01)
    events = read_events(run_dir / "events.jsonl")
    kinds = [e["kind"] for e in events]
    assert "stopped" in kinds and "stopped_by" in kinds
    (why,) = [e for e in events if e["kind"] == "stopped_by"]
    assert why["reason"].startswith("client lost: client ") and "dead-man" in why["reason"]
    meta = json.loads((run_dir / "meta.json").read_text())
    assert meta["summary"]["outcome"] == "aborted" and meta["served_by"] == "needlectl serve"
    # no operator acted: the outcome says the client was lost, not "by the operator"
    assert meta["summary"]["reason"].startswith("client lost: client ")
    assert "operator" not in meta["summary"]["reason"]
    assert meta["started_by"]["client"].endswith("(unix)")
    assert meta["started_by"]["user"] == pwd.getpwuid(os.getuid()).pw_name
    assert (run_dir / "run.mcap").stat().st_size > 0
    assert meta["command"].startswith("needlectl --port")
    plot = subprocess.run(
        [str(NEEDLECTL), "plot", str(run_dir)], capture_output=True, text=True, check=False
    )
    assert plot.returncode == 0, plot.stderr


@pytest.mark.control("RC-DEADMAN")
def test_a_jog_whose_client_is_killed_is_stopped(served: Served) -> None:
    """Dead-man for every motion, not only runs: a `jog` whose needlectl is killed outright
    mid-move gets a STOP from the server — the advance does not go on to its target."""
    from protocol import SampleFlags

    assert served.json("home")["homed"] is True
    watcher = served.ws(["state"])
    jog = served.popen("jog", "--advance-mm", "20", "--speed-mm-s", "0.5")
    _next(watcher, "state", lambda m: m["status"]["depth_mm"] > 0.3)
    jog.kill()  # SIGKILL: no handler runs in the client
    jog.wait(timeout=10)
    state = _next(watcher, "state", lambda m: not m["status"]["flags"] & SampleFlags.ADVANCING)
    watcher.close()
    s = served.json("status")
    assert s["moving"] is False and s["latched_faults"] == []
    assert 0.3 < s["depth_mm"] < 10.0, s  # stopped, far short of the 20 mm asked for
    assert state["status"]["depth_mm"] == pytest.approx(s["depth_mm"], abs=0.01)


@pytest.mark.control("RC-ONESERVER")
def test_a_second_server_for_the_same_port_is_refused(served: Served) -> None:
    proc = subprocess.run(
        [str(NEEDLECTL), "--port", served.port, "serve"],
        capture_output=True,
        text=True,
        env=served.env,
        timeout=30,
        check=False,
    )
    assert proc.returncode == 3
    lines = proc.stderr.strip().splitlines()
    assert len(lines) == 1 and "a rig server already owns" in lines[0]
    assert str(served.proc.pid) in lines[0]


def test_serving_the_in_process_simulator_is_a_usage_error(runtime_env: dict[str, str]) -> None:
    proc = subprocess.run(
        [str(NEEDLECTL), "--port", "sim://", "serve"],
        capture_output=True,
        text=True,
        env=runtime_env,
        timeout=30,
        check=False,
    )
    assert proc.returncode == 2 and len(proc.stderr.strip().splitlines()) == 1
    assert "sim serve --pty" in proc.stderr


@pytest.mark.control("RC-LOCALONLY")
def test_the_socket_and_its_directory_are_the_users_alone(served: Served) -> None:
    sock = Path(served.socket)
    assert stat.S_ISSOCK(sock.stat().st_mode)
    assert stat.S_IMODE(sock.stat().st_mode) == 0o600
    assert stat.S_IMODE(sock.parent.stat().st_mode) == 0o700
    assert sock.parent.stat().st_uid == os.getuid()


def test_a_client_that_stops_reading_is_cut_off(sim_pty: str, runtime_env: dict[str, str]) -> None:
    served = start_server(sim_pty, runtime_env, "--client-queue", "8")
    try:
        stalled = served.ws(["telemetry_full"])  # 1 kHz of samples; never read again
        stalled.sock.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, 4096)
        reader = served.ws(["state"])
        # the reader keeps getting its messages while the stalled one fills its queue...
        msg = _next(reader, "state", lambda m: m["server"]["clients_cut_off"] >= 1)
        assert msg["server"]["clients"] == 1  # ...until the server drops it
        status = served.json("status")
        assert status["link"]["telemetry_samples_lost"] == 0
        with pytest.raises((websocket.WebSocketException, OSError)):
            stalled.settimeout(5)
            while True:
                stalled.recv()  # what was in flight, then the cut
        reader.close()
    finally:
        stop_process(served.proc)
    assert served.proc.returncode == 0


def test_a_server_killed_mid_run_is_named_as_the_server(
    sim_pty: str, runtime_env: dict[str, str]
) -> None:
    """The client of a run whose server is killed says the server went away — not "check
    cable and power", which sends the operator to the wrong place."""
    served = start_server(sim_pty, runtime_env)
    try:
        run = start_run(served)
        wait_phase_advance(run)
        served.proc.kill()  # SIGKILL: the server has no last word
        served.proc.wait(timeout=10)
        _, err = run.communicate(timeout=30)
    finally:
        stop_process(served.proc)
    assert run.returncode == 3, err
    last = err.rstrip().splitlines()[-1]
    assert last.startswith("needlectl: the rig server for") and "went away" in last
    assert "it was the server, not the cable" in last and "check cable" not in last


def test_stop_reports_the_rig_at_rest(served: Served) -> None:
    """`needlectl stop` prints the state once the rig has halted, not the MOVING of the
    deceleration ramp the instant after STOP."""
    assert served.json("home")["homed"] is True
    watcher = served.ws(["state"])
    jog = served.popen("jog", "--advance-mm", "30", "--speed-mm-s", "5")
    _next(watcher, "state", lambda m: m["status"]["depth_mm"] > 0.5)
    watcher.close()
    d = served.json("stop")
    jog.communicate(timeout=30)
    assert d["done"] == "stopped" and d["moving"] is False and d["state"] != "MOVING", d
    assert served.json("status")["depth_mm"] == pytest.approx(d["depth_mm"], abs=0.005)


def test_a_busy_port_names_a_server_in_another_runtime_directory(
    served: Served, tmp_path: Path
) -> None:
    elsewhere = tmp_path / "rt"
    proc = subprocess.run(
        [str(NEEDLECTL), "--port", served.port, "status"],
        capture_output=True,
        text=True,
        env={**served.env, "NEEDLECTL_RUNTIME_DIR": str(elsewhere)},
        timeout=30,
        check=False,
    )
    assert proc.returncode == 3
    (line,) = proc.stderr.strip().splitlines()
    assert "port is busy" in line and "a needlectl serve may own it" in line
    assert f"NEEDLECTL_RUNTIME_DIR={elsewhere}" in line


def test_a_session_the_device_ended_while_the_server_was_silent_is_reopened(
    served: Served,
) -> None:
    """A server starved of CPU (a loaded machine) falls silent at rest: the device ends the
    session (SESSION_ENDED, nothing latched). The server says HELLO again, so a client's
    next motion is not refused NOT_ARMED for a session the server holds."""
    from protocol import SampleFlags

    watcher = served.ws(["events", "state"])
    while json.loads(watcher.recv()).get("id") != 1:
        pass  # subscribed before the silence: its SESSION_ENDED is not missed
    served.proc.send_signal(signal.SIGSTOP)
    try:
        # the silence itself, the stimulus: past the device's 200 ms watchdog, short of
        # the host's 0.5 s "device silent" (this is no wait for a state)
        time.sleep(0.3)
    finally:
        served.proc.send_signal(signal.SIGCONT)
    _next(watcher, "event", lambda m: m["code_name"] == "SESSION_ENDED")
    _next(
        watcher,
        "state",
        lambda m: (
            m["server"]["sessions_reopened"] >= 1 and m["status"]["flags"] & SampleFlags.ARMED
        ),
    )
    watcher.close()
    d = served.json("home")
    assert d["homed"] is True and d["latched_faults"] == []


def test_the_page_has_a_fixed_port_and_a_busy_one_is_one_line(
    sim_pty: str, runtime_env: dict[str, str]
) -> None:
    """The page finds a restarted server again only on a stable port: 7461 unless told
    otherwise (never a new random one); that port taken is one line, exit 3."""
    from firmware_host.cli.app import build_parser

    assert build_parser().parse_args(["serve"]).http_port == 7461
    with socket.socket() as taken:
        taken.bind(("127.0.0.1", 0))
        taken.listen(1)
        port = taken.getsockname()[1]
        proc = subprocess.run(
            [str(NEEDLECTL), "--port", sim_pty, "serve", "--http-port", str(port)],
            capture_output=True,
            text=True,
            env=runtime_env,
            timeout=30,
            check=False,
        )
    assert proc.returncode == 3, proc.stderr
    (line,) = proc.stderr.strip().splitlines()
    assert f"HTTP port {port} is busy" in line and "--http-port" in line
