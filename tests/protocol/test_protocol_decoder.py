"""The stream decoder takes any bytes without raising and drops every damaged frame."""

from __future__ import annotations

import json
import random
import zlib
from typing import Any

from cobs import cobs
from hypothesis import given
from hypothesis import strategies as st
from protocol_strategies import any_message, seqs

from protocol import StreamDecoder, codegen, encode, encode_body
from protocol.schema import (
    CRC_CHECK,
    CRC_RESIDUE,
    MAX_ENCODED_FRAME_BYTES,
    Ack,
    GetStatus,
    Message,
    Move,
    MoveMode,
    Status,
)


def _vector_frames() -> list[bytes]:
    data = json.loads(codegen.VECTORS_PATH.read_text())
    return [bytes.fromhex(v["hex"]) for v in data["vectors"]]


def _frame_from_raw(raw: bytes) -> bytes:
    """Frame arbitrary header+payload bytes with a correct CRC (to test checks past it)."""
    framed: bytes = cobs.encode(raw + zlib.crc32(raw).to_bytes(4, "little"))
    return framed + b"\x00"


def test_crc_parameters_match_the_catalogue() -> None:
    assert zlib.crc32(b"123456789") == CRC_CHECK == 0xCBF43926
    body = b"any bytes at all"
    assert zlib.crc32(body + zlib.crc32(body).to_bytes(4, "little")) == CRC_RESIDUE


@given(st.lists(st.binary(max_size=600), max_size=20))
def test_arbitrary_bytes_never_raise_and_are_all_accounted(chunks: list[bytes]) -> None:
    dec = StreamDecoder()
    out = []
    for c in chunks:
        out += dec.feed(c)
    out += dec.feed(b"\x00")
    s = dec.stats
    assert s.frames_ok == len(out)
    assert s.bytes_in == sum(map(len, chunks)) + 1
    assert s.bytes_skipped <= s.bytes_in


def test_feed_accepts_bytearray_and_memoryview() -> None:
    frame = encode(GetStatus(), seq=3)
    for data in (bytearray(frame), memoryview(frame)):
        assert [f.seq for f in StreamDecoder().feed(data)] == [3]


def test_every_single_bit_flip_is_rejected() -> None:
    dec = StreamDecoder()
    checked = 0
    for frame in _vector_frames():
        for bit in range(len(frame) * 8):
            bad = bytearray(frame)
            bad[bit // 8] ^= 1 << (bit % 8)
            before = dec.stats.frames_bad
            assert dec.feed(bytes(bad) + b"\x00") == [], (frame.hex(), bit)
            assert dec.stats.frames_bad > before
            checked += 1
    assert dec.stats.frames_ok == 0 and checked > 10_000


def test_every_truncation_is_rejected() -> None:
    dec = StreamDecoder()
    for frame in _vector_frames():
        body = frame[:-1]
        for n in range(1, len(body)):
            assert dec.feed(body[:n] + b"\x00") == []
        raw = cobs.decode(body)
        for n in range(len(raw)):  # truncated before COBS: valid COBS, wrong length/CRC
            assert dec.feed(cobs.encode(raw[:n]) + b"\x00") == []
    assert dec.stats.frames_ok == 0


@given(garbage=st.binary(max_size=3 * MAX_ENCODED_FRAME_BYTES), msg=any_message(), seq=seqs)
def test_a_frame_after_garbage_and_a_delimiter_is_decoded(
    garbage: bytes, msg: Message, seq: int
) -> None:
    frames = StreamDecoder().feed(garbage + b"\x00" + encode(msg, seq))
    assert (frames[-1].message, frames[-1].seq) == (msg, seq)


@given(
    garbage=st.binary(max_size=2000),
    junk_len=st.integers(0, 5000),
    msg=any_message(),
    seq=seqs,
)
def test_resync_after_garbage_of_any_length(
    garbage: bytes, junk_len: int, msg: Message, seq: int
) -> None:
    # Garbage with no delimiter swallows at most the frame right after it; the next is decoded,
    # even after thousands of bytes without any 0x00 (the oversize path).
    dec = StreamDecoder()
    frames = dec.feed(garbage)
    frames += dec.feed(b"\x07" * junk_len)
    frames += dec.feed(encode(Ack(1), 9))
    frames += dec.feed(encode(msg, seq))
    assert (frames[-1].message, frames[-1].seq) == (msg, seq)


def test_zero_bytes_in_payload_do_not_break_framing() -> None:
    all_zero: Any = Status
    msgs: list[Message] = [
        Move(MoveMode.ABSOLUTE, 0, 256),
        all_zero(*([0] * len(Status._fields))),
        Move(MoveMode.RELATIVE, -1, 1),
    ]
    stream = b"".join(encode(m, i) for i, m in enumerate(msgs))
    assert all(0 in encode_body(m) for m in msgs)
    for split in range(len(stream) + 1):
        dec = StreamDecoder()
        frames = dec.feed(stream[:split]) + dec.feed(stream[split:])
        assert [f.message for f in frames] == msgs


def test_counters_count_each_kind_of_bad_frame() -> None:
    good = encode(Ack(4), 1)
    body = encode_body(Ack(4), 2)
    crc_bad = cobs.encode(body + (zlib.crc32(body) ^ 1).to_bytes(4, "little")) + b"\x00"
    bad_cobs = b"\x05\x01\x02\x00"  # code 5 promises 4 bytes, only 2 follow
    too_short = _frame_from_raw(b"\x01\x82\x00")  # 3 bytes: less than a header
    unknown = _frame_from_raw(b"\x01\x55\x00\x01\x00")
    wrong_len = _frame_from_raw(b"\x01\x82\x00\x01\x00\x04\x05")  # ACK with 2 payload bytes
    bad_version = _frame_from_raw(b"\x02\x82\x00\x01\x00\x04")
    oversize = b"\x01" * (MAX_ENCODED_FRAME_BYTES + 1) + b"\x00"
    parts = [good, crc_bad, bad_cobs, too_short, unknown, wrong_len, bad_version]
    parts += [oversize, b"\x00\x00", good]
    stream = b"".join(parts)
    dec = StreamDecoder()
    frames = [f for i in range(0, len(stream), 7) for f in dec.feed(stream[i : i + 7])]
    s = dec.stats
    assert [f.message for f in frames] == [Ack(4), Ack(4)]
    assert (s.frames_ok, s.crc_failures, s.unknown_id, s.oversize) == (2, 1, 1, 1)
    assert s.malformed == 4  # bad COBS, too short, wrong length, wrong version
    assert s.frames_bad == 7
    assert s.bytes_in == len(stream)
    dropped = [crc_bad, bad_cobs, too_short, unknown, wrong_len, bad_version, oversize]
    assert s.bytes_skipped == sum(map(len, dropped))


def test_a_crc_valid_frame_shorter_than_a_header_is_malformed() -> None:
    # An empty body framed with its CRC (0x00000000) passes the CRC test, yet has no header.
    empty = _frame_from_raw(b"")
    assert zlib.crc32(cobs.decode(empty[:-1])) == CRC_RESIDUE
    dec = StreamDecoder()
    assert dec.feed(empty + encode(Ack(4), 1)) == [(1, 0, Ack(4))]
    s = dec.stats
    assert (s.malformed, s.unknown_id, s.crc_failures, s.frames_ok) == (1, 0, 0, 1)
    assert s.bytes_skipped == len(empty)


def test_an_oversize_frame_is_counted_once_however_it_arrives() -> None:
    junk = bytes(random.Random(1).randrange(1, 256) for _ in range(3000))
    dec = StreamDecoder()
    for i in range(0, len(junk), 100):
        assert dec.feed(junk[i : i + 100]) == []
    frames = dec.feed(b"\x00" + encode(GetStatus(), 5))
    assert [f.seq for f in frames] == [5]
    assert dec.stats.oversize == 1 and dec.stats.frames_bad == 1
    assert dec.stats.bytes_skipped == len(junk) + 1  # the junk and the 0x00 ending it


def test_reset_forgets_a_partial_frame() -> None:
    dec = StreamDecoder()
    frame = encode(GetStatus(), 5)
    dec.feed(frame[:4])
    dec.reset()
    assert [f.seq for f in dec.feed(frame)] == [5]


@given(
    msg=any_message(),
    junk=st.binary(min_size=MAX_ENCODED_FRAME_BYTES + 1, max_size=1000).map(
        lambda b: b.replace(b"\x00", b"\x01")
    ),
    cut=st.integers(0, 2000),
)
def test_a_frame_just_before_an_oversize_run_in_the_same_chunk_is_kept(
    msg: Message, junk: bytes, cut: int
) -> None:
    frame = encode(msg, 3)
    stream = frame + junk + b"\x00" + frame
    cut %= len(stream) + 1
    dec = StreamDecoder()
    frames = dec.feed(stream[:cut]) + dec.feed(stream[cut:])
    assert [f.message for f in frames] == [msg, msg]
    assert dec.stats.oversize == 1 and dec.stats.frames_bad == 1
    assert dec.stats.bytes_skipped == len(junk) + 1
