"""An empty or malformed port is a usage error (exit 2, one line): it never quietly means
the simulator, so a script cannot record a simulated run and take it for a real one."""

from __future__ import annotations

from typing import TYPE_CHECKING

import pytest

if TYPE_CHECKING:
    from conftest import Cli


@pytest.mark.parametrize(
    ("port", "said"),
    [
        ("", "--port is empty"),
        ("   ", "--port is empty"),
        ("sim://lesion=dense-calcified-cto", "nothing between 'sim://' and '?'"),
        ("sim://foo?seed=1", "nothing between 'sim://' and '?'"),
        ("sim://?lesion=", "lesion= is empty"),
        ("sim://?lesion=soft-stenosis&seed=", "seed= is empty"),
    ],
)
def test_a_bad_port_is_a_usage_error(cli: Cli, port: str, said: str) -> None:
    for command in (("status",), ("run", "pierce")):
        line = cli.one_line_error(cli.run("--port", port, *command), 2)
        assert said in line, line


def test_an_empty_port_variable_is_a_usage_error(cli: Cli) -> None:
    line = cli.one_line_error(cli.run("status", env={"NEEDLECTL_PORT": ""}), 2)
    assert "$NEEDLECTL_PORT is empty" in line


def test_commands_that_need_no_device_ignore_the_variable(cli: Cli) -> None:
    assert cli.run("sim", "lesions", env={"NEEDLECTL_PORT": ""}).returncode == 0


def test_a_well_formed_simulator_url_still_works(cli: Cli) -> None:
    proc = cli.run("--port", "sim://?lesion=soft-stenosis&seed=3", "status")
    assert proc.returncode == 0, proc.stderr
