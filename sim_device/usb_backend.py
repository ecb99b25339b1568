"""The simulated device's USB face: a pyusb backend (no libusb needed).

``usb.core.find(idVendor=USB_VID, idProduct=USB_PID, backend=get_backend("lesion=...&seed=1"))``
returns a ``usb.core.Device`` run entirely by pyusb's own code (descriptors,
configuration, claiming, ``dev.write(0x01, ...)``, ``dev.read(0x81, ...)``,
``usb.util.get_string``); only the bottom layer — what libusb would do — is here.

One vendor interface (class 0xFF) with bulk OUT 0x01 and bulk IN 0x81 carries the
protocol's byte stream, exactly as on the serial port.

Time: by default the device runs on its virtual clock, as with ``sim://``: a read
runs it forward until it has sent something or the read's timeout (virtual ms)
has passed; ``backend.clock`` is that clock. With ``realtime=True`` it follows
``time.monotonic`` instead and a read really waits.
"""

from __future__ import annotations

import array
import time
from types import SimpleNamespace
from typing import Any

import usb.backend
import usb.core

from protocol import USB_PID, USB_VID
from sim_device.clock import VirtualClock
from sim_device.core import TICK_US
from sim_device.device import Device, DeviceOptions, parse_query

EP_OUT = 0x01
EP_IN = 0x81
MAX_PACKET_BYTES = 64
LIBUSB_ERROR_TIMEOUT = -7
LIBUSB_ERROR_PIPE = -9
LIBUSB_ERROR_NOT_FOUND = -5
_STRINGS = {1: "needle-driver", 2: "Needle driver (simulated)"}


class _SimUsbDevice:
    """One simulated device on the bus."""

    def __init__(self, device: Device, address: int) -> None:
        self.device = device
        self.address = address
        self.configuration = 0
        self.claimed: set[int] = set()
        self.rx = bytearray()
        self.t0_s: float | None = None


class SimUsbBackend(usb.backend.IBackend):  # type: ignore[misc]
    def __init__(self, devices: list[Device], *, realtime: bool = False) -> None:
        self.devices = [_SimUsbDevice(d, i + 1) for i, d in enumerate(devices)]
        self.realtime = realtime

    @property
    def clock(self) -> VirtualClock:
        """The (first) device's virtual clock."""
        return self.devices[0].device.clock

    @property
    def device(self) -> Any:
        """The (first) device's firmware (tests: truth, fault injection)."""
        return self.devices[0].device.firmware

    # ---------------------------------------------------------------- descriptors

    def enumerate_devices(self) -> Any:
        yield from self.devices

    def get_parent(self, dev: _SimUsbDevice) -> None:
        return None

    def get_device_descriptor(self, dev: _SimUsbDevice) -> Any:
        return SimpleNamespace(
            bLength=18,
            bDescriptorType=1,
            bcdUSB=0x0200,
            bDeviceClass=0,
            bDeviceSubClass=0,
            bDeviceProtocol=0,
            bMaxPacketSize0=64,
            idVendor=USB_VID,
            idProduct=USB_PID,
            bcdDevice=0x0100,
            iManufacturer=1,
            iProduct=2,
            iSerialNumber=3,
            bNumConfigurations=1,
            address=dev.address,
            bus=1,
            port_number=dev.address,
            port_numbers=(dev.address,),
            speed=2,  # full speed
        )

    def get_configuration_descriptor(self, dev: _SimUsbDevice, config: int) -> Any:
        if config != 0:
            raise usb.core.USBError("no such configuration", LIBUSB_ERROR_NOT_FOUND)
        return SimpleNamespace(
            bLength=9,
            bDescriptorType=2,
            wTotalLength=9 + 9 + 7 + 7,
            bNumInterfaces=1,
            bConfigurationValue=1,
            iConfiguration=0,
            bmAttributes=0x80,
            bMaxPower=50,
            extra_descriptors=[],
        )

    def get_interface_descriptor(self, dev: _SimUsbDevice, intf: int, alt: int, config: int) -> Any:
        if (intf, alt, config) != (0, 0, 0):
            raise usb.core.USBError("no such interface", LIBUSB_ERROR_NOT_FOUND)
        return SimpleNamespace(
            bLength=9,
            bDescriptorType=4,
            bInterfaceNumber=0,
            bAlternateSetting=0,
            bNumEndpoints=2,
            bInterfaceClass=0xFF,
            bInterfaceSubClass=0,
            bInterfaceProtocol=0,
            iInterface=0,
            extra_descriptors=[],
        )

    def get_endpoint_descriptor(
        self, dev: _SimUsbDevice, ep: int, intf: int, alt: int, config: int
    ) -> Any:
        if (intf, alt, config) != (0, 0, 0) or ep not in (0, 1):
            raise usb.core.USBError("no such endpoint", LIBUSB_ERROR_NOT_FOUND)
        return SimpleNamespace(
            bLength=7,
            bDescriptorType=5,
            bEndpointAddress=(EP_OUT, EP_IN)[ep],
            bmAttributes=0x02,  # bulk
            wMaxPacketSize=MAX_PACKET_BYTES,
            bInterval=0,
            bRefresh=0,
            bSynchAddress=0,
            extra_descriptors=[],
        )

    # ---------------------------------------------------------------- handles

    def open_device(self, dev: _SimUsbDevice) -> _SimUsbDevice:
        return dev

    def close_device(self, dev_handle: _SimUsbDevice) -> None:
        dev_handle.claimed.clear()

    def set_configuration(self, dev_handle: _SimUsbDevice, config_value: int) -> None:
        if config_value not in (0, 1):
            raise usb.core.USBError("no such configuration", LIBUSB_ERROR_NOT_FOUND)
        dev_handle.configuration = config_value

    def get_configuration(self, dev_handle: _SimUsbDevice) -> int:
        return dev_handle.configuration

    def set_interface_altsetting(self, dev_handle: _SimUsbDevice, intf: int, alt: int) -> None:
        if (intf, alt) != (0, 0):
            raise usb.core.USBError("no such alternate setting", LIBUSB_ERROR_NOT_FOUND)

    def claim_interface(self, dev_handle: _SimUsbDevice, intf: int) -> None:
        if intf != 0:
            raise usb.core.USBError("no such interface", LIBUSB_ERROR_NOT_FOUND)
        dev_handle.claimed.add(intf)

    def release_interface(self, dev_handle: _SimUsbDevice, intf: int) -> None:
        dev_handle.claimed.discard(intf)

    def clear_halt(self, dev_handle: _SimUsbDevice, ep: int) -> None:
        pass

    def reset_device(self, dev_handle: _SimUsbDevice) -> None:
        dev_handle.rx.clear()

    def is_kernel_driver_active(self, dev_handle: _SimUsbDevice, intf: int) -> bool:
        return False

    def detach_kernel_driver(self, dev_handle: _SimUsbDevice, intf: int) -> None:
        pass

    def attach_kernel_driver(self, dev_handle: _SimUsbDevice, intf: int) -> None:
        pass

    # ---------------------------------------------------------------- transfers

    def ctrl_transfer(
        self,
        dev_handle: _SimUsbDevice,
        bmRequestType: int,
        bRequest: int,
        wValue: int,
        wIndex: int,
        data: Any,
        timeout: int,
    ) -> int:
        # Only standard GET_DESCRIPTOR for strings (usb.util.get_string) is implemented.
        if bmRequestType != 0x80 or bRequest != 6 or wValue >> 8 != 3:
            raise usb.core.USBError("request not supported", LIBUSB_ERROR_PIPE)
        index = wValue & 0xFF
        if index == 0:
            payload = (0x0409).to_bytes(2, "little")
        elif index == 3:
            payload = dev_handle.device.options.serial_number.encode("utf-16-le")
        elif index in _STRINGS:
            payload = _STRINGS[index].encode("utf-16-le")
        else:
            raise usb.core.USBError("no such string", LIBUSB_ERROR_PIPE)
        desc = bytes((len(payload) + 2, 3)) + payload
        n = min(len(desc), len(data))
        data[:n] = array.array("B", desc[:n])
        return n

    def bulk_write(
        self, dev_handle: _SimUsbDevice, ep: int, intf: int, data: Any, timeout: int
    ) -> int:
        self._check(dev_handle, ep, EP_OUT)
        self._catch_up(dev_handle)
        dev_handle.device.host_write(bytes(data))
        if self.realtime:
            dev_handle.device.firmware.poll_input()
        return len(data)

    def bulk_read(
        self, dev_handle: _SimUsbDevice, ep: int, intf: int, buff: Any, timeout: int
    ) -> int:
        self._check(dev_handle, ep, EP_IN)
        dev = dev_handle.device
        rx = dev_handle.rx
        rx += dev.host_take()
        if not rx:
            # pyusb passes 0 for "no timeout" (as libusb does)
            if self.realtime:
                self._wait_realtime(dev_handle, timeout)
            else:
                fw = dev.firmware
                ticks = None if timeout <= 0 else max(1, -(-timeout * 1000 // TICK_US))
                end_us = None if ticks is None else dev.clock.now_us + ticks * TICK_US
                while not rx and (end_us is None or dev.clock.now_us < end_us):
                    left = None if end_us is None else (end_us - dev.clock.now_us) // TICK_US
                    fw.run_until_output(left)
                    rx += dev.host_take()
        if not rx:
            raise usb.core.USBTimeoutError("timeout", LIBUSB_ERROR_TIMEOUT, LIBUSB_ERROR_TIMEOUT)
        n = min(len(buff), len(rx))
        buff[:n] = array.array("B", rx[:n])
        del rx[:n]
        return n

    def _check(self, dev_handle: _SimUsbDevice, ep: int, expected: int) -> None:
        if ep != expected or dev_handle.configuration != 1:
            raise usb.core.USBError(f"endpoint {ep:#04x} not available", LIBUSB_ERROR_PIPE)

    def _catch_up(self, dev_handle: _SimUsbDevice) -> None:
        if not self.realtime:
            return
        now_s = time.monotonic()
        if dev_handle.t0_s is None:
            dev_handle.t0_s = now_s - dev_handle.device.clock.now_us / 1e6
        fw = dev_handle.device.firmware
        ticks = (int((now_s - dev_handle.t0_s) * 1e6) - fw.clock.now_us) // TICK_US
        if ticks > 0:
            fw.run_ticks(ticks)

    def _wait_realtime(self, dev_handle: _SimUsbDevice, timeout_ms: int) -> None:
        # The hardware's side of a blocking transfer: the device runs on the machine's
        # clock and the transfer completes when it sends (or the timeout passes).
        deadline = None if timeout_ms <= 0 else time.monotonic() + timeout_ms / 1000
        dev = dev_handle.device
        while True:
            self._catch_up(dev_handle)
            dev_handle.rx += dev.host_take()
            if dev_handle.rx:
                return
            now = time.monotonic()
            if deadline is not None and now >= deadline:
                return
            time.sleep(min(TICK_US / 1e6, 1.0 if deadline is None else deadline - now))


def get_backend(
    query: str = "", *, realtime: bool = False, devices: list[Device] | None = None
) -> SimUsbBackend:
    """A backend presenting one simulated device built from ``sim://`` URL options
    (``"lesion=fibrous-cto&seed=3&serial=SIM-0002"``), or the given devices."""
    if devices is None:
        devices = [Device(DeviceOptions.from_mapping(parse_query(query.lstrip("?"))))]
    return SimUsbBackend(devices, realtime=realtime)
