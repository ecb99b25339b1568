"""Helpers for host tests: real ptys, and a small scripted peer for the link tests that
need a device that misbehaves on purpose."""

from __future__ import annotations

import contextlib
import os
import select
import threading
import tty
from collections.abc import Callable
from typing import Any

from protocol import Frame, StreamDecoder, encode


def tamper_device_frames(nd: Any, tamper: Callable[[Frame, bytes], bytes | None]) -> None:
    """Every frame the simulated device behind ``nd`` (a NeedleDriver on sim://) sends goes
    through ``tamper(frame, raw)`` on its way to the host: it returns the bytes to send
    instead (``raw`` itself, another frame) or None to drop the frame."""
    dev = nd.link.transport.port.sim

    def outgoing(data: bytes) -> bytes:
        out = bytearray()
        for chunk in data.split(b"\x00"):
            if not chunk:
                continue
            raw = chunk + b"\x00"
            frames = StreamDecoder().feed(raw)
            sent = tamper(frames[0], raw) if frames else raw
            if sent is not None:
                out += b"\x00" + sent
        return bytes(out)

    dev.outgoing = outgoing


class Pty:
    """A pty pair: the host opens ``path``; the test drives ``master``."""

    def __init__(self) -> None:
        self.master, self.slave = os.openpty()
        tty.setraw(self.slave)  # a fresh pty is in cooked mode (echo, ^C handling)
        tty.setraw(self.master)
        self.path = os.ttyname(self.slave)

    def close(self) -> None:
        for fd in (self.master, self.slave):
            with contextlib.suppress(OSError):
                os.close(fd)


Handler = Callable[["ScriptedPeer", Frame], None]


class ScriptedPeer:
    """A device stand-in on a pty master: decodes what the host sends and lets the test
    decide the answer (or none). Records every frame received."""

    def __init__(self, master_fd: int, handler: Handler) -> None:
        self.fd = master_fd
        self.handler = handler
        self.received: list[Frame] = []
        self.changed = threading.Condition()
        self._stop = False
        self._thread = threading.Thread(target=self._run, daemon=True)
        self._thread.start()

    def send(self, msg: Any, seq: int = 0, flags: int = 0) -> None:
        os.write(self.fd, encode(msg, seq, flags))

    def _run(self) -> None:
        decoder = StreamDecoder()
        while not self._stop:
            ready, _, _ = select.select([self.fd], [], [], 0.05)
            if not ready:
                continue
            try:
                data = os.read(self.fd, 4096)
            except OSError:
                return
            for frame in decoder.feed(data):
                with self.changed:
                    self.received.append(frame)
                    self.changed.notify_all()
                self.handler(self, frame)

    def wait_for(self, predicate: Callable[[list[Frame]], bool], timeout_s: float = 5.0) -> bool:
        with self.changed:
            return self.changed.wait_for(lambda: predicate(self.received), timeout_s)

    def stop(self) -> None:
        self._stop = True
        self._thread.join(timeout=1.0)
