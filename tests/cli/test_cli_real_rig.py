"""A served simulator behind a pty proxy that rewrites IDENTITY to `simulated = 0`:
to needlectl it is a real rig, so motion needs the operator's yes."""

from __future__ import annotations

import json
import signal
import subprocess
from collections.abc import Iterator
from typing import TYPE_CHECKING

import pytest

# The same proxy the HIL suite uses to make a served simulator look like a rig.
from tests.hil.identity_proxy import NotSimulatedProxy

if TYPE_CHECKING:
    from conftest import Cli


@pytest.fixture
def rig(cli: Cli) -> Iterator[str]:
    server = subprocess.Popen(
        [str(cli.path), "sim", "serve", "--pty"],
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
    )
    assert server.stdout is not None
    proxy = NotSimulatedProxy(server.stdout.readline().strip())
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
