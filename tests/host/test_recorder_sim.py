"""Recording a simulated run (sim://, virtual clock)."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest

from firmware_host.client import NeedleDriver
from firmware_host.recorder import META_FILE, Recorder, read_events, read_telemetry


def test_records_a_simulated_run(tmp_path: Path) -> None:
    with NeedleDriver.open("sim://?seed=8") as nd:
        rec = Recorder.start(tmp_path, nd, profile={"name": "test"})
        nd.set_telemetry(1000, 10)
        nd.home()
        rec.note("phase", name="advance")
        nd.advance_mm(1.0, 2.0)
        nd.wait_idle(10.0)
        rec.close()
        received = nd.stats.telemetry_samples
    data = read_telemetry(tmp_path)
    assert len(data) == received > 1000
    assert np.all(np.diff(data["host_time_s"]) > 0)
    assert data["depth_mm"][-1] == pytest.approx(1.0, abs=0.05)
    kinds = [(e["source"], e.get("code") or e["kind"]) for e in read_events(tmp_path)]
    assert ("device", "HOMED") in kinds and ("host", "phase") in kinds
    assert ("device", "TARGET_REACHED") in kinds
    meta = json.loads((tmp_path / META_FILE).read_text())
    assert meta["device"]["simulated"] is True
    assert meta["link_stats"]["telemetry_samples_lost"] == 0
