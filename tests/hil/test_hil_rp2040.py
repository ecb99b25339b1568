"""The firmware on an emulated Raspberry Pi Pico (firmware/ports/rp2040): the image built
with arm-none-eabi-gcc runs under rp2040js (Node), the rig at its pins, UART0 on a real
pty, in real time. Skipped with one line saying what to install when Node, the npm
package or the toolchain is missing (`.ci/run` installs them).

Here: the image's size, its boot2 (the real W25Q080 one, with the CRC the bootrom checks)
and its UF2, the harness refusing a boot2 whose CRC is wrong (as the bootrom does), the
e-stop button, the RP2040 watchdog resetting a hung loop. A subset of the unchanged HIL
suite and a planted defect run with the other ports' suites, in
tests/hil/test_hil_firmware.py's lanes (the whole suite is ~2 minutes of real time:
`make hil-rp2040`)."""

from __future__ import annotations

import hashlib
import select
import signal
import struct
import subprocess
import sys
import time
import zlib
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import IO

import pytest

from firmware.launch import (
    FIRMWARE,
    PortUnavailable,
    build,
    check_tools,
    image_size,
    running,
    stop,
)
from firmware_host.client import NeedleDriver
from protocol.schema import DeviceState, EventCode, FaultFlags

PORT_DIR = FIRMWARE / "ports" / "rp2040"
FLASH_BUDGET_B = 32 * 1024
RAM_BUDGET_B = 16 * 1024
UF2_MAGIC = (0x0A324655, 0x9E5D5157)
UF2_MAGIC_END = 0x0AB16F30
UF2_FLAG_FAMILY_ID = 0x00002000
RP2040_FAMILY_ID = 0xE48BFF56
FLASH_BASE = 0x10000000
BOOT2_B = 256
# The known-good vector: rp-rs/rp2040-boot2's prebuilt bin/boot2_w25q080.padded.bin
# (commit 06402359ca3e; what rp-hal puts on real Picos) — another project's build of the
# same pico-sdk source for the Pico board, padded and checksummed by its own CRC code
# (crc_any's CRC-32/MPEG-2). Ours must be byte for byte the same block.
KNOWN_GOOD_BOOT2_SHA256 = "a1408dd2691089af701a1cad19530c539064608566633b9619d15b40d0357b1e"
KNOWN_GOOD_BOOT2_CRC = 0x7A4EB274


@pytest.fixture(scope="module", autouse=True)
def tools() -> None:
    try:
        check_tools("rp2040")
    except PortUnavailable as exc:
        pytest.skip(str(exc))


def _bit_reversed(value: int, width: int) -> int:
    return int(f"{value:0{width}b}"[::-1], 2)


def _bootrom_crc_via_zlib(data: bytes) -> int:
    """CRC-32/MPEG-2 (the RP2040 bootrom's boot2 check) computed another way than the build
    (boot2_pad.py runs the bootrom's MSB-first loop): zlib's reflected CRC-32 on
    bit-reversed bytes, with its xors undone, bit-reversed back — the pico-sdk's
    pad_checksum with the -s 0xffffffff its CMake passes."""
    reflected = bytes(_bit_reversed(b, 8) for b in data)
    return _bit_reversed(zlib.crc32(reflected, 0) ^ 0xFFFFFFFF, 32)


def test_the_crc_check_is_the_bootroms() -> None:
    # the CRC catalogue's check value for CRC-32/MPEG-2 (reveng: poly 0x04C11DB7, init
    # 0xFFFFFFFF, unreflected, no xorout) — and plain zlib.crc32 is another CRC
    assert _bootrom_crc_via_zlib(b"123456789") == 0x0376E6E7
    assert zlib.crc32(b"123456789") != 0x0376E6E7


def test_boot2_is_the_w25q080_one_with_the_crc_the_bootrom_checks() -> None:
    image = build("rp2040").with_suffix(".bin").read_bytes()
    boot2 = image[:BOOT2_B]
    (stored,) = struct.unpack("<I", boot2[BOOT2_B - 4 :])
    assert _bootrom_crc_via_zlib(boot2[: BOOT2_B - 4]) == stored
    assert stored == KNOWN_GOOD_BOOT2_CRC
    assert hashlib.sha256(boot2).hexdigest() == KNOWN_GOOD_BOOT2_SHA256
    # the vector table follows it: initial SP in RAM, reset handler in flash (Thumb)
    sp, reset = struct.unpack("<2I", image[BOOT2_B : BOOT2_B + 8])
    assert 0x20000000 <= sp <= 0x20042000 and FLASH_BASE < reset < FLASH_BASE + len(image)
    assert reset & 1


def test_image_fits_and_its_uf2_carries_it() -> None:
    elf = build("rp2040")
    size = image_size(elf)
    assert size.flash_b <= FLASH_BUDGET_B and size.ram_b <= RAM_BUDGET_B, size
    image = elf.with_suffix(".bin").read_bytes()
    uf2 = elf.with_suffix(".uf2").read_bytes()
    assert len(uf2) % 512 == 0
    blocks = [uf2[i : i + 512] for i in range(0, len(uf2), 512)]
    assert len(blocks) == (len(image) + 255) // 256
    carried = b""
    for n, block in enumerate(blocks):
        m0, m1, flags, addr, size_b, number, total, family = struct.unpack("<8I", block[:32])
        assert (m0, m1) == UF2_MAGIC and family == RP2040_FAMILY_ID
        assert flags & UF2_FLAG_FAMILY_ID
        assert struct.unpack("<I", block[508:]) == (UF2_MAGIC_END,)
        assert (addr, size_b, number, total) == (FLASH_BASE + 256 * n, 256, n, len(blocks))
        carried += block[32 : 32 + size_b]
    assert carried[: len(image)] == image
    # the first 256 bytes the bootrom reads from flash: the real boot2
    assert hashlib.sha256(carried[:BOOT2_B]).hexdigest() == KNOWN_GOOD_BOOT2_SHA256


def test_the_harness_refuses_a_boot2_whose_crc_is_wrong(tmp_path: Path) -> None:
    """As the bootrom does (it stays in BOOTSEL mode): one flipped bit in boot2 and the
    emulated chip does not boot."""
    image = bytearray(build("rp2040").with_suffix(".bin").read_bytes())
    image[100] ^= 0x01
    bad = tmp_path / "bad-boot2.bin"
    bad.write_bytes(bytes(image))
    proc = subprocess.run(
        [sys.executable, str(PORT_DIR / "run_rp2040.py"), "--image", str(bad)],
        capture_output=True,
        text=True,
        timeout=30,
        check=False,
    )
    assert proc.returncode != 0 and proc.stdout == "", proc
    assert "boot2 CRC mismatch" in proc.stderr, proc.stderr


def test_boot2_pad_refuses_code_that_leaves_no_room_for_the_crc(tmp_path: Path) -> None:
    big = tmp_path / "boot2.bin"
    big.write_bytes(bytes(253))
    proc = subprocess.run(
        [sys.executable, str(PORT_DIR / "boot2_pad.py"), str(big), str(tmp_path / "out.bin")],
        capture_output=True,
        text=True,
        check=False,
    )
    assert proc.returncode == 2 and not (tmp_path / "out.bin").exists()
    assert proc.stderr.count("\n") == 1 and "at most 252" in proc.stderr, proc.stderr


@pytest.mark.timeout(60)
def test_the_estop_button_latches_until_released_and_the_drivers_are_set_up() -> None:
    with running("rp2040") as dev:
        latched, events, cleared_while_pressed, cleared_after = _press_the_button(
            dev.path, dev.proc
        )
    assert latched & FaultFlags.ESTOP, latched
    assert EventCode.ESTOP in events
    assert cleared_while_pressed & FaultFlags.ESTOP, "the e-stop cleared while pressed"
    assert not cleared_after & FaultFlags.ESTOP, "the e-stop did not clear once released"
    # at boot both TMC2209s took their five registers over UART1 (the harness checks each
    # datagram's CRC) and run at 16 microsteps, the distance steppers.h assumes
    assert "TMC2209 writes 10 (bad 0), microsteps 16/16" in dev.stderr(), dev.stderr()


# The board's following-error limit (main.c: stall_following_error_nm), in µm
BOARD_FOLLOWING_ERROR_UM = 20


@pytest.mark.timeout(60)
def test_diag_stops_the_advance_into_a_block_and_latches_the_stall() -> None:
    """The advance driven at 1 mm/s (1 µm a tick) into the bench's solid block: the
    TMC2209's DIAG (the harness raises it while the load beats the stepper's thrust) cuts
    the advance off and latches STALL a few µm past the thrust — long before the encoder's
    following error reaches the board's 20 µm limit, the only other path left (the
    force-held stall is raised out of reach: 30 N against 10 N of thrust)."""
    block_mm = 2.0  # the carriage starts 0.5 mm from home: little real time to get there
    with (
        running("rp2040", args=("--start-mm", "0.5", "--block-mm", str(block_mm))) as dev,
        NeedleDriver.open(dev.path) as nd,
    ):
        nd.home(speed_mm_s=10.0, timeout_s=10.0)
        nd.set_limits(stall_force_n=30.0)
        nd.move_to_mm(block_mm - 0.1, 20.0)
        nd.wait_idle(5.0, raise_on_fault=True)
        before = nd.status().counters.last_event_number
        nd.move_to_mm(block_mm + 0.5, 1.0)
        st = nd.wait_idle(5.0)
        events = [e for e in nd.events() if e.number > before]
    assert st.state is DeviceState.STALLED and st.latched_faults & FaultFlags.STALL, st
    # the first event after the move, and the only stall (a host starved by a loaded
    # machine may let the session end afterwards: SESSION_ENDED, at rest, is no fault)
    codes = [e.code for e in events]
    assert codes[:1] == [EventCode.STALL] and codes.count(EventCode.STALL) == 1, events
    # stopped at the block, not pushed on into it: the motor's count ran a few µm past
    # the carriage (1 µm a tick), not the 20 the following error needs (the depth is the
    # carriage: homing zeroes it at the switch within a few µm; the block gives 5 µm at
    # the thrust)
    assert block_mm <= st.depth_mm < block_mm + 0.020, st
    following_error_um = (st.commanded_depth_mm - st.depth_mm) * 1000
    assert 0 < following_error_um <= BOARD_FOLLOWING_ERROR_UM / 4, st
    stats = dev.stderr()
    assert "DIAG stalls 0," not in stats and "DIAG stalls" in stats, stats


def _press_the_button(
    path: str, proc: subprocess.Popen[str]
) -> tuple[FaultFlags, list[EventCode | int], FaultFlags, FaultFlags]:
    """Press the rig's e-stop (SIGUSR1 to run_rp2040.py), clear while it is held, release
    it (SIGUSR2), clear again: the latched faults after each."""
    with NeedleDriver.open(path) as nd:
        before = nd.status().counters.last_event_number
        proc.send_signal(signal.SIGUSR1)
        # each STATUS is a round trip (≤ 1 ms of device time): the button is seen within
        # a tick, so a few round trips find the latch (no predicate calling back into
        # the link from its own wait: that deadlocks the client)
        deadline = time.monotonic() + 2.0
        latched = nd.status().latched_faults
        while not latched & FaultFlags.ESTOP and time.monotonic() < deadline:
            latched = nd.status().latched_faults
        events = [e.code for e in nd.events() if e.number > before]
        nd.clear_fault()
        held = nd.status().latched_faults
        proc.send_signal(signal.SIGUSR2)
        nd.wait_s(0.05)
        nd.clear_fault()
        after = nd.status().latched_faults
    return latched, events, held, after


@pytest.fixture
def hung_image() -> Path:
    """The image with a planted hang: its main loop stops 2 s after boot (once)."""
    proc = subprocess.run(
        ["make", "-s", "-C", str(PORT_DIR), "PLANT=loop_hang"],
        capture_output=True,
        text=True,
        check=False,
    )
    assert proc.returncode == 0, proc.stdout + proc.stderr
    return FIRMWARE / "build" / "rp2040-plant-loop_hang" / "nd-firmware.bin"


@pytest.mark.timeout(60)
def test_the_watchdog_resets_a_hung_loop(hung_image: Path) -> None:
    with _run_image(hung_image) as (path, log):
        with NeedleDriver.open(path) as nd:
            assert nd.status().counters.last_event_number >= 1
        # hung at 2 s, reset BOARD_WATCHDOG_MS (100 ms) later: the harness says so
        assert log.wait_for("watchdog reset #1", 20.0), log.text
        with NeedleDriver.open(path) as nd:
            st = nd.status()
            events = nd.events()
    # a fresh boot: its device time restarted, its event log begins with BOOT
    assert st.device_time_s < 10.0, st
    assert [e.code for e in events][:1] == [EventCode.BOOT], events


class _Log:
    """The emulator's stderr, read as it comes (a pipe: waiting is select, not sleep)."""

    def __init__(self, stream: IO[str]) -> None:
        self.stream = stream
        self.text = ""

    def wait_for(self, needle: str, timeout_s: float) -> bool:
        deadline = time.monotonic() + timeout_s
        while needle not in self.text:
            left = deadline - time.monotonic()
            if left <= 0 or not select.select([self.stream], [], [], left)[0]:
                return False
            line = self.stream.readline()
            if not line:
                return False
            self.text += line
        return True


@contextmanager
def _run_image(image: Path) -> Iterator[tuple[str, _Log]]:
    proc = subprocess.Popen(
        [sys.executable, str(PORT_DIR / "run_rp2040.py"), "--image", str(image)],
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
    )
    try:
        assert proc.stdout is not None and proc.stderr is not None
        path = proc.stdout.readline().strip()
        assert path.startswith("/dev/"), proc.stderr.read()
        yield path, _Log(proc.stderr)
    finally:
        stop(proc)
