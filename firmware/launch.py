"""Build and start the reference firmware's ports, for the tests and for people.

    python -m firmware.launch posix [--defect NAME] [--sanitize] [-- ARGS…]
    python -m firmware.launch m3    [--defect NAME]
    python -m firmware.launch rp2040 [--defect NAME] [-- BENCH ARGS…]

builds the port (make), starts it, prints the pty path as the first line (as
``needlectl sim serve --pty`` does) and runs until Ctrl-C / SIGTERM, when the device
process is stopped and reaped, and the port's last line on stderr (its summary: the
RP2040 emulator's speed against real time) is passed on. The tests use :func:`build`
and :func:`running`.

A port whose tools are missing raises :class:`PortUnavailable` with the one line that
says what to install (the tests skip with it).
"""

from __future__ import annotations

import argparse
import contextlib
import ctypes
import fcntl
import importlib.util
import os
import shutil
import signal
import subprocess
import sys
import tempfile
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path
from types import ModuleType
from typing import IO, Any

from sim_device.core_build import VARIANTS

FIRMWARE = Path(__file__).resolve().parent
PORTS = ("posix", "m3", "rp2040")
# every compile-flag variant of the core: the planted defects and the suite's mutants
# (one list, sim_device/core_build.py; the simulator builds the same flags)
DEFECTS = tuple(VARIANTS)
RIG_CONFIG = {
    "posix": FIRMWARE / "ports" / "posix" / "rig.toml",
    "m3": FIRMWARE / "ports" / "mps2-an385" / "rig.toml",
    "rp2040": FIRMWARE / "ports" / "rp2040" / "rig.toml",
}
RP2040_HARNESS = FIRMWARE / "ports" / "rp2040" / "harness"
_TOOLS = {
    "posix": (("make", "make"), ("cc", "gcc")),
    "m3": (
        ("make", "make"),
        ("arm-none-eabi-gcc", "gcc-arm-none-eabi libnewlib-arm-none-eabi"),
        ("qemu-system-arm", "qemu-system-arm"),
    ),
    "rp2040": (
        ("make", "make"),
        ("arm-none-eabi-gcc", "gcc-arm-none-eabi libnewlib-arm-none-eabi"),
        ("node", "nodejs"),
    ),
}
START_TIMEOUT_S = 20.0


class PortUnavailable(RuntimeError):
    """The port cannot be built or run on this machine (the message says what to install)."""


def check_tools(port: str) -> None:
    missing = [pkg for tool, pkg in _TOOLS[port] if shutil.which(tool) is None]
    if missing:
        raise PortUnavailable(
            f"firmware port {port} needs {', '.join(missing)}: apt-get install {' '.join(missing)}"
        )
    if port == "rp2040" and not (RP2040_HARNESS / "node_modules" / "rp2040js").is_dir():
        # the emulator is an npm package (.ci/run installs it)
        raise PortUnavailable(
            f"firmware port rp2040 needs the npm package rp2040js: npm ci --prefix {RP2040_HARNESS}"
        )


def build(
    port: str = "posix",
    defect: str | None = None,
    sanitize: bool = False,
    lc_rail_n: int | None = None,
) -> Path:
    """Build a port (make is incremental); returns the binary (posix) or the ELF image (m3,
    rp2040: its .bin and .uf2 beside it). ``lc_rail_n``: the M3 image's bench with its load
    cell rated that many newtons (its options are compiled in: QEMU passes none)."""
    check_tools(port)
    if defect is not None and defect not in DEFECTS:
        raise ValueError(f"unknown defect {defect!r}; known: {', '.join(DEFECTS)}")
    args = ["make", "-s", "-C", str(FIRMWARE), port]
    suffix = ""
    if sanitize and port == "posix":
        args.append("SANITIZE=1")
        suffix += "-asan"
    if defect is not None:
        args.append(f"DEFECT={defect}")
        suffix += f"-{defect}"
    if lc_rail_n is not None:
        if port != "m3":
            raise ValueError("lc_rail_n is the M3 image's: the other benches take --lc-rail-n")
        args.append(f"LC_RAIL_N={lc_rail_n}")
        suffix += f"-rail{lc_rail_n}n"
    # one make at a time in firmware/build: two processes building the same objects at once
    # (parallel test workers, two operators' launches) would interleave their writes
    lock_path = FIRMWARE / "build" / ".make.lock"
    lock_path.parent.mkdir(parents=True, exist_ok=True)
    with lock_path.open("w") as lock:
        fcntl.flock(lock, fcntl.LOCK_EX)
        proc = subprocess.run(args, capture_output=True, text=True, check=False)
    if proc.returncode != 0:
        raise RuntimeError(f"building firmware port {port} failed:\n{proc.stdout}{proc.stderr}")
    if port == "posix":
        return FIRMWARE / "build" / f"posix{suffix}" / "nd-firmware"
    if port == "rp2040":
        return FIRMWARE / "build" / f"rp2040{suffix}" / "nd-firmware.elf"
    return FIRMWARE / "build" / f"mps2-an385{suffix}" / "nd-firmware.elf"


@dataclass(frozen=True)
class ImageSize:
    """An ELF image's sections as `arm-none-eabi-size` counts them, in bytes."""

    text_b: int
    data_b: int
    bss_b: int  # the stack is a .bss-like section here: RAM includes it

    @property
    def flash_b(self) -> int:
        return self.text_b + self.data_b

    @property
    def ram_b(self) -> int:
        return self.data_b + self.bss_b


def image_size(elf: Path) -> ImageSize:
    """Section sizes of a cross-built image (arm-none-eabi-size, Berkeley format)."""
    size = shutil.which("arm-none-eabi-size") or "arm-none-eabi-size"
    out = subprocess.run([size, str(elf)], capture_output=True, text=True, check=True).stdout
    text_b, data_b, bss_b = (int(x) for x in out.splitlines()[1].split()[:3])
    return ImageSize(text_b, data_b, bss_b)


@dataclass
class Device:
    """A running port: its pty, its process, and what it printed on stderr so far."""

    path: str
    proc: subprocess.Popen[Any]  # text (posix) or bytes (QEMU)
    stderr_file: Path
    final_stderr: str | None = None  # kept when the process is stopped

    def stderr(self) -> str:
        if self.final_stderr is not None:
            return self.final_stderr
        return self.stderr_file.read_text(errors="replace")


def _qemu_launcher() -> ModuleType:
    spec = importlib.util.spec_from_file_location(
        "nd_run_qemu", FIRMWARE / "ports" / "mps2-an385" / "run_qemu.py"
    )
    assert spec is not None and spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def _read_first_line(stream: IO[str], proc: subprocess.Popen[str]) -> str:
    line = stream.readline().strip()
    if not line.startswith("/dev/"):
        proc.kill()
        proc.wait()
        raise RuntimeError(f"the firmware did not announce a pty (printed {line!r})")
    return line


def stop(proc: subprocess.Popen[Any], sig: int = signal.SIGTERM, timeout_s: float = 10.0) -> None:
    """``sig``, then SIGKILL if it has not gone within ``timeout_s``; always reaped, its
    pipes read to the end (a child blocked writing to a full pipe still ends). The one
    way the firmware's processes, the tests' servers and the benchmarks' children stop."""
    if proc.poll() is None:
        proc.send_signal(sig)
        try:
            proc.communicate(timeout=timeout_s)
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.communicate()


# An emulated MCU gets the CPU a real one has to itself. On a busy machine (a test run beside
# another) a port descheduled for 100 ms misses 100 ticks, and its own overrun and watchdog
# checks then judge the machine's load, not the firmware. Linux shares the CPU between
# sessions first (autogroups) and only then between a session's processes by their nice
# value: a port in a session of its own gets its share however many busy processes the
# session that started it runs (any user may do this) — an equal share with every other
# session, though, and with two test runs at once there are many. Its session's group is
# then given REALTIME_NICE too (/proc/self/autogroup: ~9× a nice-0 group's weight), and
# where autogroups are off the process's own priority does the same (both root or
# CAP_SYS_NICE; else they stay the caller's). Set before exec, so every thread and child of
# the port (QEMU's, the emulator's) inherits them.
REALTIME_NICE = -10


_PR_SET_PDEATHSIG = 1  # linux/prctl.h
_LIBC = ctypes.CDLL(None, use_errno=True)


def real_time_process() -> None:
    """preexec_fn of a process that must keep real time (a port; the HIL suite playing the
    bench's host, whose heartbeats a bench's own PC sends on time): a session of its own
    and REALTIME_NICE if allowed. In its own session the terminal's Ctrl-C no longer
    reaches it, so it is told to end (SIGTERM) when the process that started it does,
    however that one ends: never a port left running with nobody to stop it."""
    os.setsid()
    _LIBC.prctl(_PR_SET_PDEATHSIG, signal.SIGTERM)
    with contextlib.suppress(OSError):
        os.nice(REALTIME_NICE)
    with contextlib.suppress(OSError):  # no autogroups, or not allowed
        Path("/proc/self/autogroup").write_text(f"{REALTIME_NICE}\n")


@contextmanager
def running(
    port: str = "posix",
    defect: str | None = None,
    sanitize: bool = False,
    args: tuple[str, ...] = (),
) -> Iterator[Device]:
    """Build and start a port; yields it with its pty path; stops it on every exit. ``args``:
    the posix bench's options, the rp2040 bench's, or the one the M3 image's bench has
    (``--lc-rail-n N``, compiled in)."""
    lc_rail_n = None
    if port == "m3" and args:
        if len(args) != 2 or args[0] != "--lc-rail-n" or not args[1].isdigit():
            raise ValueError(f"the M3 image's bench takes only --lc-rail-n N, not {args}")
        lc_rail_n, args = int(args[1]), ()
    image = build(port, defect, sanitize, lc_rail_n)
    with tempfile.TemporaryDirectory(prefix="nd-firmware-") as tmp:
        err_path = Path(tmp) / "stderr.txt"
        with err_path.open("w") as err:
            if port == "posix":
                env = dict(os.environ, ASAN_OPTIONS="detect_leaks=0:abort_on_error=0")
                proc = subprocess.Popen(
                    [str(image), *args],
                    stdout=subprocess.PIPE,
                    stderr=err,
                    text=True,
                    env=env,
                    preexec_fn=real_time_process,
                )
                assert proc.stdout is not None
                path = _read_first_line(proc.stdout, proc)
            elif port == "rp2040":
                # the emulator under Node, the bench model's options passed on
                runner = FIRMWARE / "ports" / "rp2040" / "run_rp2040.py"
                command = [sys.executable, str(runner), "--image", str(image.with_suffix(".bin"))]
                proc = subprocess.Popen(
                    [*command, "--", *args],
                    stdout=subprocess.PIPE,
                    stderr=err,
                    text=True,
                    preexec_fn=real_time_process,
                )
                assert proc.stdout is not None
                path = _read_first_line(proc.stdout, proc)
            else:
                # QEMU names its pty slowly and starts passing host bytes ~1 s after the
                # pty is opened (it polls for the open): the HIL suite's first HELLO waits
                proc, path = _qemu_launcher().start_qemu(
                    image, log=err.buffer, preexec_fn=real_time_process
                )
            device = Device(path, proc, err_path)
            try:
                yield device
            finally:
                stop(proc)
                device.final_stderr = err_path.read_text(errors="replace")


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(
        prog="python -m firmware.launch",
        description="Build and run a port of the reference firmware; prints its pty first.",
    )
    parser.add_argument("port", choices=PORTS)
    parser.add_argument("--defect", choices=DEFECTS, help="plant a defect (HIL suite check)")
    parser.add_argument("--sanitize", action="store_true", help="posix: ASan + UBSan build")
    parser.add_argument(
        "args", nargs="*", help="posix: options of nd-firmware; rp2040: of its bench (after --)"
    )
    ns = parser.parse_args(argv)
    try:
        with running(ns.port, ns.defect, ns.sanitize, tuple(ns.args)) as dev:
            stopped = False

            def on_signal(signum: int, frame: object) -> None:
                nonlocal stopped
                stopped = True

            # before the pty is named: a caller may stop it as soon as it has read it
            signal.signal(signal.SIGTERM, on_signal)
            signal.signal(signal.SIGINT, on_signal)
            print(dev.path, flush=True)
            while not stopped:
                try:
                    dev.proc.wait(timeout=0.5)  # the device gone by itself ends it too
                    break
                except subprocess.TimeoutExpired:
                    pass
    except (PortUnavailable, RuntimeError, ValueError) as exc:
        print(f"firmware.launch: {exc}".splitlines()[0], file=sys.stderr)
        return 2
    summary = port_summary(dev.stderr())
    if summary:
        print(f"firmware.launch: {summary}", file=sys.stderr)
    return 0


def port_summary(stderr: str) -> str | None:
    """The port's summary as it stopped: its last line on stderr (the RP2040 harness's:
    emulated time against the wall clock and the CPU, watchdog resets, HX711 power-downs;
    the posix port's counters) — not QEMU's own "terminating on signal" after the M3's."""
    lines = [line for line in stderr.splitlines() if line.strip()]
    ours = [line for line in lines if not line.startswith("qemu-")]
    return ours[-1] if ours else None


if __name__ == "__main__":
    sys.exit(main())
