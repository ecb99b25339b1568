"""The suite against ``needlectl sim serve --pty`` (and ``python -m sim_device serve
--pty``, which can plant a defect) in another process: real time,
a real pty, the way a rig is reached. A subset, to keep ``make test`` short (the whole
suite passes there too: docs/hil.md says how to run it)."""

from __future__ import annotations

import subprocess
import sys
from collections.abc import Callable, Iterator
from pathlib import Path

import pytest
from hil_runner import REPO, run_hil, suite_timeout
from identity_proxy import NotSimulatedProxy

from firmware.launch import real_time_process

# Tests that take a second or two in real time (the telemetry test takes 10 s, the full
# travel 60 s: they run in-process on the virtual clock instead).
SERVED_SUBSET = (
    "handshake or test_nak or exactly_once or homing or watchdog or estop or event_gap or heartbeat"
)
ServerFactory = Callable[..., str]


@pytest.fixture
def serve_pty() -> Iterator[ServerFactory]:
    """Start ``python -m sim_device serve --pty [ARGS]`` (or ``needlectl sim serve --pty``
    with ``cli=True``); returns the pty path it prints."""
    procs: list[subprocess.Popen[str]] = []

    def start(*args: str, cli: bool = False) -> str:
        # needlectl's own command (the operator's way), or the simulator's (which can also
        # plant a defect)
        head = ["firmware_host.cli", "sim"] if cli else ["sim_device"]
        proc = subprocess.Popen(
            [sys.executable, "-m", *head, "serve", "--pty", *args],
            cwd=REPO,
            preexec_fn=real_time_process,  # the simulated device keeps real time, as a rig would
            stdout=subprocess.PIPE,
            stderr=subprocess.PIPE,
            text=True,
        )
        procs.append(proc)
        assert proc.stdout is not None
        path = proc.stdout.readline().strip()  # blocks until the server announces its pty
        assert path.startswith("/dev/"), f"serve printed {path!r}: {proc.stderr}"
        return path

    yield start
    for proc in procs:
        proc.terminate()
        try:
            proc.wait(timeout=10)
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.wait()


@suite_timeout()
def test_suite_subset_passes_over_a_pty(serve_pty: ServerFactory, tmp_path: Path) -> None:
    path = serve_pty(cli=True)  # needlectl sim serve --pty
    run = run_hil(["--port", path, "-k", SERVED_SUBSET], tmp_path, "served")
    assert run.returncode == 0, run.why()
    passed = [k for k, v in run.outcomes.items() if v == "passed"]
    assert len(passed) >= 15, run.outcomes
    assert run.report is not None
    assert run.report["device"]["clock"] == "machine"
    figures = run.report["tests"][
        "hil_tests/test_safety.py::test_watchdog_stops_motion_and_latches"
    ]
    assert 199 <= figures["figures"]["watchdog_trip_after_ms"] <= 201


@suite_timeout()
def test_defect_caught_over_a_pty(serve_pty: ServerFactory, tmp_path: Path) -> None:
    path = serve_pty("--defect", "no_repeat_detection")
    run = run_hil(["--port", path, "-k", "exactly_once"], tmp_path, "served-defect")
    assert run.returncode == 1, run.output[-3000:]
    assert run.outcomes["test_exactly_once.py::test_lost_reply_resend_executes_once"] == "failed"


@suite_timeout(2)
def test_rig_motion_needs_allow_motion(serve_pty: ServerFactory, tmp_path: Path) -> None:
    proxy = NotSimulatedProxy(serve_pty())
    try:
        subset = "identity_matches or homing or event_gap or NOT_HOMED"
        run = run_hil(["--port", proxy.path, "-k", subset], tmp_path, "rig")
        assert run.returncode == 0, run.why()
        for moving in (
            "test_motion_limits.py::test_homing",
            "test_nak.py::test_nak_reason[NOT_HOMED]",
        ):
            assert run.outcomes[moving] == "skipped", run.outcomes
            assert "--allow-motion" in run.skip_reasons[moving]
        for still in (
            "test_handshake.py::test_identity_matches_protocol_and_schema",
            "test_streams.py::test_event_gap_recovered_with_get_events",
        ):
            assert run.outcomes[still] == "passed", run.outcomes
        assert run.report is not None and run.report["device"]["simulated"] is False

        run = run_hil(["--port", proxy.path, "-k", "homing", "--allow-motion"], tmp_path, "rig2")
        assert run.returncode == 0, run.why()
        assert run.outcomes["test_motion_limits.py::test_homing"] == "passed"
    finally:
        proxy.close()


@suite_timeout()
def test_lost_device_stops_the_run_with_one_line(serve_pty: ServerFactory, tmp_path: Path) -> None:
    # the link goes dead 2 s into the run (device time) and stays dead
    path = serve_pty("--cut-at-s", "2", "--cut-for-s", "3600")
    run = run_hil(
        ["--port", path, "-k", "test_nak or exactly_once or watchdog or estop"], tmp_path, "lost"
    )
    assert run.returncode == 4, run.output[-3000:]
    # one line (pytest repeats its exit message at the very end: the same line)
    lines = sorted({ln for ln in run.output.splitlines() if "needle-hil: lost the device" in ln})
    assert len(lines) == 1, run.output[-3000:]
    assert path in lines[0]
    # it stopped at once: far fewer tests reported than selected
    assert len(run.outcomes) < 12, run.outcomes
