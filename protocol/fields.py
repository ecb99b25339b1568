"""Field types of the wire schema: fixed-width integers, fixed-size strings,
and arrays of fixed-size records (decoded in one go as numpy structured arrays).

A message field is declared as ``Annotated[python_type, <wire type>, *constraints]``;
the schema reads these annotations, so the declaration is the single source for
the codec, the docs tables, the test vectors and the C header.
"""

from __future__ import annotations

import enum
from dataclasses import dataclass
from typing import Any


@dataclass(frozen=True)
class Int:
    """A little-endian fixed-width integer."""

    name: str  # schema name: u8, i32, ...
    struct_code: str
    c_type: str
    numpy_type: str
    size_bytes: int
    lo: int
    hi: int


U8 = Int("u8", "B", "uint8_t", "<u1", 1, 0, 0xFF)
U16 = Int("u16", "H", "uint16_t", "<u2", 2, 0, 0xFFFF)
U32 = Int("u32", "I", "uint32_t", "<u4", 4, 0, 0xFFFF_FFFF)
U64 = Int("u64", "Q", "uint64_t", "<u8", 8, 0, 0xFFFF_FFFF_FFFF_FFFF)
I16 = Int("i16", "h", "int16_t", "<i2", 2, -0x8000, 0x7FFF)
I32 = Int("i32", "i", "int32_t", "<i4", 4, -0x8000_0000, 0x7FFF_FFFF)


@dataclass(frozen=True)
class Str:
    """ASCII text in a fixed number of bytes, NUL-padded (not necessarily NUL-terminated)."""

    size_bytes: int

    @property
    def name(self) -> str:
        return f"char[{self.size_bytes}]"


@dataclass(frozen=True)
class Doc:
    """What a field means (shown in docs/protocol.md and the C header)."""

    text: str


@dataclass(frozen=True)
class Range:
    """Tighter bounds than the integer type's, checked at encode (and by the device)."""

    lo: int
    hi: int


@dataclass(frozen=True)
class EnumOf:
    """The field holds a member of this enum (IntEnum) or a set of its flags (IntFlag)."""

    enum_type: type[enum.IntEnum] | type[enum.IntFlag]

    @property
    def is_flags(self) -> bool:
        return issubclass(self.enum_type, enum.IntFlag)


@dataclass(frozen=True)
class Array:
    """Up to ``max_count`` records, on the wire as a u8 count then the packed records.

    Only allowed as a message's last field. In Python the field holds the packed
    records as ``bytes`` (decoding costs nothing); ``protocol.sample_array`` and
    ``protocol.event_array`` view them as numpy structured arrays.
    """

    record: type[Any]
    max_count: int


@dataclass(frozen=True)
class FieldSpec:
    name: str
    wire: Int | Str | Array
    range: Range | None
    enum: EnumOf | None
    doc: str

    @property
    def lo(self) -> int:
        assert isinstance(self.wire, Int)
        return self.range.lo if self.range else self.wire.lo

    @property
    def hi(self) -> int:
        assert isinstance(self.wire, Int)
        return self.range.hi if self.range else self.wire.hi


def field_specs(cls: type[Any]) -> tuple[FieldSpec, ...]:
    """Read the wire annotations of a NamedTuple message or record, in wire order."""
    import typing

    hints = typing.get_type_hints(cls, include_extras=True)
    specs: list[FieldSpec] = []
    for name in cls._fields:
        meta = getattr(hints[name], "__metadata__", ())
        wire = next((m for m in meta if isinstance(m, Int | Str | Array)), None)
        if wire is None:
            raise TypeError(f"{cls.__name__}.{name}: no wire type in its annotation")
        rng = next((m for m in meta if isinstance(m, Range)), None)
        enm = next((m for m in meta if isinstance(m, EnumOf)), None)
        text = next((m.text for m in meta if isinstance(m, Doc)), "")
        specs.append(FieldSpec(name, wire, rng, enm, text))
    for spec in specs[:-1]:
        if isinstance(spec.wire, Array):
            raise TypeError(f"{cls.__name__}.{spec.name}: an array must be the last field")
    return tuple(specs)


def record_dtype(record: type[Any]) -> Any:
    """numpy dtype of one packed record (little-endian, no padding)."""
    import numpy as np

    parts: list[tuple[str, str]] = []
    for spec in field_specs(record):
        if not isinstance(spec.wire, Int):
            raise TypeError(f"{record.__name__}.{spec.name}: records hold integers only")
        parts.append((spec.name, spec.wire.numpy_type))
    return np.dtype(parts)
