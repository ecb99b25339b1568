"""A rig server as the operator starts it: `needlectl sim serve --pty` (a simulated rig in
real time, in its own process) and `needlectl serve --port PTY` (another process) — real
sockets, real subprocesses, a private runtime directory per test."""

from __future__ import annotations

import json
import os
import shutil
import signal
import socket
import subprocess
import sys
import tempfile
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any
from urllib.parse import parse_qs, urlsplit

import pytest
import websocket

from firmware.launch import real_time_process, stop

NEEDLECTL = Path(sys.executable).parent / "needlectl"
LESION = "dense-calcified-cto"  # the run to 48 mm lasts long enough to be stopped


@dataclass
class Served:
    port: str  # the device's pty
    web: str  # http://127.0.0.1:N/
    socket: str
    proc: subprocess.Popen[str]
    env: dict[str, str]
    runs_dir: Path  # where the server records every run
    announced: dict[str, Any] = field(default_factory=dict)  # serve's first line (--json)

    @property
    def token(self) -> str:
        return parse_qs(urlsplit(self.web).query)["token"][0]

    @property
    def base(self) -> str:
        """The page's bare address (the printed one without its token)."""
        u = urlsplit(self.web)
        return f"{u.scheme}://{u.netloc}/"

    def cli(self, *args: str, timeout_s: float = 60.0) -> subprocess.CompletedProcess[str]:
        return subprocess.run(
            [str(NEEDLECTL), "--port", self.port, *args],
            capture_output=True,
            text=True,
            timeout=timeout_s,
            env=self.env,
            stdin=subprocess.DEVNULL,
            check=False,
            preexec_fn=real_time_process,  # the host keeps real time, as a bench's PC would
        )

    def json(self, *args: str) -> dict[str, Any]:
        proc = self.cli("--json", *args)
        assert proc.returncode == 0, proc.stderr
        return json.loads(proc.stdout)  # type: ignore[no-any-return]

    def popen(self, *args: str) -> subprocess.Popen[str]:
        return subprocess.Popen(
            [str(NEEDLECTL), "--port", self.port, *args],
            stdout=subprocess.PIPE,
            stderr=subprocess.PIPE,
            stdin=subprocess.DEVNULL,
            text=True,
            env=self.env,
            preexec_fn=real_time_process,  # the host keeps real time
        )

    def ws(self, topics: list[str] | None = None) -> websocket.WebSocket:
        """A client of the server's Unix socket (with the token), subscribed to topics."""
        sock = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
        sock.connect(self.socket)
        ws = websocket.create_connection(
            "ws://localhost/api/ws",
            socket=sock,
            timeout=30,
            header=[f"Authorization: Bearer {self.token}"],
        )
        if topics is not None:
            ws.send(json.dumps({"id": 1, "op": "subscribe", "args": {"topics": topics}}))
        return ws


def stop_process(proc: subprocess.Popen[str], timeout_s: float = 15.0) -> None:
    stop(proc, signal.SIGINT, timeout_s)


@pytest.fixture
def runtime_env() -> Iterator[dict[str, str]]:
    # short: a Unix socket's path must fit in 108 bytes
    rt = tempfile.mkdtemp(prefix="ndrt-")
    env = {k: v for k, v in os.environ.items() if k not in ("NEEDLECTL_PORT", "NEEDLECTL_TOKEN")}
    env["NEEDLECTL_RUNTIME_DIR"] = rt
    env["NEEDLECTL_RUNS_DIR"] = os.path.join(rt, "runs")  # never the user's own runs
    yield env
    shutil.rmtree(rt, ignore_errors=True)


@pytest.fixture
def sim_pty(runtime_env: dict[str, str]) -> Iterator[str]:
    proc = subprocess.Popen(
        [str(NEEDLECTL), "sim", "serve", "--pty", "--lesion", LESION, "--seed", "1"],
        preexec_fn=real_time_process,  # the simulated device keeps real time, as a rig would
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
        env=runtime_env,
    )
    try:
        assert proc.stdout is not None
        port = proc.stdout.readline().strip()
        assert port.startswith("/dev/"), (port, proc.stderr.read() if proc.stderr else "")
        yield port
    finally:
        stop_process(proc)


def start_server(port: str, env: dict[str, str], *extra: str) -> Served:
    """`needlectl serve` on a free HTTP port (parallel tests; the fixed default is the
    operator's)."""
    if "--http-port" not in extra:
        extra = ("--http-port", "0", *extra)
    proc = subprocess.Popen(
        [str(NEEDLECTL), "--port", port, "--json", "serve", *extra],
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
        env=env,
        preexec_fn=real_time_process,  # the rig server holds the link: real time
    )
    assert proc.stdout is not None
    line = proc.stdout.readline()  # its first line says where it serves
    if not line:
        proc.wait(timeout=10)
        pytest.fail(f"serve did not start: {proc.stderr.read() if proc.stderr else ''}")
    info = json.loads(line)
    return Served(port, info["web"], info["socket"], proc, env, Path(info["runs_dir"]), info)


@pytest.fixture
def served(sim_pty: str, runtime_env: dict[str, str]) -> Iterator[Served]:
    s = start_server(sim_pty, runtime_env)
    yield s
    stop_process(s.proc)
    assert s.proc.returncode == 0, s.proc.stderr.read() if s.proc.stderr else ""


def wait_phase_advance(proc: subprocess.Popen[str]) -> None:
    assert proc.stderr is not None
    for line in proc.stderr:
        if "needlectl.run: phase advance" in line:
            return
    pytest.fail(f"the run never reached its advance phase: {proc.communicate()}")


def start_run(served: Served, *extra: str) -> subprocess.Popen[str]:
    assert served.json("home")["homed"] is True
    return served.popen("-v", "run", "pierce", "--target-mm", "48", *extra)
