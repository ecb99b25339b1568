"""RemoteDriver: the NeedleDriver calls needlectl makes, sent to the rig server that owns
the port, over its Unix socket (a WebSocket: one connection for the whole command, so
the server knows when this client is gone — the dead-man rule).

The CLI is synchronous; websocket-client is a maintained synchronous WebSocket client
that runs over a socket we connect ourselves (AF_UNIX). Replies carry the library's
objects as JSON (server/messages.py) and errors as the same exception classes, so every command
prints the same lines and exits with the same codes as on the port itself.
"""

from __future__ import annotations

import contextlib
import itertools
import json
import socket
import threading
import time
from collections.abc import Callable
from typing import TYPE_CHECKING, Any

import websocket

from firmware_host import driver as ops
from firmware_host.driver import ClosedOnExit
from firmware_host.errors import LinkLost, NeedleDriverError
from firmware_host.server.messages import (
    error_from_wire,
    event_from_wire,
    identity_from_wire,
    outcome_from_wire,
    progress_from_wire,
    status_from_wire,
)
from firmware_host.transports.base import MONOTONIC, Clock

if TYPE_CHECKING:
    from firmware_host.client import DeviceEvent, DeviceIdentity, DeviceStatus
    from firmware_host.procedure import Outcome, Profile, Progress

CALL_TIMEOUT_S = 30.0  # longer than the link's own retries (a few seconds)
ABORT_POLL_S = 0.05  # a run's client looks at its stop request this often


class ServerGone(LinkLost):
    """The rig server went away (killed, crashed, stopped): not the cable, not the rig."""


class _Stats:
    def __init__(self) -> None:
        self.link: dict[str, Any] = {}

    def as_dict(self) -> dict[str, Any]:
        return dict(self.link)


class RemoteDriver(ClosedOnExit):
    """The rig through its server (a ``driver.Driver``). ``remote`` tells needlectl to
    run procedures there."""

    remote = True

    def __init__(self, port: str, info: dict[str, Any]) -> None:
        self.url = port
        self.server = info
        self.clock: Clock = MONOTONIC
        self.stats = _Stats()
        self.run_going: dict[str, Any] | None = None  # as of the last status()
        self.record_path: str | None = None  # the folder the server records the last run in
        self._ids = itertools.count(1)
        self._lock = threading.Lock()
        sock = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
        try:
            sock.settimeout(CALL_TIMEOUT_S)
            sock.connect(str(info["socket"]))
            # the server's token, from its announcement in the 0700 runtime directory
            self._ws = websocket.create_connection(
                "ws://localhost/api/ws",
                socket=sock,
                timeout=CALL_TIMEOUT_S,
                header=[f"Authorization: Bearer {info.get('token', '')}"],
            )
        except (OSError, websocket.WebSocketException) as exc:
            sock.close()
            raise ServerGone(
                f"the rig server for {port} (pid {info.get('pid')}) does not answer on"
                f" {info['socket']}: {exc}"
            ) from None
        self.identity: DeviceIdentity = identity_from_wire(self._call(ops.IDENTITY))

    @classmethod
    def open(cls, port: str, info: dict[str, Any]) -> RemoteDriver:
        return cls(port, info)

    def close(self) -> None:
        """Leave; the server stops the rig if this client commanded motion (as close())."""
        with contextlib.suppress(OSError, websocket.WebSocketException):
            self._ws.close()

    # ---------------------------------------------------------------- the wire

    def _send(self, op: str, args: dict[str, Any]) -> int:
        req_id = next(self._ids)
        try:
            self._ws.send(json.dumps({"id": req_id, "op": op, "args": args}))
        except (OSError, websocket.WebSocketException) as exc:
            raise self._gone(exc) from None
        return req_id

    def _gone(self, exc: BaseException) -> ServerGone:
        return ServerGone(
            f"the rig server for {self.url} (pid {self.server.get('pid', '?')}) went away:"
            f" {exc or type(exc).__name__}"
        )

    def _recv(self) -> dict[str, Any]:
        try:
            text = self._ws.recv()
        except websocket.WebSocketTimeoutException:
            raise
        except (OSError, websocket.WebSocketException) as exc:
            raise self._gone(exc) from None
        if not text:
            raise self._gone(ConnectionError("connection closed"))
        msg: dict[str, Any] = json.loads(text)
        return msg

    def _wait_reply(
        self,
        req_id: int,
        on_message: Callable[[dict[str, Any]], None] | None = None,
        on_idle: Callable[[], None] | None = None,
    ) -> Any:
        while True:
            try:
                msg = self._recv()
            except websocket.WebSocketTimeoutException:
                if on_idle is None:
                    raise self._gone(TimeoutError(f"no reply in {CALL_TIMEOUT_S:g} s")) from None
                on_idle()
                continue
            if msg.get("id") == req_id:
                if "error" in msg:
                    raise error_from_wire(msg["error"])
                return msg.get("ok")
            if on_message is not None:
                on_message(msg)

    def _call(self, op: ops.Operation, **args: float) -> Any:
        """One operation of the table (driver.OPERATIONS); its result as JSON."""
        return self._ask(op.name, args)

    def _ask(self, name: str, args: dict[str, Any]) -> Any:
        with self._lock:
            return self._wait_reply(self._send(name, args))

    # ---------------------------------------------------------------- NeedleDriver's calls

    def status(self) -> DeviceStatus:
        reply = self._call(ops.STATUS)
        self.stats.link = reply["link"]
        self.run_going = reply.get("run")  # another client's run, as the server sees it
        return status_from_wire(reply["status"])

    def events(self) -> list[DeviceEvent]:
        return [event_from_wire(e) for e in self._call(ops.EVENTS)]

    def stop(self) -> None:
        self._call(ops.STOP)

    def estop(self) -> None:
        self._call(ops.ESTOP)

    def clear_fault(self) -> None:
        self._call(ops.CLEAR)

    def start_home(self, speed_mm_s: float = 2.0) -> None:
        self._call(ops.START_HOME, speed_mm_s=speed_mm_s)

    def advance_mm(self, distance_mm: float, speed_mm_s: float) -> None:
        self._call(ops.ADVANCE_MM, distance_mm=distance_mm, speed_mm_s=speed_mm_s)

    def rotate_deg(self, angle_deg: float, rate_rpm: float) -> None:
        self._call(ops.ROTATE_DEG, angle_deg=angle_deg, rate_rpm=rate_rpm)

    def move_to_mm(self, depth_mm: float, speed_mm_s: float) -> None:
        self._call(ops.MOVE_TO_MM, depth_mm=depth_mm, speed_mm_s=speed_mm_s)

    def rotate_rpm(self, rate_rpm: float) -> None:
        self._call(ops.ROTATE_RPM, rate_rpm=rate_rpm)

    def wait_s(self, seconds: float) -> None:
        """The server keeps the session alive: here, time just passes (a poll period)."""
        time.sleep(seconds)

    def keepalive(self) -> None:
        """Nothing to renew: the server holds the link."""

    def figures(self) -> dict[str, Any]:
        result: dict[str, Any] = self._ask("figures", {})
        return result

    def run_procedure(
        self,
        profile: Profile,
        *,
        target_depth_mm: float,
        record: str | None,
        command: str,
        on_progress: Callable[[Progress], None] | None,
        abort: threading.Event,
    ) -> Outcome:
        """The procedure, run by the server (its control loop next to the link); progress
        comes back here. ``abort`` set (Ctrl-C) asks the server to stop it; this process
        killed, the server stops it anyway (dead-man). The server records every run, in
        its runs directory: ``record`` names it (None: the server names it); the folder is
        ``record_path`` once the run has begun."""
        args: dict[str, Any] = {
            "profile": profile.to_dict(),
            "source": f"profile {profile.name}",
            "target_depth_mm": target_depth_mm,
            "command": command,
        }
        if record is not None:
            args["record"] = record
        asked = False

        def on_message(msg: dict[str, Any]) -> None:
            if msg.get("type") == "record":
                self.record_path = str(msg["path"])
            if msg.get("type") == "progress" and on_progress is not None:
                on_progress(progress_from_wire({k: v for k, v in msg.items() if k != "type"}))
            check_abort()

        def check_abort() -> None:
            nonlocal asked
            if abort.is_set() and not asked:
                asked = True
                reason = str(getattr(abort, "reason", "") or "aborted by its client")
                self._send("abort", {"reason": reason})

        with self._lock:
            req_id = self._send(ops.RUN.name, args)
            self._ws.settimeout(ABORT_POLL_S)
            try:
                result = self._wait_reply(req_id, on_message, check_abort)
            finally:
                self._ws.settimeout(CALL_TIMEOUT_S)
        if not isinstance(result, dict):
            raise NeedleDriverError(f"rig server answered a run with {result!r}")
        return outcome_from_wire(result)
