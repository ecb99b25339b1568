"""The device under test, as the conformance tests drive it: commands that must be
ACKed, commands that must be refused, and waits on the device's own state."""

from __future__ import annotations

from dataclasses import dataclass

from firmware_host.waiting import wait_until_idle
from hil_tests.wire import Wire, events_of
from protocol import (
    PROTOCOL_VERSION,
    SCHEMA_HASH,
    Ack,
    ClearFault,
    DeviceState,
    EStop,
    Event,
    EventLog,
    Frame,
    GetEvents,
    GetStatus,
    Hello,
    Home,
    Identity,
    Move,
    MoveMode,
    Nak,
    NakReason,
    SampleFlags,
    SetLimits,
    SetTelemetry,
    Status,
    Stop,
)
from protocol.schema import Message

REPLY_TIMEOUT_S = 0.5
MOVING_STATES = (DeviceState.HOMING, DeviceState.MOVING)


class DeviceError(AssertionError):
    """The device answered something a conforming device must not (a test failure)."""


class NoReply(DeviceError):
    """The device did not answer a command at all (retransmitted once)."""


@dataclass(frozen=True)
class Limits:
    soft_depth_limit_um: int
    force_limit_mn: int
    stall_force_mn: int
    stall_time_ms: int


class Dut:
    """One device behind one wire."""

    def __init__(self, wire: Wire) -> None:
        self.wire = wire
        self.identity: Identity | None = None

    # ------------------------------------------------------------------ requests

    def request(self, msg: Message, timeout_s: float = REPLY_TIMEOUT_S) -> Frame:
        """Send a command and return its reply. One retransmission (same seq) on timeout,
        as any host would; no reply after that is a failure of the device."""
        seq = self.wire.send(msg)
        reply = self.wire.reply(seq, timeout_s)
        if reply is None:
            self.wire.resend(msg, seq)
            reply = self.wire.reply(seq, timeout_s)
        if reply is None:
            raise NoReply(f"no reply to {type(msg).__name__} (seq {seq}) within 2 × {timeout_s} s")
        return reply

    def ack(self, msg: Message) -> None:
        reply = self.request(msg).message
        if isinstance(reply, Nak):
            raise DeviceError(
                f"{type(msg).__name__} refused: {NakReason(reply.reason).name} "
                f"(detail {reply.detail})"
            )
        if not isinstance(reply, Ack):
            raise DeviceError(f"{type(msg).__name__} answered with {type(reply).__name__}")
        if reply.command_id != type(msg).MSG_ID:  # type: ignore[union-attr]
            raise DeviceError(
                f"ACK names command 0x{reply.command_id:02x}, not {type(msg).__name__}"
            )

    def nak(self, msg: Message) -> Nak:
        """A command that must be refused: its NAK (a failure if it was executed)."""
        reply = self.request(msg).message
        if not isinstance(reply, Nak):
            raise DeviceError(
                f"{msg!r} was accepted ({type(reply).__name__}); a conforming device refuses it"
            )
        return reply

    def hello(self, schema_hash: int = SCHEMA_HASH) -> Identity:
        reply = self.request(Hello(PROTOCOL_VERSION, schema_hash)).message
        if not isinstance(reply, Identity):
            raise DeviceError(f"HELLO answered with {type(reply).__name__}, not IDENTITY")
        if schema_hash == SCHEMA_HASH:
            self.identity = reply
        return reply

    def status(self) -> Status:
        reply = self.request(GetStatus()).message
        if not isinstance(reply, Status):
            raise DeviceError(f"GET_STATUS answered with {type(reply).__name__}")
        return reply

    def event_log(self, from_number: int, max_count: int = 12) -> tuple[EventLog, list[Event]]:
        reply = self.request(GetEvents(from_number, max_count)).message
        if not isinstance(reply, EventLog):
            raise DeviceError(f"GET_EVENTS answered with {type(reply).__name__}")
        return reply, events_of(reply)

    # ------------------------------------------------------------------ commands

    def set_telemetry(self, rate_hz: int, batch_samples: int = 10) -> None:
        self.ack(SetTelemetry(rate_hz, batch_samples))

    def set_limits(self, limits: Limits) -> None:
        self.ack(
            SetLimits(
                limits.soft_depth_limit_um,
                limits.force_limit_mn,
                limits.stall_force_mn,
                limits.stall_time_ms,
            )
        )

    def stop(self) -> None:
        self.ack(Stop())

    def estop(self) -> None:
        self.ack(EStop())

    def clear_fault(self) -> None:
        self.ack(ClearFault())

    def move_to_um(self, depth_um: int, speed_um_s: int) -> None:
        self.ack(Move(MoveMode.ABSOLUTE, depth_um, speed_um_s))

    def home(self, speed_um_s: int, timeout_s: float) -> Status:
        self.ack(Home(speed_um_s))
        st = self.wait_idle(timeout_s)
        if not st.flags & SampleFlags.HOMED or st.state != DeviceState.READY:
            raise DeviceError(
                f"homing ended in state {DeviceState(st.state).name}, "
                f"flags {SampleFlags(st.flags)!r}"
            )
        return st

    # ------------------------------------------------------------------ waits

    def wait_idle(self, timeout_s: float, poll_s: float = 0.05) -> Status:
        """Poll STATUS until no axis moves; a failure if it is still moving at the timeout."""
        st = wait_until_idle(
            self.status,
            _moving,
            now=self.wire.clock.monotonic,
            wait_s=self.wire.wait_s,
            poll_s=poll_s,
            timeout_s=timeout_s,
            on_timeout=lambda st: DeviceError(
                f"still {DeviceState(st.state).name} after {timeout_s} s"
            ),
        )
        assert st is not None  # (no abort)
        return st

    def wait_event(self, code: int, timeout_s: float, after: int = 0) -> Event | None:
        """The first event with this code numbered above ``after``, waiting for it."""

        def find() -> Event | None:
            return next(
                (e for e in self.wire.received.events if e.code == code and e.number > after), None
            )

        self.wire.wait_for(lambda: find() is not None, timeout_s)
        return find()

    def wait_samples(self, predicate_count: int, timeout_s: float) -> bool:
        """Wait until at least this many telemetry samples have been received in total."""
        tl = self.wire.received.telemetry
        return self.wire.wait_for(lambda: tl.count >= predicate_count, timeout_s)


def _moving(st: Status) -> bool:
    return st.state in MOVING_STATES or bool(
        st.flags & (SampleFlags.ADVANCING | SampleFlags.ROTATING)
    )
