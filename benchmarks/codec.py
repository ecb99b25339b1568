"""Codec speed: our encode and stream decode next to pymavlink's, measured in the same run.

    python benchmarks/codec.py [--json] [--quick]

Messages: our STATUS (72-byte payload) and a 10-sample TELEMETRY batch (225-byte
payload); pymavlink 2.4.x ATTITUDE (MAVLink 2, 28-byte payload) with its pure-Python
CRC: fastcrc is blocked before pymavlink is imported (`sys.modules["fastcrc"] = None`),
so the baseline is pure Python like our codec (ours uses zlib.crc32 and the cobs C
extension). Decoding is a stream fed in 4 KiB chunks on both sides. Each figure is the
best of several repeats, in CPU time of this process, the jobs taking turns.
Ratios: ours / pymavlink, the lower of our two messages.
"""

from __future__ import annotations

import argparse
import importlib.metadata
import json
import platform
import sys
import time
from collections.abc import Callable
from functools import partial
from typing import Any

sys.modules["fastcrc"] = None  # type: ignore[assignment]  # force pymavlink's pure-Python CRC

from pymavlink.dialects.v20 import common as mavlink2  # noqa: E402

from protocol import (  # noqa: E402
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
    )  # fmt: skip
    flags = int(SampleFlags.HOMED | SampleFlags.ADVANCING)
    samples = [
        TelemetrySample(1_000_000 + 1000 * i, 12_500 + i, 12_600 + i, 36_000 + 36 * i,
                        850 + i, int(DeviceState.MOVING), flags)
        for i in range(10)
    ]  # fmt: skip
    return status, Telemetry(1000, pack_samples(samples))


def measure(repeats: int, min_time_s: float, n_frames: int) -> dict[str, Any]:
    """Rates of all six jobs, each the best of `repeats`; the jobs take turns within each
    repeat so that a busy machine slows ours and pymavlink's alike."""
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

    mav = mavlink2.MAVLink(None, srcSystem=1, srcComponent=1)
    att = mav.attitude_encode(123456, 0.1, -0.2, 1.5, 0.01, -0.02, 0.03)
    frame = att.pack(mav)
    out["pymavlink_attitude_frame_bytes"] = len(frame)
    jobs["pymavlink_attitude_encode_per_s"] = _encoder(lambda: att.pack(mav))
    mav_chunks = _chunks(bytes(frame) * n_frames)

    def mav_decode() -> int:
        parser = mavlink2.MAVLink(None)
        got = 0
        for c in mav_chunks:
            got += len(parser.parse_buffer(c) or ())
        assert got == n_frames, got
        return got

    jobs["pymavlink_attitude_decode_per_s"] = mav_decode
    for key in jobs:
        out[key] = 0.0
    for _ in range(repeats):
        for key, job in jobs.items():
            out[key] = max(out[key], _rate(job, min_time_s))

    mav_enc = out["pymavlink_attitude_encode_per_s"]
    mav_dec = out["pymavlink_attitude_decode_per_s"]
    out["encode_ratio_vs_pymavlink"] = (
        min(out["ours_status_encode_per_s"], out["ours_telemetry10_encode_per_s"]) / mav_enc
    )
    out["decode_ratio_vs_pymavlink"] = (
        min(out["ours_status_decode_per_s"], out["ours_telemetry10_decode_per_s"]) / mav_dec
    )
    for k in ("status", "telemetry10"):
        out[f"encode_ratio_{k}"] = out[f"ours_{k}_encode_per_s"] / mav_enc
        out[f"decode_ratio_{k}"] = out[f"ours_{k}_decode_per_s"] / mav_dec
    out["goal_ratio"] = 10.0
    out["pymavlink_version"] = importlib.metadata.version("pymavlink")
    out["baseline"] = (
        f"pymavlink {out['pymavlink_version']} MAVLink {mavlink2.WIRE_PROTOCOL_VERSION} "
        "ATTITUDE, pure-Python CRC (fastcrc blocked via sys.modules)"
    )
    out["goal_met"] = min(out["encode_ratio_vs_pymavlink"], out["decode_ratio_vs_pymavlink"]) >= 10
    out["fastcrc_blocked"] = mavlink2.mcrf4xx is None
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
    for k in ("status", "telemetry10"):
        print(
            f"ours {k:12s} encode {res[f'ours_{k}_encode_per_s']:>10,.0f}/s "
            f"decode {res[f'ours_{k}_decode_per_s']:>10,.0f}/s "
            f"({res[f'ours_{k}_frame_bytes']} B/frame)"
        )
    print(
        f"pymavlink ATTITUDE  encode {res['pymavlink_attitude_encode_per_s']:>10,.0f}/s "
        f"decode {res['pymavlink_attitude_decode_per_s']:>10,.0f}/s "
        f"({res['pymavlink_attitude_frame_bytes']} B/frame)"
    )
    print(
        f"ratio (lower of our two): encode {res['encode_ratio_vs_pymavlink']:.1f}x, "
        f"decode {res['decode_ratio_vs_pymavlink']:.1f}x (goal >= 10x)"
    )
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
