"""The one small interface every kind of port meets (docs/architecture.md §4).

``read(max_bytes, timeout_s)`` means the same thing everywhere: return as soon as
*any* bytes are there (up to ``max_bytes``), or ``b""`` once ``timeout_s`` of the
transport's clock has passed (0: only what is already waiting). A dead port raises
``LinkLost``; nothing else escapes.
"""

from __future__ import annotations

import time
from abc import ABC, abstractmethod
from typing import Protocol


class Clock(Protocol):
    """Time is a dependency: everything that waits reads one of these."""

    def monotonic(self) -> float: ...


class MonotonicClock:
    """The machine's clock, for real ports."""

    def monotonic(self) -> float:
        return time.monotonic()


MONOTONIC = MonotonicClock()


class Transport(ABC):
    name: str  # the URL or port, for messages
    clock: Clock
    virtual: bool = False  # True: virtual time, no threads, the host pumps on every wait

    @abstractmethod
    def read(self, max_bytes: int, timeout_s: float) -> bytes:
        """Up to max_bytes as soon as any are there; b"" on timeout. Raises LinkLost."""

    @abstractmethod
    def write(self, data: bytes) -> None:
        """All of data, or LinkLost."""

    @abstractmethod
    def close(self) -> None:
        """Idempotent."""

    def fileno(self) -> int | None:
        """A file descriptor for select(), where the port has one."""
        return None

    def __repr__(self) -> str:
        return f"<{type(self).__name__} {self.name}>"
