"""firmware.launch's ports as processes: each in a session of its own (Linux shares the CPU
between sessions first: a port keeps real time beside a busy test run), and ended with
the process that started it — a launcher killed outright (SIGKILL: no `finally` runs)
leaves no port running with nobody to stop it."""

from __future__ import annotations

import contextlib
import os
import select
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path

import pytest

from firmware.launch import (
    FIRMWARE,
    REALTIME_NICE,
    PortUnavailable,
    check_tools,
    port_summary,
)


@contextlib.contextmanager
def _posix_launcher() -> Iterator[subprocess.Popen[str]]:
    """`python -m firmware.launch posix`, its port up (the pty read); killed at the end
    if the test left it running."""
    try:
        check_tools("posix")
    except PortUnavailable as exc:
        pytest.skip(str(exc))
    launcher = subprocess.Popen(
        [sys.executable, "-m", "firmware.launch", "posix"],
        cwd=FIRMWARE.parent,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
    )
    try:
        assert launcher.stdout is not None
        assert launcher.stdout.readline().startswith("/dev/")  # the port is up
        yield launcher
    finally:
        if launcher.poll() is None:
            launcher.kill()
        launcher.wait()
        for stream in (launcher.stdout, launcher.stderr):
            if stream is not None:
                stream.close()


def test_a_killed_launcher_takes_its_port_with_it() -> None:
    with _posix_launcher() as launcher:
        children = subprocess.run(
            ["pgrep", "-P", str(launcher.pid)], capture_output=True, text=True, check=False
        ).stdout.split()
        assert len(children) == 1, children
        port_pid = int(children[0])
        assert os.getsid(port_pid) == port_pid  # a session of its own
        if os.geteuid() == 0 and Path("/proc/self/autogroup").exists():
            # ... whose CPU share outweighs a nice-0 session's (a test run beside it)
            group = Path(f"/proc/{port_pid}/autogroup").read_text()
            assert group.split()[-1] == str(REALTIME_NICE), group
        port = os.pidfd_open(port_pid)
        launcher.kill()
        launcher.wait()
        ready, _, _ = select.select([port], [], [], 10.0)  # readable once the port has exited
        os.close(port)
        assert ready, "the port outlived its launcher"


def test_a_stopped_port_s_summary_is_passed_on() -> None:
    """`python -m firmware.launch PORT` stopped: the port's last line on stderr (posix: its
    counters; the RP2040 harness: emulated time against the wall clock and the CPU) is
    printed, not lost with the port's temporary stderr file — `make hil-rp2040`'s figure
    of the emulator's speed."""
    with _posix_launcher() as launcher:
        launcher.terminate()
        _, err = launcher.communicate(timeout=20)
    assert launcher.returncode == 0, err
    assert err.strip().splitlines()[-1].startswith("firmware.launch: nd-firmware: "), err
    assert " ticks, longest " in err, err


def test_qemu_s_own_last_words_are_no_summary() -> None:
    # the M3 image prints nothing as it stops; QEMU's line is QEMU's, not the port's
    qemu = "qemu-system-arm: terminating on signal 15 from pid 16779 (.venv/bin/python)"
    assert port_summary(qemu + "\n") is None
    rp2040 = "rp2040: stopped: 19.94 s emulated in 20.23 s (0.986 of real time)"
    assert port_summary(f"boot\n{rp2040}\n\n") == rp2040
