"""A recorded run as MCAP: every run folder gets run.mcap, which the mcap library's own
reader reads back with every sample, event and note; `needlectl export RUN --mcap`
writes it for a folder recorded before (one without it)."""

from __future__ import annotations

import json
from pathlib import Path
from typing import TYPE_CHECKING, Any

from firmware_host.recorder import read_events, read_telemetry

if TYPE_CHECKING:
    from conftest import Cli

SOFT = "sim://?lesion=soft-stenosis&seed=2"


def _read_mcap(path: Path) -> dict[str, list[dict[str, Any]]]:
    from mcap.reader import make_reader

    by_topic: dict[str, list[dict[str, Any]]] = {}
    with open(path, "rb") as f:
        reader = make_reader(f)
        for schema, channel, message in reader.iter_messages(log_time_order=False):
            assert schema is not None and schema.encoding == "jsonschema"
            assert channel.message_encoding == "json"
            by_topic.setdefault(channel.topic, []).append(json.loads(message.data))
    return by_topic


def test_a_recorded_run_reads_back_from_mcap_with_every_sample(cli: Cli, tmp_path: Path) -> None:
    run_dir = tmp_path / "run"
    proc = cli.run("--port", SOFT, "run", "pierce", "--record", str(run_dir))
    assert proc.returncode == 0, proc.stderr
    rows = read_telemetry(run_dir)
    events = read_events(run_dir)
    assert len(rows) > 1000
    topics = _read_mcap(run_dir / "run.mcap")
    samples = topics["/telemetry"]
    assert len(samples) == len(rows)  # every sample, none more
    for name in ("device_time_s", "depth_mm", "force_n", "angle_deg", "host_time_s"):
        assert [s[name] for s in samples] == rows[name].tolist(), name
    assert [s["state"] for s in samples] == rows["state"].astype(int).tolist()
    device = [e for e in events if e["source"] == "device"]
    notes = [e for e in events if e["source"] == "host"]
    assert [e["number"] for e in topics["/events"]] == [e["number"] for e in device]
    assert [n["kind"] for n in topics["/notes"]] == [n["kind"] for n in notes]
    assert {"home", "end"} <= {n["kind"] for n in topics["/notes"]}
    # an older run (recorded before run.mcap): export writes the same file
    (run_dir / "run.mcap").unlink()
    proc = cli.run("--json", "export", str(run_dir), "--mcap")
    assert proc.returncode == 0, proc.stderr
    assert json.loads(proc.stdout)["mcap"] == str(run_dir / "run.mcap")
    again = _read_mcap(run_dir / "run.mcap")
    assert again == topics


def test_export_of_what_is_not_a_run_is_one_line(cli: Cli, tmp_path: Path) -> None:
    line = cli.one_line_error(cli.run("export", str(tmp_path), "--mcap"), 2)
    assert "not a run folder" in line and str(tmp_path) in line
    line = cli.one_line_error(cli.run("export", str(tmp_path / "nope"), "--mcap"), 2)
    assert "no run folder" in line
    line = cli.one_line_error(cli.run("export", str(tmp_path)), 2)
    assert "--mcap" in line
