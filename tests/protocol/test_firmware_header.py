"""The firmware's protocol header is generated from protocol/schema.py, never edited by
hand: the committed copy must be what the generator writes today, and the firmware reports
the generated schema hash (checked on the wire by the HIL suite's handshake test)."""

from __future__ import annotations

from pathlib import Path

from protocol import SCHEMA_HASH
from protocol.codegen import c_header

HEADER = Path(__file__).resolve().parents[2] / "firmware" / "core" / "needle_protocol.h"


def test_committed_header_is_the_generated_one() -> None:
    assert HEADER.read_text() == c_header(), (
        "firmware/core/needle_protocol.h is stale or hand-edited: run `make -C firmware header`"
    )


def test_header_carries_the_schema_hash() -> None:
    assert f"#define ND_SCHEMA_HASH 0x{SCHEMA_HASH:08X}u" in HEADER.read_text()
