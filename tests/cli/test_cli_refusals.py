"""A command the rig refused changes nothing (issue 21): needlectl's home and jog stop the
rig on their way out only when they may have set it moving themselves. A refusal (BUSY:
another client's run, homing in progress) must not send the STOP that would end someone
else's motion — seen as terminal A's run ending ABORTED ~0.1 s after terminal B's refused
jog. On sim:// in virtual time, the device's own state as the judge."""

from __future__ import annotations

import argparse
import io

import pytest

from firmware_host.cli.device import home, jog
from firmware_host.cli.interrupt import StopRequest
from firmware_host.cli.output import Output
from firmware_host.client import NeedleDriver
from firmware_host.errors import Nak
from protocol import NakReason


def _ns(**kw: float) -> argparse.Namespace:
    base = dict(speed_mm_s=2.0, timeout_s=30.0, port="sim://", advance_mm=0.0, rotate_deg=0.0)
    base.update(kw)
    base.setdefault("rate_rpm", 10.0)
    return argparse.Namespace(**base)


def test_a_refused_home_leaves_another_move_running() -> None:
    with NeedleDriver.open("sim://?seed=41") as nd:
        fw = nd.link.transport.port.device  # type: ignore[attr-defined]
        nd.home()
        nd.move_to_mm(20.0, 1.0)  # someone else's motion, under way
        with pytest.raises(Nak) as info:
            home(nd, _ns(), Output(False, io.StringIO()), StopRequest())
        assert info.value.reason is NakReason.BUSY
        # nothing changed: the advance goes on to where it was going
        assert fw.adv.active
        assert nd.wait_idle(60.0).depth_mm == pytest.approx(20.0, abs=0.01)


def test_a_refused_jog_leaves_homing_running() -> None:
    with NeedleDriver.open("sim://?seed=42") as nd:
        fw = nd.link.transport.port.device  # type: ignore[attr-defined]
        nd.start_home(2.0)  # homing under way (another client's, say)
        with pytest.raises(Nak) as info:
            jog(nd, _ns(advance_mm=1.0), StopRequest())
        assert info.value.reason is NakReason.BUSY
        assert fw.homing and fw.adv.active  # not stopped by the refused jog
        assert nd.wait_idle(60.0).homed


def test_a_jog_whose_rotation_is_refused_stops_its_own_advance() -> None:
    """The other side of the rule: the jog's advance was accepted, then its rotation
    refused — what this jog started must not go on alone."""
    with NeedleDriver.open("sim://?seed=43") as nd:
        nd.home()
        with pytest.raises(Nak):  # 0 rpm: BAD_ARGUMENT after the advance began
            jog(nd, _ns(advance_mm=5.0, rotate_deg=90.0, rate_rpm=0.0), StopRequest())
        at_rest = nd.wait_idle(10.0)
        assert at_rest.depth_mm < 1.0  # stopped at once, far short of its 5 mm
