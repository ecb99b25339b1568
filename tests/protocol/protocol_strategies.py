"""hypothesis strategies derived from the schema's field specs (never written per message)."""

from __future__ import annotations

from typing import Any

import numpy as np
from hypothesis import strategies as st

from protocol.codegen import valid_extremes
from protocol.fields import Array, FieldSpec, Int, Str, record_dtype
from protocol.schema import MESSAGES, Message, fields_of

# Printable and control ASCII except NUL: NUL is the padding of fixed-size strings.
ASCII_NO_NUL = st.characters(min_codepoint=1, max_codepoint=0x7F)


def int_values(spec: FieldSpec) -> st.SearchStrategy[int]:
    """Every value the encoder must accept for an integer field."""
    assert isinstance(spec.wire, Int)
    if spec.enum is not None and spec.enum.is_flags:
        mask = valid_extremes(spec)[1]
        return st.integers(0, mask).map(lambda v: v & mask)
    if spec.enum is not None:
        return st.sampled_from(sorted(int(m.value) for m in spec.enum.enum_type))
    return st.integers(spec.lo, spec.hi)


def record_values(record: type[Any]) -> st.SearchStrategy[tuple[int, ...]]:
    return st.tuples(*(int_values(s) for s in fields_of_record(record)))


def fields_of_record(record: type[Any]) -> tuple[FieldSpec, ...]:
    return fields_of(record)


def field_values(spec: FieldSpec) -> st.SearchStrategy[Any]:
    if isinstance(spec.wire, Int):
        return int_values(spec)
    if isinstance(spec.wire, Str):
        return st.text(ASCII_NO_NUL, max_size=spec.wire.size_bytes)
    assert isinstance(spec.wire, Array)
    dtype = record_dtype(spec.wire.record)
    return st.lists(record_values(spec.wire.record), max_size=spec.wire.max_count).map(
        lambda rows: np.array(rows, dtype=dtype).tobytes() if rows else b""
    )


def messages_of(cls: type[Message]) -> st.SearchStrategy[Message]:
    return st.builds(cls, *(field_values(s) for s in fields_of(cls)))


def any_message() -> st.SearchStrategy[Message]:
    return st.one_of(*(messages_of(m) for m in MESSAGES))


seqs = st.integers(0, 0xFFFF)
header_flags = st.integers(0, 0xFF)
