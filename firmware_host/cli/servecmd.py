"""`serve`: own the port, keep its session, serve the CLI, a web page and stops."""

from __future__ import annotations

import argparse
import asyncio
import os
import secrets
import signal
import threading

from firmware_host.cli.command import Command, add_number
from firmware_host.cli.exits import CliError, Exit
from firmware_host.cli.output import Output

TOKEN_ENV = "NEEDLECTL_TOKEN"
LEASE_HOLD_S = 0.05  # well inside the link's 150 ms lease


def cmd_serve(ns: argparse.Namespace, out: Output) -> int:
    from firmware_host.server.runtime import Paths, PortLock, find_server

    port = str(ns.port)
    if port.startswith("sim://"):
        raise CliError(
            f"cannot serve {port}: an in-process simulator lives only as long as one command"
            " — serve one that runs on its own (`needlectl sim serve --pty`) and pass its"
            " pty as --port"
        )
    token: str | None = os.environ.get(TOKEN_ENV) or None
    if ns.allow_remote:
        token = token or secrets.token_urlsafe(18)
    elif token is not None:
        raise CliError(f"${TOKEN_ENV} is for --allow-remote; on loopback no token is used")
    paths = Paths.for_port(port)
    lock = PortLock(paths)
    if not lock.acquire():
        info = find_server(port) or {}
        raise CliError(
            f"a rig server already owns {port} (pid {info.get('pid', '?')},"
            f" {info.get('web', 'web address unknown')}): use it — needlectl commands on"
            " that port go through it — or stop it (Ctrl-C in its terminal) first",
            Exit.LINK,
        )
    try:
        return asyncio.run(_serve(ns, out, port, paths, token))
    finally:
        lock.release()


async def _serve(
    ns: argparse.Namespace, out: Output, port: str, paths: object, token: str | None
) -> int:
    from firmware_host.client import NeedleDriver
    from firmware_host.server.http import RigServer
    from firmware_host.server.runtime import Paths, write_info

    assert isinstance(paths, Paths)
    loop = asyncio.get_running_loop()
    # From the HELLO until the session's keeper runs, this thread keeps the link's 150 ms
    # lease: the server's start-up (sockets, page) can outlast it on a loaded machine,
    # and a lease withheld ends the device's session (SESSION_ENDED) before any client came.
    up = threading.Event()

    def open_and_hold() -> NeedleDriver:
        nd = NeedleDriver.open(port)

        def hold() -> None:
            while not up.wait(LEASE_HOLD_S):
                nd.keepalive()

        threading.Thread(target=hold, name="lease-until-up", daemon=True).start()
        return nd

    nd = await loop.run_in_executor(None, open_and_hold)
    server = RigServer(
        nd, port, token=token, allow_remote=ns.allow_remote, client_queue=ns.client_queue
    )
    host = "0.0.0.0" if ns.allow_remote else "127.0.0.1"
    stop_why: list[str] = []

    def on_signal(sig: signal.Signals) -> None:
        stop_why.append(f"server stopped by {sig.name}")
        server.stopped.set()

    for sig in (signal.SIGINT, signal.SIGTERM):
        loop.add_signal_handler(sig, on_signal, sig)
    try:
        try:
            runners = await server.serve(paths.sock, host, ns.http_port)
        finally:
            up.set()  # the keeper holds the lease now (or the server never came up)
        web = server.http_url + (f"?token={token}" if token else "")
        write_info(paths, {"port": port, "pid": os.getpid(), "web": server.http_url})
        out.result(
            {"port": port, "web": web, "socket": str(paths.sock), "pid": os.getpid()},
            f"serving {port}: web {web} · socket {paths.sock} (Ctrl-C to stop)",
        )
        await server.stopped.wait()
        why = stop_why[0] if stop_why else f"link lost: {server.link_lost}"
        await server.shutdown(why, runners)
    finally:
        await loop.run_in_executor(None, nd.close)
    if server.link_lost is not None and not stop_why:
        raise CliError(
            f"link lost on {port}: {server.link_lost} — check cable and power; the server stopped",
            Exit.LINK,
        )
    out.line(f"stopped serving {port}")
    return Exit.OK


def _serve_arguments(p: argparse.ArgumentParser) -> None:
    add_number(
        p,
        "--http-port",
        0,
        65535,
        0,
        "TCP port of the web page and API (default 0: a free one, printed)",
        integer=True,
    )
    p.add_argument(
        "--allow-remote",
        action="store_true",
        help="listen on every interface, with a token (printed; or $NEEDLECTL_TOKEN)",
    )
    add_number(
        p,
        "--client-queue",
        4,
        100_000,
        256,
        "messages a client may fall behind before it is cut off (256)",
        integer=True,
        metavar="N",
    )


SERVE = Command(
    "serve",
    "own the port and keep its session; other needlectl commands, a web page and a"
    " stop from any terminal go through it (until Ctrl-C)",
    cmd_serve,
    _serve_arguments,
    owns_port=True,
)
