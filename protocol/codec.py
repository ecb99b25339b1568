"""Sans-IO codec: messages to framed bytes, and a streaming decoder that takes
any bytes without raising.

Frame on the wire::

    COBS( header(5) | payload(0..250) | CRC-32 LE (4) )  0x00

header = version u8, msg_id u8, flags u8, seq u16 LE. The CRC (CRC-32/ISO-HDLC,
as zlib.crc32) covers header and payload. No I/O, no threads, no clocks here.
"""

from __future__ import annotations

import struct
import zlib
from collections.abc import Callable, Iterable
from dataclasses import dataclass
from typing import Any, NamedTuple

import numpy as np
from cobs import cobs

from protocol.fields import Array, EnumOf, FieldSpec, Int, Str, record_dtype
from protocol.schema import (
    CRC_BYTES,
    CRC_RESIDUE,
    HEADER_BYTES,
    HEADER_FORMAT,
    MAX_ENCODED_FRAME_BYTES,
    MESSAGES,
    MSG_ID,
    PROTOCOL_VERSION,
    Message,
    fields_of,
)


class EncodeError(ValueError):
    """A message that cannot be put on the wire (a field out of range, wrong type)."""


class Frame(NamedTuple):
    """One decoded frame."""

    seq: int
    flags: int
    message: Message


@dataclass
class DecoderStats:
    """What the decoder saw. Every dropped frame lands in exactly one counter."""

    frames_ok: int = 0
    crc_failures: int = 0
    malformed: int = 0  # bad COBS, too short, wrong length for its id, bad version
    oversize: int = 0  # longer than MAX_ENCODED_FRAME_BYTES before its delimiter
    unknown_id: int = 0  # good CRC, id not in the schema
    bytes_skipped: int = 0  # bytes thrown away in dropped frames and while resyncing
    bytes_in: int = 0

    @property
    def frames_bad(self) -> int:
        return self.crc_failures + self.malformed + self.oversize + self.unknown_id


# ---------------------------------------------------------------- per-message codecs


class _MessageCodec:
    """Precompiled packer/unpacker of one message type."""

    def __init__(self, cls: type[Message]) -> None:
        self.cls = cls
        self.msg_id = MSG_ID[cls]
        specs = fields_of(cls)
        self.specs = specs
        self.array_spec: FieldSpec | None = next(
            (s for s in specs if isinstance(s.wire, Array)), None
        )
        scalar_specs = [s for s in specs if not isinstance(s.wire, Array)]
        fmt = HEADER_FORMAT
        for s in scalar_specs:
            if isinstance(s.wire, Int):
                fmt += s.wire.struct_code
            elif isinstance(s.wire, Str):
                fmt += f"{s.wire.size_bytes}s"
        self.struct = struct.Struct(fmt)
        self.payload_struct = struct.Struct("<" + fmt[len(HEADER_FORMAT) :])
        self.fixed_bytes = self.payload_struct.size + (1 if self.array_spec else 0)
        self.str_indexes = tuple(i for i, s in enumerate(specs) if isinstance(s.wire, Str))
        # Fields whose allowed values are narrower than their integer type's.
        self.checks: tuple[tuple[int, int, int, Callable[[int], bool] | None], ...] = tuple(
            (i, s.lo, s.hi, _enum_check(s.enum))
            for i, s in enumerate(specs)
            if isinstance(s.wire, Int) and (s.range is not None or s.enum is not None)
        )
        self.record_bytes = 0
        self.max_count = 0
        if self.array_spec is not None:
            assert isinstance(self.array_spec.wire, Array)
            self.record_bytes = int(record_dtype(self.array_spec.wire.record).itemsize)
            self.max_count = self.array_spec.wire.max_count
        self.simple = self.array_spec is None and not self.str_indexes

    # -- encode
    def pack(self, msg: Message, seq: int, flags: int) -> bytes:
        if type(msg) is not self.cls:
            raise EncodeError(f"{msg!r} is not a {self.cls.__name__}")
        for i, lo, hi, enum_ok in self.checks:
            v = msg[i]
            if not (isinstance(v, int) and lo <= v <= hi) or (enum_ok and not enum_ok(v)):
                raise EncodeError(
                    f"{self.cls.__name__}.{self.specs[i].name}={v!r} is outside its allowed "
                    f"range [{lo}, {hi}]" + (" or not a valid value" if enum_ok else "")
                )
        try:
            if self.simple:
                return self.struct.pack(PROTOCOL_VERSION, self.msg_id, flags, seq, *msg)
            values: list[Any] = list(msg)
            for i in self.str_indexes:
                values[i] = _encode_str(self.specs[i], values[i])
            if self.array_spec is None:
                return self.struct.pack(PROTOCOL_VERSION, self.msg_id, flags, seq, *values)
            records: bytes = values.pop()
            count = self._count(records)
            head: bytes = self.struct.pack(PROTOCOL_VERSION, self.msg_id, flags, seq, *values)
            return head + bytes((count,)) + records
        except struct.error as exc:
            raise EncodeError(self._explain(msg, seq, flags, exc)) from None

    def _count(self, records: Any) -> int:
        name = f"{self.cls.__name__}.{self.array_spec.name if self.array_spec else ''}"
        if not isinstance(records, bytes | bytearray):
            raise EncodeError(f"{name} must be packed records (bytes); see protocol.pack_samples")
        count, extra = divmod(len(records), self.record_bytes)
        if extra or count > self.max_count:
            raise EncodeError(
                f"{name}: {len(records)} bytes is not 0..{self.max_count} records "
                f"of {self.record_bytes} bytes"
            )
        return count

    def _explain(self, msg: Message, seq: int, flags: int, exc: struct.error) -> str:
        if not (type(seq) is int and 0 <= seq <= 0xFFFF):
            return f"seq={seq!r} is outside [0, 65535]"
        if not (type(flags) is int and 0 <= flags <= 0xFF):
            return f"flags={flags!r} is outside [0, 255]"
        for s, v in zip(self.specs, msg, strict=True):
            if isinstance(s.wire, Int) and not (type(v) is int and s.wire.lo <= v <= s.wire.hi):
                return (
                    f"{self.cls.__name__}.{s.name}={v!r} does not fit {s.wire.name} "
                    f"[{s.wire.lo}, {s.wire.hi}]"
                )
        return f"{self.cls.__name__}: {exc}"

    # -- decode
    def unpack(self, raw: bytes, payload_len: int) -> Message | None:
        """Decode the payload of a frame whose CRC was checked. None if its length is wrong."""
        if self.simple:
            if payload_len != self.fixed_bytes:
                return None
            return tuple.__new__(self.cls, self.payload_struct.unpack_from(raw, HEADER_BYTES))
        if self.array_spec is None:
            if payload_len != self.fixed_bytes:
                return None
            values: list[Any] = list(self.payload_struct.unpack_from(raw, HEADER_BYTES))
        else:
            if payload_len < self.fixed_bytes:
                return None
            count = raw[HEADER_BYTES + self.fixed_bytes - 1]
            size = self.fixed_bytes + count * self.record_bytes
            if count > self.max_count or payload_len != size:
                return None
            values = list(self.payload_struct.unpack_from(raw, HEADER_BYTES))
            start = HEADER_BYTES + self.fixed_bytes
            values.append(raw[start : start + count * self.record_bytes])
        for i in self.str_indexes:
            values[i] = values[i].rstrip(b"\x00").decode("ascii", "replace")
        return tuple.__new__(self.cls, values)


def _enum_check(enum_of: EnumOf | None) -> Callable[[int], bool] | None:
    if enum_of is None:
        return None
    if enum_of.is_flags:
        mask = 0
        for member in enum_of.enum_type:
            mask |= int(member.value)
        return lambda v: (v & ~mask) == 0
    allowed = frozenset(int(m.value) for m in enum_of.enum_type)
    return allowed.__contains__


def _encode_str(spec: FieldSpec, value: Any) -> bytes:
    assert isinstance(spec.wire, Str)
    if not isinstance(value, str):
        raise EncodeError(f"{spec.name}={value!r} must be a str")
    try:
        data = value.encode("ascii")
    except UnicodeEncodeError:
        raise EncodeError(f"{spec.name}={value!r} must be ASCII") from None
    if len(data) > spec.wire.size_bytes:
        raise EncodeError(f"{spec.name}={value!r} is longer than {spec.wire.size_bytes} bytes")
    return data


_CODECS: dict[type[Message], _MessageCodec] = {m: _MessageCodec(m) for m in MESSAGES}
_BY_ID: dict[int, _MessageCodec] = {c.msg_id: c for c in _CODECS.values()}

# ---------------------------------------------------------------- public API


def encode_body(msg: Message, seq: int = 0, flags: int = 0) -> bytes:
    """Header + payload, unframed (what the CRC covers)."""
    codec = _CODECS.get(type(msg))
    if codec is None:
        raise EncodeError(f"{type(msg).__name__} is not a protocol message")
    return codec.pack(msg, seq, flags)


def frame_body(body: bytes) -> bytes:
    """Add the CRC, COBS-encode, append the 0x00 delimiter."""
    framed: bytes = cobs.encode(body + zlib.crc32(body).to_bytes(CRC_BYTES, "little"))
    return framed + b"\x00"


def encode(msg: Message, seq: int = 0, flags: int = 0) -> bytes:
    """One message as a complete frame, delimiter included. Raises EncodeError."""
    return frame_body(encode_body(msg, seq, flags))


class StreamDecoder:
    """Feed it bytes in chunks of any size; it returns the frames completed so far.

    It never raises on input: every bad frame is counted in ``stats`` and dropped,
    and decoding resumes after the next 0x00 delimiter.
    """

    def __init__(self) -> None:
        self.stats = DecoderStats()
        self._pending = bytearray()
        self._skipping = False  # discarding an oversize frame up to its delimiter

    def feed(self, data: bytes | bytearray | memoryview) -> list[Frame]:
        stats = self.stats
        stats.bytes_in += len(data)
        out: list[Frame] = []
        if not data:
            return out
        pending = self._pending
        pending += data
        if b"\x00" not in data:
            if len(pending) > MAX_ENCODED_FRAME_BYTES:
                self._drop_oversize(len(pending))
                pending.clear()
            return out
        chunks = pending.split(b"\x00")
        rest = chunks.pop()
        for chunk in chunks:
            if self._skipping:
                self._skipping = False
                stats.bytes_skipped += len(chunk) + 1
                continue
            if not chunk:
                continue  # an empty frame: a sender flushing, not an error
            frame = self._decode_chunk(chunk)
            if frame is not None:
                out.append(frame)
        pending.clear()
        if len(rest) > MAX_ENCODED_FRAME_BYTES:
            self._drop_oversize(len(rest))
        else:
            pending += rest
        return out

    def _drop_oversize(self, n: int) -> None:
        if not self._skipping:
            self.stats.oversize += 1
            self._skipping = True
        self.stats.bytes_skipped += n

    def _decode_chunk(self, chunk: bytes | bytearray) -> Frame | None:
        stats = self.stats
        if len(chunk) > MAX_ENCODED_FRAME_BYTES:
            stats.oversize += 1
            stats.bytes_skipped += len(chunk) + 1
            return None
        try:
            raw = cobs.decode(chunk)
        except cobs.DecodeError:
            stats.malformed += 1
            stats.bytes_skipped += len(chunk) + 1
            return None
        n = len(raw)
        if n < HEADER_BYTES + CRC_BYTES:
            stats.malformed += 1
            stats.bytes_skipped += len(chunk) + 1
            return None
        if zlib.crc32(raw) != CRC_RESIDUE:
            stats.crc_failures += 1
            stats.bytes_skipped += len(chunk) + 1
            return None
        codec = _BY_ID.get(raw[1])
        if codec is None:
            stats.unknown_id += 1
            stats.bytes_skipped += len(chunk) + 1
            return None
        msg = (
            codec.unpack(raw, n - CRC_BYTES - HEADER_BYTES) if raw[0] == PROTOCOL_VERSION else None
        )
        if msg is None:
            stats.malformed += 1
            stats.bytes_skipped += len(chunk) + 1
            return None
        stats.frames_ok += 1
        return Frame(raw[3] | (raw[4] << 8), raw[2], msg)

    def reset(self) -> None:
        """Forget any partial frame (e.g. after reopening a port)."""
        self._pending.clear()
        self._skipping = False


def decode_all(data: bytes | Iterable[bytes]) -> tuple[list[Frame], DecoderStats]:
    """Decode a whole capture (bytes, or an iterable of chunks)."""
    dec = StreamDecoder()
    frames: list[Frame] = []
    chunks = [data] if isinstance(data, bytes | bytearray) else data
    for chunk in chunks:
        frames.extend(dec.feed(chunk))
    return frames, dec.stats


def message_to_dict(msg: Message) -> dict[str, Any]:
    """A message's fields as plain JSON-able values (record arrays as lists of dicts)."""
    out: dict[str, Any] = {}
    value: Any
    for spec, value in zip(fields_of(type(msg)), msg, strict=True):
        if isinstance(spec.wire, Array):
            arr = np.frombuffer(value, dtype=record_dtype(spec.wire.record))
            out[spec.name] = [{k: int(r[k]) for k in arr.dtype.names or ()} for r in arr]
        else:
            out[spec.name] = value
    return out
