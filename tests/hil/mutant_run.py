"""Run the HIL suite against the in-process simulator with one behaviour broken on purpose.

    python tests/hil/mutant_run.py MUTANT [pytest args ...]

The planted defects (``defect=``) cover six behaviours; these mutants break others the
suite checks, so that every conformance test is shown able to fail. The patch lives only
in this interpreter.
"""

from __future__ import annotations

import sys
from collections.abc import Callable
from typing import Any

import pytest

from protocol import EventCode, FaultFlags
from sim_device.commands import Commands
from sim_device.event_log import EventLog
from sim_device.firmware import Firmware


def _estop_decelerates() -> None:
    # e-stop handled like STOP: the axes ramp down instead of halting within the tick
    def estop(self: Any) -> None:
        self._stop()
        fw = self.fw
        if not fw.latched & FaultFlags.ESTOP:
            fw.homed = False
            fw._latch(FaultFlags.ESTOP, EventCode.ESTOP, 0)

    Commands._estop = estop  # type: ignore[method-assign]


def _force_limit_ignored() -> None:
    # SET_LIMITS is ACKed but the tightened force limit never takes effect
    original = Commands._set_limits

    def set_limits(self: Any, msg: Any, msg_id: int) -> Any:
        reply = original(self, msg, msg_id)
        self.fw.force_limit_mn = self.fw.hard.force_mn
        return reply

    Commands._set_limits = set_limits  # type: ignore[method-assign]


def _event_log_empty() -> None:
    # GET_EVENTS answers, but with no records: a lost event can never be recovered
    EventLog.packed_since = lambda self, from_number, max_count: b""  # type: ignore[method-assign]


def _home_offset() -> None:
    # homing zeroes the encoder 50 µm away from the switch
    original = Firmware._home_found

    def home_found(self: Any) -> None:
        original(self)
        self._enc_zero_mm -= 0.05

    Firmware._home_found = home_found  # type: ignore[method-assign]


def _fault_leaves_rotation() -> None:
    # a latched fault stops the advance only: the needle goes on turning in the lesion
    def latch(self: Any, fault: FaultFlags, code: EventCode, value: int) -> None:
        self.latched |= int(fault)
        self._emit_event(code, value)
        self._update_state()

    Firmware._latch = latch  # type: ignore[method-assign]


MUTANTS: dict[str, Callable[[], None]] = {
    "estop_decelerates": _estop_decelerates,
    "force_limit_ignored": _force_limit_ignored,
    "event_log_empty": _event_log_empty,
    "home_offset": _home_offset,
    "fault_leaves_rotation": _fault_leaves_rotation,
}


def main(argv: list[str]) -> int:
    name, *args = argv
    MUTANTS[name]()
    return int(pytest.main(["-q", "-p", "no:cacheprovider", "hil_tests", *args]))


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
