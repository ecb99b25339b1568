"""The rig server's session: the one NeedleDriver on the port, kept alive for the clients.

* the link's own reader thread (heartbeats, telemetry, events) — as in any NeedleDriver;
  telemetry rows and events go to the clients through the feed;
* a keeper thread: waits in the library (which renews the link's liveness lease, so the
  heartbeats keep going while no client does anything) and asks STATUS four times a
  second for the clients; if the device ended the session because the server fell
  silent at rest (a starved process on a loaded machine: SESSION_ENDED, nothing latched)
  it says HELLO again, so the clients never meet NOT_ARMED from a session they hold;
* the load figures: control-loop lateness (every wait of a run's procedure timed through
  ``TimedDriver``), heartbeat gaps (the link's ``on_beat`` hook), samples lost (the
  link's exact count).
"""

from __future__ import annotations

import contextlib
import logging
import threading
import time
from collections import deque
from collections.abc import Callable, Iterable
from typing import TYPE_CHECKING, Any

import numpy as np

from firmware_host.errors import LinkLost, NeedleDriverError
from firmware_host.server.feed import Feed
from firmware_host.server.messages import to_wire
from protocol import SampleFlags

if TYPE_CHECKING:
    from firmware_host.client import NeedleDriver

log = logging.getLogger("needlectl.serve")

STATE_S = 0.25  # STATUS for the clients this often
LATENESS_KEEP = 100_000


class TimedDriver:
    """The driver as the procedure sees it, with every control-period wait timed: how
    late the loop woke (the load figures: lateness p99)."""

    def __init__(self, nd: NeedleDriver, lateness_s: deque[float]) -> None:
        self._nd = nd
        self._lateness_s = lateness_s

    def __getattr__(self, name: str) -> Any:
        return getattr(self._nd, name)

    def wait_s(self, seconds: float) -> None:
        t0 = time.monotonic()
        self._nd.wait_s(seconds)
        self._lateness_s.append(time.monotonic() - t0 - seconds)


class Session:
    def __init__(self, nd: NeedleDriver, feed: Feed) -> None:
        self.nd = nd
        self.feed = feed
        self.closing = threading.Event()
        self.link_lost: str | None = None
        self.lateness_s: deque[float] = deque(maxlen=LATENESS_KEEP)
        self.heartbeat_at_s: deque[float] = deque(maxlen=LATENESS_KEEP)
        self.rearms = 0  # sessions the device ended (server silent at rest) and reopened
        self._keeper: threading.Thread | None = None
        nd.link.on_beat = self._beat_sent

    def _beat_sent(self, now: float) -> None:
        self.heartbeat_at_s.append(time.monotonic())

    def start(
        self,
        on_state: Callable[[dict[str, Any]], None],
        on_link_lost: Callable[[], None],
    ) -> None:
        """Stream telemetry to the feed; keep the session, reporting its state (on the
        loop) to on_state, and a lost link to on_link_lost."""
        self.nd.set_telemetry(1000, 10)
        self.nd.telemetry.subscribe(self.feed.on_rows)
        self.nd.add_event_listener(self.feed.on_event)
        self._keeper = threading.Thread(
            target=self._keep, args=(on_state, on_link_lost), name="rig-keeper", daemon=True
        )
        self._keeper.start()

    def _keep(
        self, on_state: Callable[[dict[str, Any]], None], on_link_lost: Callable[[], None]
    ) -> None:
        """Keep the session: wait in the library (lease renewed, heartbeats out), STATUS."""
        while not self.closing.is_set():
            try:
                self.nd.wait_s(STATE_S)
                status = self.nd.status()
            except LinkLost as exc:
                self.link_lost = str(exc)
                self.feed.from_thread(on_link_lost)
                return
            except NeedleDriverError as exc:
                log.warning("status: %s", exc)
                continue
            if not status.flags & SampleFlags.ARMED and not self.closing.is_set():
                log.warning("the device ended the session (the server was silent): HELLO again")
                try:
                    self.nd.rearm()
                    self.rearms += 1
                except NeedleDriverError as exc:
                    log.warning("re-arm: %s", exc)
            shown = to_wire(status)
            shown["state_name"] = status.state.name
            state = {
                "status": shown,
                "faults": [
                    f.name for f in type(status.latched_faults) if f in status.latched_faults
                ],
                "link": to_wire(self.nd.stats.as_dict()),
            }
            self.feed.from_thread(on_state, state)

    def timed(self) -> TimedDriver:
        return TimedDriver(self.nd, self.lateness_s)

    def stop_quietly(self) -> None:
        with contextlib.suppress(NeedleDriverError, OSError):
            self.nd.stop()

    def figures(self) -> dict[str, Any]:
        """What the load test reports: control-loop lateness, heartbeat gaps, samples lost."""
        beats = np.diff(np.asarray(self.heartbeat_at_s, dtype=float))
        late = list(self.lateness_s)
        stats = self.nd.stats
        feed = self.feed
        return {
            "clients": len(feed.conns),
            "clients_cut_off": feed.clients_cut_off,
            "control_waits": len(late),
            "control_lateness_p99_ms": _ms(_percentile(late, 99)),
            "control_lateness_max_ms": _ms(max(late) if late else None),
            "heartbeats": len(self.heartbeat_at_s),
            "sessions_reopened": self.rearms,
            "heartbeat_gap_p99_ms": _ms(_percentile(beats, 99)),
            "heartbeat_gap_max_ms": _ms(float(beats.max()) if len(beats) else None),
            "telemetry_samples": stats.telemetry_samples,
            "telemetry_samples_lost": stats.telemetry_samples_lost,
            "display_points_out": feed.telemetry_samples_out,
        }

    def join(self, timeout_s: float) -> None:
        """After closing.set(): the keeper's end (within one STATE_S)."""
        keeper = self._keeper
        if keeper is not None:
            keeper.join(timeout_s)


def _percentile(values: Iterable[float], q: float) -> float | None:
    arr = np.asarray(list(values), dtype=float)
    return float(np.percentile(arr, q)) if len(arr) else None


def _ms(seconds: float | None) -> float | None:
    return None if seconds is None else round(seconds * 1e3, 3)
