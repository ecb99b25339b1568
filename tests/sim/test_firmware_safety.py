"""The device's own safety, whatever the host does: stall cut-off and its latency, force
limit, soft limit, rig faults — with the real rig, on the virtual clock."""

from __future__ import annotations

import pytest
import serial
from minihost import MiniHost

import sim_device  # noqa: F401
from protocol import (
    Ack,
    ClearFault,
    DeviceState,
    EStop,
    EventCode,
    FaultFlags,
    Home,
    Move,
    MoveMode,
    Nak,
    NakReason,
    Rotate,
    RotateMode,
    SampleFlags,
    SetLimits,
    SetTelemetry,
    Stop,
    sample_array,
)
from sim_device.core import CoreFirmware as Firmware

STEP_MM = 0.000625


def homed_host(query: str) -> MiniHost:
    host = MiniHost(serial.serial_for_url(f"sim://?{query}", timeout=0.1))
    host.hello()
    assert isinstance(host.command(Home(5000)).message, Ack)
    host.pump(5.0, until=lambda: EventCode.HOMED in host.event_codes())
    assert EventCode.HOMED in host.event_codes()
    return host


def run_into_stall(fw: Firmware, max_ticks: int = 60_000) -> tuple[int, int, str]:
    """Tick until the stall cut-off fires; return (onset_us, stopped_us, path) by the rig's
    truth. Onset is the earlier of the stall's two signs: the first tick the needle failed
    to follow the motor (steps lost: path "steps"), and the first tick of the unbroken
    stretch, ending at the stop, in which the load cell the device reads held at or above
    its stall force while advancing (path "force")."""
    rig = fw.rig
    baseline_mm = rig.lost_mm
    lost_us = None
    held_since_us: int | None = None
    for _ in range(max_ticks):
        fw.tick()
        now_us = fw.clock.now_us
        if lost_us is None and rig.lost_mm - baseline_mm > STEP_MM / 2:
            lost_us = now_us
        if not fw.adv.active:
            break
        if round(rig.load_cell_force_n * 1000.0) >= fw.stall_force_mn:
            if held_since_us is None:
                held_since_us = now_us
        else:
            held_since_us = None
    stopped_us = fw.stall_stop_us
    assert stopped_us is not None, "the stall cut-off never fired"
    onsets = {p: t for p, t in (("steps", lost_us), ("force", held_since_us)) if t is not None}
    assert onsets, "the advance stopped with neither steps lost nor the force held"
    path = min(onsets, key=lambda p: onsets[p])
    return onsets[path], stopped_us, path


@pytest.mark.control("RC-STALL")
def test_uncrossable_lesion_ends_in_a_stall_within_10ms_of_onset() -> None:
    host = homed_host("lesion=uncrossable&seed=1&watchdog_ms=60000")
    host.command(Move(MoveMode.ABSOLUTE, 60_000, 2000))
    fw = host.port.device
    onset_us, stopped_us, path = run_into_stall(fw)
    # the force reaches the stall threshold (90 % of thrust) before steps are lost: the
    # cut-off is the force path's, one stall time after the force first held there
    assert path == "force"
    assert fw.stall_time_ms * 1000 - 1000 <= stopped_us - onset_us <= 10_000
    st = host.status()
    assert st.state == DeviceState.STALLED and st.latched_faults & FaultFlags.STALL
    assert EventCode.STALL in host.event_codes()
    # position invalid until re-homed
    host.command(ClearFault())
    reply = host.command(Move(MoveMode.ABSOLUTE, 1000, 1000)).message
    assert isinstance(reply, Nak) and reply.reason == NakReason.NOT_HOMED


@pytest.mark.parametrize("stall_time_ms", [20, 50])
def test_force_path_stall_latency_is_the_stall_time(stall_time_ms: int) -> None:
    # the force held at the stall threshold is cut off stall_time_ms after it first held,
    # whatever that time is set to (the thrust, 10 % higher, is 100 ms further in)
    host = homed_host("lesion=uncrossable&seed=1&watchdog_ms=60000")
    host.command(SetLimits(150_000, 40_000, 27_000, stall_time_ms))
    host.command(Move(MoveMode.ABSOLUTE, 60_000, 2000))
    onset_us, stopped_us, path = run_into_stall(host.port.device)
    assert path == "force"
    assert abs((stopped_us - onset_us) - stall_time_ms * 1000) <= 1000


@pytest.mark.control("RC-STALL")
def test_following_error_alone_cuts_off_a_stall_within_10ms() -> None:
    # the force criterion made slow (10 s): only "encoder not following" can fire in time
    host = homed_host("lesion=uncrossable&seed=2&watchdog_ms=60000")
    host.command(SetLimits(150_000, 40_000, 40_000, 10_000))
    host.command(Move(MoveMode.ABSOLUTE, 60_000, 1000))
    onset_us, stopped_us, path = run_into_stall(host.port.device, max_ticks=120_000)
    assert path == "steps"
    assert 0 <= stopped_us - onset_us <= 10_000


@pytest.mark.parametrize("limit_um", [5, 20])
def test_the_following_error_limit_is_the_boards(limit_um: int) -> None:
    # a board declares how far its motor may run ahead of the encoder before that is a
    # stall (nd_board.stall_following_error_nm; the RP2040's is 20 µm): at 1 µm a tick the
    # cut-off comes when the rig has lost that much, not a core constant's worth
    host = homed_host("lesion=uncrossable&seed=2&watchdog_ms=60000")
    fw = host.port.device
    fw.set_stall_following_error_um(limit_um)
    host.command(SetLimits(150_000, 40_000, 40_000, 10_000))  # force path out of reach
    lost_before_mm = fw.rig.lost_mm
    host.command(Move(MoveMode.ABSOLUTE, 60_000, 1000))
    _, _, path = run_into_stall(fw, max_ticks=120_000)
    assert path == "steps"
    lost_um = (fw.rig.lost_mm - lost_before_mm) * 1000
    assert limit_um < lost_um <= limit_um + 3, lost_um


@pytest.mark.control("RC-FORCELIMIT")
def test_force_limit_stops_the_advance_and_latches() -> None:
    host = homed_host("lesion=dense-calcified-cto&seed=3&watchdog_ms=60000")
    host.command(SetLimits(150_000, 3_000, 2_500, 5_000))
    host.command(SetTelemetry(1000, 10))
    host.command(Move(MoveMode.ABSOLUTE, 60_000, 2000))
    host.pump(60.0, until=lambda: EventCode.FORCE_OVER_LIMIT in host.event_codes())
    st = host.status()
    assert st.state == DeviceState.FAULT and st.latched_faults & FaultFlags.FORCE_LIMIT
    depth = st.commanded_depth_um
    host.pump(0.5)
    assert host.status().commanded_depth_um == depth  # the advance stays stopped
    forces = [int(x) for f in host.telemetry for x in sample_array(f.message)["force_mn"]]
    over = [i for i, f in enumerate(forces) if f > 3_000]
    assert over, "the force never crossed the limit"
    reply = host.command(Move(MoveMode.ABSOLUTE, 1000, 1000)).message
    assert isinstance(reply, Nak) and reply.reason == NakReason.LATCHED_FAULT


@pytest.mark.control("RC-SOFTLIMIT")
def test_tightening_the_soft_limit_mid_move_stops_at_it() -> None:
    host = homed_host("seed=4&watchdog_ms=60000")
    host.command(SetTelemetry(1000, 10))
    host.command(Move(MoveMode.ABSOLUTE, 10_000, 2000))
    host.pump(1.0)
    assert isinstance(host.command(SetLimits(3_000, 40_000, 27_000, 5)).message, Ack)
    host.pump(3.0)
    st = host.status()
    assert st.state == DeviceState.LIMIT and EventCode.LIMIT_REACHED in host.event_codes()
    samples = [s for f in host.telemetry for s in sample_array(f.message)]
    assert max(int(s["commanded_depth_um"]) for s in samples) <= 3_000
    assert max(int(s["depth_um"]) for s in samples) <= 3_001  # encoder quantum
    # a move back within the limit is allowed
    assert isinstance(host.command(Move(MoveMode.ABSOLUTE, 1_000, 2000)).message, Ack)


@pytest.mark.control("RC-STALL")
def test_rig_motor_stall_is_cut_off_as_a_stall() -> None:
    host = homed_host("seed=5&watchdog_ms=60000&fault=motor_stall&fault_at_s=3")
    host.command(Move(MoveMode.ABSOLUTE, 20_000, 2000))
    host.pump(5.0, until=lambda: EventCode.STALL in host.event_codes())
    assert host.status().state == DeviceState.STALLED


@pytest.mark.control("RC-LOADCELL")
def test_disconnected_load_cell_latches_a_sensor_fault() -> None:
    host = homed_host("seed=6&watchdog_ms=60000&fault=loadcell_disconnected&fault_at_s=3")
    host.pump(3.0, until=lambda: EventCode.FAULT in host.event_codes())
    st = host.status()
    assert st.latched_faults & FaultFlags.LOAD_CELL and st.state == DeviceState.FAULT


@pytest.mark.control("RC-STUCK")
def test_stuck_load_cell_is_detected_while_advancing() -> None:
    host = homed_host("seed=7&watchdog_ms=60000&fault=loadcell_stuck&fault_at_s=3")
    host.command(Move(MoveMode.ABSOLUTE, 20_000, 1000))
    host.pump(5.0, until=lambda: FaultFlags.LOAD_CELL & host.status().latched_faults > 0)
    st = host.status()
    assert st.latched_faults & FaultFlags.LOAD_CELL
    assert st.commanded_depth_um < 20_000  # the advance was stopped


@pytest.mark.control("RC-ENCODER")
def test_lost_encoder_during_an_advance_is_cut_off() -> None:
    host = homed_host("seed=8&watchdog_ms=60000&fault=encoder_lost&fault_at_s=3")
    host.command(Move(MoveMode.ABSOLUTE, 20_000, 1000))
    host.pump(5.0, until=lambda: EventCode.STALL in host.event_codes())
    st = host.status()
    assert st.state == DeviceState.STALLED
    assert st.commanded_depth_um - st.depth_um <= 20  # stopped within a few µm of following


# Every latched fault stops both axes (protocol §5): the advance at once, the rotation down
# its ramp (at once for e-stop and the watchdog). At 30 rpm (180 °/s) and 3600 °/s² the
# ramp takes 50 ms and 4.5°; a needle left spinning would turn 180° per second.
ROTATE_30RPM = Rotate(RotateMode.CONTINUOUS, 30_000, 0)
FAULT_CASES = {
    "force_limit": ("lesion=dense-calcified-cto&seed=3", FaultFlags.FORCE_LIMIT),
    "stall": ("seed=5&fault=motor_stall&fault_at_s=3", FaultFlags.STALL),
    "load_cell": ("seed=6&fault=loadcell_disconnected&fault_at_s=3", FaultFlags.LOAD_CELL),
    # a frozen encoder under a moving motor is a lost-steps stall (a NaN reading is ENCODER)
    "encoder_lost": ("seed=8&fault=encoder_lost&fault_at_s=3", FaultFlags.STALL),
    "watchdog": ("seed=9&watchdog_ms=200", FaultFlags.WATCHDOG),
    "estop": ("seed=10", FaultFlags.ESTOP),
}


@pytest.mark.control("RC-LATCH")
@pytest.mark.parametrize("case", sorted(FAULT_CASES))
def test_every_latched_fault_stops_the_rotation_too(case: str) -> None:
    query, fault = FAULT_CASES[case]
    if "watchdog_ms" not in query:
        query += "&watchdog_ms=60000"
    host = homed_host(query)
    fw: Firmware = host.port.device
    if case == "force_limit":
        host.command(SetLimits(150_000, 3_000, 2_500, 5_000))
    assert isinstance(host.command(ROTATE_30RPM).message, Ack)
    assert isinstance(host.command(Move(MoveMode.ABSOLUTE, 60_000, 2000)).message, Ack)
    if case == "watchdog":
        host.heartbeat = False
    elif case == "estop":
        host.pump(1.0)
        host.command(EStop())
    host.pump(60.0, until=lambda: bool(fw.latched & fault))
    assert fw.latched & fault, f"{case}: the fault never latched"
    host.heartbeat = True
    latched_at_deg = fw.rot.pos
    host.pump(0.1)  # twice the ramp
    angle_cdeg = host.status().angle_cdeg
    assert abs(fw.rot.pos - latched_at_deg) <= 4.6, f"{case}: turned on after the fault"
    assert not fw.rot.active
    host.pump(1.0)
    st = host.status()
    assert st.angle_cdeg == angle_cdeg, f"{case}: the needle still turns with {fault!r} latched"
    assert not st.flags & (SampleFlags.ROTATING | SampleFlags.ADVANCING)
    # motion refused while latched, except stopping
    reply = host.command(ROTATE_30RPM).message
    want = NakReason.ESTOPPED if case == "estop" else NakReason.LATCHED_FAULT
    assert isinstance(reply, Nak) and reply.reason == want
    assert isinstance(host.command(Rotate(RotateMode.STOP, 0, 0)).message, Ack)
    host.pump(0.5)
    assert host.status().angle_cdeg == angle_cdeg


def test_sample_flags_mean_what_the_spec_says() -> None:
    """SampleFlags (protocol §10): HOMED = position known, ADVANCING incl. homing, AT_LIMIT
    until the advance moves again (not ended by STOP or CLEAR_FAULT, kept under a fault),
    ESTOP / STALL / FAULT = the latched bits, ARMED = session armed."""
    host = MiniHost(serial.serial_for_url("sim://?seed=4", timeout=0.1))
    st = host.status()
    assert st.flags == 0 and st.state == DeviceState.UNHOMED  # not homed, not armed
    host.hello()
    assert host.status().flags == SampleFlags.ARMED
    host.command(SetTelemetry(1000, 1))
    assert isinstance(host.command(Home(5000)).message, Ack)
    host.pump(5.0, until=lambda: EventCode.HOMED in host.event_codes())
    flags = [int(x) for f in host.telemetry for x in sample_array(f.message)["flags"]]
    assert any(f & SampleFlags.ADVANCING and not f & SampleFlags.HOMED for f in flags)  # homing
    assert host.status().flags == SampleFlags.HOMED | SampleFlags.ARMED
    host.command(Move(MoveMode.ABSOLUTE, 10_000, 2000))
    host.pump(0.5)
    assert host.status().flags & SampleFlags.ADVANCING
    assert isinstance(host.command(SetLimits(3_000, 40_000, 27_000, 5)).message, Ack)
    host.pump(3.0)
    at_limit = SampleFlags.HOMED | SampleFlags.ARMED | SampleFlags.AT_LIMIT
    st = host.status()
    assert (st.state, st.flags) == (DeviceState.LIMIT, at_limit)
    assert isinstance(host.command(Stop()).message, Ack)  # STOP moves nothing: still LIMIT
    st = host.status()
    assert (st.state, st.flags) == (DeviceState.LIMIT, at_limit)
    host.command(Rotate(RotateMode.CONTINUOUS, 10_000, 0))
    host.pump(0.2)
    st = host.status()
    assert (st.state, st.flags) == (DeviceState.LIMIT, at_limit | SampleFlags.ROTATING)
    assert isinstance(host.command(EStop()).message, Ack)  # a fault on top: the bit stays
    st = host.status()
    assert st.state == DeviceState.ESTOPPED
    assert st.flags == SampleFlags.ARMED | SampleFlags.AT_LIMIT | SampleFlags.ESTOP
    assert isinstance(host.command(ClearFault()).message, Ack)
    st = host.status()
    assert (st.state, st.flags) == (DeviceState.UNHOMED, SampleFlags.ARMED | SampleFlags.AT_LIMIT)
    assert isinstance(host.command(Home(5000)).message, Ack)  # the advance moves: bit ends
    assert not host.status().flags & SampleFlags.AT_LIMIT
    host.pump(5.0, until=lambda: host.event_codes().count(EventCode.HOMED) == 2)
    assert host.status().flags == SampleFlags.HOMED | SampleFlags.ARMED
    # a fault other than STALL / ESTOP: FAULT (the watchdog here: silent while turning)
    host.command(Rotate(RotateMode.CONTINUOUS, 10_000, 0))
    host.pump(0.1)
    host.heartbeat = False
    host.pump(0.5)
    host.heartbeat = True
    st = host.status()
    assert st.latched_faults == FaultFlags.WATCHDOG
    assert st.flags == SampleFlags.HOMED | SampleFlags.ARMED | SampleFlags.FAULT
    assert st.state == DeviceState.FAULT
