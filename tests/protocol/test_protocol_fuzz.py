"""A seeded run of 120,000 random and mutated frames through one decoder.

It must never raise, and no frame whose bytes were altered may come out as a message
(what a CRC collision would let through): that count must be 0. About 2-4 s."""

from __future__ import annotations

import random
from collections.abc import Callable

from protocol import StreamDecoder, codegen, encode
from protocol.schema import MESSAGES, MSG_ID

FRAMES = 120_000
SEED = 20261128

Mutation = Callable[[random.Random, bytes], bytes]


def _flip_bits(rng: random.Random, f: bytes) -> bytes:
    b = bytearray(f)
    for _ in range(rng.randint(1, 4)):
        i = rng.randrange(len(b) * 8)
        b[i // 8] ^= 1 << (i % 8)
    return bytes(b)


def _replace_byte(rng: random.Random, f: bytes) -> bytes:
    i = rng.randrange(len(f))
    return f[:i] + bytes([rng.randrange(256)]) + f[i + 1 :]


def _insert(rng: random.Random, f: bytes) -> bytes:
    i = rng.randrange(len(f))
    return f[:i] + rng.randbytes(rng.randint(1, 3)) + f[i:]


def _delete(rng: random.Random, f: bytes) -> bytes:
    i = rng.randrange(len(f) - 1)
    return f[:i] + f[i + rng.randint(1, 3) :]


def _truncate(rng: random.Random, f: bytes) -> bytes:
    return f[: rng.randrange(len(f) - 1)] + b"\x00"


def _swap(rng: random.Random, f: bytes) -> bytes:
    b = bytearray(f)
    i, j = rng.randrange(len(b)), rng.randrange(len(b))
    b[i], b[j] = b[j], b[i]
    return bytes(b)


def _splice(rng: random.Random, f: bytes) -> bytes:
    other = rng.choice(_ORIGINALS)
    i = rng.randrange(1, len(f))
    return f[:i] + other[rng.randrange(len(other)) :]


def _garbage(rng: random.Random, f: bytes) -> bytes:
    return rng.randbytes(rng.randint(1, 300))


_ORIGINALS: list[bytes] = []  # the run's valid frames (filled by the test)

MUTATIONS: tuple[Mutation, ...] = (
    _flip_bits,
    _flip_bits,
    _replace_byte,
    _insert,
    _delete,
    _truncate,
    _swap,
    _splice,
    _garbage,
)


def _random_message(rng: random.Random) -> tuple[type, dict[str, object]]:
    cls = rng.choice(MESSAGES)
    return cls, codegen.random_fields(cls, rng)


def test_fuzzed_frames_never_raise_and_never_pass_altered() -> None:
    rng = random.Random(SEED)
    dec = StreamDecoder()
    originals = [
        encode(codegen.build_message(*_random_message(rng)), rng.randrange(65536))
        for _ in range(500)
    ]
    _ORIGINALS[:] = originals
    genuine = set(originals)
    altered_through = 0
    intact_seen = 0
    mutated = 0
    for _ in range(FRAMES):
        frame = rng.choice(originals)
        bad = rng.choice(MUTATIONS)(rng, frame)
        # A delimiter first: each case starts in sync, whatever the previous one left.
        fed = b"\x00" + bad + b"\x00"
        for got in dec.feed(fed):
            # Genuine only if it is one of our frames and was sent whole between two
            # delimiters (a mutation can leave a frame intact, or splice in another one).
            again = encode(got.message, got.seq, got.flags)
            if again in genuine and again[:-1] in fed.split(b"\x00"):
                intact_seen += 1
            else:
                altered_through += 1
        mutated += bad != frame
    assert mutated > FRAMES * 0.95
    assert altered_through == 0, f"{altered_through} altered frames passed the CRC"
    s = dec.stats
    assert s.frames_ok == intact_seen
    assert s.frames_bad > FRAMES * 0.9
    assert s.crc_failures > 0 and s.malformed > 0 and s.oversize > 0
    assert {MSG_ID[m] for m in MESSAGES}  # every message type was among the originals
