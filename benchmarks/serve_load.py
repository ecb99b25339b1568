"""Load on the rig server: ten clients streaming telemetry and one running a procedure.

Starts a simulated rig in real time (`needlectl sim serve --pty`) and `needlectl serve` on
it, then, twice, with a fresh server each time: a PIERCE run alone (the baseline), and
the same run with ten WebSocket clients on TCP streaming every 1 kHz sample plus the
display stream. Each run is stopped after --run-s seconds of advancing (`needlectl stop`
from another process, as an operator would). Prints, per phase, from the server's own
figures: the procedure's control-loop lateness (p99 and max of how late each 10 ms
control wait returned), the gaps between the heartbeats it sent (p99, max; period 50 ms,
device watchdog 200 ms), telemetry samples lost on the link, and per client the samples
it received and the gaps in their numbering (samples lost on the way to clients).

    .venv/bin/python benchmarks/serve_load.py [--quick] [--clients N] [--run-s S]
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import signal
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

import aiohttp

from firmware.launch import stop

NEEDLECTL = Path(sys.executable).parent / "needlectl"


def _start(args: list[str], env: dict[str, str]) -> tuple[subprocess.Popen[str], str]:
    proc = subprocess.Popen(
        [str(NEEDLECTL), *args], stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True, env=env
    )
    assert proc.stdout is not None
    line = proc.stdout.readline().strip()
    if not line:
        raise SystemExit(f"{args[0]} did not start: {proc.stderr.read() if proc.stderr else ''}")
    return proc, line


def _stop(proc: subprocess.Popen[str]) -> None:
    stop(proc, signal.SIGINT, timeout_s=20)


def _cli(port: str, env: dict[str, str], *args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [str(NEEDLECTL), "--port", port, *args],
        capture_output=True,
        text=True,
        env=env,
        check=False,
        timeout=120,
    )


async def _stream(url: str, counts: dict[str, int], done: asyncio.Event) -> None:
    """One client: every sample (telemetry_full) and the display stream; counts gaps."""
    async with aiohttp.ClientSession() as session, session.ws_connect(url) as ws:
        await ws.send_str(
            json.dumps(
                {
                    "id": 1,
                    "op": "subscribe",
                    "args": {"topics": ["telemetry_full", "telemetry", "state"]},
                }
            )
        )
        expected: int | None = None
        while not done.is_set():
            try:
                msg = await asyncio.wait_for(ws.receive(), 0.5)
            except TimeoutError:
                continue
            if msg.type != aiohttp.WSMsgType.TEXT:
                counts["closed"] += 1
                return
            m = json.loads(msg.data)
            if m.get("type") != "telemetry_full":
                continue
            numbers = m["sample_number"]
            if expected is not None and numbers and numbers[0] != expected:
                counts["gap_samples"] += numbers[0] - expected
            if numbers:
                expected = numbers[-1] + 1
            counts["samples"] += len(numbers)


async def _phase(
    port: str, env: dict[str, str], n_clients: int, run_s: float
) -> tuple[dict[str, Any], list[dict[str, int]], float]:
    server, line = _start(["--port", port, "--json", "serve", "--http-port", "0"], env)
    try:
        base, token = json.loads(line)["web"].split("?", 1)  # the address carries the token
        ws_url = base.replace("http://", "ws://") + "api/ws?" + token
        home = _cli(port, env, "home")
        assert home.returncode == 0, home.stderr
        done = asyncio.Event()
        counts = [{"samples": 0, "gap_samples": 0, "closed": 0} for _ in range(n_clients)]
        tasks = [asyncio.create_task(_stream(ws_url, c, done)) for c in counts]
        run = subprocess.Popen(
            [str(NEEDLECTL), "-v", "--port", port, "run", "pierce", "--target-mm", "48"],
            stdout=subprocess.DEVNULL,
            stderr=subprocess.PIPE,
            text=True,
            env=env,
        )
        assert run.stderr is not None
        loop = asyncio.get_running_loop()
        while True:
            text = await loop.run_in_executor(None, run.stderr.readline)
            if not text or "phase advance" in text:
                break
        t0 = time.monotonic()
        await asyncio.sleep(run_s)  # the load lasts this long (a measuring window)
        _cli(port, env, "stop")
        await loop.run_in_executor(None, run.wait)
        elapsed_s = time.monotonic() - t0
        status_url = base + "api/status?" + token
        async with aiohttp.ClientSession() as session, session.get(status_url) as r:
            figures: dict[str, Any] = (await r.json())["server"]
        done.set()
        await asyncio.gather(*tasks)
        _cli(port, env, "home")
        return figures, counts, elapsed_s
    finally:
        _stop(server)


def main() -> int:
    ap = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    ap.add_argument("--clients", type=int, default=10)
    ap.add_argument("--run-s", type=float, default=20.0)
    ap.add_argument("--quick", action="store_true", help="8 s runs")
    ns = ap.parse_args()
    run_s = 8.0 if ns.quick else ns.run_s
    env = {k: v for k, v in os.environ.items() if k != "NEEDLECTL_PORT"}
    env["NEEDLECTL_RUNTIME_DIR"] = tempfile.mkdtemp(prefix="ndbench-")
    env["NEEDLECTL_RUNS_DIR"] = env["NEEDLECTL_RUNTIME_DIR"] + "/runs"  # every run is recorded
    sim, port = _start(
        ["sim", "serve", "--pty", "--lesion", "dense-calcified-cto", "--seed", "1"], env
    )
    try:
        print(f"rig server load: sim serve --pty ({port}), PIERCE run for {run_s:g} s per phase")
        print(
            f"{'phase':<22} {'late p99':>9} {'late max':>9} {'waits':>6} {'hb gap p99':>11}"
            f" {'hb gap max':>11} {'link lost':>9} {'client samples (min)':>21}"
            f" {'client gaps':>11} {'cut off':>7}"
        )
        for n in (0, ns.clients):
            figures, counts, _ = asyncio.run(_phase(port, env, n, run_s))
            samples = min((c["samples"] for c in counts), default=0)
            gaps = sum(c["gap_samples"] for c in counts)
            name = "run alone" if n == 0 else f"run + {n} streaming"
            print(
                f"{name:<22} {figures['control_lateness_p99_ms']:>7.2f}ms"
                f" {figures['control_lateness_max_ms']:>7.2f}ms {figures['control_waits']:>6}"
                f" {figures['heartbeat_gap_p99_ms']:>9.2f}ms"
                f" {figures['heartbeat_gap_max_ms']:>9.2f}ms"
                f" {figures['telemetry_samples_lost']:>9} {samples if n else '-':>21}"
                f" {gaps if n else '-':>11} {figures['clients_cut_off']:>7}"
            )
        print(
            "late: how late each 10 ms control wait of the procedure returned; hb gap: between"
            " heartbeats sent (period 50 ms, device watchdog 200 ms); link lost: telemetry"
            " samples lost between device and server; client gaps: samples missing in what"
            " the clients received"
        )
    finally:
        _stop(sim)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
