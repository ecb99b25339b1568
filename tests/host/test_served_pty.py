"""The library against a device in another process over a real pty, in real time
(python -m sim_device serve --pty): the way a rig is reached. Includes SIGKILL of a host
process mid-move: the device stops within its watchdog period on its own and reports it
to the next host that connects."""

from __future__ import annotations

import json
import signal
import subprocess
import sys
import time
from collections.abc import Iterator
from pathlib import Path

import pytest

from firmware_host.client import NeedleDriver
from firmware_host.errors import PortError
from firmware_host.transports import open_transport
from protocol import DeviceState, Event, EventCode, FaultFlags, GetStatus, Status, StreamDecoder

from .served import ServedDevice, child_env


@pytest.fixture
def stats_path(tmp_path: Path) -> Path:
    return tmp_path / "served-stats.json"


@pytest.fixture
def served(stats_path: Path) -> Iterator[ServedDevice]:
    dev = ServedDevice("--seed", "1", "--stats", str(stats_path))
    yield dev
    dev.close()


def _written_after(path: Path, wall_s: float) -> bool:
    try:
        return path.stat().st_mtime > wall_s
    except FileNotFoundError:
        return False


def _clock_paused_s(stats_path: Path) -> float:
    """How long the served device's clock has stood still so far (its process woken late
    on a loaded machine: sim_device.serve pauses the model rather than run the missed time
    in a burst)."""
    return float(json.loads(stats_path.read_text())["clock_paused_s"])


def test_client_over_a_served_pty(served: ServedDevice, stats_path: Path) -> None:
    with NeedleDriver.open(served.path) as nd:
        assert not nd.link.virtual
        assert nd.identity.simulated and nd.identity.schema_matches
        with pytest.raises(PortError) as info:  # opened exclusively
            NeedleDriver.open(served.path)
        assert "busy" in str(info.value)
        nd.home(speed_mm_s=5.0)
        nd.set_telemetry(1000, 10)
        nd.advance_mm(1.0, 5.0)
        st = nd.wait_idle(10.0)
        assert st.state is DeviceState.READY
        assert st.depth_mm == pytest.approx(1.0, abs=0.05)
        got = nd.stats.telemetry_samples
        assert nd.wait_until(lambda: nd.stats.telemetry_samples >= got + 200, 5.0)
        assert nd.stats.telemetry_samples_lost == 0
        # Device time mapped to the host clock, checked by causality rather than a window
        # of real time: the device stamped this STATUS after the request left and before
        # the reply arrived, so its mapped time lies between the two (20 ms: the mapping
        # is a line fitted to per-second minima of the delay, which a busy second can tilt);
        # and no sample is mapped to after it was received. A served simulator whose
        # process was woken late pauses its clock (no real device does): each pause maps
        # its later stamps that much earlier, so the lower bound allows what it reports.
        sent_s = time.monotonic()
        st_raw = nd.link.request(GetStatus()).message
        replied_s, replied_wall_s = time.monotonic(), time.time()
        assert isinstance(st_raw, Status)
        stamped_s = nd.timesync.to_host_s(st_raw.device_time_us)
        # its statistics are written every second: wait for one written after the STATUS
        assert nd.wait_until(lambda: _written_after(stats_path, replied_wall_s), 3.0)
        paused_s = _clock_paused_s(stats_path)
        assert sent_s - 0.02 - paused_s <= stamped_s <= replied_s + 0.02, (
            f"STATUS stamped at {stamped_s - sent_s:+.4f} s from its request, "
            f"reply {replied_s - sent_s:.4f} s after it; the served clock paused {paused_s} s"
        )
        rows = nd.telemetry.latest(200)
        assert rows["host_time_s"][-1] <= time.monotonic() + 0.02
        assert nd.stats.rtt_p99_s is not None
        # A reply slower than the retransmit timeout (a loaded machine) is resent, which is
        # the link's job; what must hold is exactly once. On a lossless pty every resend
        # reaches the device as a repeat and is answered from its reply cache, never run
        # again (this STATUS request may be resent too, after its counts were taken).
        resent = nd.stats.retransmits
        replayed = nd.status().counters.replies_replayed
        assert resent <= replayed <= nd.stats.retransmits, (resent, replayed)


def test_sigkill_of_the_host_mid_move_stops_the_device(served: ServedDevice) -> None:
    host = subprocess.Popen(
        [sys.executable, str(Path(__file__).with_name("host_child.py")), served.path],
        stdout=subprocess.PIPE,
        text=True,
        env=child_env(),
    )
    assert host.stdout is not None
    line = host.stdout.readline()  # blocks until the child is moving
    assert line.startswith("moving"), line
    _, t_report, depth_report = line.split()
    host.send_signal(signal.SIGKILL)
    t_kill = time.monotonic()
    host.wait(10)
    # Listen (sending nothing, so as not to feed the watchdog) for the device's own report.
    port = open_transport(served.path)
    decoder = StreamDecoder()
    trip_event = None
    deadline = time.monotonic() + 5.0
    while trip_event is None and time.monotonic() < deadline:
        for frame in decoder.feed(port.read(4096, 0.1)):
            if isinstance(frame.message, Event) and frame.message.code == EventCode.WATCHDOG_TRIP:
                trip_event = frame.message
    port.close()
    assert trip_event is not None, "the device never reported a watchdog trip"
    # the next host finds the device stopped, the watchdog latched, and the event logged
    with NeedleDriver.open(served.path) as nd:
        st = nd.status()
        assert not st.moving
        assert st.latched_faults & FaultFlags.WATCHDOG
        assert st.state is DeviceState.FAULT
        trips = [e for e in nd.events() if e.code is EventCode.WATCHDOG_TRIP]
        assert len(trips) == 1
        watchdog_ms = nd.identity.watchdog_s * 1000
        assert trips[0].value <= watchdog_ms + 5  # ms of host silence when it tripped
        # 2 mm/s: it stopped within the watchdog period (+ deceleration) of the kill
        moved_after_report_mm = st.depth_mm - float(depth_report)
        allowed_s = (t_kill - float(t_report)) + nd.identity.watchdog_s + 0.1
        assert 0.0 <= moved_after_report_mm <= 2.0 * allowed_s
        nd.clear_fault()
        assert not nd.status().latched_faults
