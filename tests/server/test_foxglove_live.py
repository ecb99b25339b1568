"""The opt-in Foxglove live stream (`serve --foxglove-port`), met by a client that speaks
the Foxglove WebSocket protocol itself (websocket-client, the protocol's JSON and binary
frames): it advertises the three channels, streams every telemetry sample, and the
device's events and the server's notes; it offers a viewer nothing to drive."""

from __future__ import annotations

import itertools
import json
import struct
from typing import Any

import pytest
import websocket

from conftest import start_server, stop_process

# the protocol's current name, and the earlier one older viewers ask for
SUBPROTOCOLS = ["foxglove.sdk.v1", "foxglove.websocket.v1"]
MESSAGE_DATA = 0x01  # binary opcode: subscription id u32, log time u64, payload


def _json_op(ws: websocket.WebSocket, op: str) -> dict[str, Any]:
    while True:
        frame = ws.recv()
        if isinstance(frame, str):
            msg: dict[str, Any] = json.loads(frame)
            if msg.get("op") == op:
                return msg


def _data(ws: websocket.WebSocket) -> tuple[int, dict[str, Any]]:
    """The next message on a subscription: (subscription id, its JSON)."""
    while True:
        frame = ws.recv()
        if isinstance(frame, bytes) and frame[0] == MESSAGE_DATA:
            sub_id, _log_time_ns = struct.unpack_from("<IQ", frame, 1)
            return sub_id, json.loads(frame[13:])


def test_a_foxglove_client_sees_every_sample_and_the_events(
    sim_pty: str, runtime_env: dict[str, str]
) -> None:
    pytest.importorskip("foxglove", reason="the foxglove extra: pip install '.[foxglove]'")
    served = start_server(sim_pty, runtime_env, "--foxglove-port", "0")
    try:
        url = served.announced["foxglove"]
        assert url.startswith("ws://127.0.0.1:")
        ws = websocket.create_connection(url, subprotocols=SUBPROTOCOLS, timeout=30)
        info = _json_op(ws, "serverInfo")
        assert "clientPublish" not in info.get("capabilities", [])  # watch, never drive
        assert "services" not in info.get("capabilities", [])
        channels: dict[str, dict[str, Any]] = {}
        while len(channels) < 3:
            for ch in _json_op(ws, "advertise")["channels"]:
                channels[ch["topic"]] = ch
        assert set(channels) == {"/telemetry", "/events", "/notes"}
        assert all(
            c["encoding"] == "json" and c["schemaEncoding"] == "jsonschema"
            for c in channels.values()
        )
        subs = {1: "/telemetry", 2: "/events", 3: "/notes"}
        ws.send(
            json.dumps(
                {
                    "op": "subscribe",
                    "subscriptions": [
                        {"id": i, "channelId": channels[t]["id"]} for i, t in subs.items()
                    ],
                }
            )
        )
        times_s: list[float] = []
        while len(times_s) < 300:
            sub_id, msg = _data(ws)
            if subs[sub_id] == "/telemetry":
                times_s.append(msg["device_time_s"])
                assert set(msg) >= {"depth_mm", "force_n", "state", "flags"}
        steps_ms = {round((b - a) * 1000) for a, b in itertools.pairwise(times_s)}
        assert steps_ms == {1}, steps_ms  # every sample at 1 kHz: none skipped, none doubled
        assert served.cli("estop").returncode == 0
        seen: dict[str, dict[str, Any]] = {}
        while not {"/events", "/notes"} <= set(seen):
            sub_id, msg = _data(ws)
            if subs[sub_id] == "/events" and msg["code"] == "ESTOP":
                seen["/events"] = msg
            if subs[sub_id] == "/notes" and "ESTOP from client" in msg.get("text", ""):
                seen["/notes"] = msg
        ws.close()
    finally:
        stop_process(served.proc)
    assert served.proc.returncode == 0
