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

from protocol.fields import Array, FieldSpec, Int, Str, record_dtype
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
#
# Built once at import from the schema: for each message, an encoder function (source
# generated from the schema, see make_encoder) and a *recipe* (what StreamDecoder.feed
# needs to decode it inline). The hot paths then cost one table lookup each and, besides
# the C functions (struct, zlib, cobs), at most one Python call; see benchmarks/codec.py.

_cobs_encode = cobs.encode
_cobs_decode = cobs.decode
_CobsError = cobs.DecodeError
_crc32 = zlib.crc32
_crc_pack = struct.Struct("<I").pack
_unpack_header = struct.Struct(HEADER_FORMAT).unpack_from  # version, msg_id, flags, seq
_MIN_RAW_BYTES = HEADER_BYTES + CRC_BYTES
_Encoder = Callable[[Any, int, int], bytes]  # (message, seq, flags) -> frame or body
_Decoder = Callable[[bytes], Any]  # raw frame (CRC and length checked) -> message
_Unpacker = Callable[[bytes, int], tuple[Any, ...]]
# feed()'s recipe for a message id: (class, frame bytes without records, payload unpacker,
# index of the record count in the raw frame (0: no records), raw frame bytes for each
# count byte 0..255 (-1: count too large), payload unpacker for each valid count (records
# as one bytes field), decoder for messages with strings or None)
_Recipe = tuple[type, int, _Unpacker, int, tuple[int, ...], tuple[_Unpacker, ...], _Decoder | None]


def _allowed_values(spec: FieldSpec) -> frozenset[int] | _IntRange | None:
    """What a constrained integer field accepts, as a container (None: the type's range)."""
    if spec.enum is not None:
        members = [int(m.value) for m in spec.enum.enum_type]
        if not spec.enum.is_flags:
            return frozenset(members)
        mask = 0
        for v in members:
            mask |= v
        assert isinstance(spec.wire, Int)
        if mask == spec.wire.hi:
            return None  # every bit is a flag: struct's own range check is the whole check
        assert mask < 1 << 16, "flags too wide to list"
        return frozenset(v for v in range(mask + 1) if v & ~mask == 0)
    if spec.range is not None:
        return _IntRange(spec.range.lo, spec.range.hi)
    return None


class _IntRange:
    """``v in _IntRange(lo, hi)``: an int within [lo, hi]. (``range`` would scan itself
    element by element for a float.)"""

    __slots__ = ("hi", "lo")

    def __init__(self, lo: int, hi: int) -> None:
        self.lo, self.hi = lo, hi

    def __contains__(self, v: object) -> bool:
        return isinstance(v, int) and self.lo <= v <= self.hi


class _MessageCodec:
    """How one message type is packed and unpacked (built once per type)."""

    def __init__(self, cls: type[Message]) -> None:
        self.cls = cls
        self.msg_id = MSG_ID[cls]
        specs = fields_of(cls)
        self.specs = specs
        self.array_spec: FieldSpec | None = next(
            (s for s in specs if isinstance(s.wire, Array)), None
        )
        scalars = ""
        for s in specs:
            if isinstance(s.wire, Int):
                scalars += s.wire.struct_code
            elif isinstance(s.wire, Str):
                scalars += f"{s.wire.size_bytes}s"
        count = "B" if self.array_spec is not None else ""  # the record count
        self.struct = struct.Struct(HEADER_FORMAT + scalars + count)  # all but the records
        self.payload_struct = struct.Struct("<" + scalars)  # the fields before any count
        self.fixed_bytes = self.payload_struct.size + len(count)
        self.str_indexes = tuple(i for i, s in enumerate(specs) if isinstance(s.wire, Str))
        # Fields whose allowed values are narrower than their integer type's.
        checked = [(i, s, _allowed_values(s)) for i, s in enumerate(specs)]
        self.checks = tuple((i, allowed) for i, _, allowed in checked if allowed is not None)
        self.record_bytes = 0
        self.max_count = 0
        if self.array_spec is not None:
            assert isinstance(self.array_spec.wire, Array)
            self.record_bytes = int(record_dtype(self.array_spec.wire.record).itemsize)
            self.max_count = self.array_spec.wire.max_count

    # -- encode
    def make_encoder(self, framed: bool) -> _Encoder:
        """A function (message, seq, flags) -> bytes: the whole frame, delimiter included
        (``framed``), or header + payload only. It raises EncodeError on any invalid value.

        Generated from the schema as source text and compiled once, so that the hot path
        is one Python call doing only C calls: the field checks written out inline (no
        loop, no predicate call), one struct.pack of header, fields and records (one Struct
        per record count, the records as an ``Ns`` field: no concatenation), then CRC and
        COBS."""
        if self.str_indexes:
            check = self._make_check()

            def fail(msg: Any, seq: int, flags: int) -> EncodeError:
                return EncodeError(self.explain(msg, seq, flags))

            general = self._make_general_encoder(check, fail)
            if not framed:
                return general
            return lambda msg, seq, flags: frame_body(general(msg, seq, flags))
        namespace: dict[str, Any] = {f"a{i}": allowed for i, allowed in self.checks} | {
            "_cobs_encode": _cobs_encode,
            "_crc_pack": _crc_pack,
            "_crc32": _crc32,
            "_pack_errors": (struct.error, TypeError),
            "EncodeError": EncodeError,
            "explain": self.explain,
        }
        head = f"{PROTOCOL_VERSION}, {self.msg_id}, flags, seq"
        # The fields as locals f0, f1, ...: unpacking the NamedTuple once and passing the
        # values as plain arguments is cheaper than ``*msg`` (which builds a new tuple).
        names = [f"f{i}" for i in range(len(self.specs))]
        lines = ["def encode(msg, seq, flags):", "    try:"]
        lines.append(f"        {', '.join(names)}, = msg" if names else "        () = msg")
        indent = "        "
        if self.checks:
            expr = " and ".join(f"f{i} in a{i}" for i, _ in self.checks)
            lines.append(f"{indent}if {expr}:")
            indent += "    "
        if self.array_spec is None:
            namespace["pack"] = self.struct.pack
            lines.append(f"{indent}body = pack({', '.join([head, *names])})")
        else:
            # One Struct per record count: header, scalars, count, then the records as
            # one ``Ns`` field; counts_by_len maps a valid records length to its count.
            records, scalars = names[-1], "".join(f"{n}, " for n in names[:-1])
            namespace["packers"] = tuple(
                struct.Struct(self.struct.format + f"{c * self.record_bytes}s").pack
                for c in range(self.max_count + 1)
            )
            namespace["counts_by_len"] = {
                c * self.record_bytes: c for c in range(self.max_count + 1)
            }
            lines += [
                f"{indent}if type({records}) is bytes or type({records}) is bytearray:",
                f"{indent}    count = counts_by_len.get(len({records}))",
                f"{indent}    if count is not None:",
                f"{indent}        body = packers[count]({head}, {scalars}count, {records})",
            ]
            indent += "        "
        if framed:
            lines.append(f'{indent}return _cobs_encode(body + _crc_pack(_crc32(body))) + b"\\x00"')
        else:
            lines.append(f"{indent}return body")
        lines += [
            "    except _pack_errors:",
            "        pass",
            "    raise EncodeError(explain(msg, seq, flags))",
        ]
        exec("\n".join(lines), namespace)  # source built above from the schema only
        encoder: _Encoder = namespace["encode"]
        return encoder

    def _make_general_encoder(
        self, check: Callable[[Any], bool] | None, fail: Callable[[Any, int, int], EncodeError]
    ) -> _Encoder:
        """For messages with strings (IDENTITY): not on any hot path."""
        pack = self.struct.pack
        version, msg_id, cls = PROTOCOL_VERSION, self.msg_id, self.cls
        str_specs = tuple((i, self.specs[i]) for i in self.str_indexes)
        assert self.array_spec is None, "strings and arrays in one message: not supported"

        def encode_with_strings(msg: Any, seq: int, flags: int) -> bytes:
            values: list[Any] = list(msg)
            for i, spec in str_specs:
                values[i] = _encode_str(cls, spec, values[i])
            try:
                if check is None or check(msg):
                    data: bytes = pack(version, msg_id, flags, seq, *values)
                    return data
            except (struct.error, TypeError):
                pass
            raise fail(msg, seq, flags)

        return encode_with_strings

    def _make_check(self) -> Callable[[Any], bool] | None:
        """A predicate: every constrained field holds an allowed value (None: no constraints).

        It is one expression, e.g. ``lambda m: m[0] in a0 and m[2] in a2``, compiled once
        from the schema: a single call per encode instead of a loop over the fields.
        Unhashable values raise TypeError, which the encoders report as invalid."""
        if not self.checks:
            return None
        namespace = {f"a{i}": allowed for i, allowed in self.checks}
        expr = " and ".join(f"m[{i}] in a{i}" for i, _ in self.checks)
        check: Callable[[Any], bool] = eval(f"lambda m: {expr}", namespace)
        return check

    def explain(self, msg: Any, seq: int, flags: int) -> str:
        """One line saying which value cannot be encoded (called only on failure)."""
        name = self.cls.__name__
        if not (type(seq) is int and 0 <= seq <= 0xFFFF):
            return f"seq={seq!r} is outside [0, 65535]"
        if not (type(flags) is int and 0 <= flags <= 0xFF):
            return f"flags={flags!r} is outside [0, 255]"
        allowed = dict(self.checks)
        for i, (s, v) in enumerate(zip(self.specs, msg, strict=True)):
            field = f"{name}.{s.name}={v!r}"
            if isinstance(s.wire, Int):
                if not (type(v) is int or isinstance(v, int)):
                    return f"{field} must be an int"
                if not s.wire.lo <= v <= s.wire.hi:
                    return f"{field} does not fit {s.wire.name} [{s.wire.lo}, {s.wire.hi}]"
                if i in allowed and v not in allowed[i]:
                    what = f"a {s.enum.enum_type.__name__} value" if s.enum else ""
                    return f"{field} is outside its allowed range [{s.lo}, {s.hi}]" + (
                        f" or not {what}" if what else ""
                    )
            elif isinstance(s.wire, Array):
                if not isinstance(v, bytes | bytearray):
                    return f"{name}.{s.name} must be packed records (bytes); see pack_samples"
                return (
                    f"{name}.{s.name}: {len(v)} bytes is not 0..{self.max_count} records "
                    f"of {self.record_bytes} bytes"
                )
        return f"{name}: cannot encode {msg!r}"

    # -- decode
    def recipe(self) -> _Recipe:
        """What StreamDecoder.feed needs to decode this message inline."""
        fallback = self._make_string_decoder() if self.str_indexes else None
        frame_bytes = HEADER_BYTES + self.fixed_bytes + CRC_BYTES
        unpack_from = self.payload_struct.unpack_from
        count_at = 0
        lens: tuple[int, ...] = ()
        unpackers: tuple[_Unpacker, ...] = ()
        if self.array_spec is not None:
            # The count byte sits just before the records; it is skipped ("x") when the
            # payload is unpacked, and the records come out as one bytes field: a single
            # unpack builds the message's whole tuple.
            count_at = frame_bytes - CRC_BYTES - 1
            rb, top = self.record_bytes, self.max_count
            lens = tuple(frame_bytes + c * rb if c <= top else -1 for c in range(256))
            fmt = self.payload_struct.format + "x"
            unpackers = tuple(struct.Struct(f"{fmt}{c * rb}s").unpack_from for c in range(top + 1))
        return (self.cls, frame_bytes, unpack_from, count_at, lens, unpackers, fallback)

    def _make_string_decoder(self) -> _Decoder:
        """For messages with strings (IDENTITY): raw frame of the right length -> message."""
        assert self.array_spec is None, "strings and arrays in one message: not supported"
        unpack_from = self.payload_struct.unpack_from
        cls, str_indexes = self.cls, self.str_indexes

        def decode_strings(raw: bytes) -> Any:
            values = list(unpack_from(raw, HEADER_BYTES))
            for i in str_indexes:
                # up to the first NUL, or all the bytes if none is NUL (docs/protocol.md, IDENTITY)
                values[i] = values[i].split(b"\x00", 1)[0].decode("ascii", "replace")
            return tuple.__new__(cls, values)

        return decode_strings


def _encode_str(cls: type[Any], spec: FieldSpec, value: Any) -> bytes:
    assert isinstance(spec.wire, Str)
    field = f"{cls.__name__}.{spec.name}={value!r}"
    if not isinstance(value, str):
        raise EncodeError(f"{field} must be a str")
    try:
        data = value.encode("ascii")
    except UnicodeEncodeError:
        raise EncodeError(f"{field} must be ASCII") from None
    if b"\x00" in data:
        raise EncodeError(f"{field} holds a NUL (receivers stop reading at the first one)")
    if len(data) > spec.wire.size_bytes:
        raise EncodeError(f"{field} is longer than {spec.wire.size_bytes} bytes")
    return data


_CODECS: dict[type[Message], _MessageCodec] = {m: _MessageCodec(m) for m in MESSAGES}
_FRAME_ENCODERS: dict[type[Message], _Encoder] = {
    m: c.make_encoder(framed=True) for m, c in _CODECS.items()
}
_BODY_ENCODERS: dict[type[Message], _Encoder] = {
    m: c.make_encoder(framed=False) for m, c in _CODECS.items()
}
# Indexed by message id (a list: indexing it is cheaper than a dict lookup).
_RECIPES: list[_Recipe | None] = [None] * 256
for _codec in _CODECS.values():
    _RECIPES[_codec.msg_id] = _codec.recipe()

# ---------------------------------------------------------------- public API


def _not_a_message(msg: Any) -> EncodeError:
    return EncodeError(f"{type(msg).__name__} is not a protocol message")


def encode_body(msg: Message, seq: int = 0, flags: int = 0) -> bytes:
    """Header + payload, unframed (what the CRC covers). Raises EncodeError."""
    encoder = _BODY_ENCODERS.get(type(msg))
    if encoder is None:
        raise _not_a_message(msg)
    return encoder(msg, seq, flags)


def frame_body(body: bytes) -> bytes:
    """Add the CRC, COBS-encode, append the 0x00 delimiter."""
    framed: bytes = _cobs_encode(body + _crc_pack(_crc32(body)))
    return framed + b"\x00"


def encode(msg: Message, seq: int = 0, flags: int = 0) -> bytes:
    """One message as a complete frame, delimiter included. Raises EncodeError."""
    try:
        encoder = _FRAME_ENCODERS[type(msg)]
    except KeyError:
        raise _not_a_message(msg) from None
    return encoder(msg, seq, flags)


class StreamDecoder:
    """Feed it bytes in chunks of any size; it returns the frames completed so far.

    It never raises on input: every bad frame is counted in ``stats`` and dropped,
    and decoding resumes after the next 0x00 delimiter.
    """

    def __init__(self) -> None:
        self.stats = DecoderStats()
        self._pending = b""  # bytes after the last delimiter seen (an incomplete frame)
        self._skipping = False  # discarding an oversize frame up to its delimiter

    def feed(self, data: bytes | bytearray | memoryview) -> list[Frame]:
        stats = self.stats
        n_in = len(data) if type(data) is not memoryview else data.nbytes
        stats.bytes_in += n_in
        out: list[Frame] = []
        if not n_in:
            return out
        # Split the new bytes only (not pending + data: that would copy every chunk once more).
        chunks = (data if type(data) is bytes else bytes(data)).split(b"\x00")
        rest = chunks.pop()  # after the last delimiter: the start of a frame still to come
        if not chunks:
            self._keep(self._pending + rest if self._pending else rest)
            return out
        if self._skipping:  # the first chunk ends the oversize frame being dropped
            self._skipping = False
            stats.bytes_skipped += len(chunks[0]) + 1
            chunks[0] = b""
        elif self._pending:
            chunks[0] = self._pending + chunks[0]
        self._keep(rest)
        # Everything the loop touches, as locals (cheaper than global lookups per frame).
        append = out.append
        recipes = _RECIPES
        new = tuple.__new__
        cobs_decode, cobs_error, crc32, residue = _cobs_decode, _CobsError, _crc32, CRC_RESIDUE
        version, header_bytes, frame_cls = PROTOCOL_VERSION, HEADER_BYTES, Frame
        unpack_header = _unpack_header
        for chunk in chunks:
            # The hot path, inlined: COBS, CRC, id, payload length, fields. Every failure
            # goes through _reject, which counts it in exactly one counter.
            try:
                raw = cobs_decode(chunk)
            except cobs_error:
                self._reject(chunk, "malformed")
                continue
            if crc32(raw) != residue:
                # (An empty chunk is no frame and is not counted.)
                short = len(raw) < _MIN_RAW_BYTES
                self._reject(chunk, "malformed" if short else "crc_failures")
                continue
            try:  # one C call for the whole header: cheaper than indexing raw 4 times
                frame_version, msg_id, flags, seq = unpack_header(raw)
            except struct.error:  # shorter than a header, yet its CRC matched
                self._reject(chunk, "malformed")
                continue
            recipe = recipes[msg_id]
            if recipe is None:
                self._reject(chunk, "unknown_id")
                continue
            if frame_version != version:
                self._reject(chunk, "malformed")
                continue
            cls, size, unpack_from, count_at, lens, unpackers, fallback = recipe
            n = len(raw)  # any length below HEADER_BYTES + CRC_BYTES fails the tests below
            if count_at:  # a u8 count, then that many records, kept as packed bytes
                # (n >= size: the count byte exists; lens[count] is -1 for a count too big)
                if n < size or n != lens[count := raw[count_at]]:
                    self._reject(chunk, "malformed")
                    continue
                msg: Any = new(cls, unpackers[count](raw, header_bytes))
            elif n == size:
                msg = (
                    new(cls, unpack_from(raw, header_bytes)) if fallback is None else fallback(raw)
                )
            else:
                self._reject(chunk, "malformed")
                continue
            append(new(frame_cls, (seq, flags, msg)))
        stats.frames_ok += len(out)
        return out

    def _keep(self, rest: bytes) -> None:
        """Hold the bytes after the last delimiter, unless they already make a frame too long."""
        if len(rest) <= MAX_ENCODED_FRAME_BYTES and not self._skipping:
            self._pending = rest
            return
        stats = self.stats
        if not self._skipping:
            stats.oversize += 1
            self._skipping = True
        stats.bytes_skipped += len(rest)
        self._pending = b""

    def _reject(self, chunk: bytes, counter: str) -> None:
        """Count a dropped chunk: as oversize if it is too long, whatever else is wrong."""
        if not chunk:
            return  # an empty frame: a sender flushing, not an error
        if len(chunk) > MAX_ENCODED_FRAME_BYTES:
            counter = "oversize"
        stats = self.stats
        setattr(stats, counter, getattr(stats, counter) + 1)
        stats.bytes_skipped += len(chunk) + 1

    def reset(self) -> None:
        """Forget any partial frame (e.g. after reopening a port)."""
        self._pending = b""
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
