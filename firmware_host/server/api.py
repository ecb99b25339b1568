"""The rig server's API: one WebSocket per client, JSON requests ``{"id", "op", "args"}``
answered ``{"id", "ok"}`` or ``{"id", "error"}`` (docs/architecture.md §7).

The device operations are the table's (driver.OPERATIONS); besides them a client may
``subscribe`` to topics, start a ``run`` (the procedure, next to the link), ``abort`` its
run and ask for the load ``figures``. Device calls run in a small thread pool, a run in a
thread of its own: the link takes requests from several threads at once, so a STOP does
not queue behind a run.

Every run is recorded, under the server's own runs directory (runs.py): a client names
its run (``record``), never a path. The procedure's notes go to the clients (topic
``notes``) as they go to the record, and the run's outcome to everyone when it ends
(``last_run`` in the state, a ``run_end`` message).

Dead-man: a run belongs to the connection that started it. That connection closed (the
client killed, its terminal gone), the run is aborted — the procedure stops the rig,
the record notes why and is closed, so the folder stays plottable. A connection that
commanded other motion (home, jog) gets a STOP when it goes, as NeedleDriver.close()
does for a direct session.
"""

from __future__ import annotations

import asyncio
import concurrent.futures
import json
import logging
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any, cast

from aiohttp import WSMsgType, web

from firmware_host.driver import OPERATIONS, RUN, STATUS
from firmware_host.errors import Nak
from firmware_host.recorder import Recorder
from firmware_host.server.feed import TOPICS, Conn, Feed
from firmware_host.server.messages import error_to_wire, to_wire
from firmware_host.server.runs import RunNameError, Runs
from firmware_host.server.session import Session
from firmware_host.waiting import AbortEvent
from protocol import NakReason

if TYPE_CHECKING:
    from firmware_host.procedure import Outcome, Profile, Progress

log = logging.getLogger("needlectl.serve")


@dataclass(eq=False)
class RunState:
    owner: Conn
    abort: AbortEvent
    target_depth_mm: float
    profile: str
    record: str  # the run's folder name under the runs directory
    progress: dict[str, Any] | None = None
    stopped_by: str | None = None


class Api:
    def __init__(self, session: Session, feed: Feed, port: str, runs: Runs) -> None:
        self.session = session
        self.feed = feed
        self.port = port
        self.runs = runs
        self.run: RunState | None = None
        self.last_run: dict[str, Any] | None = None  # the latest run's outcome, for the page
        self.state: dict[str, Any] | None = None  # the keeper's latest, as the clients got it
        # What the server adds to an operation's answer that the device cannot know: a
        # client about to start a run must learn of another client's run from STATUS.
        self.context: dict[str, Callable[[], dict[str, Any]]] = {
            STATUS.name: lambda: {"run": self.run_view()},
        }
        self.run_idle = asyncio.Event()
        self.run_idle.set()
        self._pool = concurrent.futures.ThreadPoolExecutor(8, thread_name_prefix="rig-call")
        self._run_pool = concurrent.futures.ThreadPoolExecutor(1, thread_name_prefix="rig-run")

    # ---------------------------------------------------------------- state

    def publish_state(self, state: dict[str, Any]) -> None:
        state["run"] = self.run_view()
        state["last_run"] = self.last_run
        state["server"] = self.session.figures()
        self.state = state
        self.feed.broadcast("state", {"type": "state", **state})

    def run_view(self) -> dict[str, Any] | None:
        run = self.run
        if run is None:
            return None
        return {
            "owner": run.owner.name,
            "profile": run.profile,
            "record": run.record,
            "target_depth_mm": run.target_depth_mm,
            "progress": run.progress,
        }

    # ---------------------------------------------------------------- clients

    async def handle_ws(self, request: web.Request, via: str, user: str) -> web.WebSocketResponse:
        ws = web.WebSocketResponse(max_msg_size=1 << 20)
        await ws.prepare(request)
        conn = self.feed.connect(ws, via, user)
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
                    self.feed.push(conn, json.dumps({"error": {"type": "BadRequest"}}))
                    continue
                task = asyncio.create_task(self._dispatch(conn, req.get("id"), op, args))
                tasks.add(task)
                task.add_done_callback(tasks.discard)
        except ConnectionError as exc:
            why = f"connection broken: {exc}"
        finally:
            self.feed.disconnect(conn)
            if conn.cut_off:
                why = "cut off: it stopped reading"
            self._client_gone(conn, why)
        return ws

    def _client_gone(self, conn: Conn, why: str) -> None:
        run = self.run
        if run is not None and run.owner is conn:
            reason = (
                f"client lost: {conn.name}, which started the run, is gone ({why});"
                " dead-man: the server stopped the rig"
            )
            run.stopped_by = reason
            run.abort.set_because(reason, by_operator=False)
            log.warning("dead-man: %s: stopping the run", reason)
            self.feed.note(reason)
        elif conn.commanded_motion and self.feed.loop is not None:
            log.info("%s left after commanding motion: STOP", conn.name)
            self.feed.loop.run_in_executor(self._pool, self.session.stop_quietly)

    async def _dispatch(self, conn: Conn, req_id: object, op: str, args: dict[str, Any]) -> None:
        result: object
        try:
            if op == "subscribe":
                conn.topics = {t for t in args.get("topics", TOPICS) if t in TOPICS}
                result = {"topics": sorted(conn.topics), "state": self.state}
                self.feed.send_backlog(conn)
            elif op == "abort":
                run = self.run
                if run is not None and run.owner is conn:
                    run.abort.set_because(str(args.get("reason", "aborted by its client")))
                result = {"aborted": run is not None}
            elif op == RUN.name:
                result = await self._start_run(conn, args)
            elif op == "figures":
                result = self.session.figures()
            elif op == "runs":
                result = self.runs.history()
            else:
                result = await self.device_call(conn, op, args)
            reply: dict[str, Any] = {"id": req_id, "ok": result}
        except Exception as exc:  # every failure goes back to the client that asked
            reply = {"id": req_id, "error": error_to_wire(exc)}
        self.feed.push(conn, json.dumps(reply, separators=(",", ":")))

    async def device_call(self, conn: Conn, name: str, args: dict[str, Any]) -> object:
        """One operation of the table (driver.OPERATIONS) for this client, in the pool;
        its result as JSON."""
        fn = self._device_op(conn, name, args)
        return await asyncio.get_running_loop().run_in_executor(self._pool, fn)

    def _device_op(self, conn: Conn, name: str, args: dict[str, Any]) -> Callable[[], object]:
        op = OPERATIONS.get(name)
        if op is None or op.call is None:
            raise ValueError(f"unknown operation {name!r}")
        if op.stops:
            why = f"{op.name.upper()} from {conn.name}"
            run = self.run
            if run is not None:
                run.stopped_by = why
                run.abort.set_because(why)
            self.feed.note(why)
        if op.moves:
            if self.run is not None:
                raise Nak(op.name, NakReason.BUSY)  # a run holds the rig: stop it first
            conn.commanded_motion = True
        call, nd = op.call, self.session.nd
        context = self.context.get(op.name)
        if context is not None:  # taken now, on the loop: the server's view when asked
            extra = context()
            return lambda: to_wire({**cast("dict[str, Any]", call(nd, args)), **extra})
        return lambda: to_wire(call(nd, args))

    # ---------------------------------------------------------------- runs

    async def _start_run(self, conn: Conn, args: dict[str, Any]) -> object:
        if self.run is not None:
            raise Nak("RUN", NakReason.BUSY)
        from firmware_host.procedure.profile import profile_from_dict

        if "record_dir" in args:
            raise RunNameError(
                "record_dir refused: a client names a run (record: NAME), never a path;"
                f" the server records in {self.runs.root}"
            )
        profile = profile_from_dict(args["profile"], source=str(args.get("source", "profile")))
        target_mm = float(args["target_depth_mm"])
        name = args.get("record")
        folder = self.runs.new_folder(None if name is None else str(name), profile.name)
        run = RunState(conn, AbortEvent(), target_mm, profile.name, folder.name)
        self.feed.push(
            conn,
            json.dumps({"type": "record", "name": folder.name, "path": str(folder)}),
        )
        self.run = run
        self.run_idle.clear()
        conn.commanded_motion = True
        loop = asyncio.get_running_loop()
        try:
            result = await loop.run_in_executor(
                self._run_pool, self._run_body, run, profile, target_mm, args, folder, conn
            )
            self._ended(run, result)
            return result
        except Exception as exc:
            self._ended(run, {"outcome": "error", "reason": str(exc)})
            raise
        finally:
            self.run = None
            self.run_idle.set()

    def _ended(self, run: RunState, outcome: Any) -> None:
        """The run's outcome, to every client: the page shows how and why it ended."""
        d = outcome if isinstance(outcome, dict) else {}
        self.last_run = {
            "record": run.record,
            "profile": run.profile,
            "owner": run.owner.name,
            "outcome": d.get("outcome", d.get("result", "?")),
            "reason": d.get("reason", ""),
            "final_depth_mm": d.get("final_depth_mm"),
            "peak_force_n": d.get("peak_force_n"),
            "duration_s": d.get("duration_s"),
        }
        self.feed.broadcast("notes", {"type": "run_end", **self.last_run})

    def _run_body(
        self,
        run: RunState,
        profile: Profile,
        target_mm: float,
        args: dict[str, Any],
        folder: Path,
        conn: Conn,
    ) -> object:
        from firmware_host.procedure import run_procedure

        session = self.session
        recorder = NotesToClients(
            folder,
            session.nd,
            feed=self.feed,
            profile=profile.to_dict(),
            port=self.port,
            extra_meta={
                "target_depth_mm": target_mm,
                "command": str(args.get("command", "needlectl run")),
                "served_by": "needlectl serve",
                "started_by": {"client": conn.name, "user": conn.user},
            },
        )

        def on_progress(p: Progress) -> None:
            run.progress = to_wire(p)
            self.feed.from_thread(self.feed.send_progress, run.owner, run.progress)

        outcome: Outcome | None = None
        try:
            outcome = run_procedure(
                session.timed(),
                profile,
                target_depth_mm=target_mm,
                recorder=recorder,
                on_progress=on_progress,
                abort=run.abort,
            )
        except BaseException:
            session.stop_quietly()  # the procedure stops the rig; this is for its errors
            raise
        finally:
            if run.abort.is_set():
                recorder.note("stopped_by", reason=run.abort.reason, action="rig stopped")
            recorder.close(**(outcome.to_dict() if outcome is not None else {"outcome": "error"}))
        return to_wire(outcome)

    async def abort_run(self, why: str) -> None:
        """Stop a run (the procedure stops the rig and closes its record) and wait for it."""
        run = self.run
        if run is not None:
            run.stopped_by = why
            run.abort.set_because(why)
            await self.run_idle.wait()  # the run thread ends within one control period

    def close(self) -> None:
        self._pool.shutdown(wait=True)
        self._run_pool.shutdown(wait=True)


class NotesToClients(Recorder):
    """The run's record, whose notes (the procedure's phases, holds, cracks, punctures,
    pecks) also go to the clients' event logs as they are written."""

    def __init__(self, path: Path, nd: Any, *, feed: Feed, **kwargs: Any) -> None:
        self._feed = feed
        super().__init__(path, nd, **kwargs)

    def note(self, kind: str, **fields: Any) -> None:
        super().note(kind, **fields)
        msg = {"type": "note", "kind": kind, "text": _note_text(kind, fields)}
        self._feed.from_thread(self._feed.broadcast, "notes", msg)


def _note_text(kind: str, fields: dict[str, Any]) -> str:
    shown = " ".join(
        f"{k} {v:.3f}" if isinstance(v, float) else f"{k} {v}" for k, v in fields.items()
    )
    return f"{kind} {shown}".strip()
