"""Serial ports through pyserial's serial_for_url: device paths, ptys, socket://,
loop:// and the simulator's sim://.

Where the port has a file descriptor (device paths, ptys, socket://) reads and
writes go straight to it with poll/os.read/os.write: a pyserial call costs
≈12 µs and its read(n) waits for all n bytes, while we want "whatever is there,
now". pyserial still opens the port (exclusive lock, settings) and closes it.
Other ports (loop://, sim://) go through pyserial's read/write.
"""

from __future__ import annotations

import contextlib
import errno
import os
import select
from typing import Any
from urllib.parse import urlsplit

import serial

from firmware_host.errors import LinkLost, PortError
from firmware_host.transports.base import MONOTONIC, Clock, Transport

UDEV_HINT = "see 'First connection' in docs/operator.md for the udev rule"


class SerialTransport(Transport):
    def __init__(self, url: str, port: Any) -> None:
        self.name = url
        self.port = port
        # sim:// carries the device's virtual clock and runs the device when read.
        self.virtual = bool(getattr(port, "virtual", False))
        self.clock: Clock = port.clock if self.virtual else MONOTONIC
        self._fd: int | None = None
        if not self.virtual:
            try:
                fd = port.fileno()
                self._fd = fd if isinstance(fd, int) and fd >= 0 else None
            except (AttributeError, NotImplementedError, OSError, serial.SerialException):
                self._fd = None
        # One poll object registered once: cheaper per wait than select()'s three lists
        # (≈0.5 µs a call; the link waits once per command round trip).
        self._poll: Any = None
        if self._fd is not None:
            self._poll = select.poll()
            self._poll.register(self._fd, select.POLLIN)
        self._timeout_s: float | None = -1.0  # what port.timeout is set to (avoid re-setting)
        self._closed = False

    def fileno(self) -> int | None:
        return self._fd

    def _set_timeout(self, timeout_s: float | None) -> None:
        if timeout_s != self._timeout_s:
            self.port.timeout = timeout_s
            self._timeout_s = timeout_s

    def read(self, max_bytes: int, timeout_s: float) -> bytes:
        if self._closed:
            raise LinkLost(f"{self.name}: port is closed")
        fd = self._fd
        try:
            if fd is not None:
                # poll() takes ms, rounded up: never shorter than asked. Any event counts
                # (POLLHUP/POLLERR too): os.read then returns b"" or raises, i.e. LinkLost.
                if not self._poll.poll(timeout_s * 1000.0 if timeout_s > 0 else 0):
                    return b""
                data = os.read(fd, max_bytes)
                if not data:
                    raise LinkLost(f"{self.name}: the other end closed the port")
                return data
            port = self.port
            waiting = port.in_waiting
            if waiting:
                self._set_timeout(0)
                return bytes(port.read(min(waiting, max_bytes)))
            if self.virtual:
                # sim://: read() runs the device until it sends or the timeout passes
                self._set_timeout(max(timeout_s, 0.0))
                return bytes(port.read(max_bytes))
            self._set_timeout(max(timeout_s, 0.0))
            first = bytes(port.read(1))
            if not first:
                return b""
            more = port.in_waiting
            if more:
                self._set_timeout(0)
                first += bytes(port.read(min(more, max_bytes - 1)))
            return first
        except OSError as exc:
            raise LinkLost(f"{self.name}: {exc.strerror or exc}") from None
        except serial.SerialException as exc:
            raise LinkLost(f"{self.name}: {exc}") from None

    def write(self, data: bytes) -> None:
        if self._closed:
            raise LinkLost(f"{self.name}: port is closed")
        try:
            fd = self._fd
            if fd is not None:
                try:
                    n = os.write(fd, data)
                except BlockingIOError:
                    n = 0
                if n == len(data):
                    return  # the usual case: a frame fits the pty/tty buffer at once
                view = memoryview(data)[n:]  # a full buffer: the rest as room comes
                while view:
                    try:
                        n = os.write(fd, view)
                    except BlockingIOError:
                        select.select([], [fd], [], 1.0)
                        continue
                    view = view[n:]
            else:
                self.port.write(data)
        except OSError as exc:
            raise LinkLost(f"{self.name}: {exc.strerror or exc}") from None
        except serial.SerialException as exc:
            raise LinkLost(f"{self.name}: {exc}") from None

    def close(self) -> None:
        if self._closed:
            return
        self._closed = True
        with contextlib.suppress(OSError, serial.SerialException):
            self.port.close()


def open_serial(url: str) -> SerialTransport:
    """Open a pyserial port (exclusively) or raise PortError with one clear line."""
    scheme = urlsplit(url).scheme if "://" in url else ""
    if scheme == "sim":
        import sim_device  # noqa: F401  (registers the sim:// handler with pyserial)
    problem = socket_url_problem(url) if scheme == "socket" else None
    if problem is not None:
        raise PortError(f"{url}: {problem}")
    try:
        port = serial.serial_for_url(url, exclusive=True, timeout=0)
    except serial.SerialException as exc:
        raise PortError(_explain(url, exc)) from None
    except (OSError, ValueError) as exc:
        raise PortError(f"{url}: {exc}") from None
    return SerialTransport(url, port)


def socket_url_problem(url: str) -> str | None:
    """What is wrong with a socket:// URL, or None: socket://HOST:PORT needs both
    (pyserial's own complaint about a missing port is a Python comparison error). The
    one reading of a socket:// URL (needlectl checks --port with it too); loop:// is
    pyserial's own (its handler's from_url)."""
    parts = urlsplit(url)
    try:
        port = parts.port
    except ValueError:
        port = None
    if not parts.hostname or port is None or not 0 < port <= 65535:
        return "a TCP port is socket://HOST:PORT (e.g. socket://127.0.0.1:5555)"
    return None


def _explain(url: str, exc: serial.SerialException) -> str:
    code = exc.errno if isinstance(exc.errno, int) else _errno_in(str(exc))
    if code == errno.ENOENT:
        return f"{url}: no such port (is the rig plugged in? 'needlectl ports' lists them)"
    if code in (errno.EACCES, errno.EPERM):
        return f"{url}: permission denied ({UDEV_HINT})"
    if code in (errno.EWOULDBLOCK, errno.EBUSY):
        return f"{url}: port is busy (another program has it open; close it first)"
    if code == errno.ECONNREFUSED:
        return f"{url}: connection refused (is the device/simulator serving there?)"
    if code == errno.EISDIR:
        return f"{url}: is a directory, not a serial port ('needlectl ports' lists them)"
    if code == errno.ENOTTY:
        return f"{url}: not a serial port ('needlectl ports' lists them)"
    text = str(exc).splitlines()[0] if str(exc) else type(exc).__name__
    return f"{url}: {text}"


def _errno_in(text: str) -> int | None:
    for code, marker in (
        (errno.ENOENT, "No such file"),
        (errno.EACCES, "Permission denied"),
        (errno.EWOULDBLOCK, "Resource temporarily unavailable"),
        (errno.ECONNREFUSED, "Connection refused"),
        (errno.EISDIR, "Is a directory"),
        (errno.ENOTTY, "Inappropriate ioctl"),
    ):
        if marker in text:
            return code
    return None
