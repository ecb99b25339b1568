"""pyserial URL handler for ``sim://?lesion=NAME|PATH&seed=N&...`` (in-process, virtual time).

``import sim_device`` appends "sim_device" to ``serial.protocol_handler_packages``;
``serial.serial_for_url("sim://...")`` then imports this module and uses ``Serial``.
pyserial turns an ImportError here into "unknown URL scheme", so this module
imports nothing heavy at the top: the simulator is built in ``open()``.

The device runs only while the host waits on the port (docs/architecture.md §3):
``read`` runs it tick by tick until it has sent something or the read's timeout
has passed in virtual time.
"""

from __future__ import annotations

import math
from typing import TYPE_CHECKING, Any
from urllib.parse import urlsplit

from serial.serialutil import PortNotOpenError, SerialBase, SerialException

if TYPE_CHECKING:
    from sim_device.clock import VirtualClock
    from sim_device.core import CoreFirmware
    from sim_device.device import Device


class Serial(SerialBase):  # type: ignore[misc]
    """A port-like object whose far end is a simulated device on a shared virtual clock."""

    virtual = True

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        self._device: Device | None = None
        self._rxbuf = bytearray()
        super().__init__(*args, **kwargs)

    # ------------------------------------------------------------ open / close

    def open(self) -> None:
        if self._device is not None and getattr(self, "is_open", False):
            raise SerialException("Port is already open.")
        if self._port is None:
            raise SerialException("Port must be configured before it can be used.")
        from sim_device.device import Device, DeviceOptionError, DeviceOptions, parse_query

        parts = urlsplit(self._port)
        if parts.scheme != "sim":
            raise SerialException(f"expected a sim:// URL, got {self._port!r}")
        try:
            options = DeviceOptions.from_mapping(parse_query(parts.query))
            self._device = Device(options)
        except DeviceOptionError as exc:
            raise SerialException(f"{self._port}: {exc}") from None
        self._rxbuf.clear()
        self.is_open = True

    def close(self) -> None:
        # the device is kept (tests may inspect it after closing); only I/O stops
        self.is_open = False

    def _reconfigure_port(self, *args: Any, **kwargs: Any) -> None:
        pass  # baud rate and framing mean nothing here

    def from_url(self, url: str) -> str:
        return url

    # ------------------------------------------------------------ the contract

    @property
    def device(self) -> CoreFirmware:
        return self._dev().firmware

    @property
    def sim(self) -> Device:
        """The whole simulated device (firmware, rig, link faults)."""
        return self._dev()

    @property
    def clock(self) -> VirtualClock:
        return self._dev().clock

    def _dev(self) -> Device:
        if self._device is None or not self.is_open:
            raise PortNotOpenError()
        return self._device

    @property
    def in_waiting(self) -> int:
        dev = self._dev()
        self._rxbuf += dev.host_take()
        return len(self._rxbuf)

    def write(self, data: bytes | bytearray | memoryview) -> int:
        dev = self._dev()
        data = bytes(data)
        dev.host_write(data)
        return len(data)

    def read(self, size: int = 1) -> bytes:
        dev = self._dev()
        buf = self._rxbuf
        data = dev.host_take()
        if not buf and size > 0:
            if not data:
                data = self._run_until_data(dev)
            if len(data) <= size:
                return bytes(data)  # the common case: the device's bytes as they came
        buf += data
        if size >= len(buf):
            out = bytes(buf)
            buf.clear()
        else:
            out = bytes(buf[:size])
            del buf[:size]
        return out

    def _run_until_data(self, dev: Device) -> bytes:
        """Run the device until it has sent something or the read's timeout has passed
        in virtual time; return what it sent (b"" on timeout)."""
        timeout = self._timeout
        fw = dev.firmware
        data = b""
        if timeout is None:
            while not data:
                fw.run_until_output(None)
                data = dev.host_take()
        elif timeout > 0:
            clock = dev.clock
            end_us = clock.now_us + max(1, math.ceil(timeout * 1_000_000 - 1e-6))
            tick_us = dev.tick_us
            while not data and clock.now_us < end_us:
                fw.run_until_output(-(-(end_us - clock.now_us) // tick_us))
                data = dev.host_take()
        return data

    def advance_s(self, seconds: float) -> None:
        """Run the device forward with no host I/O (its output waits to be read)."""
        dev = self._dev()
        dev.firmware.run_ticks(round(seconds * 1_000_000) // dev.tick_us)

    def reset_input_buffer(self) -> None:
        dev = self._dev()
        dev.host_take()
        self._rxbuf.clear()

    def reset_output_buffer(self) -> None:
        self._dev()  # writes are delivered at once: nothing is ever pending

    def flush(self) -> None:
        self._dev()

    @property
    def out_waiting(self) -> int:
        return 0

    def cancel_read(self) -> None:
        pass

    def cancel_write(self) -> None:
        pass

    def _update_break_state(self) -> None:
        pass

    def _update_rts_state(self) -> None:
        pass

    def _update_dtr_state(self) -> None:
        pass

    @property
    def cts(self) -> bool:
        return True

    @property
    def dsr(self) -> bool:
        return True

    @property
    def ri(self) -> bool:
        return False

    @property
    def cd(self) -> bool:
        return True
