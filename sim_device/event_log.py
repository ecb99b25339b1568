"""The device's numbered event log: 1, 2, 3 … since boot, the newest EVENT_LOG_SIZE kept
so a host that lost an EVENT frame can fetch it again with GET_EVENTS."""

from __future__ import annotations

from collections import deque

from protocol import EVENT_LOG_SIZE, EventRecord, pack_events


class EventLog:
    __slots__ = ("_records", "last_number")

    def __init__(self, size: int = EVENT_LOG_SIZE) -> None:
        self._records: deque[EventRecord] = deque(maxlen=size)
        self.last_number = 0

    def add(self, time_us: int, code: int, value: int) -> EventRecord:
        self.last_number += 1
        record = EventRecord(self.last_number, time_us, code, value)
        self._records.append(record)
        return record

    def since(self, from_number: int, max_count: int) -> list[EventRecord]:
        """Stored events numbered ``from_number`` or later, oldest first, at most max_count."""
        if not self._records:
            return []
        first = self._records[0].number
        start = max(from_number - first, 0)
        out: list[EventRecord] = []
        for i in range(start, len(self._records)):
            if len(out) >= max_count:
                break
            out.append(self._records[i])
        return out

    def packed_since(self, from_number: int, max_count: int) -> bytes:
        return pack_events(self.since(from_number, max_count))

    def records(self) -> list[EventRecord]:
        return list(self._records)
