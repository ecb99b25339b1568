"""Exactly once, as a hypothesis state machine: over a sim:// link that corrupts, drops and
duplicates bytes, any interleaving of relative moves, status queries and waits leaves the
device where the successful moves put it, having executed exactly the commands reported
successful. A refused command (NAK) never ran. A command that timed out (every reply
lost) ran at most once — the device's own counter tells; never twice."""

from __future__ import annotations

from typing import Any

from hypothesis import HealthCheck, settings
from hypothesis import strategies as st
from hypothesis.stateful import RuleBasedStateMachine, initialize, invariant, rule

from firmware_host.client import NeedleDriver
from firmware_host.errors import LimitError, Nak, Timeout
from firmware_host.link import LinkConfig
from protocol import Nak as NakMsg


class LossyLinkMachine(RuleBasedStateMachine):
    nd: NeedleDriver
    fw: Any

    @initialize(
        seed=st.integers(0, 10_000),
        rate=st.sampled_from([0.0, 0.001, 0.002, 0.003]),
    )
    def connect(self, seed: int, rate: float) -> None:
        url = f"sim://?seed={seed}&corrupt={rate}&drop={rate}&duplicate={rate}&watchdog_ms=5000"
        self.nd = NeedleDriver.open(
            url, link_config=LinkConfig(max_retries=40, silence_timeout_s=5.0)
        )
        self.fw = self.nd.link.transport.port.device  # type: ignore[attr-defined]
        self.nd.home()
        self.nd.move_to_mm(50.0, 5.0)
        self.nd.wait_idle(60.0)
        self.expected_um = round(self.fw.adv.target)
        self.executed0 = self.fw.commands_executed
        self.ok = 0  # commands that got a reply other than NAK (every one, queries too)
        self.unacked = 0  # timed out, yet executed once (all replies lost)
        send = self.nd.link.request

        def counting_request(msg: Any, **kwargs: Any) -> Any:
            frame = send(msg, **kwargs)
            if not isinstance(frame.message, NakMsg):
                self.ok += 1
            return frame

        self.nd.link.request = counting_request  # type: ignore[method-assign]

    def _call(self, call: Any) -> str:
        try:
            call()
        except (Nak, LimitError):
            return "refused"  # never executed (or never sent): the invariant checks it
        except Timeout:
            return "unknown"  # executed or not: its replies were all lost
        return "ok"

    def _resolve_unknown(self) -> None:
        """A command that timed out may have run once (its replies lost), never twice:
        the device's own counter says which."""
        extra = self.fw.commands_executed - self.executed0 - self.ok - self.unacked
        assert extra in (0, 1), f"a timed-out command ran {extra} times"
        self.unacked += extra

    @rule(steps=st.integers(-800, 800))
    def advance(self, steps: int) -> None:
        distance_um = 5 * steps  # whole micro-steps of 0.625 µm
        outcome = self._call(lambda: self.nd.advance_mm(distance_um / 1000.0, 5.0))
        if outcome == "ok":
            self.expected_um += distance_um
        elif outcome == "unknown":
            before = self.fw.commands_executed - self.executed0 - self.ok - self.unacked
            self._resolve_unknown()
            if before == 1:
                self.expected_um += distance_um

    @rule()
    def query(self) -> None:
        # executed by the device too (its counter counts queries)
        if self._call(self.nd.status) == "unknown":
            self._resolve_unknown()

    @rule(seconds=st.floats(0.0, 0.3))
    def let_time_pass(self, seconds: float) -> None:
        # may fetch lost events (GET_EVENTS) on the way: counted like any command
        if self._call(lambda: self.nd.wait_s(seconds)) == "unknown":
            self._resolve_unknown()

    @invariant()
    def executed_exactly_the_successes(self) -> None:
        if not hasattr(self, "fw"):
            return
        assert self.fw.commands_executed - self.executed0 == self.ok + self.unacked
        assert round(self.fw.adv.target) == self.expected_um

    def teardown(self) -> None:
        if hasattr(self, "nd"):
            self.nd.link.close()


TestLossyLink = LossyLinkMachine.TestCase
TestLossyLink.settings = settings(
    max_examples=12,
    stateful_step_count=40,
    deadline=None,
    suppress_health_check=[HealthCheck.too_slow],
)
