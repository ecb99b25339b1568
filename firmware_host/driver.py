"""The driver type: what a CLI command or a procedure may ask of the rig, whoever holds
the link — a ``NeedleDriver`` on the port itself, or the rig server's ``RemoteDriver``
(firmware_host/server/remote.py) when a server owns the port.

``OPERATIONS`` is the one table of the calls a client may make through the rig server:
its wire name, what it does on the driver that holds the link, and whether it moves the
rig (its client then owns that motion: confirmation on a real rig, STOP when the client
leaves) or stops it (a run is stopped too). The server dispatches on it, the remote
driver names its calls from it, and a CLI command that declares the operations it uses
asks for confirmation when one of them moves the rig.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from types import TracebackType
from typing import TYPE_CHECKING, Any, Protocol, Self

if TYPE_CHECKING:
    from firmware_host.client import DeviceEvent, DeviceIdentity, DeviceStatus
    from firmware_host.transports.base import Clock


class LinkFigures(Protocol):
    """The link's statistics (``LinkStats``, or the server's copy of them)."""

    def as_dict(self) -> dict[str, Any]: ...


class Driver(Protocol):
    """The rig as a CLI command sees it (``NeedleDriver`` and ``RemoteDriver``)."""

    @property
    def url(self) -> str: ...
    @property
    def identity(self) -> DeviceIdentity: ...
    @property
    def clock(self) -> Clock: ...
    @property
    def stats(self) -> LinkFigures: ...

    def status(self) -> DeviceStatus: ...
    def events(self) -> list[DeviceEvent]: ...
    def stop(self) -> None: ...
    def estop(self) -> None: ...
    def clear_fault(self) -> None: ...
    def start_home(self, speed_mm_s: float = 2.0) -> None: ...
    def advance_mm(self, distance_mm: float, speed_mm_s: float) -> None: ...
    def rotate_deg(self, angle_deg: float, rate_rpm: float) -> None: ...
    def move_to_mm(self, depth_mm: float, speed_mm_s: float) -> None: ...
    def rotate_rpm(self, rate_rpm: float) -> None: ...
    def wait_s(self, seconds: float) -> None: ...
    def keepalive(self) -> None: ...


class ClosedOnExit:
    """A driver is a context manager: the block's end closes it (which stops the rig if
    the session commanded motion)."""

    def close(self) -> None:
        raise NotImplementedError

    def __enter__(self) -> Self:
        return self

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        self.close()


# (the driver that holds the link, the call's keyword arguments) -> its result, as the
# library's objects (the server sends them as JSON: server/messages.py)
Call = Callable[["Driver", dict[str, Any]], object]


@dataclass(frozen=True)
class Operation:
    name: str  # on the wire: the rig server's API (docs/architecture.md §7)
    call: Call | None  # None: the server's own (a run: the procedure next to the link)
    moves: bool = False  # moves the rig: its client owns the motion
    stops: bool = False  # stops the rig: a run is stopped too


IDENTITY = Operation("identity", lambda d, a: d.identity)
STATUS = Operation("status", lambda d, a: {"status": d.status(), "link": d.stats.as_dict()})
EVENTS = Operation("events", lambda d, a: d.events())
STOP = Operation("stop", lambda d, a: d.stop(), stops=True)
ESTOP = Operation("estop", lambda d, a: d.estop(), stops=True)
CLEAR = Operation("clear", lambda d, a: d.clear_fault())
START_HOME = Operation("start_home", lambda d, a: d.start_home(**a), moves=True)
ADVANCE_MM = Operation("advance_mm", lambda d, a: d.advance_mm(**a), moves=True)
ROTATE_DEG = Operation("rotate_deg", lambda d, a: d.rotate_deg(**a), moves=True)
MOVE_TO_MM = Operation("move_to_mm", lambda d, a: d.move_to_mm(**a), moves=True)
ROTATE_RPM = Operation("rotate_rpm", lambda d, a: d.rotate_rpm(**a), moves=True)
RUN = Operation("run", None, moves=True)

OPERATIONS: dict[str, Operation] = {
    op.name: op
    for op in (
        IDENTITY,
        STATUS,
        EVENTS,
        STOP,
        ESTOP,
        CLEAR,
        START_HOME,
        ADVANCE_MM,
        ROTATE_DEG,
        MOVE_TO_MM,
        ROTATE_RPM,
        RUN,
    )
}


if TYPE_CHECKING:  # both drivers are Drivers (checked by mypy)
    from firmware_host.client import NeedleDriver
    from firmware_host.server.remote import RemoteDriver

    def _drivers(nd: NeedleDriver, remote: RemoteDriver) -> tuple[Driver, Driver]:
        return nd, remote
