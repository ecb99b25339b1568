"""The rig server: one process owns the port and its session; many clients use it.

``RigServer`` puts the parts together: the session (session.py: the NeedleDriver, its
keeper, the load figures), the clients and what they are sent (feed.py), the API and
runs (api.py); and serves them with one asyncio loop (aiohttp) on the Unix socket and on
HTTP + WebSocket on loopback, where a middleware guards every request (this module; the
token rules are guard.py's), with the web page, the run history and its files
(``GET /api/runs``, ``GET /api/runs/NAME/FILE``) and two plain endpoints for scripts
(``GET /api/status``, ``POST /api/stop|estop``).
"""

from __future__ import annotations

import asyncio
import contextlib
import ipaddress
import pwd
import socket
import struct
from importlib import resources
from pathlib import Path
from typing import TYPE_CHECKING

from aiohttp import WSCloseCode, web
from aiohttp.typedefs import Handler

from firmware_host.driver import ESTOP, STOP
from firmware_host.server import guard
from firmware_host.server.api import Api
from firmware_host.server.feed import OUT_QUEUE_MAX, Conn, Feed
from firmware_host.server.runs import RunNameError, Runs
from firmware_host.server.session import Session

if TYPE_CHECKING:
    from firmware_host.client import NeedleDriver


class RigServer:
    def __init__(
        self,
        nd: NeedleDriver,
        port: str,
        *,
        token: str,
        runs: Runs,
        allow_remote: bool = False,
        client_queue: int = OUT_QUEUE_MAX,
    ) -> None:
        self.port = port
        self.token = token
        self.runs = runs
        self.allow_remote = allow_remote
        self.http_port = 0  # the bound TCP port (the cookie's name carries it)
        self.feed = Feed(client_queue)
        self.session = Session(nd, self.feed)
        self.api = Api(self.session, self.feed, port, runs)
        self.stopped = asyncio.Event()
        self._publisher: asyncio.Task[None] | None = None
        self.http_url = ""

    @property
    def link_lost(self) -> str | None:
        return self.session.link_lost

    def _on_link_lost(self) -> None:
        self.feed.note(f"link lost: {self.link_lost}")
        self.stopped.set()

    # ---------------------------------------------------------------- HTTP

    def make_app(self, via: str) -> web.Application:
        """The API on one listener. 'unix': the socket (its mode and the token);
        'tcp': loopback HTTP, with the checks in _guard_tcp; the token on both."""
        guards = [self._guard_tcp] if via == "tcp" else [self._guard_token]
        app = web.Application(middlewares=guards)

        async def ws(request: web.Request) -> web.WebSocketResponse:
            if via == "unix":
                return await self.api.handle_ws(request, "unix", _peer_user(request))
            return await self.api.handle_ws(request, f"tcp {request.remote or '?'}", "")

        app.router.add_get("/", self._page)
        app.router.add_get("/api/status", self._status)
        app.router.add_get("/api/runs", self._runs)
        app.router.add_get("/api/runs/{name}/{file}", self._run_file)
        app.router.add_get("/api/ws", ws)
        app.router.add_post("/api/stop", self._post_stop)
        app.router.add_post("/api/estop", self._post_stop)
        return app

    @web.middleware
    async def _guard_token(self, request: web.Request, handler: Handler) -> web.StreamResponse:
        """The token on every request (guard.py): header, query or the page's cookie. The
        page's first visit, ?token= in the address, swaps it for the cookie."""
        how, given = guard.presented(request, self.http_port)
        if not guard.token_ok(given, self.token):
            raise web.HTTPUnauthorized(
                text="token required: open the address `needlectl serve` printed (it carries"
                " the token once), or send Authorization: Bearer TOKEN\n"
            )
        if how == "query" and request.method == "GET" and request.path == "/":
            # the token leaves the address bar (and the history) for the page's cookie
            moved = web.Response(status=303, headers={"Location": "/"})
            guard.set_cookie(moved, self.token, self.http_port)
            return moved
        return await handler(request)

    @web.middleware
    async def _guard_tcp(self, request: web.Request, handler: Handler) -> web.StreamResponse:
        """Loopback only (the Host header too: no DNS rebinding) unless --allow-remote;
        the token on every request, loopback included. State changes only by POST (JSON)
        or over the WebSocket, and a browser's Origin must be this server."""
        if not self.allow_remote:
            if not _is_loopback(request.remote):
                raise web.HTTPForbidden(text="loopback only (serve --allow-remote)\n")
            host = (request.host or "").rsplit(":", 1)[0].strip("[]")
            if host not in ("127.0.0.1", "localhost", "::1"):
                raise web.HTTPForbidden(text=f"unexpected Host {request.host!r}\n")
        origin = request.headers.get("Origin")
        is_ws = request.headers.get("Upgrade", "").lower() == "websocket"
        cross = origin is not None and origin != f"{request.scheme}://{request.host}"
        if (is_ws or request.method != "GET") and cross:
            raise web.HTTPForbidden(text=f"cross-origin request from {origin} refused\n")
        if request.method == "POST" and request.content_type != "application/json":
            raise web.HTTPUnsupportedMediaType(text="POST application/json\n")
        return await self._guard_token(request, handler)

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
                "state": self.api.state,
                "run": self.api.run_view(),
                "server": self.session.figures(),
            }
        )

    async def _runs(self, request: web.Request) -> web.Response:
        loop = asyncio.get_running_loop()
        return web.json_response(await loop.run_in_executor(None, self.runs.history))

    async def _run_file(self, request: web.Request) -> web.StreamResponse:
        """A recorded run's files, by run name and a fixed file name (never a path):
        telemetry.csv, events.jsonl, meta.json, run.mcap, and plot.png (drawn on demand)."""
        try:
            folder = self.runs.folder(request.match_info["name"])
        except RunNameError as exc:
            raise web.HTTPNotFound(text=f"{exc}\n") from None
        name = request.match_info["file"]
        if name == "plot.png":
            from firmware_host.plot import RunFolderError, plot_run

            png = folder / "plot.png"
            if not png.exists():
                try:
                    await asyncio.get_running_loop().run_in_executor(None, plot_run, folder, png)
                except RunFolderError as exc:  # a run with nothing to draw yet
                    raise web.HTTPNotFound(text=f"no plot of {folder.name}: {exc}\n") from None
            return web.FileResponse(png)
        if name not in RUN_FILES or not (folder / name).is_file():
            raise web.HTTPNotFound(text=f"run {folder.name} has no {name}\n")
        return web.FileResponse(
            folder / name,
            headers={"Content-Disposition": f'attachment; filename="{folder.name}-{name}"'},
        )

    async def _post_stop(self, request: web.Request) -> web.Response:
        op = ESTOP if request.path.endswith("estop") else STOP
        conn = Conn(0, web.WebSocketResponse(), f"POST {request.remote}", asyncio.Queue(1))
        await self.api.device_call(conn, op.name, {})
        return web.json_response({"done": op.name})

    # ---------------------------------------------------------------- life

    async def serve(
        self, sock_path: Path, http_host: str, http_port: int
    ) -> tuple[web.AppRunner, web.AppRunner]:
        self.feed.loop = asyncio.get_running_loop()
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
        self.http_port = bound
        shown = "127.0.0.1" if http_host in ("127.0.0.1", "0.0.0.0") else http_host
        self.http_url = f"http://{shown}:{bound}/"
        self.session.start(self.api.publish_state, self._on_link_lost)
        nd = self.session.nd
        self._publisher = asyncio.create_task(
            self.feed.publish_telemetry(lambda: nd.stats.telemetry_samples_lost)
        )
        return unix, tcp

    async def shutdown(self, why: str, runners: tuple[web.AppRunner, ...]) -> None:
        """Stop a run (the procedure stops the rig and closes its record), then leave."""
        await self.api.abort_run(why)
        self.session.closing.set()
        for conn in list(self.feed.conns):
            with contextlib.suppress(Exception):
                await conn.ws.close(code=WSCloseCode.GOING_AWAY, message=why.encode()[:120])
        for r in runners:
            await r.cleanup()
        await asyncio.get_running_loop().run_in_executor(None, self.session.join, 2.0)
        self.api.close()


RUN_FILES = ("telemetry.csv", "events.jsonl", "meta.json", "run.mcap")


def _peer_user(request: web.Request) -> str:
    """Who is at the other end of the Unix socket (SO_PEERCRED): the run's record says
    who started it."""
    sock = request.transport.get_extra_info("socket") if request.transport else None
    if sock is None:
        return ""
    try:
        creds = sock.getsockopt(socket.SOL_SOCKET, socket.SO_PEERCRED, struct.calcsize("3i"))
        _pid, uid, _gid = struct.unpack("3i", creds)
        return pwd.getpwuid(uid).pw_name
    except (OSError, KeyError):
        return ""


def _is_loopback(remote: str | None) -> bool:
    if not remote:
        return False
    try:
        return ipaddress.ip_address(remote).is_loopback
    except ValueError:
        return False
