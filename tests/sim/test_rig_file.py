"""A simulator rig file: the bench's load cell and mechanics, from sim:// and sim serve."""

from __future__ import annotations

from pathlib import Path

import pytest
import serial

import sim_device  # noqa: F401
from sim_device.rig_file import RigFileError, read_rig_file

BENCH = """
[load_cell]
part = "hx711-80"
rated_load_n = 10.0

[mechanics]
backlash_mm = 0.05
encoder_resolution_um = 5
track_winding = true
"""


def test_a_rig_file_sets_the_load_cell_and_the_mechanics(tmp_path: Path) -> None:
    bench = tmp_path / "bench.toml"
    bench.write_text(BENCH)
    port = serial.serial_for_url(f"sim://?rig={bench}&lesion=soft-stenosis", timeout=0.1)
    try:
        rig = port.sim.rig
        assert rig.load_cell_part.name == "hx711-80"
        assert rig.params.load_cell_full_scale_n == 10.0
        assert rig.params.backlash_mm == 0.05
        assert rig.params.encoder_resolution_um == 5.0
        assert rig.params.track_winding is True
        assert port.device.hard.load_cell_rail_mn == 10_000  # the firmware's rail too
    finally:
        port.close()
    # the URL's load_cell wins over the file's
    port = serial.serial_for_url(f"sim://?rig={bench}&load_cell=ads1220-660", timeout=0.1)
    try:
        assert port.sim.rig.load_cell_sample_hz == 660.0
        assert port.sim.rig.params.backlash_mm == 0.05
    finally:
        port.close()


@pytest.mark.parametrize(
    ("text", "said"),
    [
        ("[mechanics]\nbacklash = 0.1\n", "[mechanics] unknown key 'backlash'"),
        ("[mechanics]\nthrust_limit_n = 0\n", "thrust_limit_n = 0 must be > 0"),
        ("[mechanics]\ntrack_winding = 1\n", "track_winding must be true or false"),
        ('[load_cell]\npart = "hx9"\n', "unknown load cell part 'hx9'"),
        ("[motor]\n", "unknown section(s) motor"),
        ("[mechanics\n", "not valid TOML"),
    ],
)
def test_a_bad_rig_file_is_one_line(tmp_path: Path, text: str, said: str) -> None:
    bad = tmp_path / "bad.toml"
    bad.write_text(text)
    with pytest.raises(RigFileError) as err:
        read_rig_file(bad)
    assert said in str(err.value) and "\n" not in str(err.value)
    assert str(err.value).startswith(str(bad))
    with pytest.raises(serial.SerialException, match=r"bad\.toml"):
        serial.serial_for_url(f"sim://?rig={bad}", timeout=0.1)
