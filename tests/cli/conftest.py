"""needlectl tested as the operator uses it: the installed console script, in a subprocess."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

import pytest

from firmware.launch import real_time_process, stop

NEEDLECTL = Path(sys.executable).parent / "needlectl"

# needlectl's commands, in its --help order
COMMANDS = (
    "ports",
    "info",
    "status",
    "events",
    "home",
    "stop",
    "estop",
    "clear",
    "jog",
    "run",
    "serve",
    "plot",
    "export",
    "decode",
    "sim",
    "codegen",
)


def run_cli(
    *args: str,
    timeout_s: float = 60.0,
    env: dict[str, str] | None = None,
    stdin: str | None = None,
    cwd: Path | None = None,
) -> subprocess.CompletedProcess[str]:
    full_env = {k: v for k, v in os.environ.items() if k != "NEEDLECTL_PORT"}
    full_env.update(env or {})
    return subprocess.run(
        [str(NEEDLECTL), *args],
        capture_output=True,
        text=True,
        timeout=timeout_s,
        env=full_env,
        input=stdin if stdin is not None else "",
        cwd=cwd,
        check=False,
        preexec_fn=real_time_process,  # the host keeps real time, as a bench's own PC would
    )


def assert_one_line_error(proc: subprocess.CompletedProcess[str], code: int) -> str:
    """The operator's contract: exit code, one line on stderr, never a traceback."""
    assert proc.returncode == code, (proc.returncode, proc.stdout, proc.stderr)
    lines = [ln for ln in proc.stderr.splitlines() if ln.strip()]
    assert len(lines) == 1, proc.stderr
    assert lines[0].startswith("needlectl: "), lines[0]
    assert "Traceback" not in proc.stderr and "Traceback" not in proc.stdout
    return lines[0]


@contextmanager
def served_sim() -> Iterator[tuple[str, subprocess.Popen[str]]]:
    """A simulated rig in another process (`needlectl sim serve --pty`, the dense calcified
    CTO, seed 1), in real time: yields its pty and the process, stopped at the end with
    SIGINT as Ctrl-C would."""
    proc = subprocess.Popen(
        [str(NEEDLECTL), "sim", "serve", "--pty", "--lesion", "dense-calcified-cto", "--seed", "1"],
        preexec_fn=real_time_process,  # the simulated device keeps real time, as a rig would
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
    )
    try:
        assert proc.stdout is not None
        port = proc.stdout.readline().strip()  # the server's first line is its pty
        assert port.startswith("/dev/"), (port, proc.stderr.read() if proc.stderr else "")
        yield port, proc
    finally:
        stop(proc, signal.SIGINT)


def start_until(port: str, marker: str, *args: str) -> subprocess.Popen[str]:
    """`needlectl -v --port PORT ARGS` in the background, once its stderr shows marker."""
    proc = subprocess.Popen(
        [str(NEEDLECTL), "-v", "--port", port, *args],
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
        preexec_fn=real_time_process,  # the host keeps real time, as a bench's own PC would
    )
    assert proc.stderr is not None
    for line in proc.stderr:
        if marker in line:
            return proc
    pytest.fail(f"needlectl {' '.join(args)} never logged {marker!r}: {proc.communicate()}")


def interrupt(
    proc: subprocess.Popen[str], sig: int, exit_code: int, timeout_s: float = 30.0
) -> str:
    """Signal a needlectl, check the exit code it leaves with, return its last stderr line."""
    proc.send_signal(sig)
    _, err = proc.communicate(timeout=timeout_s)
    assert proc.returncode == exit_code, err
    return err.rstrip().splitlines()[-1]


class Cli:
    """The helpers as a fixture, so test modules need not import this file."""

    path = NEEDLECTL
    commands = COMMANDS
    run = staticmethod(run_cli)
    one_line_error = staticmethod(assert_one_line_error)
    served_sim = staticmethod(served_sim)
    start_until = staticmethod(start_until)
    interrupt = staticmethod(interrupt)


@pytest.fixture(scope="session")
def cli() -> Cli:
    if not NEEDLECTL.exists():
        pytest.fail(f"{NEEDLECTL} missing: install the package (make venv)")
    return Cli()
