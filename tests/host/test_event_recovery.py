"""Events lost on the way are fetched (docs/protocol.md §8), even the *last* one — which no
later event reveals — from STATUS last_event_number; events the device's log no longer
holds are reported (a counter and an EVENTS_LOST notice), never skipped silently."""

from __future__ import annotations

import json
from collections.abc import Callable
from pathlib import Path

import pytest

from firmware_host.client import EVENTS_LOST, DeviceEvent, NeedleDriver
from firmware_host.recorder import EVENTS_FILE, Recorder
from protocol import EVENT_LOG_SIZE, Event, EventCode, Frame

from .helpers import tamper_device_frames


def _drop_event_frames(nd: NeedleDriver, drop: Callable[[Event], bool]) -> list[int]:
    """The simulated device's EVENT frames for which drop(event) is true never reach the
    host (exactly those frames; everything else passes). Returns the dropped numbers."""
    dropped: list[int] = []

    def tamper(frame: Frame, raw: bytes) -> bytes | None:
        msg = frame.message
        if isinstance(msg, Event) and drop(msg):
            dropped.append(msg.number)
            return None
        return raw

    tamper_device_frames(nd, tamper)
    return dropped


@pytest.mark.control("RC-EVENTS")
def test_a_lost_last_event_is_fetched_on_the_next_status() -> None:
    with NeedleDriver.open("sim://?seed=31") as nd:
        nd.home()
        seen: list[DeviceEvent] = []
        nd.add_event_listener(seen.append)
        dropped = _drop_event_frames(nd, lambda e: e.code == EventCode.TARGET_REACHED)
        nd.advance_mm(1.0, 5.0)
        st = nd.wait_idle(10.0)  # its STATUS polls see last_event_number move on
        assert len(dropped) == 1  # the move's TARGET_REACHED frame never came
        assert st.counters.last_event_number == dropped[0]
        assert [(e.number, e.code) for e in seen] == [(dropped[0], EventCode.TARGET_REACHED)]
        assert nd.stats.events_lost == 0


def test_a_lost_last_event_is_fetched_while_waiting() -> None:
    with NeedleDriver.open("sim://?seed=32") as nd:
        nd.home()
        seen: list[int] = []
        nd.add_event_listener(lambda e: seen.append(e.number))
        dropped = _drop_event_frames(nd, lambda e: e.code == EventCode.TARGET_REACHED)
        nd.move_to_mm(0.0, 1.0)  # already there: TARGET_REACHED at once, frame dropped
        nd.wait_s(1.0)  # no STATUS asked by the caller: the wait polls for it
        assert dropped and seen == dropped


@pytest.mark.control("RC-EVENTS")
def test_events_gone_from_the_device_log_are_reported(tmp_path: Path) -> None:
    with NeedleDriver.open("sim://?seed=33") as nd:
        nd.home()
        first_new = nd.status().counters.last_event_number + 1
        seen: list[DeviceEvent] = []
        nd.add_event_listener(seen.append)
        recorder = Recorder(tmp_path / "run", nd)
        dropped = _drop_event_frames(nd, lambda e: True)
        extra = 44
        for _ in range(EVENT_LOG_SIZE + extra):  # each one a TARGET_REACHED at once
            nd.move_to_mm(0.0, 1.0)
        nd.status()
        recorder.close()
        assert len(dropped) == EVENT_LOG_SIZE + extra
        assert nd.stats.events_lost == extra
        notice, *fetched = seen
        assert notice.code == EVENTS_LOST and notice.name == "EVENTS_LOST"
        assert (notice.number, notice.value) == (first_new, extra)
        # the rest, late but in order and each once
        assert [e.number for e in fetched] == dropped[extra:]
        lines = (tmp_path / "run" / EVENTS_FILE).read_text().splitlines()
        device = [json.loads(line) for line in lines if '"source": "device"' in line]
        assert device[0]["code"] == "EVENTS_LOST" and device[0]["value"] == extra
        assert len(device) == 1 + EVENT_LOG_SIZE
