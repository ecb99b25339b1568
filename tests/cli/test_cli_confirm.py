"""Motion on a device that is not simulated needs the operator's yes: the gate itself,
with a real pty as the operator's terminal (test_cli_real_rig.py covers it end to end
through the console script, where there is no terminal)."""

from __future__ import annotations

import argparse
import os
from collections.abc import Iterator
from dataclasses import dataclass
from typing import IO

import pytest

from firmware_host.cli.device import confirm_motion
from firmware_host.cli.exits import CliError, Exit


@dataclass
class _Identity:
    simulated: bool
    serial_number: str = "ND-0042"


@dataclass
class _Driver:
    identity: _Identity


def _ns(yes: bool) -> argparse.Namespace:
    return argparse.Namespace(yes=yes, port="/dev/needle-driver")


@pytest.fixture
def terminal() -> Iterator[tuple[int, IO[str]]]:
    """(master fd, the slave side as the process's stdin)."""
    master, slave = os.openpty()
    stdin = open(slave, encoding="utf-8", closefd=True)  # noqa: SIM115
    try:
        yield master, stdin
    finally:
        stdin.close()
        os.close(master)


def test_simulated_device_moves_without_asking(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr("sys.stdin", None)  # reading stdin would fail loudly
    confirm_motion(_Driver(_Identity(simulated=True)), _ns(yes=False), "home")


def test_real_rig_with_yes_moves_without_asking(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr("sys.stdin", None)
    confirm_motion(_Driver(_Identity(simulated=False)), _ns(yes=True), "home")


def test_real_rig_without_a_terminal_is_refused(monkeypatch: pytest.MonkeyPatch) -> None:
    with open(os.devnull, encoding="utf-8") as devnull:
        monkeypatch.setattr("sys.stdin", devnull)
        with pytest.raises(CliError) as info:
            confirm_motion(_Driver(_Identity(simulated=False)), _ns(yes=False), "home")
    assert info.value.code == Exit.USAGE
    assert "--yes" in str(info.value) and "ND-0042" in str(info.value)


@pytest.mark.parametrize(
    ("answer", "moves"),
    [("y\n", True), ("yes\n", True), ("n\n", False), ("\n", False), ("sure\n", False)],
)
def test_real_rig_asks_on_the_terminal(
    monkeypatch: pytest.MonkeyPatch,
    capsys: pytest.CaptureFixture[str],
    terminal: tuple[int, IO[str]],
    answer: str,
    moves: bool,
) -> None:
    master, stdin = terminal
    monkeypatch.setattr("sys.stdin", stdin)
    os.write(master, answer.encode())
    driver = _Driver(_Identity(simulated=False))
    if moves:
        confirm_motion(driver, _ns(yes=False), "advance +2 mm")
    else:
        with pytest.raises(CliError, match="cancelled"):
            confirm_motion(driver, _ns(yes=False), "advance +2 mm")
    assert "about to move the real rig ND-0042" in capsys.readouterr().err
