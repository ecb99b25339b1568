"""The device served in real time in another process: a real pty and a loopback socket."""

from __future__ import annotations

import json
import signal
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path

import pytest
import serial
from minihost import MiniHost

from protocol import (
    Ack,
    DeviceState,
    EventCode,
    GetStatus,
    Home,
    Identity,
    Move,
    MoveMode,
    Nak,
    NakReason,
    SetTelemetry,
    Status,
    sample_array,
)


def spawn(*args: str) -> tuple[subprocess.Popen[str], str]:
    proc = subprocess.Popen(
        [sys.executable, "-m", "sim_device", "serve", *args],
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
    )
    assert proc.stdout is not None
    first = proc.stdout.readline().strip()
    assert first, proc.stderr.read() if proc.stderr else ""
    return proc, first


def stop(proc: subprocess.Popen[str]) -> int:
    proc.send_signal(signal.SIGTERM)
    try:
        return proc.wait(timeout=10)
    finally:
        if proc.poll() is None:
            proc.kill()


@pytest.fixture
def served_pty(tmp_path: Path) -> Iterator[tuple[subprocess.Popen[str], str, Path]]:
    stats = tmp_path / "stats.json"
    proc, path = spawn("--pty", "--lesion", "soft-stenosis", "--seed", "4", "--stats", str(stats))
    yield proc, path, stats
    if proc.poll() is None:
        proc.kill()
        proc.wait()


def test_pty_serves_protocol_v1_to_a_pyserial_client(
    served_pty: tuple[subprocess.Popen[str], str, Path],
) -> None:
    proc, path, stats_path = served_pty
    assert path.startswith("/dev/")
    with serial.Serial(path, timeout=1.0) as port:
        host = MiniHost(port)
        ident = host.hello().message
        assert isinstance(ident, Identity) and ident.simulated == 1 and ident.session_armed == 1
        assert isinstance(host.command(Home(5000)).message, Ack)
        host.pump(5.0, until=lambda: EventCode.HOMED in host.event_codes())
        assert isinstance(host.command(SetTelemetry(1000, 10)).message, Ack)
        assert isinstance(host.command(Move(MoveMode.ABSOLUTE, 500, 2000)).message, Ack)
        host.pump(1.0, until=lambda: EventCode.TARGET_REACHED in host.event_codes())
        st = host.command(GetStatus()).message
        assert isinstance(st, Status)
        assert st.state == DeviceState.READY and abs(st.depth_um - 500) <= 2
        numbers = [
            f.message.first_sample_number + i
            for f in host.telemetry
            for i in range(len(sample_array(f.message)))
        ]
        assert len(numbers) > 100
        assert numbers == list(range(numbers[0], numbers[0] + len(numbers)))
    assert stop(proc) == 0
    stats = json.loads(stats_path.read_text())
    assert stats["final"] is True and stats["frames_ok"] >= 5 and stats["frames_bad"] == 0
    assert stats["commands_executed"] >= 5 and stats["samples_sent"] >= len(numbers)


def test_pty_survives_a_client_closing_and_serves_the_next(
    served_pty: tuple[subprocess.Popen[str], str, Path],
) -> None:
    proc, path, _ = served_pty
    with serial.Serial(path, timeout=1.0) as port:
        assert isinstance(MiniHost(port).hello().message, Identity)
    with serial.Serial(path, timeout=1.0) as port:
        assert isinstance(MiniHost(port).command(GetStatus()).message, Status)
    assert proc.poll() is None
    assert stop(proc) == 0
    assert proc.stderr is not None and "Traceback" not in proc.stderr.read()


def test_sigint_exits_cleanly_and_writes_stats(tmp_path: Path) -> None:
    stats = tmp_path / "s.json"
    proc, path = spawn("--pty", "--stats", str(stats))
    with serial.Serial(path, timeout=1.0) as port:
        MiniHost(port).hello()
    proc.send_signal(signal.SIGINT)
    assert proc.wait(timeout=10) == 0
    assert json.loads(stats.read_text())["final"] is True


def test_tcp_serves_one_client_on_loopback() -> None:
    proc, where = spawn("--tcp", "127.0.0.1:0", "--seed", "2")
    try:
        host_, port_ = where.rsplit(":", 1)
        assert host_ == "127.0.0.1" and int(port_) > 0
        with serial.serial_for_url(f"socket://{where}", timeout=1.0) as port:
            host = MiniHost(port)
            assert isinstance(host.hello().message, Identity)
            # a second client is turned away while the first is connected
            with (
                serial.serial_for_url(f"socket://{where}", timeout=2.0) as other,
                pytest.raises(serial.SerialException, match="disconnected"),
            ):
                other.read(1)
            assert isinstance(host.command(GetStatus()).message, Status)
    finally:
        assert stop(proc) == 0


@pytest.mark.control("RC-LOCALONLY")
def test_tcp_refuses_a_non_loopback_bind_without_allow_remote() -> None:
    out = subprocess.run(
        [sys.executable, "-m", "sim_device", "serve", "--tcp", "0.0.0.0:0"],
        capture_output=True,
        text=True,
        timeout=30,
    )
    assert out.returncode == 2
    assert "not a loopback address" in out.stderr and "--allow-remote" in out.stderr
    assert len(out.stderr.strip().splitlines()) == 1


def test_bad_lesion_is_one_line() -> None:
    out = subprocess.run(
        [sys.executable, "-m", "sim_device", "serve", "--pty", "--lesion", "nope"],
        capture_output=True,
        text=True,
        timeout=30,
    )
    assert out.returncode == 2 and "unknown lesion" in out.stderr
    assert len(out.stderr.strip().splitlines()) == 1


def test_serve_plants_a_defect_and_injects_a_rig_fault() -> None:
    proc, path = spawn("--pty", "--defect", "nak_reason_swapped", "--fault", "motor_stall")
    try:
        with serial.Serial(path, timeout=1.0) as port:
            host = MiniHost(port)
            host.hello()
            reply = host.command(Move(MoveMode.ABSOLUTE, 1000, 1000)).message
            assert isinstance(reply, Nak) and reply.reason == NakReason.BEYOND_LIMIT  # swapped
            # the motor is dead from t=0: homing cannot follow and is cut off as a stall
            host.command(Home(5000))
            host.pump(2.0, until=lambda: EventCode.STALL in host.event_codes())
            assert EventCode.STALL in host.event_codes()
    finally:
        assert stop(proc) == 0
