"""The rig server's messages: the library's objects as JSON and back, so that a CLI
command gives the same output through the server as on the port itself."""

from __future__ import annotations

import dataclasses
import enum
from typing import TYPE_CHECKING, Any

from firmware_host import errors
from firmware_host.client import (
    DeviceCounters,
    DeviceEvent,
    DeviceIdentity,
    DeviceLimits,
    DeviceStatus,
    LoadCellStatus,
)
from protocol import (
    Capabilities,
    DeviceState,
    EventCode,
    FaultFlags,
    LoadCellFault,
    NakReason,
    SampleFlags,
)

if TYPE_CHECKING:
    from firmware_host.procedure import Outcome, Progress


def to_wire(value: object) -> Any:
    """Plain JSON: dataclasses as objects, enums and flags as their integer values."""
    if isinstance(value, enum.Enum):
        return value.value
    if dataclasses.is_dataclass(value) and not isinstance(value, type):
        return {f.name: to_wire(getattr(value, f.name)) for f in dataclasses.fields(value)}
    if isinstance(value, dict):
        return {str(k): to_wire(v) for k, v in value.items()}
    if isinstance(value, list | tuple):
        return [to_wire(v) for v in value]
    item = getattr(value, "item", None)  # numpy scalars
    if callable(item):
        return item()
    return value


def identity_from_wire(d: dict[str, Any]) -> DeviceIdentity:
    return DeviceIdentity(**{**d, "capabilities": Capabilities(d["capabilities"])})


def status_from_wire(d: dict[str, Any]) -> DeviceStatus:
    return DeviceStatus(
        **{
            **d,
            "state": DeviceState(d["state"]),
            "flags": SampleFlags(d["flags"]),
            "latched_faults": FaultFlags(d["latched_faults"]),
            "limits": DeviceLimits(**d["limits"]),
            "counters": DeviceCounters(**d["counters"]),
            "load_cell": LoadCellStatus(
                **{**d["load_cell"], "fault": LoadCellFault(d["load_cell"]["fault"])}
            ),
        }
    )


def event_from_wire(d: dict[str, Any]) -> DeviceEvent:
    code = d["code"]
    return DeviceEvent(
        d["number"],
        d["device_time_s"],
        d["host_time_s"],
        EventCode(code) if code in EventCode._value2member_map_ else code,
        d["value"],
    )


def error_to_wire(exc: BaseException) -> dict[str, Any]:
    d: dict[str, Any] = {
        "type": type(exc).__name__,
        "message": str(exc),
        "mro": [c.__name__ for c in type(exc).__mro__],
    }
    if isinstance(exc, errors.Nak):
        d["command"] = exc.command
        d["reason"] = int(exc.reason)
        d["detail"] = exc.detail
    if isinstance(exc, errors.DeviceFault):
        d["latched_faults"] = exc.latched_faults
    return d


class RemoteError(errors.NeedleDriverError):
    """An error the server met that has no class of the same name here."""


def error_from_wire(d: dict[str, Any]) -> BaseException:
    """The same exception class (so the CLI's one error boundary says the same line)."""
    name = d.get("type", "")
    msg = str(d.get("message", ""))
    if name == "Nak":
        return errors.Nak(str(d["command"]), NakReason(d["reason"]), int(d["detail"]))
    if name == "DeviceFault":
        exc = errors.DeviceFault(msg, int(d.get("latched_faults", 0)))
        exc.args = (msg,)
        return exc
    from firmware_host.procedure import loop as loop_mod
    from firmware_host.procedure import profile as profile_mod

    for module in (errors, profile_mod, loop_mod):
        cls = getattr(module, name, None)
        if isinstance(cls, type) and issubclass(cls, Exception):
            try:
                return cls(msg)
            except TypeError:
                break
    builtin = {"FileNotFoundError": FileNotFoundError, "PermissionError": PermissionError}
    if name in builtin:
        return builtin[name](msg)
    if "OSError" in d.get("mro", []):
        return OSError(msg)
    return RemoteError(msg)


def outcome_from_wire(d: dict[str, Any]) -> Outcome:
    from firmware_host.procedure import Outcome, ProcedureEvent, Result

    return Outcome(
        **{
            **d,
            "result": Result(d["result"]),
            "events": tuple(ProcedureEvent(**e) for e in d["events"]),
        }
    )


def progress_from_wire(d: dict[str, Any]) -> Progress:
    from firmware_host.procedure import Phase, Progress

    return Progress(**{**d, "phase": Phase(d["phase"])})
