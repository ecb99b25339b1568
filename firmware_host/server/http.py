"""The rig server: one process owns the port and its session; many clients use it.

``RigServer`` puts the parts together: the session (session.py: the NeedleDriver, its
keeper, the load figures), the clients and what they are sent (feed.py), the API and
runs (api.py); and serves them with one asyncio loop (aiohttp) on the Unix socket and on
HTTP + WebSocket on loopback, where a middleware guards every request (this module), with
the web page and two plain endpoints for scripts (``GET /api/status``,
``POST /api/stop|estop``).
"""

from __future__ import annotations

import asyncio
import contextlib
import ipaddress
import secrets
from importlib import resources
from pathlib import Path
from typing import TYPE_CHECKING

from aiohttp import WSCloseCode, web
from aiohttp.typedefs import Handler

from firmware_host.driver import ESTOP, STOP
from firmware_host.server.api import Api
from firmware_host.server.feed import OUT_QUEUE_MAX, Conn, Feed
from firmware_host.server.session import Session

if TYPE_CHECKING:
    from firmware_host.client import NeedleDriver


class RigServer:
    def __init__(
        self,
        nd: NeedleDriver,
        port: str,
        *,
        token: str | None = None,
        allow_remote: bool = False,
        client_queue: int = OUT_QUEUE_MAX,
    ) -> None:
        self.port = port
        self.token = token
        self.allow_remote = allow_remote
        self.feed = Feed(client_queue)
        self.session = Session(nd, self.feed)
        self.api = Api(self.session, self.feed, port)
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
        """The API on one listener. 'unix': the socket (the file's mode is the guard);
        'tcp': loopback HTTP, with the checks in _guard."""
        app = web.Application(middlewares=[self._guard] if via == "tcp" else [])

        async def ws(request: web.Request) -> web.WebSocketResponse:
            peer = request.remote or "?"
            return await self.api.handle_ws(request, "unix" if via == "unix" else f"tcp {peer}")

        app.router.add_get("/", self._page)
        app.router.add_get("/api/status", self._status)
        app.router.add_get("/api/ws", ws)
        app.router.add_post("/api/stop", self._post_stop)
        app.router.add_post("/api/estop", self._post_stop)
        return app

    @web.middleware
    async def _guard(self, request: web.Request, handler: Handler) -> web.StreamResponse:
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
        return await handler(request)

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


def _is_loopback(remote: str | None) -> bool:
    if not remote:
        return False
    try:
        return ipaddress.ip_address(remote).is_loopback
    except ValueError:
        return False
