"""Transports over real ptys, loopback sockets and loop://: the same read/write meaning
everywhere, and one-line PortErrors naming the port and the cause."""

from __future__ import annotations

import errno
import os
import socket
import threading
import time

import pytest
import serial

from firmware_host.errors import LinkLost, NeedleDriverError, PortError
from firmware_host.transports import open_transport
from firmware_host.transports.serial import _explain
from firmware_host.transports.usb import parse_usb_url

from .helpers import Pty


def test_pty_read_returns_what_is_there_at_once(pty_pair: Pty) -> None:
    t = open_transport(pty_pair.path)
    try:
        assert not t.virtual
        assert t.fileno() is not None
        os.write(pty_pair.master, b"abc")
        start = time.monotonic()
        data = t.read(4096, 5.0)
        # pyserial's read(4096) would wait the whole 5 s for 4096 bytes; ours returns now
        assert data == b"abc"
        assert time.monotonic() - start < 1.0
        t.write(b"xyz\x00")
        assert os.read(pty_pair.master, 100) == b"xyz\x00"
    finally:
        t.close()


def test_pty_read_timeout_gives_empty_bytes(pty_pair: Pty) -> None:
    t = open_transport(pty_pair.path)
    try:
        start = time.monotonic()
        assert t.read(100, 0.05) == b""
        assert time.monotonic() - start >= 0.04
        assert t.read(100, 0.0) == b""
    finally:
        t.close()


def test_pty_far_end_closed_is_link_lost(pty_pair: Pty) -> None:
    t = open_transport(pty_pair.path)
    try:
        os.close(pty_pair.master)
        with pytest.raises(LinkLost) as info:
            t.read(100, 1.0)
        assert pty_pair.path in str(info.value)
        assert isinstance(info.value, ConnectionError)
    finally:
        t.close()


def test_missing_port_is_one_line_port_error() -> None:
    with pytest.raises(PortError) as info:
        open_transport("/dev/does-not-exist-needle")
    text = str(info.value)
    assert "/dev/does-not-exist-needle" in text and "no such port" in text
    assert "\n" not in text
    assert isinstance(info.value, OSError) and isinstance(info.value, NeedleDriverError)


@pytest.mark.control("RC-EXCLUSIVE")
def test_busy_port_is_port_error(pty_pair: Pty) -> None:
    first = open_transport(pty_pair.path)
    try:
        with pytest.raises(PortError) as info:
            open_transport(pty_pair.path)
        assert "busy" in str(info.value) and pty_pair.path in str(info.value)
    finally:
        first.close()
    # once released, it opens again
    open_transport(pty_pair.path).close()


def test_permission_denied_points_to_udev_rule() -> None:
    # Tests run as root here, so a real EACCES cannot be produced: check the mapping.
    exc = serial.SerialException(errno.EACCES, "could not open port /dev/ttyACM0: denied")
    text = _explain("/dev/ttyACM0", exc)
    assert "/dev/ttyACM0" in text and "permission denied" in text and "udev" in text


def test_socket_transport_loopback() -> None:
    server = socket.socket()
    server.bind(("127.0.0.1", 0))
    server.listen(1)
    port = server.getsockname()[1]
    accepted: list[socket.socket] = []
    thread = threading.Thread(target=lambda: accepted.append(server.accept()[0]))
    thread.start()
    t = open_transport(f"socket://127.0.0.1:{port}")
    thread.join(5)
    peer = accepted[0]
    try:
        assert t.fileno() is not None
        peer.sendall(b"hello")
        got = b""
        while len(got) < 5:
            got += t.read(100, 2.0)
        assert got == b"hello"
        t.write(b"back")
        assert peer.recv(100) == b"back"
        peer.close()
        with pytest.raises(LinkLost):
            for _ in range(10):
                t.read(100, 1.0)
    finally:
        t.close()
        server.close()


def test_refused_socket_is_port_error() -> None:
    s = socket.socket()
    s.bind(("127.0.0.1", 0))
    port = s.getsockname()[1]
    s.close()  # nothing listens there now
    with pytest.raises(PortError) as info:
        open_transport(f"socket://127.0.0.1:{port}")
    assert f"127.0.0.1:{port}" in str(info.value)


def test_loop_transport_same_semantics() -> None:
    t = open_transport("loop://")
    try:
        assert t.fileno() is None
        t.write(b"\x01\x02\x03")
        got = b""
        while len(got) < 3:
            got += t.read(100, 1.0)
        assert got == b"\x01\x02\x03"
        assert t.read(100, 0.01) == b""
    finally:
        t.close()


def test_closed_transport_raises_link_lost() -> None:
    t = open_transport("loop://")
    t.close()
    t.close()  # idempotent
    with pytest.raises(LinkLost):
        t.write(b"x")


def test_usb_url_parsing() -> None:
    assert parse_usb_url("usb://1209:4e44") == (0x1209, 0x4E44, None)
    assert parse_usb_url("usb://1209:4E44/ND-7") == (0x1209, 0x4E44, "ND-7")
    with pytest.raises(PortError):
        parse_usb_url("usb://nonsense")
