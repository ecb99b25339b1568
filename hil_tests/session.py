"""The device under test for a whole HIL session, and how a port is opened for it."""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path
from urllib.parse import parse_qsl, urlencode, urlsplit

import pytest

from firmware_host.errors import PortError
from firmware_host.transports import open_transport
from hil_tests.dut import Dut, Limits
from hil_tests.rig import RigConfig
from hil_tests.wire import Wire
from protocol import Identity, Nak, Status

EXIT_UNREACHABLE = 4  # pytest's usage-error code: the suite could not start
TELEMETRY_RATE_HZ = 1000
# Ordinary tests on a simulated device: its lesion (soft-stenosis by default) starts at
# 20 mm; the force test drives into its calcium (28–30 mm) with a 1 N limit. The stall
# test needs a block, which would bar the full-travel tests' way: on the in-process
# simulator it runs on a second simulator whose lesion the suite picks, SIM_BLOCK_LESION,
# a solid block at [stall] block_depth_mm — through the wire, as on a rig.
SIM_BLOCK_LESION = Path(__file__).with_name("sim-block.toml")
SIM_DEFAULTS = RigConfig(
    test_depth_mm=15.0,
    speed_mm_s=5.0,
    homing_speed_mm_s=5.0,
    homing_timeout_s=60.0,
    full_travel=True,
    max_accel_mm_s2=20.0,
    force_test_limit_n=1.0,
    force_test_depth_mm=32.0,
    stall_block_depth_mm=40.0,
    source="(simulator defaults)",
)
RIG_DEFAULT_TEST_DEPTH_MM = 5.0
PRE_HELLO_QUIET_S = 0.5  # listened to before the first HELLO: the device heartbeats from boot


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
    # The reply type to ROTATE STOP before the first HELLO ("" if not observed): must be Ack.
    pre_hello_stop_reply: str = ""
    # The uptimes of the device's HEARTBEATs in PRE_HELLO_QUIET_S of quiet before the first
    # HELLO (None: not observed, the device already had a session).
    pre_hello_heartbeats_ms: list[int] | None = None
    # STATUS just before and just after that refused ROTATE: it must have run nothing.
    pre_hello_around: tuple[Status, Status] | None = None

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

    def force_load(self) -> tuple[int, int]:
        """The rig file's [force] load: (force mN above which the needle is loaded, depth µm
        where it is). Skips the test on a rig file without one."""
        limit_n, depth_mm = self.rig.force_test_limit_n, self.rig.force_test_depth_mm
        if limit_n is None or depth_mm is None:
            pytest.skip(
                "needs a load on the needle: set [force] limit_n and depth_mm in the rig file"
            )
        return round(limit_n * 1000), round(depth_mm * 1000)

    def default_limits(self) -> Limits:
        st = self.boot_status
        return Limits(
            soft_depth_limit_um=self.identity.travel_limit_um,
            force_limit_mn=self.identity.force_limit_mn,
            stall_force_mn=min(st.stall_force_mn, self.identity.force_limit_mn),
            stall_time_ms=st.stall_time_ms or 5,
        )


def open_wire(url: str) -> Wire:
    """Open the port through the host library, or stop the whole run with one line."""
    try:
        return Wire(open_transport(url))
    except PortError as exc:
        pytest.exit(f"needle-hil: cannot open port {exc}", EXIT_UNREACHABLE)


def with_lesion(url: str, lesion: str | Path) -> str:
    """A ``sim://`` URL with its lesion replaced (the other options kept, the defect too);
    the lesion's name or path is quoted, so a path with ``+``, ``&`` or spaces survives."""
    return with_options(url, lesion=str(lesion))


def with_options(url: str, **options: str) -> str:
    """A ``sim://`` URL with these options set (replaced if present, the others kept)."""
    parts = urlsplit(url)
    query = [(k, v) for k, v in parse_qsl(parts.query, keep_blank_values=True) if k not in options]
    query.extend(options.items())
    return f"{parts.scheme}://{parts.netloc}{parts.path}?{urlencode(query)}"


@contextmanager
def fresh_simulator(s: HilSession, url: str | None = None) -> Iterator[Dut]:
    """A second device from the session's ``sim://`` URL (same defect, same lesion) or
    from ``url``, homed, with the session's default limits and telemetry."""
    assert s.wire.virtual, "only the in-process simulator can be duplicated"
    wire = open_wire(url or s.url)
    dut = Dut(wire)
    try:
        dut.hello()
        dut.set_limits(s.default_limits())
        dut.set_telemetry(TELEMETRY_RATE_HZ, 10)
        dut.home(round(s.rig.homing_speed_mm_s * 1000), s.rig.homing_timeout_s)
        yield dut
    finally:
        wire.close()


SIM_FAULT_AT_S = 10.0  # a second simulator's fault: after its homing, mid-move
SIM_SLOW_SPEED_UM_S = 1000  # ... a move still under way at that time


def on_the_simulator(s: HilSession) -> bool:
    """The in-process simulator: a second one, with a fault in its URL, can be made."""
    return s.wire.virtual and s.url.startswith("sim://")


@contextmanager
def sim_with_fault(s: HilSession, fault: str, **options: str) -> Iterator[Dut]:
    """A second simulator whose fault (sim_device's ``fault=``) strikes at SIM_FAULT_AT_S,
    homed before it and moving slowly when it strikes; ``options``: more URL options."""
    url = with_options(s.url, fault=fault, fault_at_s=str(SIM_FAULT_AT_S), **options)
    with fresh_simulator(s, url) as dut:
        st = dut.status()
        assert st.device_time_us < SIM_FAULT_AT_S * 1e6, "homing took past the fault time"
        dut.move_to_um(s.test_depth_um, SIM_SLOW_SPEED_UM_S)
        yield dut


@contextmanager
def block_device(s: HilSession, homed: Dut) -> Iterator[Dut]:
    """The homed device whose advance meets a solid block at ``[stall] block_depth_mm``:
    the session's own on a rig (its rig file says where the block is); on the
    in-process simulator with the suite's defaults, a second simulator on
    SIM_BLOCK_LESION. A served simulator with no rig file has no known block: skipped."""
    if s.rig.source != SIM_DEFAULTS.source:
        yield homed
    elif on_the_simulator(s):
        with fresh_simulator(s, with_lesion(s.url, SIM_BLOCK_LESION)) as dut:
            yield dut
    else:
        pytest.skip(
            "needs a block: serve the simulator a lesion with one and give its depth as"
            " [stall] block_depth_mm in a rig file"
        )
