"""The rig server: one process owns the port and its session; many clients use it.

Threads and the loop:

* the link's own reader thread (heartbeats, telemetry, events) — as in any NeedleDriver;
* a keeper thread: waits in the library (which renews the link's liveness lease, so the
  heartbeats keep going while no client does anything) and asks STATUS four times a
  second for the clients;
* device calls of clients run in a small thread pool, a run in a thread of its own: the
  link takes requests from several threads at once (a STOP does not queue behind a run);
* one asyncio loop (aiohttp) serves the Unix socket and HTTP + WebSocket on loopback.
  Every client has a bounded outgoing queue: a client that stops reading fills it and is
  cut off, never slowing the loop or the other clients.

Dead-man: a run belongs to the connection that started it. That connection closed (the
client killed, its terminal gone), the run is aborted — the procedure stops the rig,
the record notes why and is closed, so the folder stays plottable. A connection that
commanded other motion (home, jog) gets a STOP when it goes, as NeedleDriver.close()
does for a direct session.
"""

from __future__ import annotations

import asyncio
import concurrent.futures
import contextlib
import ipaddress
import json
import logging
import secrets
import threading
import time
from collections import deque
from collections.abc import Callable
from dataclasses import dataclass, field
from importlib import resources
from pathlib import Path
from typing import Any

import numpy as np
from aiohttp import WSCloseCode, WSMsgType, web

from firmware_host.driver import OPERATIONS
from firmware_host.errors import LinkLost, Nak, NeedleDriverError
from firmware_host.procedure.homing import AbortEvent
from firmware_host.server.messages import error_to_wire, to_wire
from protocol import NakReason

log = logging.getLogger("needlectl.serve")

OUT_QUEUE_MAX = 256  # messages waiting for one client; more = it is cut off
PUBLISH_S = 0.1  # telemetry goes out to clients in batches this often
DISPLAY_HZ = 50  # the 1 kHz stream decimated to this many points a second
STATE_S = 0.25  # STATUS for the clients this often
LATENESS_KEEP = 100_000

# telemetry: decimated for display; telemetry_full: every sample (a logger's stream)
TOPICS = ("telemetry", "telemetry_full", "state", "events", "progress", "notes")


@dataclass(eq=False)
class Conn:
    """One client connection (a WebSocket on the Unix socket or on TCP)."""

    number: int
    ws: web.WebSocketResponse
    via: str  # "unix" or "tcp PEER"
    queue: asyncio.Queue[str]
    topics: set[str] = field(default_factory=set)
    commanded_motion: bool = False
    cut_off: bool = False
    sender: asyncio.Task[None] | None = None

    @property
    def name(self) -> str:
        return f"client {self.number} ({self.via})"


@dataclass(eq=False)
class RunState:
    owner: Conn
    abort: AbortEvent
    target_depth_mm: float
    profile: str
    progress: dict[str, Any] | None = None
    stopped_by: str | None = None


class _TimedDriver:
    """The driver as the procedure sees it, with every control-period wait timed: how
    late the loop woke (the load figures: lateness p99)."""

    def __init__(self, nd: Any, lateness_s: deque[float]) -> None:
        self._nd = nd
        self._lateness_s = lateness_s

    def __getattr__(self, name: str) -> Any:
        return getattr(self._nd, name)

    def wait_s(self, seconds: float) -> None:
        t0 = time.monotonic()
        self._nd.wait_s(seconds)
        self._lateness_s.append(time.monotonic() - t0 - seconds)


def _percentile(values: Any, q: float) -> float | None:
    arr = np.asarray(list(values), dtype=float)
    return float(np.percentile(arr, q)) if len(arr) else None


class RigServer:
    def __init__(
        self,
        nd: Any,
        port: str,
        *,
        token: str | None = None,
        allow_remote: bool = False,
        client_queue: int = OUT_QUEUE_MAX,
    ) -> None:
        self.nd = nd
        self.client_queue = client_queue
        self.port = port
        self.token = token
        self.allow_remote = allow_remote
        self.conns: set[Conn] = set()
        self._numbers = 0
        self.run: RunState | None = None
        self.state: dict[str, Any] | None = None
        self.clients_cut_off = 0
        self.lateness_s: deque[float] = deque(maxlen=LATENESS_KEEP)
        self.heartbeat_at_s: deque[float] = deque(maxlen=LATENESS_KEEP)
        self.telemetry_samples_out = 0
        self.closing = threading.Event()
        self.link_lost: str | None = None
        self.stopped = asyncio.Event()
        self.run_idle = asyncio.Event()
        self.run_idle.set()
        self._pending_rows: list[Any] = []
        self._rows_lock = threading.Lock()
        self._loop: asyncio.AbstractEventLoop | None = None
        self._pool = concurrent.futures.ThreadPoolExecutor(8, thread_name_prefix="rig-call")
        self._run_pool = concurrent.futures.ThreadPoolExecutor(1, thread_name_prefix="rig-run")
        self._keeper: threading.Thread | None = None
        self._publisher: asyncio.Task[None] | None = None
        self.http_url = ""
        self._watch_heartbeats()

    # ---------------------------------------------------------------- the session

    def _watch_heartbeats(self) -> None:
        """Time every heartbeat the link sends (heartbeat gaps for the load figures).
        Wraps the pump's beat: the link has no hook for it (see docs/architecture.md)."""
        pump = getattr(self.nd.link, "_pump", None)
        beat = getattr(pump, "_beat", None)
        if pump is None or beat is None:
            return
        stamps = self.heartbeat_at_s

        def timed_beat(now: float) -> None:
            beat(now)
            stamps.append(time.monotonic())

        pump._beat = timed_beat

    def start_session(self) -> None:
        self.nd.set_telemetry(1000, 10)
        self.nd.telemetry.subscribe(self._on_rows)
        self.nd.add_event_listener(self._on_event)
        self._keeper = threading.Thread(target=self._keep, name="rig-keeper", daemon=True)
        self._keeper.start()

    def _keep(self) -> None:
        """Keep the session: wait in the library (lease renewed, heartbeats out), STATUS."""
        while not self.closing.is_set():
            try:
                self.nd.wait_s(STATE_S)
                status = self.nd.status()
            except LinkLost as exc:
                self.link_lost = str(exc)
                self._from_thread(self._on_link_lost)
                return
            except NeedleDriverError as exc:
                log.warning("status: %s", exc)
                continue
            shown = to_wire(status)
            shown["state_name"] = status.state.name
            state = {
                "status": shown,
                "faults": [
                    f.name for f in type(status.latched_faults) if f in status.latched_faults
                ],
                "link": to_wire(self.nd.stats.as_dict()),
            }
            self._from_thread(self._publish_state, state)

    def _from_thread(self, fn: Any, *args: Any) -> None:
        loop = self._loop
        if loop is not None and not loop.is_closed():
            with contextlib.suppress(RuntimeError):
                loop.call_soon_threadsafe(fn, *args)

    def _on_rows(self, rows: Any) -> None:  # the link's thread: keep it short
        with self._rows_lock:
            self._pending_rows.append(rows)

    def _on_event(self, event: Any) -> None:
        msg = {"type": "event", **to_wire(event), "code_name": event.name}
        self._from_thread(self.broadcast, "events", msg)

    def _on_link_lost(self) -> None:
        self.broadcast("notes", {"type": "note", "text": f"link lost: {self.link_lost}"})
        self.stopped.set()

    def _publish_state(self, state: dict[str, Any]) -> None:
        state["run"] = self._run_view()
        state["server"] = self.figures()
        self.state = state
        self.broadcast("state", {"type": "state", **state})

    def _run_view(self) -> dict[str, Any] | None:
        run = self.run
        if run is None:
            return None
        return {
            "owner": run.owner.name,
            "profile": run.profile,
            "target_depth_mm": run.target_depth_mm,
            "progress": run.progress,
        }

    def figures(self) -> dict[str, Any]:
        """What the load test reports: control-loop lateness, heartbeat gaps, samples lost."""
        beats = np.diff(np.asarray(self.heartbeat_at_s, dtype=float))
        late = list(self.lateness_s)
        stats = self.nd.stats
        return {
            "clients": len(self.conns),
            "clients_cut_off": self.clients_cut_off,
            "control_waits": len(late),
            "control_lateness_p99_ms": _ms(_percentile(late, 99)),
            "control_lateness_max_ms": _ms(max(late) if late else None),
            "heartbeats": len(self.heartbeat_at_s),
            "heartbeat_gap_p99_ms": _ms(_percentile(beats, 99)),
            "heartbeat_gap_max_ms": _ms(float(beats.max()) if len(beats) else None),
            "telemetry_samples": stats.telemetry_samples,
            "telemetry_samples_lost": stats.telemetry_samples_lost,
            "display_points_out": self.telemetry_samples_out,
        }

    async def _publish_telemetry(self) -> None:
        """Every PUBLISH_S: the rows since the last time, decimated for display (depth:
        the mean of each bin; force: its largest value, so no peak is hidden)."""
        per_bin = max(1, 1000 // DISPLAY_HZ)
        carry: Any = None
        while True:
            await asyncio.sleep(PUBLISH_S)  # a publishing period, not a wait for a state
            with self._rows_lock:
                batches, self._pending_rows = self._pending_rows, []
            if not batches:
                continue
            fresh = np.concatenate(batches)
            rows = fresh if carry is None else np.concatenate((carry, fresh))
            n_bins = len(rows) // per_bin
            carry = rows[n_bins * per_bin :] if len(rows) % per_bin else None
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
                "samples_lost": self.nd.stats.telemetry_samples_lost,
            }
            self.telemetry_samples_out += n_bins
            self.broadcast("telemetry", msg)

    # ---------------------------------------------------------------- clients

    def broadcast(self, topic: str, msg: dict[str, Any]) -> None:
        text = json.dumps(msg, separators=(",", ":"))
        for conn in list(self.conns):
            if topic in conn.topics:
                self._push(conn, text)

    def _push(self, conn: Conn, text: str) -> None:
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

    async def handle_ws(self, request: web.Request, via: str) -> web.WebSocketResponse:
        ws = web.WebSocketResponse(max_msg_size=1 << 20)
        await ws.prepare(request)
        self._numbers += 1
        conn = Conn(self._numbers, ws, via, asyncio.Queue(self.client_queue))
        self.conns.add(conn)
        conn.sender = asyncio.create_task(self._send_loop(conn))
        tasks: set[asyncio.Task[None]] = set()
        why = "connection closed"
        try:
            async for msg in ws:
                if msg.type != WSMsgType.TEXT:
                    continue
                try:
                    req = json.loads(msg.data)
                    op = str(req["op"])
                    args = dict(req.get("args") or {})
                except (ValueError, KeyError, TypeError):
                    self._push(conn, json.dumps({"error": {"type": "BadRequest"}}))
                    continue
                task = asyncio.create_task(self._dispatch(conn, req.get("id"), op, args))
                tasks.add(task)
                task.add_done_callback(tasks.discard)
        except ConnectionError as exc:
            why = f"connection broken: {exc}"
        finally:
            self.conns.discard(conn)
            if conn.sender is not None:
                conn.sender.cancel()
            if conn.cut_off:
                why = "cut off: it stopped reading"
            self._client_gone(conn, why)
        return ws

    def _client_gone(self, conn: Conn, why: str) -> None:
        run = self.run
        if run is not None and run.owner is conn:
            reason = f"dead-man: {conn.name} gone ({why})"
            run.stopped_by = reason
            run.abort.set_because(reason)
            log.warning("dead-man: %s: stopping the run", reason)
            self.broadcast("notes", {"type": "note", "text": f"{reason}: rig stopped"})
        elif conn.commanded_motion and self._loop is not None:
            log.info("%s left after commanding motion: STOP", conn.name)
            self._loop.run_in_executor(self._pool, self._stop_quietly)

    def _stop_quietly(self) -> None:
        with contextlib.suppress(NeedleDriverError, OSError):
            self.nd.stop()

    async def _dispatch(self, conn: Conn, req_id: Any, op: str, args: dict[str, Any]) -> None:
        try:
            if op == "subscribe":
                conn.topics = {t for t in args.get("topics", TOPICS) if t in TOPICS}
                result: Any = {"topics": sorted(conn.topics), "state": self.state}
            elif op == "abort":
                run = self.run
                if run is not None and run.owner is conn:
                    run.abort.set_because(str(args.get("reason", "aborted by its client")))
                result = {"aborted": run is not None}
            elif op == "run":
                result = await self._start_run(conn, args)
            elif op == "figures":
                result = self.figures()
            else:
                fn = self._device_op(conn, op, args)
                loop = asyncio.get_running_loop()
                result = await loop.run_in_executor(self._pool, fn)
            reply: dict[str, Any] = {"id": req_id, "ok": result}
        except Exception as exc:  # every failure goes back to the client that asked
            reply = {"id": req_id, "error": error_to_wire(exc)}
        self._push(conn, json.dumps(reply, separators=(",", ":")))

    def _device_op(self, conn: Conn, name: str, args: dict[str, Any]) -> Callable[[], object]:
        """The call of one operation of the table (driver.OPERATIONS), its result as JSON."""
        op = OPERATIONS.get(name)
        if op is None or op.call is None:
            raise ValueError(f"unknown operation {name!r}")
        if op.stops:
            why = f"{op.name.upper()} from {conn.name}"
            run = self.run
            if run is not None:
                run.stopped_by = why
                run.abort.set_because(why)
            self.broadcast("notes", {"type": "note", "text": why})
        if op.moves:
            if self.run is not None:
                raise Nak(op.name, NakReason.BUSY)  # a run holds the rig: stop it first
            conn.commanded_motion = True
        call, nd = op.call, self.nd
        return lambda: to_wire(call(nd, args))

    # ---------------------------------------------------------------- runs

    async def _start_run(self, conn: Conn, args: dict[str, Any]) -> Any:
        if self.run is not None:
            raise Nak("RUN", NakReason.BUSY)
        from firmware_host.procedure.profile import profile_from_dict

        profile = profile_from_dict(args["profile"], source=str(args.get("source", "profile")))
        target_mm = float(args["target_depth_mm"])
        run = RunState(conn, AbortEvent(), target_mm, profile.name)
        self.run = run
        self.run_idle.clear()
        conn.commanded_motion = True
        loop = asyncio.get_running_loop()
        try:
            return await loop.run_in_executor(
                self._run_pool, self._run_body, run, profile, target_mm, args
            )
        finally:
            self.run = None
            self.run_idle.set()

    def _run_body(self, run: RunState, profile: Any, target_mm: float, args: dict[str, Any]) -> Any:
        from firmware_host.procedure import run_procedure

        recorder = None
        record_dir = args.get("record_dir")
        if record_dir:
            from firmware_host.recorder import Recorder

            recorder = Recorder(
                Path(record_dir),
                self.nd,
                profile=profile.to_dict(),
                port=self.port,
                extra_meta={
                    "target_depth_mm": target_mm,
                    "command": str(args.get("command", "needlectl run")),
                    "served_by": "needlectl serve",
                },
            )

        def on_progress(p: Any) -> None:
            run.progress = to_wire(p)
            self._from_thread(self._send_progress, run, run.progress)

        outcome: Any = None
        try:
            outcome = run_procedure(
                _TimedDriver(self.nd, self.lateness_s),
                profile,
                target_depth_mm=target_mm,
                recorder=recorder,
                on_progress=on_progress,
                abort=run.abort,
            )
        except BaseException:
            self._stop_quietly()  # the procedure stops the rig; this is for its errors
            raise
        finally:
            if recorder is not None:
                if run.abort.is_set():
                    recorder.note("stopped_by", reason=run.abort.reason, action="rig stopped")
                recorder.close(
                    **(outcome.to_dict() if outcome is not None else {"outcome": "error"})
                )
        return to_wire(outcome)

    def _send_progress(self, run: RunState, progress: dict[str, Any]) -> None:
        msg = {"type": "progress", **progress}
        text = json.dumps(msg, separators=(",", ":"))
        self._push(run.owner, text)
        for conn in list(self.conns):
            if conn is not run.owner and "progress" in conn.topics:
                self._push(conn, text)

    # ---------------------------------------------------------------- HTTP

    def make_app(self, via: str) -> web.Application:
        """The API on one listener. 'unix': the socket (the file's mode is the guard);
        'tcp': loopback HTTP, with the checks in _guard."""
        app = web.Application(middlewares=[self._guard] if via == "tcp" else [])

        async def ws(request: web.Request) -> web.WebSocketResponse:
            peer = request.remote or "?"
            return await self.handle_ws(request, "unix" if via == "unix" else f"tcp {peer}")

        app.router.add_get("/", self._page)
        app.router.add_get("/api/status", self._status)
        app.router.add_get("/api/ws", ws)
        app.router.add_post("/api/stop", self._post_stop)
        app.router.add_post("/api/estop", self._post_stop)
        return app

    @web.middleware
    async def _guard(self, request: web.Request, handler: Any) -> web.StreamResponse:
        """Loopback only (the Host header too: no DNS rebinding) unless --allow-remote;
        then the token on every request. State changes only by POST (JSON) or over the
        WebSocket, and a browser's Origin must be this server."""
        if not self.allow_remote:
            if not _is_loopback(request.remote):
                raise web.HTTPForbidden(text="loopback only (serve --allow-remote)\n")
            host = (request.host or "").rsplit(":", 1)[0].strip("[]")
            if host not in ("127.0.0.1", "localhost", "::1"):
                raise web.HTTPForbidden(text=f"unexpected Host {request.host!r}\n")
        if self.token is not None:
            given = request.query.get("token", "")
            auth = request.headers.get("Authorization", "")
            if auth.startswith("Bearer "):
                given = auth[len("Bearer ") :]
            if not secrets.compare_digest(given.encode(), self.token.encode()):
                raise web.HTTPUnauthorized(text="token required (?token= or Bearer)\n")
        origin = request.headers.get("Origin")
        is_ws = request.headers.get("Upgrade", "").lower() == "websocket"
        cross = origin is not None and origin != f"{request.scheme}://{request.host}"
        if (is_ws or request.method != "GET") and cross:
            raise web.HTTPForbidden(text=f"cross-origin request from {origin} refused\n")
        if request.method == "POST" and request.content_type != "application/json":
            raise web.HTTPUnsupportedMediaType(text="POST application/json\n")
        response: web.StreamResponse = await handler(request)
        return response

    async def _page(self, request: web.Request) -> web.Response:
        html = resources.files("firmware_host.server").joinpath("page.html").read_text("utf-8")
        return web.Response(
            text=html.replace("__PORT__", self.port),
            content_type="text/html",
            headers={
                "Content-Security-Policy": "default-src 'self' 'unsafe-inline'; connect-src 'self'"
            },
        )

    async def _status(self, request: web.Request) -> web.Response:
        return web.json_response(
            {
                "port": self.port,
                "state": self.state,
                "run": self._run_view(),
                "server": self.figures(),
            }
        )

    async def _post_stop(self, request: web.Request) -> web.Response:
        op = "estop" if request.path.endswith("estop") else "stop"
        conn = Conn(0, web.WebSocketResponse(), f"POST {request.remote}", asyncio.Queue(1))
        fn = self._device_op(conn, op, {})
        await asyncio.get_running_loop().run_in_executor(self._pool, fn)
        return web.json_response({"done": op})

    # ---------------------------------------------------------------- life

    async def serve(
        self, sock_path: Path, http_host: str, http_port: int
    ) -> tuple[web.AppRunner, web.AppRunner]:
        self._loop = asyncio.get_running_loop()
        unix = web.AppRunner(self.make_app("unix"), handle_signals=False)
        tcp = web.AppRunner(self.make_app("tcp"), handle_signals=False)
        await unix.setup()
        await tcp.setup()
        with contextlib.suppress(FileNotFoundError):
            sock_path.unlink()
        await web.UnixSite(unix, str(sock_path)).start()
        sock_path.chmod(0o600)
        site = web.TCPSite(tcp, http_host, http_port)
        await site.start()
        server = getattr(site, "_server", None)
        sockets = getattr(server, "sockets", None) or []
        bound = sockets[0].getsockname()[1] if sockets else http_port
        shown = "127.0.0.1" if http_host in ("127.0.0.1", "0.0.0.0") else http_host
        self.http_url = f"http://{shown}:{bound}/"
        self.start_session()
        self._publisher = asyncio.create_task(self._publish_telemetry())
        return unix, tcp

    async def shutdown(self, why: str, runners: tuple[web.AppRunner, ...]) -> None:
        """Stop a run (the procedure stops the rig and closes its record), then leave."""
        run = self.run
        if run is not None:
            run.stopped_by = why
            run.abort.set_because(why)
            await self.run_idle.wait()  # the run thread ends within one control period
        self.closing.set()
        for conn in list(self.conns):
            with contextlib.suppress(Exception):
                await conn.ws.close(code=WSCloseCode.GOING_AWAY, message=why.encode()[:120])
        for r in runners:
            await r.cleanup()
        keeper = self._keeper
        if keeper is not None:
            await asyncio.get_running_loop().run_in_executor(None, keeper.join, 2.0)
        self._pool.shutdown(wait=True)
        self._run_pool.shutdown(wait=True)


def _full_message(rows: Any) -> dict[str, Any]:
    return {
        "type": "telemetry_full",
        "sample_number": rows["sample_number"].tolist(),
        "device_time_s": rows["device_time_s"].tolist(),
        "depth_mm": rows["depth_mm"].tolist(),
        "force_n": rows["force_n"].tolist(),
    }


def _ms(seconds: float | None) -> float | None:
    return None if seconds is None else round(seconds * 1e3, 3)


def _is_loopback(remote: str | None) -> bool:
    if not remote:
        return False
    try:
        return ipaddress.ip_address(remote).is_loopback
    except ValueError:
        return False
