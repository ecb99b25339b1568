"""USB bulk transport through pyusb, for boards with a vendor bulk interface.

URL: ``usb://VID:PID`` or ``usb://VID:PID/SERIAL`` (hex VID/PID, e.g.
``usb://1209:4e44/ND-000123``). The serial number is required when several rigs
with the same VID:PID are attached. A ``backend`` (pyusb ``IBackend``) may be
passed: real machines use libusb; tests use the simulator's pyusb backend.
"""

from __future__ import annotations

from typing import Any

from firmware_host.errors import LinkLost, PortError
from firmware_host.transports.base import MONOTONIC, Clock, Transport

_READ_CHUNK_BYTES = 512


def parse_usb_url(url: str) -> tuple[int, int, str | None]:
    """('usb://1209:4e44/SN') -> (0x1209, 0x4E44, 'SN')."""
    rest = url.split("://", 1)[1] if "://" in url else url
    ids, _, serial_number = rest.partition("/")
    vid_text, sep, pid_text = ids.partition(":")
    try:
        if not sep:
            raise ValueError
        return int(vid_text, 16), int(pid_text, 16), serial_number or None
    except ValueError:
        raise PortError(f"{url}: expected usb://VID:PID[/SERIAL] with hex ids") from None


def find_usb_devices(vid: int, pid: int, backend: Any = None) -> list[Any]:
    """Every attached device with this VID:PID ([] when pyusb has no backend here)."""
    import usb.core

    try:
        return list(usb.core.find(find_all=True, idVendor=vid, idProduct=pid, backend=backend))
    except usb.core.NoBackendError:
        return []


def _serial_of(dev: Any) -> str | None:
    try:
        value = dev.serial_number
    except (ValueError, NotImplementedError, OSError):
        return None
    return str(value) if value is not None else None


class UsbTransport(Transport):
    def __init__(self, url: str, dev: Any, ep_in: Any, ep_out: Any, clock: Clock | None) -> None:
        self.name = url
        self.dev = dev
        self._ep_in = ep_in
        self._ep_out = ep_out
        self.virtual = clock is not None
        self.clock = clock if clock is not None else MONOTONIC
        self._closed = False

    def read(self, max_bytes: int, timeout_s: float) -> bytes:
        import usb.core

        if self._closed:
            raise LinkLost(f"{self.name}: port is closed")
        # pyusb: timeout 0 means "forever", so the shortest wait is 1 ms
        timeout_ms = max(1, round(timeout_s * 1000))
        try:
            data = self._ep_in.read(max(max_bytes, _READ_CHUNK_BYTES), timeout_ms)
        except usb.core.USBTimeoutError:
            return b""
        except usb.core.USBError as exc:
            raise LinkLost(f"{self.name}: {exc}") from None
        return bytes(data)

    def write(self, data: bytes) -> None:
        import usb.core

        if self._closed:
            raise LinkLost(f"{self.name}: port is closed")
        try:
            sent = self._ep_out.write(data, 1000)
        except usb.core.USBError as exc:
            raise LinkLost(f"{self.name}: {exc}") from None
        if sent != len(data):
            raise LinkLost(f"{self.name}: wrote {sent} of {len(data)} bytes")

    def close(self) -> None:
        if self._closed:
            return
        self._closed = True
        try:
            import usb.util

            usb.util.dispose_resources(self.dev)
        except Exception:
            pass


def open_usb(url: str, backend: Any = None) -> UsbTransport:
    import usb.core
    import usb.util

    vid, pid, wanted = parse_usb_url(url)
    devices = find_usb_devices(vid, pid, backend)
    if wanted is not None:
        devices = [d for d in devices if _serial_of(d) == wanted]
    if not devices:
        what = f"{vid:04x}:{pid:04x}" + (f" with serial {wanted}" if wanted else "")
        raise PortError(f"{url}: no USB device {what} (is it plugged in? 'needlectl ports')")
    if len(devices) > 1:
        serials = ", ".join(str(_serial_of(d)) for d in devices)
        raise PortError(f"{url}: {len(devices)} rigs attached ({serials}); add /SERIAL to the URL")
    dev = devices[0]
    try:
        dev.set_configuration()
        cfg = dev.get_active_configuration()
        intf = cfg[(0, 0)]
        ep_out = usb.util.find_descriptor(
            intf,
            custom_match=lambda e: (
                usb.util.endpoint_direction(e.bEndpointAddress) == usb.util.ENDPOINT_OUT
            ),
        )
        ep_in = usb.util.find_descriptor(
            intf,
            custom_match=lambda e: (
                usb.util.endpoint_direction(e.bEndpointAddress) == usb.util.ENDPOINT_IN
            ),
        )
    except usb.core.USBError as exc:
        if getattr(exc, "errno", None) == 13:
            raise PortError(
                f"{url}: permission denied (see 'First connection' in docs/operator.md)"
            ) from None
        raise PortError(f"{url}: {exc}") from None
    if ep_in is None or ep_out is None:
        raise PortError(f"{url}: the device has no bulk IN/OUT endpoints")
    # the simulator's backend runs the device on its virtual clock unless realtime
    clock = None if getattr(backend, "realtime", True) else getattr(backend, "clock", None)
    return UsbTransport(url, dev, ep_in, ep_out, clock)
