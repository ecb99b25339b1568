"""Fixtures of the HIL conformance suite: one connection per session, a device reset and
checked around every test, motion only where it is allowed.

The same tests run on the in-process simulator (virtual clock: waits advance device time,
nothing sleeps) and on a rig behind a serial port (machine time), chosen by ``--port``.
"""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import replace
from typing import Any

import pytest

from hil_tests.dut import DeviceError, Dut, NoReply
from hil_tests.plugin import DUMP_KEY, REPORT_KEY
from hil_tests.rig import RigConfigError, load_rig_config
from hil_tests.session import (
    EXIT_UNREACHABLE,
    PRE_HELLO_QUIET_S,
    RIG_DEFAULT_TEST_DEPTH_MM,
    SIM_DEFAULTS,
    TELEMETRY_RATE_HZ,
    HilSession,
    open_wire,
)
from hil_tests.wire import LinkClosed
from protocol import (
    DeviceState,
    Nak,
    Rotate,
    RotateMode,
    SampleFlags,
    Status,
)


@pytest.fixture(scope="session")
def hil_session(request: pytest.FixtureRequest) -> Iterator[HilSession]:
    config = request.config
    url = str(config.getoption("--port"))
    try:
        rig_file = load_rig_config(config.getoption("--rig-config"))
    except RigConfigError as exc:
        pytest.exit(f"needle-hil: {exc}", EXIT_UNREACHABLE)
    wire = open_wire(url)
    dut = Dut(wire)
    try:
        # Before HELLO: a device that never had a session must refuse motion (NOT_ARMED),
        # but never stopping (ROTATE STOP is ACKed in every condition, protocol §5). The
        # motion command used turns 0.01° at 1 rpm: harmless even if a faulty device ran it.
        boot_status = dut.status()
        pre_nak: Nak | None = None
        note = ""
        pre_stop = ""
        pre_beats: list[int] | None = None
        pre_around: tuple[Status, Status] | None = None
        if not boot_status.flags & SampleFlags.ARMED and boot_status.last_event_number <= 1:
            pre_stop = type(dut.request(Rotate(RotateMode.STOP, 0, 0)).message).__name__
            st_before = dut.status()
            reply = dut.request(Rotate(RotateMode.BY_ANGLE, 1_000, 1)).message
            pre_around = (st_before, dut.status())
            pre_nak = reply if isinstance(reply, Nak) else None
            if pre_nak is None:
                note = f"ROTATE before HELLO was answered {type(reply).__name__}"
            # The device heartbeats from boot, before any HELLO, when it has sent nothing
            # for 100 ms (protocol §4); telemetry is off at boot, so it has nothing else.
            beats = wire.received.heartbeat_uptimes_ms
            first = len(beats)
            wire.wait_s(PRE_HELLO_QUIET_S)
            pre_beats = beats[first:]
        else:
            note = "the device already had a session (power-cycle it to check NOT_ARMED)"
        identity = dut.hello()
    except (DeviceError, LinkClosed) as exc:
        wire.close()
        pytest.exit(
            f"needle-hil: no needle-driver device answering on {url}: {exc}", EXIT_UNREACHABLE
        )
    rig = rig_file
    if identity.simulated and rig_file.source == "(defaults)":
        rig = SIM_DEFAULTS
    if rig.test_depth_mm is None:
        rig = replace(rig, test_depth_mm=RIG_DEFAULT_TEST_DEPTH_MM)
    session = HilSession(
        url,
        wire,
        dut,
        identity,
        rig,
        bool(config.getoption("--allow-motion")),
        boot_status,
        pre_nak,
        note,
        pre_stop,
        pre_beats,
        pre_around,
    )
    config.stash[DUMP_KEY] = wire.dump
    report = config.stash[REPORT_KEY]
    report.device = {
        "serial_number": identity.serial_number,
        "firmware": f"{identity.firmware_major}.{identity.firmware_minor}."
        f"{identity.firmware_patch}",
        "simulated": bool(identity.simulated),
        "schema_hash": f"0x{identity.schema_hash:08x}",
        "travel_mm": identity.travel_limit_um / 1000,
        "force_limit_n": identity.force_limit_mn / 1000,
        "watchdog_ms": identity.watchdog_ms,
        "clock": "virtual (device time)" if wire.virtual else "machine",
        "rig_config": rig.source,
    }
    yield session
    try:
        dut.stop()
        dut.set_telemetry(0)
    except (DeviceError, LinkClosed):
        pass  # the device's watchdog stops it when the link goes quiet
    wire.close()


@pytest.fixture
def hil_figures(
    request: pytest.FixtureRequest, record_testsuite_property: Any
) -> Iterator[dict[str, Any]]:
    """Figures a test measured: into the JSON report, and into the JUnit XML as suite
    properties named ``<test id>:<figure>`` (per-test properties are not valid xunit2)."""
    figures: dict[str, Any] = {}
    yield figures
    report = request.config.stash[REPORT_KEY]
    report.record(request.node.nodeid).figures.update(figures)
    for name, value in figures.items():
        record_testsuite_property(f"{request.node.nodeid}:{name}", value)


@pytest.fixture
def hil_device(hil_session: HilSession) -> Iterator[Dut]:
    """The device in a known state: session re-opened, default limits, telemetry at 1 kHz,
    nothing moving. After the test: stopped, and checked against the hard travel."""
    s = hil_session
    dut = s.dut
    dut.wire.heartbeats_enabled = True
    dut.wire.drop_event_numbers.clear()
    try:
        dut.stop()
        dut.wait_idle(10.0)
        # the limits first: a test that failed with a lowered force limit left the needle
        # loaded beyond it, and clearing before restoring would latch it again at once
        dut.set_limits(s.default_limits())
        if dut.status().latched_faults:
            dut.clear_fault()
        dut.hello()  # a new session: the reply cache starts empty
        dut.set_telemetry(TELEMETRY_RATE_HZ, 10)
    except (NoReply, LinkClosed) as exc:
        # the device went away (cable, power, link): every further test would fail the same
        pytest.exit(f"needle-hil: lost the device on {s.url}: {exc}", EXIT_UNREACHABLE)
    tl = dut.wire.received.telemetry
    mark = tl.mark()
    yield dut
    dut.wire.heartbeats_enabled = True
    try:
        dut.stop()
        st = dut.wait_idle(10.0)
    except (NoReply, LinkClosed) as exc:
        pytest.exit(f"needle-hil: lost the device on {s.url}: {exc}", EXIT_UNREACHABLE)
    samples = tl.since(mark)
    travel = s.identity.travel_limit_um
    if len(samples):
        worst = int(samples["depth_um"].max())
        assert worst <= travel, f"telemetry depth {worst} µm beyond the hard travel {travel} µm"
        cmd = int(samples["commanded_depth_um"].max())
        assert cmd <= travel, f"commanded depth {cmd} µm beyond the hard travel {travel} µm"
    assert st.state not in (DeviceState.MOVING, DeviceState.HOMING)


@pytest.fixture
def hil_motion(hil_session: HilSession) -> None:
    """Skip unless the suite may move this device."""
    if not hil_session.simulated and not hil_session.allow_motion:
        pytest.skip("moves the device: run with --allow-motion on a real rig")


@pytest.fixture
def hil_homed(hil_device: Dut, hil_session: HilSession, hil_motion: None) -> Dut:
    """A homed, ready device at rest (homed again if a previous test left it unhomed)."""
    st = hil_device.status()
    if not st.flags & SampleFlags.HOMED:
        hil_device.home(
            round(hil_session.rig.homing_speed_mm_s * 1000), hil_session.rig.homing_timeout_s
        )
    return hil_device
