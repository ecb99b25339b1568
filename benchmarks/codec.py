"""Codec speed: our encode and stream decode next to pymavlink's and next to the floor our
own frame cannot beat, all measured in the same run.

    python benchmarks/codec.py [--json] [--quick]

Messages: our STATUS (72-byte payload) and a 10-sample TELEMETRY batch (225-byte
payload); pymavlink 2.4.x ATTITUDE (MAVLink 2, 28-byte payload).

* The baseline (the headline ratio) is pymavlink **as installed**: with ``fastcrc``, which
  pymavlink requires. A second line swaps in pymavlink's own pure-Python CRC
  (``x25crc = _x25crc_slow`` for that job only) for comparison with older figures.
* The floor: the same bytes as our frame made and read with nothing but the C calls our
  frame needs — one precompiled ``struct.Struct`` pack (or unpack) of header + fields, one
  ``zlib.crc32``, one ``cobs`` encode (or decode), the delimiter — no checks, no message
  objects. No codec for this frame format can be faster in CPython; we print our fraction
  of it, and the ratio to pymavlink the floor itself would reach (what the format allows).
* A profile of one encode: ns per call of each C building block, measured in the same run,
  so the gap between ours and the floor can be read off.

Decoding is a stream fed in 4 KiB chunks on all sides. Each figure is the best of several
repeats, in CPU time of this process, the jobs taking turns. Ratios: ours / baseline, the
lower of our two messages.
"""

from __future__ import annotations

import argparse
import importlib.metadata
import json
import platform
import struct
import time
import zlib
from collections.abc import Callable
from functools import partial
from typing import Any

from cobs import cobs
from pymavlink.dialects.v20 import common as mavlink2

from protocol import (
    CRC_RESIDUE,
    DeviceState,
    SampleFlags,
    Status,
    StreamDecoder,
    Telemetry,
    TelemetrySample,
    encode,
    pack_samples,
)

CHUNK_BYTES = 4096
GOAL_RATIO_VS_PYMAVLINK = 10.0
GOAL_FRACTION_OF_FLOOR = 0.6


def _rate(fn: Callable[[], int], min_time_s: float) -> float:
    """Items per CPU second: fn() does some items and returns how many; run for min_time_s.

    CPU time of this process (time.process_time), not wall time: on a shared machine the
    time the process waits for a core would count against whichever job it hit."""
    items = 0
    t0 = time.process_time()
    while True:
        items += fn()
        dt = time.process_time() - t0
        if dt >= min_time_s:
            return items / dt


def _encoder(make: Callable[[], Any], n: int = 2000) -> Callable[[], int]:
    def run() -> int:
        for _ in range(n):
            make()
        return n

    return run


def _chunks(stream: bytes) -> list[bytes]:
    return [stream[i : i + CHUNK_BYTES] for i in range(0, len(stream), CHUNK_BYTES)]


def ours_messages() -> tuple[Status, Telemetry]:
    status = Status(
        int(DeviceState.MOVING), 0x83, 0, 123_456_789, 12_500, 12_600, 36_000, 850,
        60_000, 8_000, 6_000, 500, 1000, 17, 1_234_567, 4321, 2, 4300, 3, 0,
        80, 12_345, 11_000, 0, 0, 150, 0, 0, 0,
    )  # fmt: skip
    flags = int(SampleFlags.HOMED | SampleFlags.ADVANCING)
    samples = [
        TelemetrySample(1_000_000 + 1000 * i, 12_500 + i, 12_600 + i, 36_000 + 36 * i,
                        850 + i, int(DeviceState.MOVING), flags, i % 2)
        for i in range(10)
    ]  # fmt: skip
    return status, Telemetry(1000, pack_samples(samples))


def floor_codec(msg: Any, frame: bytes) -> tuple[Callable[[], bytes], Callable[[list[bytes]], int]]:
    """The floor for one of our frames: (encode, decode of a chunked stream) done with the
    C calls alone, on the message's own precompiled struct (header, fields, records as one
    ``Ns`` field): encode = pack + crc32 + cobs + delimiter; decode = split + cobs + crc32
    check + one unpack into the field values. No checks, no message objects."""
    from protocol.codec import _CODECS  # the message's precompiled Struct

    codec = _CODECS[type(msg)]
    values: tuple[Any, ...] = (1, codec.msg_id, 0, 1234, *msg)
    fmt = codec.struct
    if codec.array_spec is not None:
        values = (*values[:-1], len(msg[-1]) // codec.record_bytes, msg[-1])
        fmt = struct.Struct(codec.struct.format + f"{len(msg[-1])}s")
    pack, unpack_from = fmt.pack, fmt.unpack_from
    cobs_encode, cobs_decode, crc32 = cobs.encode, cobs.decode, zlib.crc32
    crc_pack = struct.Struct("<I").pack
    residue = CRC_RESIDUE

    def encode_floor() -> bytes:
        b = pack(*values)
        out: bytes = cobs_encode(b + crc_pack(crc32(b))) + b"\x00"
        return out

    def decode_floor(chunks: list[bytes]) -> int:
        got = 0
        pending = b""
        for c in chunks:
            parts = c.split(b"\x00")
            parts[0] = pending + parts[0]
            pending = parts.pop()
            for p in parts:
                r = cobs_decode(p)
                if crc32(r) == residue:
                    unpack_from(r)
                    got += 1
        return got

    assert encode_floor() == frame, "the floor must make the very same bytes"
    return encode_floor, decode_floor


def profile_ns(frame: bytes, min_time_s: float) -> dict[str, float]:
    """ns per call of each building block of one encode/decode of this frame."""
    raw = cobs.decode(frame[:-1])
    body = raw[:-4]
    crc_pack = struct.Struct("<I").pack
    with_crc = body + crc_pack(zlib.crc32(body))
    packed = cobs.encode(with_crc)

    def ns(fn: Callable[[], Any]) -> float:
        return 1e9 / _rate(_encoder(fn), min_time_s)

    return {
        "crc32_ns": ns(partial(zlib.crc32, body)),
        "cobs_encode_ns": ns(partial(cobs.encode, with_crc)),
        "cobs_decode_ns": ns(partial(cobs.decode, packed)),
    }


def measure(repeats: int, min_time_s: float, n_frames: int) -> dict[str, Any]:
    """Rates of all jobs, each the best of `repeats`; the jobs take turns within each
    repeat so that a busy machine slows every side alike."""
    status, telemetry = ours_messages()
    out: dict[str, Any] = {}
    jobs: dict[str, Callable[[], int]] = {}
    for name, msg in (("status", status), ("telemetry10", telemetry)):
        frame = encode(msg, 1234)
        out[f"ours_{name}_frame_bytes"] = len(frame)
        jobs[f"ours_{name}_encode_per_s"] = _encoder(partial(encode, msg, 1234))
        chunks = _chunks(frame * n_frames)

        def decode(chunks: list[bytes] = chunks) -> int:
            dec = StreamDecoder()
            got = 0
            for c in chunks:
                got += len(dec.feed(c))
            assert got == n_frames, got
            return got

        jobs[f"ours_{name}_decode_per_s"] = decode
        floor_encode, floor_decode = floor_codec(msg, frame)
        jobs[f"floor_{name}_encode_per_s"] = _encoder(floor_encode)

        def decode_floor(chunks: list[bytes] = chunks, fn: Any = floor_decode) -> int:
            got: int = fn(chunks)
            assert got == n_frames, got
            return got

        jobs[f"floor_{name}_decode_per_s"] = decode_floor

    mav = mavlink2.MAVLink(None, srcSystem=1, srcComponent=1)
    att = mav.attitude_encode(123456, 0.1, -0.2, 1.5, 0.01, -0.02, 0.03)
    frame = att.pack(mav)
    out["pymavlink_attitude_frame_bytes"] = len(frame)
    mav_chunks = _chunks(bytes(frame) * n_frames)

    def mav_decode() -> int:
        parser = mavlink2.MAVLink(None)
        got = 0
        for c in mav_chunks:
            got += len(parser.parse_buffer(c) or ())
        assert got == n_frames, got
        return got

    def pure_crc(job: Callable[[], int]) -> Callable[[], int]:
        """The job with pymavlink's own pure-Python CRC (as if fastcrc were missing)."""

        def run() -> int:
            installed = mavlink2.x25crc
            mavlink2.x25crc = mavlink2._x25crc_slow
            try:
                return job()
            finally:
                mavlink2.x25crc = installed

        return run

    mav_encode = _encoder(lambda: att.pack(mav))
    jobs["pymavlink_attitude_encode_per_s"] = mav_encode
    jobs["pymavlink_attitude_decode_per_s"] = mav_decode
    jobs["pymavlink_purecrc_attitude_encode_per_s"] = pure_crc(mav_encode)
    jobs["pymavlink_purecrc_attitude_decode_per_s"] = pure_crc(mav_decode)
    for key in jobs:
        out[key] = 0.0
    for _ in range(repeats):
        for key, job in jobs.items():
            out[key] = max(out[key], _rate(job, min_time_s))

    def lower(prefix: str, op: str) -> float:
        return min(out[f"{prefix}_status_{op}_per_s"], out[f"{prefix}_telemetry10_{op}_per_s"])

    for op in ("encode", "decode"):
        mav_rate = out[f"pymavlink_attitude_{op}_per_s"]
        out[f"{op}_ratio_vs_pymavlink"] = lower("ours", op) / mav_rate
        out[f"{op}_ratio_vs_pymavlink_purecrc"] = (
            lower("ours", op) / out[f"pymavlink_purecrc_attitude_{op}_per_s"]
        )
        out[f"floor_{op}_ratio_vs_pymavlink"] = lower("floor", op) / mav_rate
        for k in ("status", "telemetry10"):
            out[f"{op}_ratio_{k}"] = out[f"ours_{k}_{op}_per_s"] / mav_rate
            out[f"{op}_fraction_of_floor_{k}"] = (
                out[f"ours_{k}_{op}_per_s"] / out[f"floor_{k}_{op}_per_s"]
            )
        out[f"{op}_fraction_of_floor"] = min(
            out[f"{op}_fraction_of_floor_status"], out[f"{op}_fraction_of_floor_telemetry10"]
        )
    status_frame = encode(status, 1234)
    out["profile_status"] = profile_ns(status_frame, min_time_s) | {
        "ours_encode_ns": 1e9 / out["ours_status_encode_per_s"],
        "floor_encode_ns": 1e9 / out["floor_status_encode_per_s"],
        "ours_decode_ns": 1e9 / out["ours_status_decode_per_s"],
        "floor_decode_ns": 1e9 / out["floor_status_decode_per_s"],
    }
    out["goal_ratio"] = GOAL_RATIO_VS_PYMAVLINK
    out["goal_fraction_of_floor"] = GOAL_FRACTION_OF_FLOOR
    out["pymavlink_version"] = importlib.metadata.version("pymavlink")
    out["fastcrc_version"] = importlib.metadata.version("fastcrc")
    out["fastcrc_in_use"] = mavlink2.mcrf4xx is not None
    out["baseline"] = (
        f"pymavlink {out['pymavlink_version']} MAVLink {mavlink2.WIRE_PROTOCOL_VERSION} "
        f"ATTITUDE as installed, with fastcrc {out['fastcrc_version']}"
    )
    ratio = min(out["encode_ratio_vs_pymavlink"], out["decode_ratio_vs_pymavlink"])
    fraction = min(out["encode_fraction_of_floor"], out["decode_fraction_of_floor"])
    out["goals_met"] = {
        "ratio_ge_10x_pymavlink": ratio >= GOAL_RATIO_VS_PYMAVLINK,
        "fraction_of_floor_ge_60pct": fraction >= GOAL_FRACTION_OF_FLOOR,
    }
    out["decode_chunk_bytes"] = CHUNK_BYTES
    out["timer"] = "time.process_time (CPU time of this process)"
    out["python"] = platform.python_version()
    return out


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--json", action="store_true", help="print one JSON object")
    parser.add_argument("--quick", action="store_true", help="fewer repeats (smoke run)")
    args = parser.parse_args()
    repeats, min_time_s, n_frames = (2, 0.05, 500) if args.quick else (5, 0.3, 2000)
    res = measure(repeats, min_time_s, n_frames)
    if args.json:
        print(json.dumps(res, sort_keys=True))
        return 0
    print(f"baseline: {res['baseline']}")
    kinds = ("status", "telemetry10")
    rows = [(f"ours {k}", f"ours_{k}", f"{res[f'ours_{k}_frame_bytes']} B") for k in kinds]
    rows += [(f"floor {k}", f"floor_{k}", "C calls only") for k in kinds]
    mav_bytes = res["pymavlink_attitude_frame_bytes"]
    rows += [
        ("pymavlink ATTITUDE", "pymavlink_attitude", f"{mav_bytes} B, with fastcrc"),
        ("pymavlink pure CRC", "pymavlink_purecrc_attitude", "its pure-Python CRC"),
    ]
    for label, key, note in rows:
        print(
            f"{label:20s} encode {res[f'{key}_encode_per_s']:>10,.0f}/s "
            f"decode {res[f'{key}_decode_per_s']:>10,.0f}/s  ({note})"
        )
    print(
        "vs pymavlink with fastcrc (lower of our two): "
        f"encode {res['encode_ratio_vs_pymavlink']:.1f}x, "
        f"decode {res['decode_ratio_vs_pymavlink']:.1f}x (goal >= {GOAL_RATIO_VS_PYMAVLINK:.0f}x);"
        f" the floor itself reaches {res['floor_encode_ratio_vs_pymavlink']:.1f}x / "
        f"{res['floor_decode_ratio_vs_pymavlink']:.1f}x"
    )
    print(
        "vs pymavlink with its pure-Python CRC: "
        f"encode {res['encode_ratio_vs_pymavlink_purecrc']:.1f}x, "
        f"decode {res['decode_ratio_vs_pymavlink_purecrc']:.1f}x"
    )
    print(
        f"fraction of the floor: encode {100 * res['encode_fraction_of_floor']:.0f} %, "
        f"decode {100 * res['decode_fraction_of_floor']:.0f} % "
        f"(goal >= {100 * GOAL_FRACTION_OF_FLOOR:.0f} %)"
    )
    p = res["profile_status"]
    print(
        f"profile, STATUS, ns per frame: encode ours {p['ours_encode_ns']:.0f} = "
        f"floor {p['floor_encode_ns']:.0f} (crc32 {p['crc32_ns']:.0f}, "
        f"cobs {p['cobs_encode_ns']:.0f}, the rest pack, concatenation, call) "
        f"+ {p['ours_encode_ns'] - p['floor_encode_ns']:.0f} (field checks, message unpacking)"
    )
    print(
        f"                               decode ours {p['ours_decode_ns']:.0f} = "
        f"floor {p['floor_decode_ns']:.0f} (cobs {p['cobs_decode_ns']:.0f}, "
        f"crc32 {p['crc32_ns']:.0f}, the rest unpack, split, loop) "
        f"+ {p['ours_decode_ns'] - p['floor_decode_ns']:.0f} (header checks, message and "
        "Frame objects, counters)"
    )
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
