"""The server's TCP face: loopback only, no state change through GET, a foreign Origin or
Host refused, a token with --allow-remote; STOP by POST for scripts."""

from __future__ import annotations

import http.client
import json
import subprocess
from urllib.parse import urlsplit

import pytest
import websocket

from conftest import NEEDLECTL, Served, start_server, stop_process


def _request(
    web: str, method: str, path: str, headers: dict[str, str] | None = None, body: str = ""
) -> tuple[int, str]:
    u = urlsplit(web)
    conn = http.client.HTTPConnection(u.hostname or "", u.port, timeout=30)
    try:
        conn.request(method, path, body=body or None, headers=headers or {})
        resp = conn.getresponse()
        return resp.status, resp.read().decode()
    finally:
        conn.close()


def test_get_reads_and_never_changes_state(served: Served) -> None:
    status, body = _request(served.web, "GET", "/api/status")
    assert status == 200 and json.loads(body)["port"] == served.port
    assert _request(served.web, "GET", "/api/stop")[0] == 405
    assert _request(served.web, "GET", "/api/estop?x=1")[0] == 405
    page = _request(served.web, "GET", "/")
    assert page[0] == 200 and 'id="stop"' in page[1]
    assert served.json("status")["state"] == "UNHOMED"  # nothing happened


def test_post_needs_json_and_then_stops(served: Served) -> None:
    plain = {"Content-Type": "text/plain"}
    assert _request(served.web, "POST", "/api/estop", plain, "x")[0] == 415
    assert served.json("status")["latched_faults"] == []
    hdr = {"Content-Type": "application/json"}
    evil = {**hdr, "Origin": "http://evil.example"}
    assert _request(served.web, "POST", "/api/estop", evil, "{}")[0] == 403
    assert served.json("status")["latched_faults"] == []
    assert _request(served.web, "POST", "/api/estop", hdr, "{}")[0] == 200
    assert served.json("status")["latched_faults"] == ["ESTOP"]


@pytest.mark.control("RC-LOCALONLY")
def test_websocket_origin_and_host_are_checked(served: Served) -> None:
    url = served.web.replace("http://", "ws://") + "api/ws"
    with pytest.raises(websocket.WebSocketBadStatusException) as refused:
        websocket.create_connection(url, origin="http://evil.example", timeout=10)
    assert refused.value.status_code == 403
    with pytest.raises(websocket.WebSocketBadStatusException) as rebound:
        websocket.create_connection(
            url, host="rebind.example", origin="http://rebind.example", timeout=10
        )
    assert rebound.value.status_code == 403
    own = served.web.rstrip("/")
    ws = websocket.create_connection(url, origin=own, timeout=10)
    ws.send(json.dumps({"id": 7, "op": "status", "args": {}}))
    reply = json.loads(ws.recv())
    assert reply["id"] == 7 and reply["ok"]["status"]["homed"] is False
    ws.close()


@pytest.mark.control("RC-LOCALONLY")
def test_allow_remote_requires_the_token(sim_pty: str, runtime_env: dict[str, str]) -> None:
    served = start_server(sim_pty, runtime_env, "--allow-remote")
    try:
        token = urlsplit(served.web).query.removeprefix("token=")
        assert len(token) >= 20
        assert _request(served.web, "GET", "/api/status")[0] == 401
        assert _request(served.web, "GET", "/api/status?token=wrong")[0] == 401
        assert _request(served.web, "GET", f"/api/status?token={token}")[0] == 200
        bearer = {"Authorization": f"Bearer {token}"}
        assert _request(served.web, "GET", "/api/status", bearer)[0] == 200
    finally:
        stop_process(served.proc)
    assert served.proc.returncode == 0


def test_a_token_without_allow_remote_is_a_usage_error(
    sim_pty: str, runtime_env: dict[str, str]
) -> None:
    proc = subprocess.run(
        [str(NEEDLECTL), "--port", sim_pty, "serve"],
        capture_output=True,
        text=True,
        env={**runtime_env, "NEEDLECTL_TOKEN": "x" * 24},
        timeout=30,
        check=False,
    )
    assert proc.returncode == 2 and "--allow-remote" in proc.stderr
    assert len(proc.stderr.strip().splitlines()) == 1
