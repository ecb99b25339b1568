"""The run folder: CSV telemetry readable by numpy, JSON-lines events, meta.json, appending,
and durability when the recording process is killed with SIGKILL."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest

from firmware_host.recorder import (
    EVENTS_FILE,
    FLUSH_S,
    META_FILE,
    TELEMETRY_COLUMNS,
    TELEMETRY_FILE,
    Recorder,
    read_events,
    read_telemetry,
)
from firmware_host.telemetry import TELEMETRY_DTYPE


def _rows(first: int, n: int) -> np.ndarray:
    rows = np.zeros(n, dtype=TELEMETRY_DTYPE)
    rows["sample_number"] = np.arange(first, first + n)
    rows["host_time_s"] = rows["sample_number"] * 0.001
    rows["device_time_s"] = rows["sample_number"] * 0.001 + 0.5
    rows["depth_mm"] = rows["sample_number"] / 100.0
    rows["force_n"] = -1.25
    rows["state"] = 3
    rows["flags"] = 0x83
    return rows


@pytest.mark.control("RC-PROFILERECORD")
def test_folder_format_round_trips(tmp_path: Path) -> None:
    run = tmp_path / "run1"
    rec = Recorder(run, profile={"name": "pierce"}, port="sim://")
    rec.write_rows(_rows(0, 25))
    rec.note("hold", depth_mm=1.5, force_n=3.0)
    rec.close(outcome="crossed")
    data = read_telemetry(run)
    assert data.dtype.names == TELEMETRY_COLUMNS
    assert len(data) == 25
    assert data["depth_mm"][-1] == pytest.approx(0.24)
    assert data["device_time_s"][3] == pytest.approx(0.503)
    assert set(data["state"]) == {3.0} and set(data["flags"]) == {131.0}
    # plain numpy reads it too, by column name
    plain = np.genfromtxt(run / TELEMETRY_FILE, delimiter=",", names=True)
    assert plain["force_n"][0] == pytest.approx(-1.25)
    events = read_events(run)
    assert events[0]["source"] == "host" and events[0]["kind"] == "hold"
    assert events[0]["depth_mm"] == 1.5 and "host_time_s" in events[0]
    meta = json.loads((run / META_FILE).read_text())
    for key in ("library_version", "schema_hash", "start_time_utc", "profile", "rows"):
        assert key in meta
    assert meta["profile"] == {"name": "pierce"} and meta["rows"] == 25
    assert meta["summary"] == {"outcome": "crossed"}


def test_reopening_appends_without_a_second_header(tmp_path: Path) -> None:
    with Recorder(tmp_path) as rec:
        rec.write_rows(_rows(0, 5))
    with Recorder(tmp_path) as rec:
        rec.write_rows(_rows(5, 5))
    text = (tmp_path / TELEMETRY_FILE).read_text()
    assert text.count("host_time_s") == 1
    assert list(read_telemetry(tmp_path)["depth_mm"]) == pytest.approx(list(np.arange(10) / 100.0))


@pytest.mark.control("RC-RECORDER")
def test_sigkill_loses_only_what_came_since_the_last_flush(tmp_path: Path) -> None:
    """A slow stream (100 rows/s: the file buffer alone would hold ~1.8 s of it), killed
    with SIGKILL 1.5 s in: the rows handed over up to one flush period (0.2 s) before the
    kill are on disk, whole and in order. The last row handed is read from the child's
    own report after the kill; the bound has 0.5 s of margin for a busy machine waking
    the flusher late."""
    run = tmp_path / "killed"
    child = subprocess.Popen(
        [sys.executable, str(Path(__file__).with_name("recording_child.py")), str(run), "0.1"],
        stdout=subprocess.PIPE,
        text=True,
        cwd=Path(__file__).parents[2],
        env={**os.environ, "PYTHONPATH": str(Path(__file__).parents[2])},
    )
    assert child.stdout is not None
    for line in child.stdout:  # blocks until the child reports; no sleeping
        if float(line) >= 1.5:
            break
    child.send_signal(signal.SIGKILL)
    rest = child.stdout.read()  # what it reported before the kill landed, to EOF
    child.wait(10)
    assert child.returncode == -signal.SIGKILL
    last_handed_s = float(([line, *rest.split()])[-1])
    data = read_telemetry(run)
    assert len(data) > 0, "nothing of 1.5 s on disk"
    lost_s = last_handed_s - data["host_time_s"][-1]
    assert lost_s <= FLUSH_S + 0.5, f"{lost_s:.3f} s of rows lost"
    # every recorded row is whole and in order
    assert np.all(np.diff(data["host_time_s"]) > 0)
    assert (run / META_FILE).exists() and (run / EVENTS_FILE).exists()
    assert read_events(run)[0]["kind"] == "start"


@pytest.mark.control("RC-WALLCLOCK")
def test_a_wall_clock_stepped_mid_run_leaves_the_record_true(tmp_path: Path) -> None:
    # the host's wall clock (time.time, datetime.now) stepped forward an hour, then back
    # two, while recording; time.monotonic is left alone (time-machine mocks the wall
    # clock only)
    import datetime as dt

    import time_machine

    with time_machine.travel(dt.datetime.now(dt.UTC), tick=True) as wall:
        rec = Recorder(tmp_path / "run", port="sim://")
        wall.shift(3600)
        rec.write_rows(_rows(0, 10))
        rec.note("hold", depth_mm=1.0)
        wall.shift(-7200)
        rec.note("hold_end", depth_mm=1.0)
        rec.close(outcome="crossed")
    meta = json.loads((tmp_path / "run" / META_FILE).read_text())
    span_s = (
        dt.datetime.fromisoformat(meta["end_time_utc"])
        - dt.datetime.fromisoformat(meta["start_time_utc"])
    ).total_seconds()
    mono_s = meta["end_host_time_s"] - meta["start_host_time_s"]
    assert 0.0 <= span_s < 60.0  # the wall clock at the end said an hour before the start
    assert span_s == pytest.approx(mono_s, abs=1e-3)
    notes = read_events(tmp_path / "run")
    assert notes[0]["host_time_s"] <= notes[1]["host_time_s"]
