#!/usr/bin/env python3
"""Run the needle-driver firmware image on an emulated RP2040 (rp2040js under Node), the
rig at its pins, its UART0 on a pseudo-terminal.

    python firmware/ports/rp2040/run_rp2040.py [--image BIN] [-- BENCH OPTIONS]

prints the pty path as its first line (as ``needlectl sim serve --pty`` does), then runs
until SIGTERM or SIGINT. Bench options are the bench model's (firmware/bench), as the
posix port takes them: ``--block-mm -1``, ``--thrust-n 10``, ``--noise-mn 20``...
SIGUSR1 presses the rig's e-stop button, SIGUSR2 releases it.

This process owns the pty (it keeps the slave end open, in raw mode, so a host may come
and go) and the bench model (build/rp2040/nd-bench-link, a host process: the harness is
JavaScript, the bench is C — one description for every port); the harness
(harness/run.mjs) gets their descriptors.
"""

from __future__ import annotations

import argparse
import fcntl
import os
import shutil
import signal
import subprocess
import sys
import threading
import tty
from pathlib import Path

HERE = Path(__file__).resolve().parent
BUILD = HERE.parent.parent / "build" / "rp2040"
HARNESS = HERE / "harness"
NODE_MODULE = HARNESS / "node_modules" / "rp2040js"


def missing_tools() -> str | None:
    """The one line saying what to install, or None when the port can run."""
    if shutil.which("node") is None:
        return "the RP2040 emulator needs Node.js (node): apt-get install nodejs"
    if not NODE_MODULE.is_dir():
        return f"the RP2040 emulator needs rp2040js: npm ci --prefix {HARNESS}"
    return None


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--image", default=str(BUILD / "nd-firmware.bin"))
    parser.add_argument("--bench-link", default=str(BUILD / "nd-bench-link"))
    parser.add_argument("--unthrottled", action="store_true", help="as fast as it goes")
    parser.add_argument("bench", nargs="*", help="bench model options (after --)")
    ns = parser.parse_args(argv)
    why = missing_tools()
    if why is None and not Path(ns.image).is_file():
        why = f"no firmware image at {ns.image} (make -C firmware rp2040)"
    if why is not None:
        print(f"run_rp2040: {why}", file=sys.stderr)
        return 2

    master, slave = os.openpty()
    tty.setraw(slave)
    flags = fcntl.fcntl(master, fcntl.F_GETFL)
    fcntl.fcntl(master, fcntl.F_SETFL, flags | os.O_NONBLOCK)
    to_bench_r, to_bench_w = os.pipe()
    from_bench_r, from_bench_w = os.pipe()
    bench = subprocess.Popen([ns.bench_link, *ns.bench], stdin=to_bench_r, stdout=from_bench_w)
    os.close(to_bench_r)
    os.close(from_bench_w)
    command = [
        "node", str(HARNESS / "run.mjs"),
        "--image", ns.image,
        "--pty-fd", str(master),
        "--bench-in", str(to_bench_w),
        "--bench-out", str(from_bench_r),
    ]  # fmt: skip
    if ns.unthrottled:
        command += ["--unthrottled", "1"]
    harness = subprocess.Popen(
        command, pass_fds=(master, to_bench_w, from_bench_r), stdout=subprocess.PIPE, text=True
    )
    # the harness holds them now; the bench sees the end of its input when it goes
    os.close(master)
    os.close(to_bench_w)
    os.close(from_bench_r)
    # the pty is named once the image runs: Node takes ~0.5 s to start on a loaded
    # machine, and a host's first HELLO would go unanswered
    assert harness.stdout is not None
    if harness.stdout.readline().strip() != "ready":
        harness.wait()
        print(f"run_rp2040: the harness did not start ({harness.returncode})", file=sys.stderr)
        bench.terminate()
        bench.wait()
        return 1
    print(os.ttyname(slave), flush=True)

    stop = threading.Event()
    for sig in (signal.SIGTERM, signal.SIGINT):
        signal.signal(sig, lambda *_: stop.set())
    for sig in (signal.SIGUSR1, signal.SIGUSR2):  # the e-stop button, passed on
        signal.signal(sig, lambda signum, _: harness.send_signal(signum))
    code = 0
    while not stop.wait(0.2):
        if harness.poll() is not None:
            print(f"run_rp2040: the harness exited with {harness.returncode}", file=sys.stderr)
            code = 1
            break
    for proc in (harness, bench):
        if proc.poll() is None:
            proc.terminate()
            try:
                proc.wait(10)
            except subprocess.TimeoutExpired:
                proc.kill()
        proc.wait()
    os.close(slave)
    return code


if __name__ == "__main__":
    sys.exit(main())
