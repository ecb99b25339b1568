"""The USB face: pyusb's own code (find, configuration, strings, bulk transfers) on the
simulator's backend."""

from __future__ import annotations

import itertools

import pytest
import usb.core
import usb.util

from protocol import (
    SCHEMA_HASH,
    USB_PID,
    USB_VID,
    Ack,
    Event,
    EventCode,
    GetStatus,
    Heartbeat,
    Hello,
    Home,
    Identity,
    Status,
    StreamDecoder,
    encode,
)
from sim_device.usb_backend import EP_IN, EP_OUT, get_backend


def read_frames(dev: usb.core.Device, dec: StreamDecoder, timeout_ms: int = 200) -> list:
    return dec.feed(bytes(dev.read(EP_IN, 512, timeout_ms)))


def test_find_by_vid_pid_and_serial_then_talk_protocol() -> None:
    backend = get_backend("lesion=soft-stenosis&seed=5&serial=SIM-0042")
    dev = usb.core.find(idVendor=USB_VID, idProduct=USB_PID, backend=backend)
    assert dev is not None
    assert dev.serial_number == "SIM-0042" and "simulated" in dev.product
    dev.set_configuration()
    intf = dev.get_active_configuration()[(0, 0)]
    eps = sorted(e.bEndpointAddress for e in intf)
    assert eps == [EP_OUT, EP_IN]
    assert all(usb.util.endpoint_type(e.bmAttributes) == usb.util.ENDPOINT_TYPE_BULK for e in intf)
    usb.util.claim_interface(dev, 0)

    dec = StreamDecoder()
    boot = read_frames(dev, dec)
    assert isinstance(boot[0].message, Event) and boot[0].message.code == EventCode.BOOT
    dev.write(EP_OUT, encode(Hello(1, SCHEMA_HASH), seq=1))
    reply = read_frames(dev, dec)[0]
    assert reply.seq == 1 and isinstance(reply.message, Identity)
    assert reply.message.serial_number == "SIM-0042"
    dev.write(EP_OUT, encode(Home(5000), seq=2))
    assert isinstance(read_frames(dev, dec)[0].message, Ack)
    # the device runs on its virtual clock while pyusb waits in read()
    frames = []
    while not any(
        isinstance(f.message, Event) and f.message.code == EventCode.HOMED for f in frames
    ):
        dev.write(EP_OUT, encode(GetStatus(), seq=3 + len(frames) % 60000))
        frames += read_frames(dev, dec, 100)
    assert backend.clock.monotonic() < 5.0
    dev.write(EP_OUT, encode(GetStatus(), seq=9))
    status = [f for f in read_frames(dev, dec) if f.seq == 9]
    assert isinstance(status[0].message, Status) and status[0].message.depth_um == 0
    usb.util.dispose_resources(dev)


def test_read_with_nothing_to_send_times_out_like_libusb() -> None:
    backend = get_backend("seed=1")
    dev = usb.core.find(idVendor=USB_VID, idProduct=USB_PID, backend=backend)
    assert dev is not None
    dev.set_configuration()
    dev.read(EP_IN, 512, 10)  # the boot event
    before = backend.clock.monotonic()
    with pytest.raises(usb.core.USBTimeoutError):
        dev.read(EP_IN, 512, 50)  # the next heartbeat is 100 ms after boot
    assert backend.clock.monotonic() - before == pytest.approx(0.05, abs=0.0015)


def test_other_vid_pid_is_not_found() -> None:
    backend = get_backend("seed=1")
    assert usb.core.find(idVendor=0x1234, backend=backend) is None


def test_realtime_backend_follows_the_machine_clock() -> None:
    """With realtime=True the device runs on the machine's clock and a read really waits.
    Its clock is read right after two writes (a write brings it up to the machine's time)
    with machine time taken around each: between them, while reads wait for its idle
    heartbeats, it advances by what the machine's clock did — a bracket that holds however
    late this process is scheduled — and the heartbeats are 100 ms of its time apart."""
    import time

    backend = get_backend("seed=2", realtime=True)
    dev = usb.core.find(idVendor=USB_VID, idProduct=USB_PID, backend=backend)
    assert dev is not None
    dev.set_configuration()
    dec = StreamDecoder()

    def clock_at_write(seq: int) -> tuple[float, float, float]:
        """(machine time before, after, the device's clock) around one write."""
        before_s = time.monotonic()
        dev.write(EP_OUT, encode(GetStatus(), seq=seq))
        after_s = time.monotonic()
        return before_s, after_s, backend.clock.monotonic()

    dev.write(EP_OUT, encode(Hello(1, SCHEMA_HASH), seq=1))
    frames = []
    while not any(f.seq == 1 for f in frames):
        frames += read_frames(dev, dec, 500)
    b0, a0, c0 = clock_at_write(2)
    sent: list[tuple[str, int]] = []  # what the device sent, with its time in ms
    while sum(kind == "Heartbeat" for kind, _ in sent) < 5:  # reads wait for heartbeats
        for f in read_frames(dev, dec, 500):
            m = f.message
            if isinstance(m, Heartbeat):
                sent.append(("Heartbeat", m.uptime_ms))
            elif isinstance(m, Event):
                sent.append(("Event", m.time_us // 1000))
            elif isinstance(m, Status):
                sent.append(("Status", m.device_time_us // 1000))
    b1, a1, c1 = clock_at_write(3)
    tick_s = 0.001  # the device's clock moves in 1 ms control ticks
    assert b1 - a0 - tick_s <= c1 - c0 <= a1 - b0 + tick_s, (
        f"device clock advanced {c1 - c0:.4f} s while the machine's did "
        f"{b1 - a0:.4f}..{a1 - b0:.4f} s"
    )
    assert c1 - c0 >= 0.4  # the reads waited for the heartbeats
    # an idle device heartbeats when it has sent nothing for 100 ms (of its own time)
    for (_, t_prev), (kind, t) in itertools.pairwise(sent):
        assert kind != "Heartbeat" or t - t_prev == 100, sent
