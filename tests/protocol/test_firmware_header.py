"""The firmware's protocol header is generated from protocol/schema.py, never edited by
hand: the committed copy must be what the generator writes today, and the firmware reports
the generated schema hash (checked on the wire by the HIL suite's handshake test)."""

from __future__ import annotations

from pathlib import Path

import pytest

from protocol import SCHEMA_HASH
from protocol.codegen import c_header

HEADER = Path(__file__).resolve().parents[2] / "firmware" / "core" / "needle_protocol.h"


def test_committed_header_is_the_generated_one() -> None:
    assert HEADER.read_text() == c_header(), (
        "firmware/core/needle_protocol.h is stale or hand-edited: run `make -C firmware header`"
    )


@pytest.mark.control("RC-SCHEMAPIN")
def test_header_carries_the_schema_hash() -> None:
    assert f"#define ND_SCHEMA_HASH 0x{SCHEMA_HASH:08X}u" in HEADER.read_text()


def test_header_carries_every_field_range_for_the_firmware_to_check() -> None:
    """A device checks BAD_ARGUMENT against the schema's ranges, not numbers copied from
    the docs: every ranged field has ND_<MESSAGE>_<FIELD>_MIN/_MAX."""
    import protocol.schema as s
    from protocol.codegen import _c_name
    from protocol.fields import Int

    text = c_header()
    checked = 0
    for cls in s.MSG_ID:
        for f in s.fields_of(cls):
            if f.range is None or not isinstance(f.wire, Int):
                continue
            prefix = f"#define {_c_name(cls).upper()}_{f.name.upper()}"
            assert f"{prefix}_MIN {f.lo}" in text and f"{prefix}_MAX {f.hi}" in text, prefix
            checked += 1
    assert checked >= 10
