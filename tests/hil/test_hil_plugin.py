"""The plugin itself: one clear line when the device cannot be reached, harmless in runs
without HIL tests, and the rig file in force."""

from __future__ import annotations

import os
import subprocess
import sys
import tty
from pathlib import Path

from hil_runner import REPO, run_hil, suite_timeout


def _one_line_exit(output: str, starts: str) -> str:
    lines = [ln for ln in output.splitlines() if "needle-hil:" in ln]
    assert lines, output[-2000:]
    assert len(lines) == 1, lines
    assert "Traceback" not in output, output[-2000:]
    assert starts in lines[0], lines[0]
    return lines[0]


@suite_timeout()
def test_missing_port_stops_at_once_with_one_line(tmp_path: Path) -> None:
    run = run_hil(["--port", "/dev/ttyNOSUCH0"], tmp_path, timeout_s=60)
    assert run.returncode == 4, run.output[-2000:]
    line = _one_line_exit(run.output, "cannot open port /dev/ttyNOSUCH0")
    assert "no such port" in line
    # nothing ran: no screen of errors, one per test
    assert all(v != "failed" for v in run.outcomes.values())


@suite_timeout()
def test_bad_simulator_url_stops_with_one_line(tmp_path: Path) -> None:
    run = run_hil(["--port", "sim://?defect=bogus"], tmp_path, timeout_s=60)
    assert run.returncode == 4, run.output[-2000:]
    _one_line_exit(run.output, "unknown firmware defect 'bogus'")


@suite_timeout()
def test_silent_port_stops_with_one_line(tmp_path: Path) -> None:
    # a real pty with nothing behind it: it opens, but no device answers
    master, slave = os.openpty()
    tty.setraw(slave)
    try:
        run = run_hil(["--port", os.ttyname(slave)], tmp_path, timeout_s=60)
    finally:
        os.close(master)
        os.close(slave)
    assert run.returncode == 4, run.output[-2000:]
    _one_line_exit(run.output, "no needle-driver device answering")


@suite_timeout()
def test_bad_rig_config_stops_with_one_line(tmp_path: Path) -> None:
    rig = tmp_path / "rig.toml"
    rig.write_text("[motion]\ntest_depht_mm = 10\n")
    run = run_hil(["--rig-config", str(rig)], tmp_path, timeout_s=60)
    assert run.returncode == 4
    _one_line_exit(run.output, "unknown key motion.test_depht_mm")


@suite_timeout()
def test_rig_config_is_in_force(tmp_path: Path) -> None:
    rig = tmp_path / "rig.toml"
    rig.write_text(
        "[identity]\ntravel_mm = 100\n\n[motion]\ntest_depth_mm = 8\nfull_travel = false\n"
    )
    run = run_hil(
        ["--rig-config", str(rig), "-k", "identity_matches or hard_travel"],
        tmp_path,
        timeout_s=120,
    )
    ident = "test_handshake.py::test_identity_matches_protocol_and_schema"
    hard = "test_motion_limits.py::test_hard_travel_limit"
    assert run.outcomes[ident] == "failed", "travel 100 mm expected, the simulator has 150"
    assert run.outcomes[hard] == "skipped"
    assert "full_travel" in run.skip_reasons[hard]


def test_plugin_is_harmless_outside_the_suite(tmp_path: Path) -> None:
    (tmp_path / "test_plain.py").write_text("def test_plain():\n    assert 1 + 1 == 2\n")
    junit = tmp_path / "plain.xml"
    # --port names a device that does not exist: nothing may try to open it
    proc = subprocess.run(
        [
            sys.executable,
            "-m",
            "pytest",
            "-q",
            "-p",
            "no:cacheprovider",
            "--rootdir",
            str(tmp_path),
            str(tmp_path / "test_plain.py"),
            "--port",
            "/dev/ttyNOSUCH0",
            "--junitxml",
            str(junit),
        ],
        cwd=tmp_path,
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert proc.returncode == 0, proc.stdout + proc.stderr
    assert junit.exists()
    made = sorted(p.name for p in tmp_path.iterdir() if p.name != "__pycache__")
    assert made == ["plain.xml", "test_plain.py"], "a HIL report written for a plain run"


@suite_timeout()
def test_explicit_report_path(tmp_path: Path) -> None:
    report = tmp_path / "lab" / "figures.json"
    run = run_hil(["-k", "identity_matches", "--hil-report", str(report)], tmp_path)
    assert run.returncode == 0, run.output[-2000:]
    assert report.exists()
    assert "figures written to" in run.output
    assert REPO.joinpath("hil-report.json").exists() is False


def test_example_rig_file_sets_every_key() -> None:
    from dataclasses import fields

    from hil_tests.rig import RigConfig, load_rig_config

    example = REPO / "hil_tests" / "rig.example.toml"
    cfg = load_rig_config(example)
    unset = [f.name for f in fields(RigConfig) if getattr(cfg, f.name) == f.default]
    assert unset == [], f"rig.example.toml leaves {unset} at their defaults"


def test_rig_file_type_errors_are_one_line(tmp_path: Path) -> None:
    import pytest

    from hil_tests.rig import RigConfigError, load_rig_config

    cases = {
        "[motion]\nspeed_mm_s = 'fast'\n": "motion.speed_mm_s must be a number",
        "[motion]\nfull_travel = 1\n": "motion.full_travel must be true or false",
        "[stall]\nblock_depth_mm = -3\n": "stall.block_depth_mm must not be negative",
        "[wheels]\nx = 1\n": "unknown section [wheels]",
        "[motion\n": "not valid TOML",
    }
    for text, message in cases.items():
        rig = tmp_path / "rig.toml"
        rig.write_text(text)
        with pytest.raises(RigConfigError, match=message.replace("[", r"\[")) as info:
            load_rig_config(rig)
        assert "\n" not in str(info.value)
    with pytest.raises(RigConfigError, match="No such file"):
        load_rig_config(tmp_path / "absent.toml")
