"""Find rigs: serial ports (pyserial's list_ports) and USB bulk devices (pyusb)
whose VID:PID is the rig's (protocol.USB_VID / USB_PID)."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from serial.tools import list_ports

from firmware_host.transports.usb import _serial_of, find_usb_devices
from protocol import USB_PID, USB_VID


@dataclass(frozen=True)
class FoundPort:
    url: str  # what to pass to open_transport / --port
    kind: str  # "serial" or "usb"
    description: str
    serial_number: str | None
    is_rig: bool  # VID:PID matches the rig's


def serial_ports(all_ports: bool = False) -> list[FoundPort]:
    """Serial ports that look like a rig (every port with all_ports=True)."""
    found = []
    for info in list_ports.comports():
        is_rig = info.vid == USB_VID and info.pid == USB_PID
        if is_rig or all_ports:
            found.append(
                FoundPort(info.device, "serial", info.description or "", info.serial_number, is_rig)
            )
    return found


def usb_devices(backend: Any = None) -> list[FoundPort]:
    """USB bulk rigs (none when pyusb has no backend on this machine)."""
    found = []
    for dev in find_usb_devices(USB_VID, USB_PID, backend):
        sn = _serial_of(dev)
        url = f"usb://{USB_VID:04x}:{USB_PID:04x}" + (f"/{sn}" if sn else "")
        found.append(FoundPort(url, "usb", "needle driver (USB bulk)", sn, True))
    return found


def find_rigs(backend: Any = None, all_ports: bool = False) -> list[FoundPort]:
    return serial_ports(all_ports) + usb_devices(backend)
