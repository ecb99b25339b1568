"""Properties of the firmware, checked with hypothesis on the virtual clock."""

from __future__ import annotations

import itertools

import serial
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from minihost import MiniHost

import sim_device  # noqa: F401
from protocol import (
    Ack,
    EventCode,
    GetStatus,
    HeaderFlags,
    Home,
    Move,
    MoveMode,
    SetLimits,
    SetTelemetry,
    Status,
    sample_array,
)
from sim_device.linkfaults import ByteFaults, LinkFaultConfig

SETTINGS = settings(max_examples=15, deadline=None, suppress_health_check=[HealthCheck.too_slow])


def homed(seed: int, extra: str = "") -> MiniHost:
    host = MiniHost(serial.serial_for_url(f"sim://?seed={seed}&watchdog_ms=60000{extra}"))
    host.hello()
    host.command(Home(5000))
    host.pump(5.0, until=lambda: EventCode.HOMED in host.event_codes())
    return host


moves = st.lists(
    st.tuples(
        st.sampled_from([MoveMode.ABSOLUTE, MoveMode.RELATIVE]),
        st.integers(-20_000, 40_000),
        st.integers(200, 5_000),
        st.floats(0.01, 1.5),
    ),
    min_size=1,
    max_size=6,
)


@SETTINGS
@given(limit_um=st.integers(500, 30_000), plan=moves, tighten_um=st.integers(200, 30_000))
def test_position_never_passes_the_soft_limit(
    limit_um: int, plan: list[tuple[MoveMode, int, int, float]], tighten_um: int
) -> None:
    host = homed(1)
    host.command(SetLimits(limit_um, 40_000, 27_000, 5))
    host.command(SetTelemetry(1000, 10))
    fw = host.port.device
    bound_um = float(limit_um)  # what the needle may not pass (truth)
    tightened_at_us = None
    for i, (mode, target_um, speed_um_s, wait_s) in enumerate(plan):
        host.command(Move(mode, target_um, speed_um_s))
        if i == len(plan) // 2:
            # tighten the limit, perhaps below where the needle already is: then it
            # may stay there (or retract) but not advance
            host.command(SetLimits(min(limit_um, tighten_um), 40_000, 27_000, 5))
            tightened_at_us = fw.clock.now_us
            bound_um = max(
                min(limit_um, tighten_um), fw.adv.pos + 0.625 / 2
            )  # + rounding to a step
        for _ in range(max(1, round(wait_s / 0.05))):
            host.pump(0.05)
            assert fw.rig.needle_depth_mm * 1000 <= bound_um + 1e-6
    assert tightened_at_us is not None
    for f in host.telemetry:
        for s in sample_array(f.message):
            cmd = int(s["commanded_depth_um"])
            assert 0 <= cmd <= limit_um
            if int(s["time_us"]) > tightened_at_us + 1000:
                assert cmd <= round(bound_um)


@SETTINGS
@given(
    plan=st.lists(
        st.tuples(st.integers(-3_000, 3_000), st.integers(1, 3), st.booleans()),
        min_size=1,
        max_size=10,
    )
)
def test_a_repeated_command_never_moves_twice(plan: list[tuple[int, int, bool]]) -> None:
    host = homed(2)
    host.command(Move(MoveMode.ABSOLUTE, 50_000, 5_000))
    host.pump(12.0)
    expected_um = 50_000
    for distance_um, copies, interleave in plan:
        if distance_um == 0:
            continue
        seq = host.next_seq()
        replies = []
        for copy in range(copies):
            flags = HeaderFlags.RETRANSMIT if copy else 0
            replies.append(
                host.command(Move(MoveMode.RELATIVE, distance_um, 5_000), seq=seq, flags=flags)
            )
            if interleave:
                host.command(GetStatus())
        assert all(r.message == replies[0].message for r in replies)
        assert all(r.flags & HeaderFlags.REPLAYED for r in replies[1:])
        if isinstance(replies[0].message, Ack):
            expected_um += distance_um
    host.pump(5.0)
    status = host.command(GetStatus()).message
    assert isinstance(status, Status)
    assert status.commanded_depth_um == expected_um


@SETTINGS
@given(
    rate_hz=st.sampled_from([100, 250, 500, 1000]),
    batch=st.integers(1, 10),
    drop=st.sampled_from([0.0, 0.0005, 0.002]),
    corrupt=st.sampled_from([0.0, 0.0005, 0.002]),
    seed=st.integers(0, 1000),
)
def test_telemetry_counters_never_skip_without_a_matching_drop(
    rate_hz: int, batch: int, drop: float, corrupt: float, seed: int
) -> None:
    port = serial.serial_for_url(f"sim://?seed={seed}")
    host = MiniHost(port)
    host.hello()
    host.command(SetTelemetry(rate_hz, batch))
    # from now on the device→host direction loses and corrupts bytes
    port.sim.link.to_host = ByteFaults(LinkFaultConfig(drop=drop, corrupt=corrupt), seed)
    port.sim._faulty_link = True
    host.pump(2.0)
    received = [
        (f.message.first_sample_number, len(sample_array(f.message))) for f in host.telemetry
    ]
    assert received
    gaps = 0
    for (first_a, n_a), (first_b, _) in itertools.pairwise(received):
        skipped = first_b - (first_a + n_a)
        assert skipped >= 0 and skipped % batch == 0  # whole batches lost, never part of one
        gaps += skipped > 0
    faults = port.sim.link.to_host
    assert gaps <= faults.dropped + faults.corrupted
    if not drop and not corrupt:
        assert gaps == 0


class _FixedRig:
    """A rig whose sensors read fixed values (RigLike): the firmware's sensor arithmetic
    alone, without physics."""

    def __init__(self, encoder_depth_mm: float, load_cell_force_n: float) -> None:
        self.encoder_depth_mm = encoder_depth_mm
        self.load_cell_force_n = load_cell_force_n
        self.load_cell_fresh = True
        self.load_cell_sample_hz = 1000.0
        self.home_switch = False
        self.needle_depth_mm = 3.0

    def step(self, dt_s: float, motor_depth_mm: float, angle_deg: float) -> None:
        pass


_READINGS = st.one_of(
    st.floats(allow_nan=True, allow_infinity=True),
    st.sampled_from([0.0, 49.999, 50.0, -50.0, 1e9, -1e9, 2147.483647, 2147.4837]),
)


def _expected_depth_um(enc_mm: float, zero_mm: float) -> int:
    nm = (enc_mm - zero_mm) * 1e6
    if not -9.0e15 < nm < 9.0e15:  # NaN, infinite, beyond the HAL's integer: invalid
        return -(2**31)
    um = (round(nm) + 500) // 1000
    return max(-(2**31) + 1, min(2**31 - 1, um))  # i32 min itself means "invalid"


def _expected_force_mn(force_n: float) -> int:
    mn = force_n * 1000.0
    if not -(2.0**31) < mn < 2.0**31 - 1 or abs(round(mn)) >= 50_000:  # at the rail
        return -(2**31)
    return round(mn)


@settings(max_examples=300, deadline=None)
@given(enc_mm=_READINGS, force_n=_READINGS, zero_mm=st.sampled_from([0.0, 3.0]))
def test_any_sensor_reading_is_taken_or_refused(
    enc_mm: float, force_n: float, zero_mm: float
) -> None:
    """Whatever the rig reads — NaN, infinite, at the rail, beyond i32 — the core takes it
    as a value or as invalid (i32 min: ENCODER / LOAD_CELL), never as a wrapped number."""
    from sim_device.core import CoreFirmware

    rig = _FixedRig(zero_mm, 0.0)
    fw = CoreFirmware(rig, loadcell_stuck_check=False)
    rig.encoder_depth_mm = enc_mm
    rig.load_cell_force_n = force_n
    fw.tick()
    assert fw.depth_um == _expected_depth_um(enc_mm, zero_mm)
    assert fw.force_mn == _expected_force_mn(force_n)
