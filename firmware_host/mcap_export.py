"""A run folder as MCAP (run.mcap): the file Foxglove, Lichtblick and PlotJuggler open.

Three JSON channels, each with a JSON schema (units in every field name, as in the CSV):
``/telemetry`` (every sample of telemetry.csv), ``/events`` (the device's events) and
``/notes`` (the host's notes: the procedure's phases, holds, cracks, punctures, pecks,
and who stopped the run). Message times are wall-clock nanoseconds: the recording's
``start_time_utc`` plus the sample's host time since ``start_host_time_s`` (meta.json),
so a viewer's clock reads the bench's time. The folder's files stay the source: the
MCAP is written from them at the end of a run, or later by ``needlectl export RUN
--mcap`` for folders recorded before.
"""

from __future__ import annotations

import datetime as dt
import json
import math
from collections.abc import Iterator
from pathlib import Path
from typing import Any

from firmware_host.recorder import (
    EVENTS_FILE,
    META_FILE,
    TELEMETRY_COLUMNS,
    TELEMETRY_FILE,
    read_events,
)

MCAP_FILE = "run.mcap"
TELEMETRY_TOPIC = "/telemetry"
EVENTS_TOPIC = "/events"
NOTES_TOPIC = "/notes"
_INTEGER_COLUMNS = ("state", "flags")  # written as integers in the CSV too

TELEMETRY_SCHEMA = {
    "type": "object",
    "title": "needle_driver.TelemetrySample",
    "properties": {
        c: {"type": "integer" if c in _INTEGER_COLUMNS else "number"} for c in TELEMETRY_COLUMNS
    },
}
EVENT_SCHEMA = {
    "type": "object",
    "title": "needle_driver.DeviceEvent",
    "properties": {
        "number": {"type": "integer"},
        "device_time_s": {"type": "number"},
        "host_time_s": {"type": "number"},
        "code": {"type": "string"},
        "value": {"type": "integer"},
    },
}
NOTE_SCHEMA = {
    "type": "object",
    "title": "needle_driver.HostNote",
    "properties": {"kind": {"type": "string"}, "host_time_s": {"type": "number"}},
    "additionalProperties": True,
}


class ExportError(ValueError):
    """A folder that is not a run folder."""


def write_mcap(run_dir: str | Path, out: str | Path | None = None) -> Path:
    """Write the run folder's MCAP (default DIR/run.mcap); returns its path."""
    from mcap.writer import Writer

    folder = Path(run_dir)
    for needed in (META_FILE, EVENTS_FILE):
        if not (folder / needed).is_file():
            raise ExportError(f"{folder} is not a run folder: no {needed}")
    try:
        meta: dict[str, Any] = json.loads((folder / META_FILE).read_text(encoding="utf-8"))
    except ValueError as exc:
        raise ExportError(f"{folder / META_FILE}: not JSON ({exc})") from None
    to_ns = _wall_clock_ns(meta)
    events = read_events(folder)
    target = Path(out) if out is not None else folder / MCAP_FILE
    tmp = target.with_name(target.name + ".tmp")
    with open(tmp, "wb") as f:
        w = Writer(f)
        w.start(profile="", library="needle-driver")
        ids = {
            topic: w.register_channel(
                topic=topic,
                message_encoding="json",
                schema_id=w.register_schema(
                    name=str(schema["title"]),
                    encoding="jsonschema",
                    data=json.dumps(schema).encode(),
                ),
            )
            for topic, schema in (
                (TELEMETRY_TOPIC, TELEMETRY_SCHEMA),
                (EVENTS_TOPIC, EVENT_SCHEMA),
                (NOTES_TOPIC, NOTE_SCHEMA),
            )
        }
        for seq, (host_time_s, body) in enumerate(_sample_messages(folder)):
            t_ns = to_ns(host_time_s)
            w.add_message(
                channel_id=ids[TELEMETRY_TOPIC],
                log_time=t_ns,
                publish_time=t_ns,
                sequence=seq,
                data=body,
            )
        for seq, event in enumerate(events):
            topic = EVENTS_TOPIC if event.get("source") == "device" else NOTES_TOPIC
            fields = {k: v for k, v in event.items() if k != "source"}
            t_ns = to_ns(float(event.get("host_time_s") or 0.0))
            w.add_message(
                channel_id=ids[topic],
                log_time=t_ns,
                publish_time=t_ns,
                sequence=seq,
                data=json.dumps(fields, separators=(",", ":")).encode(),
            )
        w.finish()  # type: ignore[no-untyped-call]
    tmp.replace(target)
    return target


def _sample_messages(folder: Path) -> Iterator[tuple[float, bytes]]:
    """(host_time_s, JSON body) per row of telemetry.csv, built from the CSV's own text:
    its numbers are JSON numbers already, and formatting 1 kHz rows through json.dumps
    would triple the time a run's end takes. Rows as read_telemetry keeps them: a last
    line cut short by a kill, or a malformed one, is skipped; a non-finite value is null."""
    file = folder / TELEMETRY_FILE
    if not file.is_file():
        return
    text = file.read_text(encoding="ascii")
    lines = text.splitlines()
    if lines and not text.endswith("\n"):
        lines.pop()  # cut short by a kill mid-write
    if not lines:
        return
    header = lines[0].split(",")
    keys = [f'"{h}":' for h in header]
    n = len(header)
    at = header.index("host_time_s") if "host_time_s" in header else None
    for line in lines[1:]:
        fields = line.split(",")
        if len(fields) != n:
            continue
        try:
            if "n" in line:  # nan or inf (no other number has an n): no JSON numbers
                fields = [f if math.isfinite(float(f)) else "null" for f in fields]
            host_time_s = float(fields[at]) if at is not None else 0.0
        except ValueError:
            continue  # not numbers: skipped, as read_telemetry does
        body = "{" + ",".join([k + f for k, f in zip(keys, fields, strict=True)]) + "}"
        yield host_time_s, body.encode()


def _wall_clock_ns(meta: dict[str, Any]) -> Any:
    """host_time_s -> Unix ns, through the recording's start (UTC and host clock)."""
    try:
        start = dt.datetime.fromisoformat(str(meta["start_time_utc"]))
        start_host_s = float(meta["start_host_time_s"])
    except (KeyError, ValueError, TypeError):
        start, start_host_s = dt.datetime.fromtimestamp(0, dt.UTC), 0.0
    start_ns = int(start.timestamp() * 1e9)

    def to_ns(host_time_s: float) -> int:
        return max(0, start_ns + round((host_time_s - start_host_s) * 1e9))

    return to_ns
