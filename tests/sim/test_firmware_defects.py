"""Planted firmware defects (for the HIL suite): each breaks its own behaviour and no other.

Every behaviour check runs against the clean firmware and against every defect: it must
fail exactly for the defect that targets it.
"""

from __future__ import annotations

from collections.abc import Callable

import pytest
import serial
from minihost import MiniHost

import sim_device  # noqa: F401
from protocol import (
    Ack,
    EventCode,
    FaultFlags,
    Home,
    Move,
    MoveMode,
    Nak,
    NakReason,
    SetLimits,
    SetTelemetry,
    sample_array,
)
from sim_device.core_build import DEFECTS


def host_for(defect: str | None, extra: str = "") -> MiniHost:
    query = f"seed=11{extra}" + (f"&defect={defect}" if defect else "")
    host = MiniHost(serial.serial_for_url(f"sim://?{query}", timeout=0.1))
    host.hello()
    return host


def home(host: MiniHost) -> None:
    host.command(Home(5000))
    host.pump(5.0, until=lambda: EventCode.HOMED in host.event_codes())


def repeat_detected(defect: str | None) -> bool:
    host = host_for(defect)
    home(host)
    seq = host.send(Move(MoveMode.RELATIVE, 1000, 2000))
    host.wait_reply(seq)
    host.command(Move(MoveMode.RELATIVE, 1000, 2000), seq=seq, flags=1)
    host.pump(2.0)
    return host.status().commanded_depth_um == 1000


def watchdog_trips(defect: str | None) -> bool:
    host = host_for(defect)
    home(host)
    host.command(Move(MoveMode.ABSOLUTE, 20_000, 2000))
    host.port.advance_s(0.3)
    st = host.status()
    return bool(st.latched_faults & FaultFlags.WATCHDOG) and st.commanded_depth_um < 1000


def limit_exact(defect: str | None) -> bool:
    host = host_for(defect)
    home(host)
    host.command(SetLimits(5_000, 40_000, 27_000, 5))
    beyond = host.command(Move(MoveMode.ABSOLUTE, 5_001, 2000)).message
    return isinstance(beyond, Nak) and host.status().commanded_depth_um == 0


def stall_cut_off(defect: str | None) -> bool:
    host = host_for(defect, "&lesion=uncrossable&watchdog_ms=60000")
    home(host)
    host.command(Move(MoveMode.ABSOLUTE, 40_000, 2000))
    host.pump(20.0, until=lambda: EventCode.STALL in host.event_codes())
    return EventCode.STALL in host.event_codes()


def telemetry_counts(defect: str | None) -> bool:
    host = host_for(defect)
    host.command(SetTelemetry(1000, 10))
    host.pump(0.3)
    numbers = [
        f.message.first_sample_number + i
        for f in host.telemetry
        for i in range(len(sample_array(f.message)))
    ]
    return len(numbers) > 200 and numbers == list(range(numbers[0], numbers[0] + len(numbers)))


def nak_reasons_right(defect: str | None) -> bool:
    host = host_for(defect)
    unhomed = host.command(Move(MoveMode.ABSOLUTE, 1000, 1000)).message
    home(host)
    beyond = host.command(Move(MoveMode.ABSOLUTE, 200_000, 1000)).message
    return (
        isinstance(unhomed, Nak)
        and unhomed.reason == NakReason.NOT_HOMED
        and isinstance(beyond, Nak)
        and beyond.reason == NakReason.BEYOND_LIMIT
    )


CHECKS: dict[str, Callable[[str | None], bool]] = {
    "no_repeat_detection": repeat_detected,
    "watchdog_disabled": watchdog_trips,
    "limit_off_by_one_step": limit_exact,
    "stall_cutoff_disabled": stall_cut_off,
    "telemetry_counter_stuck": telemetry_counts,
    "nak_reason_swapped": nak_reasons_right,
}


def test_every_defect_has_a_check() -> None:
    assert set(CHECKS) == set(DEFECTS)


@pytest.mark.parametrize("defect", [None, *sorted(DEFECTS)])
def test_a_defect_breaks_its_own_behaviour_and_nothing_else(defect: str | None) -> None:
    results = {name: check(defect) for name, check in CHECKS.items()}
    broken = sorted(name for name, ok in results.items() if not ok)
    assert broken == ([] if defect is None else [defect])


def test_limit_defect_really_drives_one_step_beyond() -> None:
    host = host_for("limit_off_by_one_step")
    home(host)
    host.command(SetLimits(5_000, 40_000, 27_000, 5))
    assert isinstance(host.command(Move(MoveMode.ABSOLUTE, 5_001, 2000)).message, Ack)
    host.pump(4.0)
    fw = host.port.device
    assert fw.adv.pos == pytest.approx(5_000.625)
