"""The rig live in the Foxglove WebSocket protocol (opt-in: `needle-driver[foxglove]`,
`needlectl serve --foxglove-port N`), so a lab's existing viewer (Foxglove, Lichtblick)
shows the rig as it moves.

The foxglove-sdk (the protocol's maintainers' own server, in Rust behind Python) serves
three channels with the same JSON schemas as run.mcap: ``/telemetry`` (every sample, at
the device's rate), ``/events`` and ``/notes``. It is read-only — no client publishing,
no services, no parameters: a viewer can watch, never drive. The protocol has no token,
so this listener is not guarded like the API: every local user can watch (docs/
operator.md §14); it listens on loopback unless the server was started --allow-remote.
"""

from __future__ import annotations

import time
from typing import Any

import numpy as np

from firmware_host.mcap_export import (
    EVENT_SCHEMA,
    EVENTS_TOPIC,
    NOTE_SCHEMA,
    NOTES_TOPIC,
    TELEMETRY_SCHEMA,
    TELEMETRY_TOPIC,
)
from firmware_host.recorder import TELEMETRY_COLUMNS


class FoxgloveUnavailable(RuntimeError):
    """The extra is not installed."""


class FoxgloveLive:
    def __init__(self, host: str, port: int) -> None:
        try:
            import foxglove
        except ImportError:
            raise FoxgloveUnavailable(
                "--foxglove-port needs the foxglove extra: pip install 'needle-driver[foxglove]'"
            ) from None
        self._context = foxglove.Context()  # its own: nothing else in the process logs to it
        self.server = foxglove.start_server(
            name="needle-driver", host=host, port=port, context=self._context
        )
        self.port = int(self.server.port)
        self._telemetry = foxglove.Channel(
            TELEMETRY_TOPIC, schema=TELEMETRY_SCHEMA, context=self._context
        )
        self._events = foxglove.Channel(EVENTS_TOPIC, schema=EVENT_SCHEMA, context=self._context)
        self._notes = foxglove.Channel(NOTES_TOPIC, schema=NOTE_SCHEMA, context=self._context)

    def rows(self, rows: Any) -> None:
        """Every sample of a batch (on the server's loop, every PUBLISH_S) — only while a
        viewer subscribes to it."""
        if not self._telemetry.has_sinks() or len(rows) == 0:
            return
        now_ns = time.time_ns()
        columns = [rows[c].tolist() for c in TELEMETRY_COLUMNS]
        ints = {"state", "flags"}
        for values in zip(*columns, strict=True):
            sample = {
                c: (int(v) if c in ints else v)
                for c, v in zip(TELEMETRY_COLUMNS, values, strict=True)
            }
            self._telemetry.log(sample, log_time=now_ns)

    def event(self, event: dict[str, Any]) -> None:
        if self._events.has_sinks():
            self._events.log(_plain(event), log_time=time.time_ns())

    def note(self, note: dict[str, Any]) -> None:
        if self._notes.has_sinks():
            self._notes.log(_plain(note), log_time=time.time_ns())

    def stop(self) -> None:
        self.server.stop()


def _plain(d: dict[str, Any]) -> dict[str, Any]:
    return {k: (v.item() if isinstance(v, np.generic) else v) for k, v in d.items()}
