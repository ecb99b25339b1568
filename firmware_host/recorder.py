"""A run folder: telemetry (CSV), events (JSON lines), metadata (meta.json) and, when the
run ends, the same as MCAP (run.mcap, firmware_host.mcap_export) for the robotics tools.
The format is documented in docs/recording.md.

Durability: rows are written as they arrive and the files are flushed to the OS by a
small flusher thread every ``flush_s`` (0.2 s) — a process killed with SIGKILL loses at
most what arrived since the last flush. (The OS keeps flushed data across a process
kill; ``fsync`` is only needed against power loss, and is done at close.)
"""

from __future__ import annotations

import contextlib
import datetime as dt
import json
import os
import threading
from pathlib import Path
from typing import IO, Any

import numpy as np

import firmware_host
from firmware_host.telemetry import TelemetryRows
from protocol import SCHEMA_HASH, DeviceState, SampleFlags

TELEMETRY_FILE = "telemetry.csv"
EVENTS_FILE = "events.jsonl"
META_FILE = "meta.json"
TELEMETRY_COLUMNS = (
    "host_time_s",
    "device_time_s",
    "depth_mm",
    "commanded_depth_mm",
    "angle_deg",
    "force_n",
    "state",
    "flags",
)
_ROW_FORMAT = "%.6f,%.6f,%.3f,%.3f,%.2f,%.3f,%d,%d\n"
FLUSH_S = 0.2


class Recorder:
    """Records a NeedleDriver's telemetry and events, and any host notes, to a folder."""

    def __init__(
        self,
        path: str | os.PathLike[str],
        nd: Any = None,
        *,
        profile: Any = None,
        port: str | None = None,
        extra_meta: dict[str, Any] | None = None,
        flush_s: float = FLUSH_S,
        mcap: bool = True,
    ) -> None:
        self.path = Path(path)
        self._mcap = mcap
        self.path.mkdir(parents=True, exist_ok=True)
        self._lock = threading.Lock()
        self._nd = nd
        self._clock = nd.clock if nd is not None else None
        self.rows_written = 0
        self.events_written = 0
        self._closed = False
        new_csv = not (self.path / TELEMETRY_FILE).exists()
        self._telemetry: IO[str] = open(self.path / TELEMETRY_FILE, "a", encoding="ascii")  # noqa: SIM115
        if new_csv:
            self._telemetry.write(",".join(TELEMETRY_COLUMNS) + "\n")
        self._events: IO[str] = open(self.path / EVENTS_FILE, "a", encoding="utf-8")  # noqa: SIM115
        from firmware_host.simulation import simulation_of

        port_name = port if port is not None else (nd.url if nd is not None else None)
        simulation = simulation_of(port_name, getattr(nd, "identity", None))
        self.meta: dict[str, Any] = {
            "format": "needle-driver run folder v1",
            # None on a real device; else the lesion and seed (None when not known)
            "simulation": simulation,
            "library_version": firmware_host.__version__,
            "schema_hash": f"{SCHEMA_HASH:#010x}",
            "start_time_utc": dt.datetime.now(dt.UTC).isoformat(),
            "start_host_time_s": self._now_s(),
            "port": port_name,
            "profile": profile,
            "device": _identity_dict(nd),
            "states": {s.name: int(s) for s in DeviceState},
            "flags": {f.name: int(f) for f in SampleFlags},
        }
        if extra_meta:
            self.meta.update(extra_meta)
        self._write_meta()
        self._unsubscribe: list[Any] = []
        if nd is not None:
            self._unsubscribe.append(nd.telemetry.subscribe(self.write_rows))
            self._unsubscribe.append(nd.add_event_listener(self._on_device_event))
        self._stop = threading.Event()
        self._flusher = threading.Thread(target=self._flush_loop, args=(flush_s,), daemon=True)
        self._flusher.start()

    @classmethod
    def start(cls, path: str | os.PathLike[str], nd: Any = None, **kwargs: Any) -> Recorder:
        return cls(path, nd, **kwargs)

    def __enter__(self) -> Recorder:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    # ---------------------------------------------------------------- writing

    def write_rows(self, rows: TelemetryRows) -> None:
        """Append telemetry rows (TELEMETRY_DTYPE) to telemetry.csv."""
        if len(rows) == 0:
            return
        cols = [rows[name] for name in TELEMETRY_COLUMNS]
        text = "".join(_ROW_FORMAT % r for r in zip(*(c.tolist() for c in cols), strict=True))
        with self._lock:
            if self._closed:
                return
            self._telemetry.write(text)
            self.rows_written += len(rows)

    def note(self, kind: str, **fields: Any) -> None:
        """A host-side event (a procedure phase, an operator action): one JSON line with
        source "host", the kind, the host time and the given fields."""
        self._write_event({"source": "host", "kind": kind, "host_time_s": self._now_s(), **fields})

    def _on_device_event(self, event: Any) -> None:
        self._write_event({"source": "device", "kind": "event", **event.as_dict()})

    def _write_event(self, record: dict[str, Any]) -> None:
        line = json.dumps(record, default=_jsonable) + "\n"
        with self._lock:
            if self._closed:
                return
            self._events.write(line)
            self.events_written += 1
            # events are rare and precious: flush each one now
            self._events.flush()

    def flush(self) -> None:
        with self._lock:
            if self._closed:
                return
            self._telemetry.flush()
            self._events.flush()

    def _flush_loop(self, flush_s: float) -> None:
        while not self._stop.wait(flush_s):
            self.flush()

    def close(self, **summary: Any) -> None:
        """Stop recording; add the end time, link statistics and any summary to meta.json."""
        if self._closed:
            return
        for unsubscribe in self._unsubscribe:
            with contextlib.suppress(Exception):
                unsubscribe()
        self._stop.set()
        self._flusher.join(timeout=1.0)
        with self._lock:
            self._closed = True
            for f in (self._telemetry, self._events):
                f.flush()
                os.fsync(f.fileno())
                f.close()
        end_s = self._now_s()
        self.meta["end_time_utc"] = self._end_time_utc(end_s)
        self.meta["end_host_time_s"] = end_s
        self.meta["rows"] = self.rows_written
        self.meta["events"] = self.events_written
        if self._nd is not None:
            self.meta["link_stats"] = self._nd.stats.as_dict()
            self.meta["telemetry_samples_lost"] = self._nd.stats.telemetry_samples_lost
        if summary:
            self.meta["summary"] = summary
        self._write_meta()
        if self._mcap:
            self._write_mcap()

    def _end_time_utc(self, end_s: float) -> str:
        """The wall clock is read once, at the start: it may be stepped mid-run (NTP, an
        operator, a dead RTC battery), and an end before the start, or a run of an hour
        that lasted a second, would make the folder lie. The end is the start plus what
        the monotonic host clock measured (RC-WALLCLOCK)."""
        start_utc = dt.datetime.fromisoformat(str(self.meta["start_time_utc"]))
        elapsed = dt.timedelta(seconds=end_s - float(self.meta["start_host_time_s"]))
        return (start_utc + elapsed).isoformat()

    def _write_mcap(self) -> None:
        """The run as MCAP, from the files just closed. Failing it loses nothing: the
        folder is whole, and `needlectl export DIR --mcap` can write it later."""
        from firmware_host.mcap_export import write_mcap

        try:
            write_mcap(self.path)
        except (OSError, ValueError) as exc:
            import logging

            logging.getLogger("needlectl.record").warning(
                "%s: no run.mcap (%s): needlectl export %s --mcap writes it",
                self.path,
                exc,
                self.path,
            )

    # ---------------------------------------------------------------- helpers

    def _now_s(self) -> float:
        if self._clock is not None:
            return float(self._clock.monotonic())
        import time

        return time.monotonic()

    def _write_meta(self) -> None:
        tmp = self.path / (META_FILE + ".tmp")
        tmp.write_text(json.dumps(self.meta, indent=2, default=_jsonable) + "\n")
        os.replace(tmp, self.path / META_FILE)


def _identity_dict(nd: Any) -> dict[str, Any] | None:
    ident = getattr(nd, "identity", None)
    if ident is None:
        return None
    import dataclasses

    out = dataclasses.asdict(ident)
    out["capabilities"] = int(out["capabilities"])
    out["schema_hash"] = f"{ident.schema_hash:#010x}"
    return out


def _jsonable(value: Any) -> Any:
    if isinstance(value, np.generic):
        return value.item()
    if isinstance(value, np.ndarray):
        return value.tolist()
    if isinstance(value, Path):
        return str(value)
    if hasattr(value, "name") and hasattr(value, "value"):
        return value.name  # enums
    return str(value)


def read_telemetry(path: str | os.PathLike[str]) -> Any:
    """A run folder's telemetry as a numpy structured array (columns as in the header).
    A last line cut short by a kill is skipped."""
    file = Path(path) / TELEMETRY_FILE if Path(path).is_dir() else Path(path)
    text = file.read_text(encoding="ascii")
    lines = text.splitlines()
    if lines and not text.endswith("\n"):
        lines.pop()  # cut short by a kill mid-write
    if not lines:
        return np.empty(0)
    header = lines[0].split(",")
    good = [ln for ln in lines[1:] if ln.count(",") == len(header) - 1]
    dtype = [(h, np.float64) for h in header]
    if not good:
        return np.empty(0, dtype=dtype)
    data = np.loadtxt(good, delimiter=",", dtype=np.float64, ndmin=2)
    out = np.empty(len(data), dtype=dtype)
    for i, h in enumerate(header):
        out[h] = data[:, i]
    return out


def read_events(path: str | os.PathLike[str]) -> list[dict[str, Any]]:
    """A run folder's events (a last line cut short by a kill is skipped)."""
    file = Path(path) / EVENTS_FILE if Path(path).is_dir() else Path(path)
    out = []
    for line in file.read_text(encoding="utf-8").splitlines():
        with contextlib.suppress(json.JSONDecodeError):
            out.append(json.loads(line))
    return out
