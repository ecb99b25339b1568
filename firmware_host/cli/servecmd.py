"""`serve`: own the port, keep its session, serve the CLI, a web page and stops."""

from __future__ import annotations

import argparse
import asyncio
import errno
import os
import signal
import socket
import threading
from pathlib import Path

from firmware_host.cli.command import Command, add_number
from firmware_host.cli.exits import CliError, Exit
from firmware_host.cli.output import Output

LEASE_HOLD_S = 0.05  # well inside the link's 150 ms lease
# A fixed default, so the page's address (and its bookmark) survives a server restart and
# the page reconnects by itself; --http-port 0 takes any free port.
DEFAULT_HTTP_PORT = 7461


def cmd_serve(ns: argparse.Namespace, out: Output) -> int:
    from firmware_host.server.runtime import Paths, PortLock, find_server

    port = str(ns.port)
    if port.startswith("sim://"):
        raise CliError(
            f"cannot serve {port}: an in-process simulator lives only as long as one command"
            " — serve one that runs on its own (`needlectl sim serve --pty`) and pass its"
            " pty as --port"
        )
    from firmware_host.server.guard import TOKEN_ENV, TOKEN_MIN_CHARS, TokenError, make_token
    from firmware_host.server.runtime import keep_token, kept_token

    paths = Paths.for_port(port)
    try:
        # the operator's, else the last server's on this port (a page left open finds
        # the restarted server), else a new random one
        token = make_token(os.environ.get(TOKEN_ENV))
    except TokenError as exc:
        raise CliError(str(exc)) from None
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
        kept = kept_token(paths)
        if not os.environ.get(TOKEN_ENV) and kept is not None and len(kept) >= TOKEN_MIN_CHARS:
            token = kept
        keep_token(paths, token)
        return asyncio.run(_serve(ns, out, port, paths, token))
    finally:
        lock.release()


async def _serve(ns: argparse.Namespace, out: Output, port: str, paths: object, token: str) -> int:
    from firmware_host.client import NeedleDriver
    from firmware_host.server.http import RigServer
    from firmware_host.server.runs import Runs, default_runs_dir
    from firmware_host.server.runtime import Paths, write_info

    assert isinstance(paths, Paths)
    runs = Runs(Path(ns.runs_dir) if ns.runs_dir else default_runs_dir())
    try:
        runs.prepare()
    except OSError as exc:
        raise CliError(f"runs directory {runs.root}: {exc.strerror or exc}") from None
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
        nd,
        port,
        token=token,
        runs=runs,
        allow_remote=ns.allow_remote,
        client_queue=ns.client_queue,
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
        except OSError as exc:
            if exc.errno != errno.EADDRINUSE:
                raise
            raise CliError(
                f"HTTP port {ns.http_port} is busy — another needlectl serve (for another"
                " rig) or another program has it: give --http-port N (0: any free port)",
                Exit.LINK,
            ) from None
        finally:
            up.set()  # the keeper holds the lease now (or the server never came up)
        if ns.foxglove_port is not None:
            from firmware_host.server.foxglove_live import FoxgloveLive, FoxgloveUnavailable

            try:
                server.feed.foxglove = FoxgloveLive(host, ns.foxglove_port)
            except FoxgloveUnavailable as exc:
                raise CliError(str(exc)) from None
            except Exception as exc:  # the SDK's own error (a busy port, say)
                raise CliError(f"--foxglove-port {ns.foxglove_port}: {exc}", Exit.LINK) from None
        web = f"{server.http_url}?token={token}"
        info = {
            "port": port,
            "pid": os.getpid(),
            "web": server.http_url,
            "token": token,  # the file is 0600 in a 0700 directory: this user's clients
            "runs_dir": str(runs.root),
        }
        write_info(paths, info)
        shown = [web]
        if ns.allow_remote:  # 127.0.0.1 is no address for a remote user: the LAN's are
            shown = [f"http://{a}:{server.http_port}/?token={token}" for a in _lan_addresses()]
            shown = shown or [web]
        out.result(
            {
                "port": port,
                "web": web,
                "web_remote": shown if ns.allow_remote else [],
                "socket": str(paths.sock),
                "runs_dir": str(runs.root),
                "pid": os.getpid(),
                "foxglove": _foxglove_url(server, host),
            },
            f"serving {port}: web {' '.join(shown)} · socket {paths.sock} · runs"
            f" {runs.root}"
            + (f" · foxglove {_foxglove_url(server, host)}" if server.feed.foxglove else "")
            + " (Ctrl-C to stop)",
        )
        await server.stopped.wait()
        why = stop_why[0] if stop_why else f"link lost: {server.link_lost}"
        await server.shutdown(why, runners)
    finally:
        if server.feed.foxglove is not None:
            server.feed.foxglove.stop()
        await loop.run_in_executor(None, nd.close)
    if server.link_lost is not None and not stop_why:
        raise CliError(
            f"link lost on {port}: {server.link_lost} — check cable and power; the server stopped",
            Exit.LINK,
        )
    out.line(f"stopped serving {port}")
    return Exit.OK


def _foxglove_url(server: object, host: str) -> str | None:
    from firmware_host.server.http import RigServer

    assert isinstance(server, RigServer)
    live = server.feed.foxglove
    if live is None:
        return None
    return f"ws://{'127.0.0.1' if host in ('127.0.0.1', '0.0.0.0') else host}:{live.port}"


def _lan_addresses() -> list[str]:
    """This machine's non-loopback IPv4 addresses, one per interface (those a remote
    browser can open; the host name often resolves to 127.0.1.1 only)."""
    import fcntl
    import struct

    siocgifaddr = 0x8915  # Linux: an interface's IPv4 address
    found: list[str] = []
    with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as s:
        for _, name in socket.if_nameindex():
            try:
                packed = fcntl.ioctl(
                    s.fileno(), siocgifaddr, struct.pack("256s", name.encode()[:15])
                )
            except OSError:
                continue  # no IPv4 address on it
            addr = socket.inet_ntoa(packed[20:24])
            if not addr.startswith("127.") and addr not in found:
                found.append(addr)
    return found


def _serve_arguments(p: argparse.ArgumentParser) -> None:
    add_number(
        p,
        "--http-port",
        0,
        65535,
        DEFAULT_HTTP_PORT,
        f"TCP port of the web page and API (default {DEFAULT_HTTP_PORT}, the same every"
        " start so the page finds the server again; 0: a free one, printed)",
        integer=True,
    )
    add_number(
        p,
        "--foxglove-port",
        0,
        65535,
        None,
        "also stream the rig live in the Foxglove WebSocket protocol on this port (0: a"
        " free one), read-only, for Foxglove / Lichtblick; needs needle-driver[foxglove]",
        integer=True,
    )
    p.add_argument(
        "--runs-dir",
        metavar="DIR",
        help="where the server records every run (default $NEEDLECTL_RUNS_DIR, else"
        " ~/.local/share/needlectl/runs); clients name runs, never paths",
    )
    p.add_argument(
        "--allow-remote",
        action="store_true",
        help="listen on every interface (the token, printed or $NEEDLECTL_TOKEN, guards"
        " it as it guards loopback)",
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
