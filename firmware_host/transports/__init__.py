"""Transports: one interface (base.Transport), one module per kind of port."""

from __future__ import annotations

from typing import Any

from firmware_host.transports.base import MONOTONIC, Clock, MonotonicClock, Transport
from firmware_host.transports.serial import SerialTransport, open_serial
from firmware_host.transports.usb import UsbTransport, open_usb


def open_transport(url: str, *, usb_backend: Any = None) -> Transport:
    """``usb://VID:PID[/SERIAL]`` → pyusb bulk; anything else → pyserial (exclusive)."""
    if url.startswith("usb://"):
        return open_usb(url, backend=usb_backend)
    return open_serial(url)


__all__ = [
    "MONOTONIC",
    "Clock",
    "MonotonicClock",
    "SerialTransport",
    "Transport",
    "UsbTransport",
    "open_serial",
    "open_transport",
    "open_usb",
]
