"""A served simulator behind a pty proxy that rewrites IDENTITY to `simulated = 0`:
to needlectl it is a real rig, so motion needs the operator's yes."""

from __future__ import annotations

import json
import os
import select
import signal
import subprocess
import threading
import tty
from collections.abc import Iterator
from typing import TYPE_CHECKING

import pytest

from protocol import Identity, StreamDecoder, encode

if TYPE_CHECKING:
    from conftest import Cli


class RigLookalike:
    """Forwards bytes both ways between a new pty and the served device, frame by frame,
    with every IDENTITY saying it is not a simulator."""

    def __init__(self, device_path: str) -> None:
        self._dev = os.open(device_path, os.O_RDWR | os.O_NOCTTY)
        tty.setraw(self._dev)
        self._master, self._slave = os.openpty()  # our slave fd stays open: no EIO
        tty.setraw(self._slave)
        tty.setraw(self._master)
        self.path = os.ttyname(self._slave)
        self._decoder = StreamDecoder()
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, daemon=True)
        self._thread.start()

    def _run(self) -> None:
        while not self._stop.is_set():
            ready, _, _ = select.select([self._master, self._dev], [], [], 0.05)
            for fd in ready:
                data = os.read(fd, 65536)
                if fd == self._master:
                    os.write(self._dev, data)
                    continue
                out = bytearray()
                for fr in self._decoder.feed(data):
                    msg = fr.message
                    if isinstance(msg, Identity):
                        msg = msg._replace(simulated=0)
                    out += encode(msg, fr.seq, fr.flags)
                if out:
                    os.write(self._master, bytes(out))

    def close(self) -> None:
        self._stop.set()
        self._thread.join(timeout=2.0)
        for fd in (self._master, self._slave, self._dev):
            os.close(fd)


@pytest.fixture
def rig(cli: Cli) -> Iterator[str]:
    server = subprocess.Popen(
        [str(cli.path), "sim", "serve", "--pty"],
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
    )
    assert server.stdout is not None
    proxy = RigLookalike(server.stdout.readline().strip())
    try:
        yield proxy.path
    finally:
        proxy.close()
        server.send_signal(signal.SIGINT)
        server.communicate(timeout=10)


def test_a_real_rig_moves_only_with_yes(cli: Cli, rig: str) -> None:
    info = cli.run("--port", rig, "--json", "info")
    assert info.returncode == 0, info.stderr
    assert json.loads(info.stdout)["simulated"] is False
    # no terminal, no --yes: refused before anything moves
    for args in (("home",), ("jog", "--rotate-deg", "30"), ("run", "pierce", "--target-mm", "30")):
        line = cli.one_line_error(cli.run("--port", rig, *args), 2)
        assert "refusing to move the real rig SIM-0001" in line and "--yes" in line
    status = json.loads(cli.run("--port", rig, "--json", "status").stdout)
    assert status["homed"] is False and status["angle_deg"] == 0.0  # nothing moved
    homed = cli.run("--port", rig, "--yes", "--json", "home")
    assert homed.returncode == 0, homed.stderr
    assert json.loads(homed.stdout)["homed"] is True
