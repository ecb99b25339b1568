"""A lesion file's path in a sim:// URL: percent-encoded it opens, and a bare '+' (which
a URL query reads as a space) fails with one line saying how to write it."""

from __future__ import annotations

import shutil
from pathlib import Path
from urllib.parse import quote

import pytest
import serial

import sim_device  # noqa: F401
from firmware_host.cli.runcmd import sim_target_mm
from hil_tests.session import with_lesion
from sim_device.lesions import LIBRARY_DIR


@pytest.fixture
def plus_path(tmp_path: Path) -> Path:
    folder = tmp_path / "a+b"
    folder.mkdir()
    path = folder / "x.toml"
    shutil.copy(LIBRARY_DIR / "soft-stenosis.toml", path)
    return path


def test_a_percent_encoded_path_with_plus_opens(plus_path: Path) -> None:
    url = f"sim://?lesion={quote(str(plus_path))}&seed=1"
    assert "%2B" in url
    port = serial.serial_for_url(url, timeout=0.1)
    try:
        assert port.device.rig.lesion.source == str(plus_path)
    finally:
        port.close()
    assert sim_target_mm(url) == 38.0  # soft-stenosis ends at 36 mm, + 2


def test_a_bare_plus_is_refused_with_the_fix(plus_path: Path) -> None:
    with pytest.raises(Exception, match=r"a '\+' in a sim:// URL reads as a space: write it %2B"):
        serial.serial_for_url(f"sim://?lesion={plus_path}", timeout=0.1)


def test_the_hil_suite_quotes_the_paths_it_puts_in_urls(plus_path: Path) -> None:
    url = with_lesion("sim://?defect=watchdog_disabled&lesion=fibrous-cto", plus_path)
    port = serial.serial_for_url(url, timeout=0.1)
    try:
        assert port.device.rig.lesion.source == str(plus_path)
        assert port.device.defect == "watchdog_disabled"
    finally:
        port.close()


def test_needlectl_help_says_lesion_takes_a_path_and_how_to_quote_it() -> None:
    from firmware_host.cli.app import DESCRIPTION

    assert "lesion file's PATH" in DESCRIPTION and "%2B" in DESCRIPTION
