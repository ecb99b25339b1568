"""A pty in front of a served simulator that makes it look like a rig: every IDENTITY it
forwards says ``simulated = 0``. The suite then has to treat it as real hardware (motion
only with --allow-motion); everything else passes through frame by frame."""

from __future__ import annotations

import os
import select
import threading
import tty

from protocol import Identity, StreamDecoder, encode


class NotSimulatedProxy:
    def __init__(self, device_path: str) -> None:
        self._dev = os.open(device_path, os.O_RDWR | os.O_NOCTTY)
        tty.setraw(self._dev)
        self._master, self._slave = os.openpty()
        tty.setraw(self._slave)
        tty.setraw(self._master)
        self.path = os.ttyname(self._slave)  # what the suite opens
        self._decoder = StreamDecoder()
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, name="identity-proxy", daemon=True)
        self._thread.start()

    def _run(self) -> None:
        while not self._stop.is_set():
            ready, _, _ = select.select([self._master, self._dev], [], [], 0.05)
            for fd in ready:
                try:
                    data = os.read(fd, 65536)
                except OSError:
                    continue  # the suite closed its side (EIO until it reopens)
                if fd == self._master:
                    os.write(self._dev, data)
                    continue
                out = bytearray()
                for fr in self._decoder.feed(data):
                    msg = fr.message
                    if isinstance(msg, Identity):
                        msg = msg._replace(simulated=0)
                    out += encode(msg, fr.seq, fr.flags)
                if out:
                    os.write(self._master, bytes(out))

    def close(self) -> None:
        self._stop.set()
        self._thread.join(timeout=2.0)
        for fd in (self._master, self._slave, self._dev):
            os.close(fd)
