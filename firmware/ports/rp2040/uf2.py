#!/usr/bin/env python3
"""Wrap a flat RP2040 flash image (objcopy -O binary, linked at 0x10000000) in UF2, the
format the Pico's bootrom takes by drag-and-drop on its USB mass-storage drive (hold
BOOTSEL while plugging it in, copy the file onto RPI-RP2).

    python uf2.py nd-firmware.bin nd-firmware.uf2

UF2 (github.com/microsoft/uf2): 512-byte blocks, each carrying 256 bytes of the image at
its flash address, with the RP2040's family ID so that other boards' loaders refuse it.
"""

from __future__ import annotations

import struct
import sys
from pathlib import Path

MAGIC_START0 = 0x0A324655
MAGIC_START1 = 0x9E5D5157
MAGIC_END = 0x0AB16F30
FLAG_FAMILY_ID_PRESENT = 0x00002000
RP2040_FAMILY_ID = 0xE48BFF56
FLASH_BASE = 0x10000000
PAYLOAD_B = 256  # what the RP2040 bootrom expects per block
DATA_FIELD_B = 476


def to_uf2(image: bytes, base: int = FLASH_BASE) -> bytes:
    chunks = [image[i : i + PAYLOAD_B] for i in range(0, len(image), PAYLOAD_B)]
    blocks = []
    for n, chunk in enumerate(chunks):
        header = struct.pack(
            "<8I",
            MAGIC_START0,
            MAGIC_START1,
            FLAG_FAMILY_ID_PRESENT,
            base + n * PAYLOAD_B,
            PAYLOAD_B,
            n,
            len(chunks),
            RP2040_FAMILY_ID,
        )
        data = chunk.ljust(DATA_FIELD_B, b"\0")
        blocks.append(header + data + struct.pack("<I", MAGIC_END))
    return b"".join(blocks)


def main(argv: list[str]) -> int:
    if len(argv) != 3:
        print("usage: uf2.py IMAGE.bin OUT.uf2", file=sys.stderr)
        return 2
    try:
        image = Path(argv[1]).read_bytes()
    except OSError as exc:
        print(f"uf2.py: {exc}", file=sys.stderr)
        return 2
    Path(argv[2]).write_bytes(to_uf2(image))
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv))
