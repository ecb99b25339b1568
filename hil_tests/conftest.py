"""Fixtures of the HIL conformance suite: one connection per session, a device reset and
checked around every test, motion only where it is allowed.

The same tests run on the in-process simulator (virtual clock: waits advance device time,
nothing sleeps) and on a rig behind a serial port (machine time), chosen by ``--port``.
"""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field, replace
from typing import Any

import pytest

from firmware_host.errors import PortError
from firmware_host.transports import open_transport
from hil_tests.dut import DeviceError, Dut, Limits, NoReply
from hil_tests.plugin import DUMP_KEY, REPORT_KEY
from hil_tests.rig import RigConfig, RigConfigError, load_rig_config
from hil_tests.wire import LinkClosed, Wire
from protocol import (
    DeviceState,
    Identity,
    Nak,
    Rotate,
    RotateMode,
    SampleFlags,
    Status,
)

EXIT_UNREACHABLE = 4  # pytest's usage-error code: the suite could not start
TELEMETRY_RATE_HZ = 1000
# Ordinary tests on a simulated device: its lesion (soft-stenosis by default) starts at
# 20 mm; the force test drives into its calcium (28–30 mm) with a 1 N limit.
SIM_DEFAULTS = RigConfig(
    test_depth_mm=15.0,
    speed_mm_s=5.0,
    homing_speed_mm_s=5.0,
    homing_timeout_s=60.0,
    full_travel=True,
    force_test_limit_n=1.0,
    force_test_depth_mm=32.0,
    source="(simulator defaults)",
)
RIG_DEFAULT_TEST_DEPTH_MM = 5.0


@dataclass
class HilSession:
    """The device under test for the whole session."""

    url: str
    wire: Wire
    dut: Dut
    identity: Identity
    rig: RigConfig
    allow_motion: bool
    boot_status: Status
    # The NOT_ARMED check can only be made before the first HELLO: done at connect.
    pre_hello_nak: Nak | None = None
    pre_hello_note: str = ""
    figures: dict[str, Any] = field(default_factory=dict)

    @property
    def simulated(self) -> bool:
        return bool(self.identity.simulated)

    @property
    def test_depth_um(self) -> int:
        assert self.rig.test_depth_mm is not None
        return round(self.rig.test_depth_mm * 1000)

    @property
    def speed_um_s(self) -> int:
        return min(round(self.rig.speed_mm_s * 1000), self.identity.max_speed_um_s)

    def default_limits(self) -> Limits:
        st = self.boot_status
        return Limits(
            soft_depth_limit_um=self.identity.travel_limit_um,
            force_limit_mn=self.identity.force_limit_mn,
            stall_force_mn=min(st.stall_force_mn, self.identity.force_limit_mn),
            stall_time_ms=st.stall_time_ms or 5,
        )


def _open(url: str) -> Wire:
    """Open the port through the host library, or stop the whole run with one line."""
    try:
        return Wire(open_transport(url))
    except PortError as exc:
        pytest.exit(f"needle-hil: cannot open port {exc}", EXIT_UNREACHABLE)


@pytest.fixture(scope="session")
def hil_session(request: pytest.FixtureRequest) -> Iterator[HilSession]:
    config = request.config
    url = str(config.getoption("--port"))
    try:
        rig_file = load_rig_config(config.getoption("--rig-config"))
    except RigConfigError as exc:
        pytest.exit(f"needle-hil: {exc}", EXIT_UNREACHABLE)
    wire = _open(url)
    dut = Dut(wire)
    try:
        # Before HELLO: a device that never had a session must refuse motion (NOT_ARMED).
        # The motion command used is ROTATE(STOP): harmless even if a faulty device ran it.
        boot_status = dut.status()
        pre_nak: Nak | None = None
        note = ""
        if not boot_status.flags & SampleFlags.ARMED and boot_status.last_event_number <= 1:
            reply = dut.request(Rotate(RotateMode.STOP, 0, 0)).message
            pre_nak = reply if isinstance(reply, Nak) else None
            if pre_nak is None:
                note = f"ROTATE before HELLO was answered {type(reply).__name__}"
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
        if dut.status().latched_faults:
            dut.clear_fault()
        dut.hello()  # a new session: the reply cache starts empty
        dut.set_limits(s.default_limits())
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


@contextmanager
def fresh_simulator(s: HilSession) -> Iterator[Dut]:
    """A second, throwaway device from the same ``sim://`` URL (same defect, same lesion),
    homed, for a test that breaks its rig for good (an injected motor stall)."""
    assert s.wire.virtual, "only the in-process simulator can be duplicated"
    wire = _open(s.url)
    dut = Dut(wire)
    try:
        dut.hello()
        dut.set_limits(s.default_limits())
        dut.set_telemetry(TELEMETRY_RATE_HZ, 10)
        dut.home(round(s.rig.homing_speed_mm_s * 1000), s.rig.homing_timeout_s)
        yield dut
    finally:
        wire.close()
