#!/usr/bin/env python3
"""Pad the assembled second-stage boot (boot2/boot2_w25q080.S, objcopy -O binary) to the
256 bytes the RP2040's bootrom loads, and end it with the checksum the bootrom checks.

    python boot2_pad.py boot2.bin boot2.padded.bin

The bootrom (pico-bootrom, bootrom/bootrom_main.c, _flash_boot) reads the first 256 B of
flash into SRAM and runs them only if ``crc32_small(data, 252, 0xffffffff)`` equals the
little-endian word in the last 4 bytes; otherwise the chip stays in BOOTSEL mode (the
RPI-RP2 drive) and the UF2 seems to have done nothing. crc32_small (bootrom_misc.S) is a
CRC-32 taken MSB first: polynomial 0x04C11DB7, initial value 0xFFFFFFFF, no reflection,
no final xor (CRC-32/MPEG-2). zlib.crc32 is CRC-32/ISO-HDLC (reflected, final xor): not
it. The pico-sdk's pad_checksum gets the same value through zlib by reversing bits, and
only with the ``-s 0xffffffff`` its CMake passes (its default seed, 0, gives another CRC
that the bootrom rejects). Written here from the bootrom's loop, bit by bit: 252 bytes.
"""

from __future__ import annotations

import struct
import sys
from pathlib import Path

BOOT2_B = 256
CODE_MAX_B = BOOT2_B - 4
POLY = 0x04C11DB7
SEED = 0xFFFFFFFF


def bootrom_crc32(data: bytes, seed: int = SEED) -> int:
    """The bootrom's crc32_small: each byte into the top of the register, MSB first."""
    crc = seed
    for byte in data:
        crc ^= byte << 24
        for _ in range(8):
            crc = ((crc << 1) ^ POLY) if crc & 0x80000000 else (crc << 1)
            crc &= 0xFFFFFFFF
    return crc


def pad(code: bytes) -> bytes:
    if len(code) > CODE_MAX_B:
        raise ValueError(f"boot2 is {len(code)} bytes: at most {CODE_MAX_B} fit before its CRC")
    body = code.ljust(CODE_MAX_B, b"\0")
    return body + struct.pack("<I", bootrom_crc32(body))


def main(argv: list[str]) -> int:
    if len(argv) != 3:
        print("usage: boot2_pad.py BOOT2.bin OUT.bin", file=sys.stderr)
        return 2
    try:
        Path(argv[2]).write_bytes(pad(Path(argv[1]).read_bytes()))
    except (OSError, ValueError) as exc:
        print(f"boot2_pad.py: {exc}", file=sys.stderr)
        return 2
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv))
