"""USB bulk transport and discovery through the simulator's pyusb backend (no libusb
here: pyusb's own code runs down to the backend, which plays the device)."""

from __future__ import annotations

import pytest

from firmware_host.client import NeedleDriver
from firmware_host.errors import PortError
from firmware_host.transports import open_transport
from firmware_host.transports.discovery import find_rigs, serial_ports, usb_devices
from protocol import USB_PID, USB_VID, DeviceState
from sim_device.device import Device, DeviceOptions
from sim_device.usb_backend import get_backend

URL = f"usb://{USB_VID:04x}:{USB_PID:04x}"


def test_needle_driver_over_usb_bulk_virtual_clock() -> None:
    backend = get_backend("seed=1&serial=SIM-USB-1")
    with NeedleDriver.open(URL, usb_backend=backend) as nd:
        assert nd.link.virtual and nd.clock is backend.clock
        assert nd.identity.serial_number == "SIM-USB-1"
        nd.home()
        nd.set_telemetry(1000, 10)
        nd.advance_mm(1.0, 2.0)
        st = nd.wait_idle(10.0)
        assert st.state is DeviceState.READY
        assert st.depth_mm == pytest.approx(1.0, abs=0.05)
        assert nd.stats.telemetry_samples > 500 and nd.stats.telemetry_samples_lost == 0


def test_several_rigs_need_a_serial_number() -> None:
    devices = [Device(DeviceOptions(seed=1, serial_number=f"SIM-{i}")) for i in (1, 2)]
    backend = get_backend(devices=devices)
    with pytest.raises(PortError) as info:
        open_transport(URL, usb_backend=backend)
    assert "2 rigs" in str(info.value) and "SIM-1" in str(info.value)
    with NeedleDriver.open(f"{URL}/SIM-2", usb_backend=backend) as nd:
        assert nd.identity.serial_number == "SIM-2"
    found = usb_devices(backend)
    assert sorted(f.url for f in found) == [f"{URL}/SIM-1", f"{URL}/SIM-2"]
    assert all(f.kind == "usb" and f.is_rig for f in found)


def test_missing_usb_rig_is_port_error() -> None:
    with pytest.raises(PortError) as info:
        open_transport(f"{URL}/NOPE", usb_backend=get_backend("serial=SIM-1"))
    assert "NOPE" in str(info.value) and "\n" not in str(info.value)


def test_serial_discovery_matches_vid_pid(monkeypatch: pytest.MonkeyPatch) -> None:
    # No USB serial adapter can exist here: list_ports' answer is stood in for.
    from serial.tools import list_ports_common

    rig = list_ports_common.ListPortInfo("/dev/ttyACM7", skip_link_detection=True)
    rig.vid, rig.pid, rig.serial_number, rig.description = USB_VID, USB_PID, "ND-9", "rig"
    other = list_ports_common.ListPortInfo("/dev/ttyUSB0", skip_link_detection=True)
    other.vid, other.pid = 0x0403, 0x6001
    monkeypatch.setattr(
        "firmware_host.transports.discovery.list_ports.comports", lambda: [rig, other]
    )
    assert [p.url for p in serial_ports()] == ["/dev/ttyACM7"]
    assert serial_ports()[0].serial_number == "ND-9"
    assert [p.url for p in serial_ports(all_ports=True)] == ["/dev/ttyACM7", "/dev/ttyUSB0"]
    rigs = find_rigs(backend=get_backend("serial=SIM-3"))
    assert [r.kind for r in rigs] == ["serial", "usb"]
