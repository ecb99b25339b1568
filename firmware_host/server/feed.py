"""The rig server's clients and what they are sent.

Everything that reaches the clients from the library's threads — telemetry rows, device
events, the keeper's state, a run's progress, a lost link — comes into the asyncio loop
one way: ``from_thread`` (``call_soon_threadsafe``). On the loop, a message goes to the
clients subscribed to its topic through each client's bounded queue: a client that stops
reading fills it and is cut off, never slowing the loop or the other clients. Telemetry
is gathered on the loop and sent every PUBLISH_S, decimated for display.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import logging
from collections import deque
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

import numpy as np
from aiohttp import web

from firmware_host.server.messages import to_wire

if TYPE_CHECKING:
    from firmware_host.client import DeviceEvent
    from firmware_host.server.foxglove_live import FoxgloveLive
    from firmware_host.telemetry import TelemetryRows

log = logging.getLogger("needlectl.serve")

OUT_QUEUE_MAX = 256  # messages waiting for one client; more = it is cut off
PUBLISH_S = 0.1  # telemetry goes out to clients in batches this often
DISPLAY_HZ = 50  # the 1 kHz stream decimated to this many points a second
BACKLOG_S = 300.0  # the display stream kept for clients that (re)connect: five minutes
# telemetry: decimated for display; telemetry_full: every sample (a logger's stream)
TOPICS = ("telemetry", "telemetry_full", "state", "events", "progress", "notes")


@dataclass(eq=False)
class Conn:
    """One client connection (a WebSocket on the Unix socket or on TCP)."""

    number: int
    ws: web.WebSocketResponse
    via: str  # "unix" or "tcp PEER"
    queue: asyncio.Queue[str]
    user: str = ""  # the peer's user name (Unix socket), or "" (the token's holder)
    topics: set[str] = field(default_factory=set)
    commanded_motion: bool = False
    cut_off: bool = False
    sender: asyncio.Task[None] | None = None

    @property
    def name(self) -> str:
        return f"client {self.number} ({self.via})"


class Feed:
    """The connected clients, their topics and queues; the telemetry display stream."""

    def __init__(self, client_queue: int = OUT_QUEUE_MAX) -> None:
        self.client_queue = client_queue
        self.conns: set[Conn] = set()
        self._numbers = 0
        self.clients_cut_off = 0
        self.telemetry_samples_out = 0
        self._rows: list[TelemetryRows] = []  # since the last publication (the loop's own)
        # the display stream's last BACKLOG_S, as sent: (device_time_s, depth_mm, force_n)
        self.backlog: deque[tuple[float, float, float]] = deque(maxlen=int(BACKLOG_S * DISPLAY_HZ))
        self.loop: asyncio.AbstractEventLoop | None = None
        self.foxglove: FoxgloveLive | None = None  # the opt-in Foxglove live stream

    # ---------------------------------------------------------------- from the threads

    def from_thread(self, fn: Callable[..., None], *args: Any) -> None:
        """Run fn(*args) on the loop: the one way in from the library's threads."""
        loop = self.loop
        if loop is not None and not loop.is_closed():
            with contextlib.suppress(RuntimeError):
                loop.call_soon_threadsafe(fn, *args)

    def on_rows(self, rows: TelemetryRows) -> None:  # the link's thread: keep it short
        self.from_thread(self._rows.append, rows)

    def on_event(self, event: DeviceEvent) -> None:
        msg = {"type": "event", **to_wire(event), "code_name": event.name}
        self.from_thread(self.broadcast, "events", msg)

    # ---------------------------------------------------------------- on the loop

    def connect(self, ws: web.WebSocketResponse, via: str, user: str = "") -> Conn:
        self._numbers += 1
        conn = Conn(self._numbers, ws, via, asyncio.Queue(self.client_queue), user)
        self.conns.add(conn)
        conn.sender = asyncio.create_task(self._send_loop(conn))
        return conn

    def disconnect(self, conn: Conn) -> None:
        self.conns.discard(conn)
        if conn.sender is not None:
            conn.sender.cancel()

    def send_backlog(self, conn: Conn) -> None:
        """The display trace so far, to a client that just subscribed to it."""
        if "telemetry" not in conn.topics or not self.backlog:
            return
        t, depth, force = zip(*self.backlog, strict=True)
        msg = {
            "type": "telemetry",
            "backlog": True,
            "device_time_s": list(t),
            "depth_mm": list(depth),
            "force_n": list(force),
            "samples_lost": None,
        }
        self.push(conn, json.dumps(msg, separators=(",", ":")))

    def note(self, text: str) -> None:
        self.broadcast("notes", {"type": "note", "text": text})

    def broadcast(self, topic: str, msg: dict[str, Any]) -> None:
        if self.foxglove is not None and topic in ("events", "notes"):
            self._to_foxglove(topic, msg)
        text = json.dumps(msg, separators=(",", ":"))
        for conn in list(self.conns):
            if topic in conn.topics:
                self.push(conn, text)

    def _to_foxglove(self, topic: str, msg: dict[str, Any]) -> None:
        live = self.foxglove
        assert live is not None
        if topic == "events":
            keys = ("number", "device_time_s", "host_time_s", "value")
            live.event({**{k: msg.get(k) for k in keys}, "code": msg.get("code_name")})
        else:
            live.note({k: v for k, v in msg.items() if k != "type"})

    def send_progress(self, owner: Conn, progress: dict[str, Any]) -> None:
        """A run's progress: to its owner, and to the clients that subscribed to it."""
        text = json.dumps({"type": "progress", **progress}, separators=(",", ":"))
        self.push(owner, text)
        for conn in list(self.conns):
            if conn is not owner and "progress" in conn.topics:
                self.push(conn, text)

    def push(self, conn: Conn, text: str) -> None:
        if conn.cut_off:
            return
        try:
            conn.queue.put_nowait(text)
        except asyncio.QueueFull:
            self._cut_off(conn)

    def _cut_off(self, conn: Conn) -> None:
        """A client that does not read what it asked for is dropped (and counted)."""
        conn.cut_off = True
        self.clients_cut_off += 1
        log.warning(
            "%s cut off: it stopped reading (%d messages waiting)", conn.name, self.client_queue
        )
        if conn.sender is not None:
            conn.sender.cancel()
        transport = conn.ws._req.transport if conn.ws._req is not None else None
        if transport is not None:
            transport.abort()  # no close handshake: it does not read

    async def _send_loop(self, conn: Conn) -> None:
        while True:
            text = await conn.queue.get()
            await conn.ws.send_str(text)

    async def publish_telemetry(self, samples_lost: Callable[[], int]) -> None:
        """Every PUBLISH_S: the rows since the last time, decimated for display (depth:
        the mean of each bin; force: its largest value, so no peak is hidden)."""
        per_bin = max(1, 1000 // DISPLAY_HZ)
        carry: TelemetryRows | None = None
        while True:
            await asyncio.sleep(PUBLISH_S)  # a publishing period, not a wait for a state
            batches, self._rows = self._rows, []
            if not batches:
                continue
            fresh = np.concatenate(batches)
            rows = fresh if carry is None else np.concatenate((carry, fresh))
            n_bins = len(rows) // per_bin
            carry = rows[n_bins * per_bin :] if len(rows) % per_bin else None
            if self.foxglove is not None:
                self.foxglove.rows(fresh)
            if any("telemetry_full" in c.topics for c in self.conns):
                self.broadcast("telemetry_full", _full_message(fresh))
            if n_bins == 0:
                continue
            binned = rows[: n_bins * per_bin].reshape(n_bins, per_bin)
            msg = {
                "type": "telemetry",
                "device_time_s": np.round(binned["device_time_s"][:, 0], 4).tolist(),
                "depth_mm": np.round(binned["depth_mm"].mean(axis=1), 4).tolist(),
                "force_n": np.round(binned["force_n"].max(axis=1), 3).tolist(),
                "samples_lost": samples_lost(),
            }
            self.telemetry_samples_out += n_bins
            self.backlog.extend(
                zip(msg["device_time_s"], msg["depth_mm"], msg["force_n"], strict=True)
            )
            self.broadcast("telemetry", msg)


def _full_message(rows: TelemetryRows) -> dict[str, Any]:
    return {
        "type": "telemetry_full",
        "sample_number": rows["sample_number"].tolist(),
        "device_time_s": rows["device_time_s"].tolist(),
        "depth_mm": rows["depth_mm"].tolist(),
        "force_n": rows["force_n"].tolist(),
    }
