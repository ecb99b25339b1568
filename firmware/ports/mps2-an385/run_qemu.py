#!/usr/bin/env python3
"""Run the needle-driver firmware on QEMU's emulated MPS2 AN385 (Cortex-M3), its UART0
on a pseudo-terminal.

    python firmware/ports/mps2-an385/run_qemu.py [ELF]

prints the pty path as its first line of output (as ``needlectl sim serve --pty`` does),
then waits; SIGTERM, SIGINT or the end of its standard input (a pipe or a terminal:
Ctrl-D) stop QEMU, which is then reaped. Point a host at
the pty: ``needlectl --port /dev/pts/N ...`` or ``pytest hil_tests --port /dev/pts/N``.

Bytes the firmware sends while no host holds the pty open are lost (QEMU discards them),
which the protocol tolerates: the host says HELLO and the device answers.

Tests import :func:`start_qemu` and :func:`stop_qemu`.
"""

from __future__ import annotations

import argparse
import os
import re
import select
import shutil
import signal
import stat
import subprocess
import sys
import threading
import time
from collections.abc import Callable
from pathlib import Path
from typing import BinaryIO

HERE = Path(__file__).resolve().parent
DEFAULT_ELF = HERE.parent.parent / "build" / "mps2-an385" / "nd-firmware.elf"
QEMU = "qemu-system-arm"
PTY_LINE = re.compile(rb"char device redirected to (/dev/pts/\d+)")


def qemu_command(elf: Path | str, qemu: str = QEMU) -> list[str]:
    return [
        qemu,
        "-M", "mps2-an385",
        "-nographic",
        "-monitor", "none",
        "-serial", "pty",
        "-kernel", str(elf),
    ]  # fmt: skip


def start_qemu(
    elf: Path | str = DEFAULT_ELF,
    *,
    qemu: str = QEMU,
    timeout: float = 10.0,
    log: BinaryIO | None = None,
    preexec_fn: Callable[[], None] | None = None,
) -> tuple[subprocess.Popen[bytes], str]:
    """Start QEMU on ``elf``; return the process and the pty its UART0 is on.

    QEMU's output is read until it names the pty; after that a thread drains it (QEMU
    must never block on a full buffer) into ``log`` (default: our stderr). Raises RuntimeError if
    QEMU exits or names no pty within ``timeout`` seconds (QEMU is killed then)."""
    if not Path(elf).is_file():
        raise RuntimeError(f"no firmware image at {elf} (make -C firmware/ports/mps2-an385)")
    if shutil.which(qemu) is None:
        raise RuntimeError(f"{qemu} not found")
    # QEMU prints "char device redirected to /dev/pts/N" with printf on its *stdout*,
    # which is block-buffered into a pipe and would only appear when QEMU exits. So its
    # stdout and stderr go to a pseudo-terminal of ours (line-buffered), read here.
    master, slave = os.openpty()
    try:
        proc = subprocess.Popen(
            qemu_command(elf, qemu),
            stdin=subprocess.DEVNULL,
            stdout=slave,
            stderr=slave,
            preexec_fn=preexec_fn,  # e.g. a device's priority (firmware.launch.real_time_process)
        )
    except OSError:
        os.close(master)
        raise
    finally:
        os.close(slave)
    seen = b""
    deadline = time.monotonic() + timeout
    while True:
        match = PTY_LINE.search(seen)
        if match:
            break
        left = deadline - time.monotonic()
        chunk = _read(master, left)
        if not chunk:  # timeout, or QEMU closed its output (it exited)
            os.close(master)
            stop_qemu(proc)
            why = f"exited ({proc.returncode})" if left > 0 else "named no pty"
            raise RuntimeError(f"QEMU {why}: {seen.decode(errors='replace').strip()}")
        seen += chunk
    rest = seen[match.end() :].partition(b"\n")[2]  # past " (label serial0)"
    sink = log if log is not None else sys.stderr.buffer
    threading.Thread(target=_drain, args=(master, rest, sink), daemon=True).start()
    return proc, match.group(1).decode()


def _read(fd: int, timeout: float) -> bytes:
    """Up to 4 KiB from fd within timeout s; b"" on timeout or end (a pty master reads
    EIO once the last holder of the slave closed it)."""
    if timeout <= 0 or not select.select([fd], [], [], timeout)[0]:
        return b""
    try:
        return os.read(fd, 4096)
    except OSError:
        return b""


def _drain(fd: int, first: bytes, sink: BinaryIO) -> None:
    """Pass QEMU's further output (warnings, guest errors) on to sink, until QEMU is
    gone; then close our end of its terminal."""
    data = first
    try:
        while True:
            if data.strip():
                try:
                    sink.write(data.replace(b"\r\n", b"\n"))
                    sink.flush()
                except (OSError, ValueError):  # the sink was closed: keep draining
                    pass
            try:
                data = os.read(fd, 4096)
            except OSError:  # EIO: QEMU has exited
                return
            if not data:
                return
    finally:
        os.close(fd)


def stop_qemu(proc: subprocess.Popen[bytes], timeout: float = 5.0) -> None:
    """Terminate QEMU and reap it (kill if it does not go within ``timeout`` s)."""
    if proc.poll() is None:
        proc.terminate()
        try:
            proc.wait(timeout)
        except subprocess.TimeoutExpired:
            proc.kill()
    proc.wait()


def _stdin_can_hang_up() -> bool:
    """True if the end of stdin means "stop": a pipe or socket from a parent (closed when
    it dies) or a terminal (Ctrl-D). Not /dev/null or a file, which end at once: a
    ``run_qemu.py &`` from a script (stdin /dev/null) must keep running."""
    try:
        mode = os.fstat(0).st_mode
    except OSError:
        return False
    return os.isatty(0) or stat.S_ISFIFO(mode) or stat.S_ISSOCK(mode)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("elf", nargs="?", default=str(DEFAULT_ELF), help="firmware image")
    parser.add_argument("--qemu", default=QEMU, help="QEMU binary (default: %(default)s)")
    args = parser.parse_args(argv)
    try:
        proc, pty = start_qemu(args.elf, qemu=args.qemu)
    except RuntimeError as exc:
        print(f"run_qemu: {exc}", file=sys.stderr)
        return 1
    print(pty, flush=True)

    stop = threading.Event()
    for sig in (signal.SIGTERM, signal.SIGINT):
        signal.signal(sig, lambda *_: stop.set())

    def watch_stdin() -> None:
        try:
            while os.read(0, 4096):
                pass
        except OSError:
            pass
        stop.set()

    if _stdin_can_hang_up():
        threading.Thread(target=watch_stdin, daemon=True).start()
    while not stop.wait(0.2):
        if proc.poll() is not None:
            print(f"run_qemu: QEMU exited with {proc.returncode}", file=sys.stderr)
            return 1
    stop_qemu(proc)
    return 0


if __name__ == "__main__":
    sys.exit(main())
