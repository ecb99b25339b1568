"""Choosing the simulated rig's load cell part (issue 18): `load_cell=PART` in a sim://
URL and `needlectl sim serve --load-cell PART`; an unknown part is one line, exit 2."""

from __future__ import annotations

from pathlib import Path
from typing import TYPE_CHECKING

import serial

import sim_device  # noqa: F401
from sim_device.serve import build_parser, options_from_args

if TYPE_CHECKING:
    from conftest import Cli


def test_an_unknown_part_in_the_url_is_one_line(cli: Cli) -> None:
    line = cli.one_line_error(cli.run("--port", "sim://?load_cell=hx999", "status"), 2)
    assert "unknown load cell part 'hx999'; known: ideal, hx711-10, hx711-80" in line, line


def test_an_unknown_part_to_sim_serve_is_one_line(cli: Cli) -> None:
    line = cli.one_line_error(cli.run("sim", "serve", "--load-cell", "hx999"), 2)
    assert "--load-cell" in line and "unknown load cell part 'hx999'" in line, line


def test_the_part_named_reaches_the_rig() -> None:
    port = serial.serial_for_url("sim://?load_cell=hx711-80&drift=0&seed=3", timeout=0.1)
    try:
        rig = port.sim.rig
        assert rig.load_cell_part.name == "hx711-80"
        assert rig.load_cell_sample_hz == 80.0
    finally:
        port.close()
    served = options_from_args(build_parser().parse_args(["--load-cell", "ads1220-660"]))
    assert served.load_cell == "ads1220-660"


def test_sim_serve_refuses_a_bad_rig_file_in_one_line(cli: Cli, tmp_path: Path) -> None:
    bad = tmp_path / "bad.toml"
    bad.write_text("[mechanics]\nbacklash = 0.1\n")
    line = cli.one_line_error(cli.run("sim", "serve", "--rig", str(bad)), 2)
    assert "--rig" in line and "unknown key 'backlash'" in line, line


def test_pierce_crosses_the_dense_calcified_cto_with_an_hx711_at_80_hz(cli: Cli) -> None:
    # issue 18's "done when": the operator's command, as typed, with a bench's HX711
    url = "sim://?lesion=dense-calcified-cto&load_cell=hx711-80"
    proc = cli.run("--port", url, "--yes", "run", "pierce", timeout_s=300)
    assert proc.returncode == 0, proc.stdout + proc.stderr
    assert proc.stdout.startswith("CROSSED: reached the target depth"), proc.stdout
