"""benchmarks/link.py starts servers (a pty echo, simulated devices) in other processes:
SIGTERM in the middle of a run must leave none of them behind."""

from __future__ import annotations

import os
import select
import signal
import subprocess
import sys

from .served import ROOT, child_env


def _alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    return True


def test_sigterm_mid_run_kills_every_server() -> None:
    bench = subprocess.Popen(
        [sys.executable, "benchmarks/link.py", "--samples", "100000000", "--duration-s", "600"],
        cwd=ROOT,
        stdout=subprocess.DEVNULL,
        stderr=subprocess.PIPE,
        text=True,
        env=child_env(),
    )
    try:
        assert bench.stderr is not None
        ready, _, _ = select.select([bench.stderr], [], [], 30.0)
        assert ready, "the benchmark never said its servers were up"
        line = bench.stderr.readline()
        assert line.startswith("link benchmark: servers"), line
        pids = [int(p) for p in line.split()[3:]]
        assert len(pids) == 3 and all(_alive(p) for p in pids)
        bench.send_signal(signal.SIGTERM)  # mid-measurement
        assert bench.wait(30) == 128 + signal.SIGTERM
        assert [p for p in pids if _alive(p)] == []  # killed and reaped, none orphaned
    finally:
        if bench.poll() is None:
            bench.kill()
            bench.wait(10)
