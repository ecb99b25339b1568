"""Link speed over a real pty, measured in one run against a raw baseline.

    python benchmarks/link.py [--json] [--duration-s 60] [--samples 5000]

1. Raw echo (the baseline): pyserial on a pty slave writes 16 B and reads them back from
   an echo process (os.read/os.write on the master) — the floor for any round trip here.
2. Device floor (a second baseline): the same STOP → ACK exchange with the served device
   done with bare os.write/select/os.read on a pre-encoded frame — what the simulated
   device's own Python costs, with no host library at all.
3. Command round trip: NeedleDriver over a pty to ``python -m sim_device serve --pty`` in
   another process (real time); ``link.request(Stop())`` → ACK, timed with perf_counter.
   All three are measured in alternating blocks so that machine load hits them alike.
4. Telemetry: 1 kHz (batches of 10) for --duration-s while the host only keeps the link
   alive; samples lost (from the device's counter) and the host process's CPU time
   (all threads) / wall time.

Goals (issue 4): rtt median ≤ 2× raw echo, rtt p99 ≤ 500 µs, 0 samples lost, CPU ≤ 10 %.
"""

from __future__ import annotations

import argparse
import json
import os
import select
import signal
import subprocess
import sys
import time
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

import serial

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from firmware_host.client import NeedleDriver  # noqa: E402
from protocol import (  # noqa: E402
    PROTOCOL_VERSION,
    SCHEMA_HASH,
    Heartbeat,
    Hello,
    Stop,
    encode,
)

ECHO = """
import os, sys, tty
m, s = os.openpty()
tty.setraw(m); tty.setraw(s)
print(os.ttyname(s), flush=True)
while True:
    data = os.read(m, 4096)
    if not data:
        break
    os.write(m, data)
"""


class _Children:
    """Every process this benchmark starts, killed on any way out of the block (an error,
    Ctrl-C, SIGTERM — main() turns it into SystemExit): none outlives the run."""

    def __init__(self) -> None:
        self.procs: list[subprocess.Popen[str]] = []

    def spawn(self, args: list[str]) -> str:
        """Start a server that prints its pty path first; return the path."""
        proc = subprocess.Popen(args, stdout=subprocess.PIPE, text=True, cwd=ROOT)
        self.procs.append(proc)  # before anything can fail: the finally kills it
        assert proc.stdout is not None
        path = proc.stdout.readline().strip()
        if not path:
            raise SystemExit(f"no pty path from {' '.join(args)}")
        return path

    def kill_all(self) -> None:
        for proc in self.procs:
            if proc.poll() is None:
                proc.terminate()
        for proc in self.procs:
            try:
                proc.wait(5)
            except subprocess.TimeoutExpired:
                proc.kill()
                proc.wait(5)


@contextmanager
def _children() -> Iterator[_Children]:
    kids = _Children()
    try:
        yield kids
    finally:
        kids.kill_all()


def _announce(kids: _Children) -> None:
    # (stderr, so --json's stdout stays one object; tests wait for this line)
    pids = " ".join(str(p.pid) for p in kids.procs)
    print(f"link benchmark: servers {pids}", file=sys.stderr, flush=True)


def _pct(sorted_s: list[float], q: float) -> float:
    return sorted_s[min(len(sorted_s) - 1, int(q * len(sorted_s)))] * 1e6


def _device_floor_once(fd: int, seq: int) -> float:
    frame = encode(Stop(), seq)
    t0 = time.perf_counter()
    os.write(fd, frame)
    buf = b""
    while not (buf.endswith(b"\x00") and len(buf) >= 8):
        select.select([fd], [], [], 1.0)
        buf += os.read(fd, 4096)
    return time.perf_counter() - t0


def measure_rtt(samples: int, block: int = 250) -> dict[str, Any]:
    raw: list[float] = []
    floor: list[float] = []
    cmd: list[float] = []
    with _children() as kids:
        echo_path = kids.spawn([sys.executable, "-c", ECHO])
        dev_path = kids.spawn([sys.executable, "-m", "sim_device", "serve", "--pty"])
        floor_path = kids.spawn([sys.executable, "-m", "sim_device", "serve", "--pty"])
        _announce(kids)
        ser = serial.Serial(echo_path, timeout=1.0)
        floor_ser = serial.Serial(floor_path, timeout=1.0)
        floor_fd = floor_ser.fileno()
        floor_ser.write(encode(Hello(PROTOCOL_VERSION, SCHEMA_HASH), 1))
        floor_ser.read_until(b"\x00")  # IDENTITY
        payload = b"\x55" * 16
        nd = NeedleDriver.open(dev_path)
        try:
            perf = time.perf_counter
            request = nd.link.request
            stop = Stop()
            seq = 2
            for _ in range(50):  # warm up every path
                ser.write(payload)
                ser.read(16)
                request(stop)
                _device_floor_once(floor_fd, seq)
                seq += 1
            while len(raw) < samples:
                for _ in range(block):
                    t0 = perf()
                    ser.write(payload)
                    got = ser.read(16)
                    raw.append(perf() - t0)
                    assert len(got) == 16
                for _ in range(block):
                    # the served device heartbeats every 100 ms when otherwise silent and
                    # keeps watch on us; keep its seq away from 0
                    floor.append(_device_floor_once(floor_fd, seq))
                    seq = seq % 60000 + 2
                floor_ser.write(encode(Heartbeat(0)))
                for _ in range(block):
                    t0 = perf()
                    request(stop)
                    cmd.append(perf() - t0)
            retransmits = nd.stats.retransmits
        finally:
            nd.close()
            ser.close()
            floor_ser.close()
    raw.sort()
    floor.sort()
    cmd.sort()
    return {
        "raw_echo_median_us": _pct(raw, 0.5),
        "raw_echo_p99_us": _pct(raw, 0.99),
        "device_floor_median_us": _pct(floor, 0.5),
        "device_floor_p99_us": _pct(floor, 0.99),
        "rtt_median_us": _pct(cmd, 0.5),
        "rtt_p99_us": _pct(cmd, 0.99),
        "rtt_max_us": cmd[-1] * 1e6,
        "rtt_samples": len(cmd),
        "rtt_retransmits": retransmits,
    }


def measure_telemetry(duration_s: float) -> dict[str, Any]:
    with _children() as kids:
        dev_path = kids.spawn([sys.executable, "-m", "sim_device", "serve", "--pty"])
        _announce(kids)
        with NeedleDriver.open(dev_path) as nd:
            nd.set_telemetry(1000, 10)
            got = nd.telemetry.samples_received
            nd.wait_until(lambda: nd.telemetry.samples_received > got, 2.0)  # stream running
            start_received = nd.telemetry.samples_received
            cpu0 = time.process_time()
            wall0 = time.monotonic()
            nd.wait_s(duration_s)
            cpu_s = time.process_time() - cpu0
            wall_s = time.monotonic() - wall0
            received = nd.telemetry.samples_received - start_received
            lost = nd.telemetry.samples_lost
            link_lost = nd.stats.telemetry_samples_lost
            nd.set_telemetry(0, 10)
    return {
        "telemetry_duration_s": wall_s,
        "telemetry_samples": received,
        "telemetry_rate_hz": received / wall_s,
        "telemetry_samples_lost": max(lost, link_lost),
        "host_cpu_fraction": cpu_s / wall_s,
    }


def _exit_on_sigterm(signum: int, frame: Any) -> None:
    raise SystemExit(128 + signum)  # unwinds through every finally: servers killed


def main() -> None:
    signal.signal(signal.SIGTERM, _exit_on_sigterm)
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--json", action="store_true", help="print one JSON object")
    ap.add_argument("--duration-s", type=float, default=60.0, help="telemetry run length")
    ap.add_argument("--samples", type=int, default=5000, help="round trips of each kind")
    args = ap.parse_args()
    result: dict[str, Any] = {"python": sys.version.split()[0], "cpus": os.cpu_count()}
    result.update(measure_rtt(args.samples))
    result["rtt_median_ratio_vs_raw"] = result["rtt_median_us"] / result["raw_echo_median_us"]
    result["rtt_median_ratio_vs_device_floor"] = (
        result["rtt_median_us"] / result["device_floor_median_us"]
    )
    result.update(measure_telemetry(args.duration_s))
    result["goals_met"] = {
        "rtt_median_le_2x_raw": result["rtt_median_ratio_vs_raw"] <= 2.0,
        "rtt_p99_le_500us": result["rtt_p99_us"] <= 500.0,
        "telemetry_zero_loss": result["telemetry_samples_lost"] == 0,
        "host_cpu_le_10pct": result["host_cpu_fraction"] <= 0.10,
    }
    if args.json:
        print(json.dumps(result))
        return
    print(
        f"raw pty echo        median {result['raw_echo_median_us']:7.1f} µs  "
        f"p99 {result['raw_echo_p99_us']:7.1f} µs"
    )
    print(
        f"device floor        median {result['device_floor_median_us']:7.1f} µs  "
        f"p99 {result['device_floor_p99_us']:7.1f} µs  (bare fd, same served device)"
    )
    print(
        f"command round trip  median {result['rtt_median_us']:7.1f} µs  "
        f"p99 {result['rtt_p99_us']:7.1f} µs  "
        f"({result['rtt_median_ratio_vs_raw']:.2f}× raw, "
        f"{result['rtt_median_ratio_vs_device_floor']:.2f}× device floor)"
    )
    print(
        f"telemetry {result['telemetry_rate_hz']:.0f} Hz for "
        f"{result['telemetry_duration_s']:.1f} s: {result['telemetry_samples_lost']} lost, "
        f"host CPU {100 * result['host_cpu_fraction']:.1f} % of one core"
    )
    print(
        "goals:", ", ".join(f"{k} {'yes' if v else 'NO'}" for k, v in result["goals_met"].items())
    )


if __name__ == "__main__":
    main()
