"""Exactly-once: the replies to the last REPLY_CACHE_SIZE commands, by seq.

A command whose seq is cached *and* whose message id matches the cached one is a
repeat (the host retransmitted because it lost our reply): the firmware sends the
stored reply again with HeaderFlags.REPLAYED and executes nothing.
"""

from __future__ import annotations

from collections import OrderedDict

from protocol import REPLY_CACHE_SIZE
from protocol.schema import Message


class ReplyCache:
    __slots__ = ("_entries", "size")

    def __init__(self, size: int = REPLY_CACHE_SIZE) -> None:
        self.size = size
        self._entries: OrderedDict[int, tuple[int, Message]] = OrderedDict()

    def lookup(self, seq: int, msg_id: int) -> Message | None:
        """The stored reply if (seq, msg_id) was answered recently, else None."""
        entry = self._entries.get(seq)
        if entry is None or entry[0] != msg_id:
            return None
        return entry[1]

    def store(self, seq: int, msg_id: int, reply: Message) -> None:
        entries = self._entries
        entries.pop(seq, None)  # a new command reusing a seq replaces the old entry
        entries[seq] = (msg_id, reply)
        if len(entries) > self.size:
            entries.popitem(last=False)

    def clear(self) -> None:
        self._entries.clear()

    def __len__(self) -> int:
        return len(self._entries)
