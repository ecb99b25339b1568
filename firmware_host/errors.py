"""Typed errors of the host library (docs/architecture.md §5).

Each is a ``NeedleDriverError`` and also the built-in it is a kind of, so that
callers that only know the standard library still catch them sensibly
(``except TimeoutError`` catches our ``Timeout``), as python-can does.
Messages are one line: what went wrong, on which port, and what to do.
"""

from __future__ import annotations

from protocol import FaultFlags, NakReason


class NeedleDriverError(Exception):
    """Base of every error this library raises on purpose."""


class Nak(NeedleDriverError):
    """The device refused a command; nothing was executed."""

    def __init__(self, command: str, reason: NakReason | int, detail: int = 0) -> None:
        try:
            self.reason: NakReason | int = NakReason(reason)
            name = self.reason.name
        except ValueError:
            self.reason = reason
            name = f"reason {reason}"
        self.command = command
        self.detail = detail
        suffix = f" (detail {detail})" if detail else ""
        super().__init__(f"device refused {command}: {name}{suffix}")


class LinkLost(NeedleDriverError, ConnectionError):
    """The port died or the device fell silent; the device's watchdog stops any motion."""


class Timeout(NeedleDriverError, TimeoutError):
    """No reply after every retransmission, or a wait ran out of time."""


class DeviceFault(NeedleDriverError):
    """A latched fault or an e-stop stopped the operation."""

    def __init__(self, message: str, latched_faults: int = 0) -> None:
        self.latched_faults = latched_faults
        names = fault_names(latched_faults)
        super().__init__(f"{message}" + (f" (latched: {names})" if names else ""))


class SchemaMismatch(NeedleDriverError):
    """The device's schema hash differs from ours: motion refused, queries still work."""


class ProtocolError(SchemaMismatch):
    """The device sent a value our schema does not define (an undefined state, say):
    firmware and host schema disagree, so nothing it reports can be trusted. A kind of
    SchemaMismatch (same remedy: matching firmware and library)."""


class PortError(NeedleDriverError, OSError):
    """A port could not be opened or used (missing, busy, not permitted)."""


class LimitError(NeedleDriverError, ValueError):
    """The host's own limit check refused a command before sending it."""


def fault_names(latched_faults: int) -> str:
    """'WATCHDOG|STALL' for a FaultFlags bit set ('' for none)."""
    return "|".join(f.name or "" for f in FaultFlags if latched_faults & f)


class CallbackWait(NeedleDriverError, RuntimeError):
    """A wait (wait_s, wait_until, wait_idle, home) was called inside a telemetry, event or
    link callback. A callback runs on the thread that delivers frames, so the wait would
    wait for frames only its own return can deliver: refused at once. Requests (status(),
    stop(), estop()) do work in a callback."""
