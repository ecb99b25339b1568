"""sim:// as pyserial sees it: registration from a fresh interpreter, options, determinism."""

from __future__ import annotations

import subprocess
import sys

import pytest
import serial
from minihost import MiniHost

import sim_device  # noqa: F401
from protocol import PROTOCOL_VERSION, SCHEMA_HASH, EventCode, Hello, SetTelemetry, encode
from protocol.schema import Home, Move, Rotate


def _fresh_python(code: str) -> str:
    """What ``code`` prints in a new interpreter (nothing imported by this one)."""
    out = subprocess.run(
        [sys.executable, "-c", code], capture_output=True, text=True, timeout=60, check=True
    )
    return out.stdout


def test_sim_url_resolves_from_a_fresh_interpreter() -> None:
    code = (
        "import serial, sim_device\n"
        "p = serial.serial_for_url('sim://?lesion=soft-stenosis&seed=3', timeout=0.2)\n"
        "print(type(p).__module__, p.virtual, len(p.read(100)) > 0)\n"
    )
    assert _fresh_python(code).split() == ["sim_device.protocol_sim", "True", "True"]


def test_importing_the_package_does_not_load_the_simulator() -> None:
    code = (
        "import sys, sim_device\n"
        "heavy = ('numpy', 'sim_device.rig_model', 'sim_device.core', 'sim_device.core_build')\n"
        "print(any(m in sys.modules for m in heavy))\n"
    )
    assert _fresh_python(code).strip() == "False"


@pytest.mark.parametrize(
    ("query", "words"),
    [
        ("lesion=no-such-lesion", "unknown lesion"),
        ("seed=abc", "seed"),
        ("colour=red", "unknown sim option"),
        ("defect=nope", "unknown firmware defect"),
        ("fault=nope", "unknown fault"),
        ("drop=2", "probability"),
    ],
)
def test_bad_options_give_one_clear_line(query: str, words: str) -> None:
    with pytest.raises(serial.SerialException) as info:
        serial.serial_for_url(f"sim://?{query}")
    message = str(info.value)
    assert words in message and "\n" not in message


def _session_bytes(url: str) -> bytes:
    port = serial.serial_for_url(url, timeout=0.05)
    host = MiniHost(port)
    captured = bytearray()
    original = port.read

    def read(size: int = 1) -> bytes:
        data: bytes = original(size)
        captured.extend(data)
        return data

    port.read = read
    host.hello()
    host.command(SetTelemetry(1000, 10))
    host.command(Home(3000))
    host.pump(2.0)
    host.command(Rotate(1, 30_000, 0))
    host.command(Move(0, 8000, 2000))
    host.pump(3.0)
    port.write(encode(SetTelemetry(0, 1), 999))
    host.pump(0.2)
    return bytes(captured)


def test_same_url_and_seed_give_the_same_bytes_bit_for_bit() -> None:
    url = "sim://?lesion=dense-calcified-cto&seed=7&corrupt=0.0005&drop=0.0005&duplicate=0.0005"
    a = _session_bytes(url)
    b = _session_bytes(url)
    assert len(a) > 50_000 and a == b
    c = _session_bytes(url.replace("seed=7", "seed=8"))
    assert c != a


def test_devices_in_one_process_keep_their_own_state() -> None:
    """The core's state is one struct per device (the port points the core at each in
    turn): two devices run interleaved, a tick of one then a tick of the other, send what
    each sends when run alone."""
    from sim_device.device import Device, DeviceOptions

    def script(dev: Device) -> list[bytes]:
        # homing, a move and telemetry, a HELLO and commands at fixed device times
        cmds = {
            5: encode(Hello(PROTOCOL_VERSION, SCHEMA_HASH), 1),
            10: encode(SetTelemetry(1000, 7), 2),
            20: encode(Home(5000), 3),
            900: encode(Move(0, 2000, 2000), 4),
        }
        return [cmds.get(t, b"") for t in range(2000)]

    alone = []
    for seed in (3, 4):
        dev = Device(DeviceOptions(lesion="soft-stenosis", seed=seed, watchdog_ms=65535))
        out = bytearray()
        for data in script(dev):
            dev.host_write(data)
            dev.firmware.tick()
            out += dev.host_take()
        alone.append(bytes(out))
    devs = [
        Device(DeviceOptions(lesion="soft-stenosis", seed=seed, watchdog_ms=65535))
        for seed in (3, 4)
    ]
    outs = [bytearray(), bytearray()]
    for step in zip(script(devs[0]), script(devs[1]), strict=True):
        for dev, data, out in zip(devs, step, outs, strict=True):
            dev.host_write(data)
            dev.firmware.tick()
            out += dev.host_take()
    assert len(alone[0]) > 20_000 and alone[0] != alone[1]
    assert [bytes(o) for o in outs] == alone


def test_devices_on_two_threads_keep_their_own_state() -> None:
    """cffi lets go of the GIL while the core runs: two threads, each running its own
    device at full speed, must not run the one core on each other's state."""
    import threading

    from sim_device.device import Device, DeviceOptions

    def run(seed: int) -> bytes:
        dev = Device(DeviceOptions(lesion="soft-stenosis", seed=seed, watchdog_ms=65535))
        dev.host_write(encode(Hello(PROTOCOL_VERSION, SCHEMA_HASH), 1))
        dev.host_write(encode(SetTelemetry(1000, 10), 2))
        dev.host_write(encode(Home(5000), 3))
        out = bytearray()
        for _ in range(60):
            dev.firmware.run_ticks(50)
            out += dev.host_take()
        return bytes(out)

    def run_into(seed: int, results: dict[int, bytes]) -> None:
        results[seed] = run(seed)

    alone = {seed: run(seed) for seed in (5, 6)}
    for _ in range(3):
        together: dict[int, bytes] = {}
        threads = [threading.Thread(target=run_into, args=(seed, together)) for seed in (5, 6)]
        for t in threads:
            t.start()
        for t in threads:
            t.join()
        assert together == alone


def test_cutting_the_link_mid_move_trips_the_watchdog() -> None:
    port = serial.serial_for_url("sim://?seed=3&cut_at_s=2.5&cut_for_s=0.5", timeout=0.05)
    host = MiniHost(port)
    host.hello()
    host.command(Home(5000))
    host.pump(2.0)
    host.send(Move(0, 20_000, 2000))  # sent at ~2 s, before the cut
    host.pump(1.5)  # heartbeats during the cut are lost
    fw = port.device
    assert fw.watchdog_trips == 1 and not fw.adv.active
    trip = [r for r in fw.events.records() if r.code == EventCode.WATCHDOG_TRIP]
    assert 2.5 + 0.2 - 0.051 <= trip[0].time_us / 1e6 <= 2.5 + 0.2 + 0.001
    assert port.sim.link.to_device.cut_bytes > 0


@pytest.mark.control("RC-CRC")
def test_corrupted_bytes_are_counted_and_never_executed() -> None:
    port = serial.serial_for_url("sim://?seed=9&corrupt=0.01", timeout=0.05)
    fw = port.device
    for i in range(300):
        port.write(encode(Move(1, 100, 1000), seq=i + 1))
    port.advance_s(0.01)
    stats = fw.stats()
    corrupted = port.sim.link.to_device.corrupted
    assert corrupted > 0 and stats["frames_bad"] > 0
    # one flipped bit spoils at most two frames (a delimiter lost or made)
    assert 300 - 2 * corrupted <= stats["frames_ok"] <= 300 - 1
    # unarmed: every good frame was refused, none moved anything
    assert stats["commands_naked"] == stats["frames_ok"] and fw.adv.pos == 0.0
