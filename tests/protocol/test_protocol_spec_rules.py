"""Codec behaviour the spec fixes beyond the tables: serial_number bytes, TELEMETRY with no
samples, SET_LIMITS ranges (docs/protocol.md §3, §6, §7)."""

from __future__ import annotations

import pytest

from protocol import (
    HEADER_BYTES,
    PROTOCOL_VERSION,
    SCHEMA_HASH,
    EncodeError,
    Identity,
    SetLimits,
    StreamDecoder,
    Telemetry,
    encode,
    encode_body,
    frame_body,
    sample_array,
)


def _identity(serial: str) -> Identity:
    return Identity(PROTOCOL_VERSION, SCHEMA_HASH, 1, 2, 3, serial, 0, 0, 1, 1, 1, 1, 200, 1, 1000)


def _decode_one(frame: bytes) -> object:
    frames = StreamDecoder().feed(frame)
    assert len(frames) == 1
    return frames[0].message


def test_serial_number_of_16_chars_without_nul() -> None:
    msg = _identity("ND-0123456789ABC")
    assert len(msg.serial_number) == 16
    frame = encode(msg, seq=1)
    got = _decode_one(frame)
    assert isinstance(got, Identity) and got.serial_number == "ND-0123456789ABC"


def test_serial_number_read_up_to_the_first_nul() -> None:
    # bytes after the first NUL are not part of the serial (a sender never puts any there)
    body = bytearray(encode_body(_identity("AB"), seq=1))
    serial_at = HEADER_BYTES + 8
    body[serial_at : serial_at + 16] = b"AB\x00CD" + b"\x00" * 11
    got = _decode_one(frame_body(bytes(body)))
    assert isinstance(got, Identity) and got.serial_number == "AB"
    empty = _decode_one(encode(_identity(""), seq=1))
    assert isinstance(empty, Identity) and empty.serial_number == ""


def test_serial_number_with_a_nul_inside_is_not_encoded() -> None:
    with pytest.raises(EncodeError, match="NUL"):
        encode(_identity("AB\x00CD"), seq=1)


def test_telemetry_with_zero_samples_is_a_valid_frame() -> None:
    frame = encode(Telemetry(42, b""), seq=0)
    dec = StreamDecoder()
    frames = dec.feed(frame)
    assert dec.stats.frames_ok == 1 and dec.stats.frames_bad == 0
    msg = frames[0].message
    assert isinstance(msg, Telemetry) and msg.first_sample_number == 42
    assert len(sample_array(msg)) == 0


@pytest.mark.parametrize(
    "values",
    [(-1, 1, 1, 1), (0, 0, 1, 1), (0, 1, 0, 1), (0, 1, 1, 0), (0, 1, 1, 10_001)],
)
def test_set_limits_out_of_range_is_not_encoded(values: tuple[int, int, int, int]) -> None:
    with pytest.raises(EncodeError):
        encode(SetLimits(*values), seq=1)
    encode(SetLimits(0, 1, 1, 1), seq=1)
    encode(SetLimits(2**31 - 1, 2**31 - 1, 2**31 - 1, 10_000), seq=1)
