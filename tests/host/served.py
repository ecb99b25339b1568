"""A simulated device served in real time in another process (python -m sim_device serve)."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

from firmware.launch import stop

ROOT = Path(__file__).resolve().parents[2]


class ServedDevice:
    def __init__(self, *args: str) -> None:
        self.proc = subprocess.Popen(
            [sys.executable, "-m", "sim_device", "serve", "--pty", *args],
            stdout=subprocess.PIPE,
            text=True,
            cwd=ROOT,
        )
        assert self.proc.stdout is not None
        self.path = self.proc.stdout.readline().strip()  # blocks until it serves
        if not self.path:
            self.proc.kill()
            raise RuntimeError("sim_device serve printed no pty path")

    def close(self) -> None:
        stop(self.proc)


def child_env() -> dict[str, str]:
    return {**os.environ, "PYTHONPATH": str(ROOT)}
