"""The server's faces: a token on every request, loopback included (a client without it
changes nothing, over HTTP, a WebSocket without Origin or the Unix socket); the page's
first visit swaps it for an HttpOnly SameSite=Strict cookie; loopback only, no state
change through GET, a foreign Origin or Host refused; STOP by POST for scripts; records
only under the server's runs directory."""

from __future__ import annotations

import http.client
import json
import socket
import subprocess
from pathlib import Path
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


def _bearer(served: Served, **more: str) -> dict[str, str]:
    return {"Authorization": f"Bearer {served.token}", **more}


def test_get_reads_and_never_changes_state(served: Served) -> None:
    auth = _bearer(served)
    status, body = _request(served.web, "GET", "/api/status", auth)
    assert status == 200 and json.loads(body)["port"] == served.port
    assert _request(served.web, "GET", "/api/stop", auth)[0] == 405
    assert _request(served.web, "GET", "/api/estop?x=1", auth)[0] == 405
    page = _request(served.web, "GET", "/", auth)
    assert page[0] == 200 and 'id="stop"' in page[1] and 'id="estop"' in page[1]
    assert served.json("status")["state"] == "UNHOMED"  # nothing happened


def test_post_needs_json_and_then_stops(served: Served) -> None:
    plain = _bearer(served, **{"Content-Type": "text/plain"})
    assert _request(served.web, "POST", "/api/estop", plain, "x")[0] == 415
    assert served.json("status")["latched_faults"] == []
    hdr = _bearer(served, **{"Content-Type": "application/json"})
    evil = {**hdr, "Origin": "http://evil.example"}
    assert _request(served.web, "POST", "/api/estop", evil, "{}")[0] == 403
    assert served.json("status")["latched_faults"] == []
    assert _request(served.web, "POST", "/api/estop", hdr, "{}")[0] == 200
    assert served.json("status")["latched_faults"] == ["ESTOP"]


@pytest.mark.control("RC-LOCALONLY")
def test_websocket_origin_and_host_are_checked(served: Served) -> None:
    url = served.base.replace("http://", "ws://") + "api/ws"
    auth = [f"Authorization: Bearer {served.token}"]
    with pytest.raises(websocket.WebSocketBadStatusException) as refused:
        websocket.create_connection(url, origin="http://evil.example", header=auth, timeout=10)
    assert refused.value.status_code == 403
    with pytest.raises(websocket.WebSocketBadStatusException) as rebound:
        websocket.create_connection(
            url, host="rebind.example", origin="http://rebind.example", header=auth, timeout=10
        )
    assert rebound.value.status_code == 403
    own = served.base.rstrip("/")
    ws = websocket.create_connection(url, origin=own, header=auth, timeout=10)
    ws.send(json.dumps({"id": 7, "op": "status", "args": {}}))
    reply = json.loads(ws.recv())
    assert reply["id"] == 7 and reply["ok"]["status"]["homed"] is False
    ws.close()


@pytest.mark.control("RC-TOKEN")
def test_a_client_without_the_token_changes_nothing(served: Served) -> None:
    """Every local user can open 127.0.0.1: without the token, nothing — the page, the
    status, a POST, a plain WebSocket with no Origin (what `nobody` used), the Unix socket."""
    json_hdr = {"Content-Type": "application/json"}
    wrong = {"Authorization": "Bearer " + "x" * len(served.token)}
    for method, path, hdr in (
        ("GET", "/", {}),
        ("GET", "/api/status", {}),
        ("GET", "/api/runs", {}),
        ("GET", "/api/status?token=wrong", {}),
        ("GET", "/api/status", wrong),
        ("POST", "/api/estop", json_hdr),
        ("POST", "/api/estop", {**json_hdr, **wrong}),
    ):
        status, body = _request(served.web, method, path, hdr, "{}" if method == "POST" else "")
        assert status == 401, (method, path, status)
        assert "token required" in body
    url = served.base.replace("http://", "ws://") + "api/ws"
    for header in ([], [f"Authorization: {wrong['Authorization']}"]):
        with pytest.raises(websocket.WebSocketBadStatusException) as refused:
            websocket.create_connection(url, header=header, suppress_origin=True, timeout=10)
        assert refused.value.status_code == 401
    sock = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
    sock.connect(served.socket)
    with pytest.raises(websocket.WebSocketBadStatusException) as unix:
        websocket.create_connection("ws://localhost/api/ws", socket=sock, timeout=10)
    assert unix.value.status_code == 401
    assert served.json("status")["latched_faults"] == []  # no ESTOP got through
    # the same requests with the token do act: the refusals above were the token's doing
    ws = websocket.create_connection(
        url, header=[f"Authorization: Bearer {served.token}"], suppress_origin=True, timeout=10
    )
    ws.send(json.dumps({"id": 1, "op": "estop", "args": {}}))
    assert json.loads(ws.recv())["id"] == 1
    ws.close()
    assert served.json("status")["latched_faults"] == ["ESTOP"]


def test_the_printed_address_gives_the_page_an_httponly_strict_cookie(served: Served) -> None:
    """The token rides in the printed address once: the first visit trades it for a
    cookie no script can read and no other site can send, and a redirect drops it from
    the address bar."""
    u = urlsplit(served.web)
    conn = http.client.HTTPConnection(u.hostname or "", u.port, timeout=30)
    try:
        conn.request("GET", f"/?{u.query}")
        resp = conn.getresponse()
        resp.read()
        assert resp.status == 303 and resp.getheader("Location") == "/"
        cookie = resp.getheader("Set-Cookie") or ""
    finally:
        conn.close()
    attrs = [a.strip().lower() for a in cookie.split(";")]
    assert "httponly" in attrs and "samesite=strict" in attrs and "path=/" in attrs
    pair = cookie.split(";")[0]
    assert pair == f"needlectl-token-{u.port}={served.token}"
    page = _request(served.web, "GET", "/", {"Cookie": pair})
    assert page[0] == 200 and "ESTOP" in page[1] and served.token not in page[1]
    url = served.base.replace("http://", "ws://") + "api/ws"
    ws = websocket.create_connection(url, cookie=pair, origin=served.base.rstrip("/"))
    ws.send(json.dumps({"id": 3, "op": "status", "args": {}}))
    assert json.loads(ws.recv())["ok"]["status"]["homed"] is False
    ws.close()


def test_records_go_only_under_the_servers_runs_directory(served: Served, tmp_path: Path) -> None:
    """A client names a run, never a path: a path, a `..` or a record_dir is refused, and
    nothing is written outside the runs directory."""
    from firmware_host.procedure import load_profile

    outside = tmp_path / "outside"
    line = served.cli("run", "pierce", "--target-mm", "48", "--record", str(outside))
    assert line.returncode == 2 and len(line.stderr.strip().splitlines()) == 1
    assert "named, not placed" in line.stderr and "Traceback" not in line.stderr
    ws = served.ws()
    profile = load_profile("pierce").to_dict()
    for n, args in enumerate(
        (
            {"record_dir": str(outside)},
            {"record": "../outside"},
            {"record": str(outside)},
            {"record": ".."},
        ),
        start=1,
    ):
        ws.send(
            json.dumps(
                {
                    "id": n,
                    "op": "run",
                    "args": {"profile": profile, "target_depth_mm": 48, **args},
                }
            )
        )
        reply = json.loads(ws.recv())
        assert reply["id"] == n and "error" in reply, reply
        assert "never a path" in reply["error"]["message"], reply
    ws.close()
    assert not outside.exists() and not (served.runs_dir.parent / "outside").exists()
    assert list(served.runs_dir.iterdir()) == []
    assert served.json("status")["moving"] is False


@pytest.mark.control("RC-LOCALONLY")
def test_allow_remote_prints_the_lan_addresses_with_the_token(
    sim_pty: str, runtime_env: dict[str, str]
) -> None:
    """127.0.0.1 is no address for a remote user: the LAN's are printed. The operator's
    own token (long enough) is the one used."""
    from firmware_host.cli.servecmd import _lan_addresses

    token = "bench-token-0123456789"
    served = start_server(sim_pty, {**runtime_env, "NEEDLECTL_TOKEN": token}, "--allow-remote")
    try:
        assert served.token == token
        assert served.json("status")["port"] == sim_pty  # the CLI found the token itself
        assert _request(served.web, "GET", "/api/status")[0] == 401
        assert _request(served.web, "GET", f"/api/status?token={token}")[0] == 200
    finally:
        stop_process(served.proc)
    assert served.proc.returncode == 0
    lan = _lan_addresses()
    if not lan:
        pytest.skip("no non-loopback address on this machine")
    port = urlsplit(served.web).port
    assert served.announced["web_remote"] == [f"http://{a}:{port}/?token={token}" for a in lan]
    assert not any("127.0.0.1" in w for w in served.announced["web_remote"])


def _serve_once(sim_pty: str, env: dict[str, str]) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [str(NEEDLECTL), "--port", sim_pty, "serve", "--http-port", "0"],
        capture_output=True,
        text=True,
        env=env,
        timeout=30,
        check=False,
    )


@pytest.mark.parametrize("token", ["x", "short-token-15c"])
def test_a_short_token_is_refused(sim_pty: str, runtime_env: dict[str, str], token: str) -> None:
    proc = _serve_once(sim_pty, {**runtime_env, "NEEDLECTL_TOKEN": token})
    assert proc.returncode == 2, proc.stderr
    lines = proc.stderr.strip().splitlines()
    assert len(lines) == 1 and "at least 16" in lines[0] and "NEEDLECTL_TOKEN" in lines[0]
