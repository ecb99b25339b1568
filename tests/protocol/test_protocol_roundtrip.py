"""Every message round-trips for any valid field values; invalid ones are refused at encode."""

from __future__ import annotations

from typing import Any

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from protocol_strategies import any_message, header_flags, messages_of, seqs

from protocol import EncodeError, StreamDecoder, encode
from protocol.codegen import valid_extremes
from protocol.fields import Array, Int, Str
from protocol.schema import (
    MAX_ENCODED_FRAME_BYTES,
    MESSAGES,
    Identity,
    Message,
    Telemetry,
    fields_of,
)


@pytest.mark.parametrize("cls", MESSAGES, ids=lambda c: c.__name__)
@given(data=st.data(), seq=seqs, flags=header_flags)
def test_every_message_round_trips(cls: type[Message], data: Any, seq: int, flags: int) -> None:
    msg = data.draw(messages_of(cls))
    frame = encode(msg, seq, flags)
    assert frame.endswith(b"\x00") and b"\x00" not in frame[:-1]
    assert len(frame) - 1 <= MAX_ENCODED_FRAME_BYTES
    dec = StreamDecoder()
    frames = dec.feed(frame)
    assert [(f.seq, f.flags, f.message) for f in frames] == [(seq, flags, msg)]
    assert type(frames[0].message) is cls
    assert dec.stats.frames_ok == 1 and dec.stats.frames_bad == 0


@given(
    msgs=st.lists(st.tuples(any_message(), seqs), max_size=20), cuts=st.lists(st.integers(0, 5000))
)
def test_a_stream_decodes_the_same_in_any_chunking(
    msgs: list[tuple[Message, int]], cuts: list[int]
) -> None:
    stream = b"".join(encode(m, s) for m, s in msgs)
    points = sorted({c % (len(stream) + 1) for c in cuts})
    dec = StreamDecoder()
    out = []
    for a, b in zip([0, *points], [*points, len(stream)], strict=True):
        out += dec.feed(stream[a:b])
    assert [(f.message, f.seq) for f in out] == msgs
    assert dec.stats.bytes_in == len(stream) and dec.stats.bytes_skipped == 0


def _bad_values(cls: type[Message]) -> list[tuple[str, int, Any]]:
    """(field, index, value) for values just outside what each integer field allows."""
    out: list[tuple[str, int, Any]] = []
    for i, spec in enumerate(fields_of(cls)):
        if not isinstance(spec.wire, Int):
            continue
        lo, hi = valid_extremes(spec)
        out += [(spec.name, i, lo - 1), (spec.name, i, hi + 1), (spec.name, i, 1.5)]
        if spec.enum is not None and not spec.enum.is_flags:
            allowed = {int(m.value) for m in spec.enum.enum_type}
            out.append((spec.name, i, next(v for v in range(lo, hi + 2) if v not in allowed)))
        if spec.enum is not None and spec.enum.is_flags and hi + 1 <= spec.wire.hi:
            out.append((spec.name, i, hi + 1))  # a bit no flag defines
    return out


@pytest.mark.parametrize("cls", [m for m in MESSAGES if fields_of(m)], ids=lambda c: c.__name__)
@settings(max_examples=25)  # each example tries every field's bad values
@given(data=st.data())
def test_out_of_range_values_are_refused_naming_the_field(cls: type[Message], data: Any) -> None:
    good = list(data.draw(messages_of(cls)))
    for name, i, value in _bad_values(cls):
        make: Any = cls
        bad = make(*good[:i], value, *good[i + 1 :])
        with pytest.raises(EncodeError, match=rf"{cls.__name__}\.{name}="):
            encode(bad)


def test_bad_seq_flags_strings_and_records_are_refused() -> None:
    ok = Telemetry(1, b"")
    for kwargs, word in (({"seq": -1}, "seq"), ({"seq": 65536}, "seq"), ({"flags": 256}, "flags")):
        with pytest.raises(EncodeError, match=word):
            encode(ok, **kwargs)
    with pytest.raises(EncodeError, match="samples"):
        encode(Telemetry(1, b"\x01" * 21))  # not a whole number of 22-byte records
    with pytest.raises(EncodeError, match="samples"):
        encode(Telemetry(1, b"\x01" * 22 * 11))  # more than 10 records
    spec = fields_of(Identity)
    good = [valid_extremes(s)[0] if isinstance(s.wire, Int) else "" for s in spec]
    idx = next(i for i, s in enumerate(spec) if isinstance(s.wire, Str))
    for bad in ("x" * 17, "é", 5):
        values = list(good)
        values[idx] = bad
        with pytest.raises(EncodeError, match="serial_number"):
            encode(Identity(*values))  # type: ignore[arg-type]
    assert not any(isinstance(s.wire, Array) for s in spec)


def test_encode_error_is_a_value_error_with_one_line() -> None:
    with pytest.raises(ValueError) as info:
        encode(Telemetry(-1, b""))
    assert "\n" not in str(info.value)
    assert "first_sample_number" in str(info.value)
