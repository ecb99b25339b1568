"""Serve the simulated device in real time on a pty or a loopback TCP port.

``python -m sim_device serve --pty`` prints the pty's path as the first line of
stdout; any pyserial program can then open it and talk protocol v1 to the device
as to a rig. ``--tcp 127.0.0.1:PORT`` serves one client at a time (PORT 0 picks a
free port; the first line is then ``HOST:PORT``).

The same firmware as in-process runs here on ``time.monotonic``: control ticks
are run to keep up with the machine's clock, and the host's bytes are parsed as
soon as they arrive (a real firmware's UART handler does not wait for the next
control tick), so a command's round trip costs no tick latency.

The device powers up when the host first speaks: pyserial flushes its input when
it opens a port, so anything sent before that would be lost.
"""

from __future__ import annotations

import argparse
import errno
import ipaddress
import json
import os
import select
import signal
import socket
import sys
import time
import tty
from pathlib import Path
from types import FrameType
from typing import Any

from sim_device.core import TICK_US
from sim_device.core_build import DEFECTS
from sim_device.device import RIG_FAULTS, Device, DeviceOptionError, DeviceOptions
from sim_device.linkfaults import LinkFaultConfig

STATS_EVERY_S = 1.0
MAX_CATCH_UP_TICKS = 200  # per loop turn, so input is never starved by a backlog
MAX_WAIT_S = 0.05  # the loop wakes at least this often (stop requests, stats file)
MAX_LATE_S = 0.05  # woken later than this after a deadline: the device's clock pauses


class ServeError(Exception):
    """A one-line error for the user (bad option, address refused)."""


def build_parser() -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(
        prog="python -m sim_device serve",
        description="Serve the simulated needle driver in real time on a pty or TCP.",
    )
    where = p.add_mutually_exclusive_group()
    where.add_argument("--pty", action="store_true", help="serve on a new pty (default)")
    where.add_argument("--tcp", metavar="HOST:PORT", help="serve on TCP (loopback only)")
    p.add_argument("--allow-remote", action="store_true", help="allow a non-loopback --tcp")
    p.add_argument("--lesion", default="soft-stenosis", help="library name or TOML file")
    p.add_argument("--seed", type=int, default=0)
    p.add_argument("--noise", type=float, default=1.0, help="load cell noise multiplier")
    p.add_argument("--stats", metavar="FILE", help="write device statistics (JSON) here")
    p.add_argument("--defect", choices=sorted(DEFECTS), help="plant a firmware defect")
    p.add_argument("--watchdog-ms", type=int, default=200)
    p.add_argument("--serial", default="SIM-0001", help="serial number in IDENTITY")
    p.add_argument("--corrupt", type=float, default=0.0, help="P(byte corrupted)")
    p.add_argument("--drop", type=float, default=0.0, help="P(byte dropped)")
    p.add_argument("--duplicate", type=float, default=0.0, help="P(byte duplicated)")
    p.add_argument("--cut-at-s", type=float, default=None, help="cut the link at this time")
    p.add_argument("--cut-for-s", type=float, default=0.0, help="... for this long")
    p.add_argument("--fault", choices=RIG_FAULTS, help="inject a rig fault")
    p.add_argument("--fault-at-s", type=float, default=0.0, help="... at this device time")
    p.add_argument("--json", action="store_true", help="first line as JSON")
    return p


def options_from_args(ns: argparse.Namespace) -> DeviceOptions:
    try:
        link = LinkFaultConfig(ns.corrupt, ns.drop, ns.duplicate, ns.cut_at_s, ns.cut_for_s)
    except ValueError as exc:
        raise ServeError(f"link faults: {exc}") from None
    if not 1 <= ns.watchdog_ms <= 65535:
        raise ServeError(f"--watchdog-ms {ns.watchdog_ms} must be 1..65535")
    return DeviceOptions(
        lesion=ns.lesion,
        seed=ns.seed,
        noise=ns.noise,
        link=link,
        fault=ns.fault,
        fault_at_s=ns.fault_at_s,
        defect=ns.defect,
        watchdog_ms=ns.watchdog_ms,
        serial_number=ns.serial,
    )


def parse_tcp(text: str, allow_remote: bool) -> tuple[str, int]:
    host, sep, port_text = text.rpartition(":")
    if not sep or not port_text.isdigit() or not 0 <= int(port_text) <= 65535:
        raise ServeError(f"--tcp {text!r}: expected HOST:PORT, e.g. 127.0.0.1:5555")
    host = host.strip("[]") or "127.0.0.1"
    try:
        infos = socket.getaddrinfo(host, int(port_text), type=socket.SOCK_STREAM)
    except socket.gaierror as exc:
        raise ServeError(f"--tcp {text!r}: cannot resolve {host!r}: {exc.strerror}") from None
    addr = str(infos[0][4][0])
    if not allow_remote and not ipaddress.ip_address(addr).is_loopback:
        raise ServeError(
            f"--tcp {text!r}: {addr} is not a loopback address; the simulator would be "
            "reachable from the network (add --allow-remote if that is really wanted)"
        )
    return addr, int(port_text)


class _Stop:
    requested = False

    def __call__(self, signum: int, frame: FrameType | None) -> None:
        self.requested = True


class RealTimeDevice:
    """The device on the machine's clock, with one byte pipe to the host."""

    def __init__(self, device: Device, stats_path: Path | None) -> None:
        self.device = device
        self.fw = device.firmware
        self.stats_path = stats_path
        self.started = False
        self.t0_s = 0.0
        self.bytes_discarded = 0
        self.clients = 0
        self.clock_paused_s = 0.0  # how long the device's clock stood still (this process late)
        self._next_stats_s = 0.0

    def start(self) -> None:
        if not self.started:
            self.started = True
            self.t0_s = time.monotonic() - self.fw.clock.now_us / 1e6

    def catch_up(self) -> None:
        """Run the ticks due by now."""
        if not self.started:
            return
        now_s = time.monotonic()
        late_s = now_s - (self.t0_s + self.fw.next_deadline_us() / 1e6)
        if late_s > MAX_LATE_S:
            # This process was not scheduled for a while (a loaded machine); the rig it
            # models was not late. Running the missed time now, before the host's bytes
            # that waited in the pty meanwhile, would show the device a silent host (a
            # false SESSION_ENDED or watchdog trip): its clock pauses instead, as a
            # stopped process's does.
            self.t0_s += late_s - MAX_LATE_S
            self.clock_paused_s += late_s - MAX_LATE_S
        due_us = int((now_s - self.t0_s) * 1e6)
        ticks = (due_us - self.fw.clock.now_us) // TICK_US
        if ticks > 0:
            self.fw.run_ticks(min(ticks, MAX_CATCH_UP_TICKS))

    def wait_s(self) -> float:
        """How long the loop may sleep before the next tick that matters (at most
        MAX_WAIT_S, so a stop request or a stats write is never long delayed)."""
        if not self.started:
            return MAX_WAIT_S
        wait = self.t0_s + self.fw.next_deadline_us() / 1e6 - time.monotonic()
        return MAX_WAIT_S if wait > MAX_WAIT_S else wait if wait > 0.0 else 0.0

    def input(self, data: bytes) -> bytes:
        """Bytes from the host: run the ticks already due, then parse and answer at once
        (a firmware's UART handler does not wait for the control tick). Returns what the
        device has to send now."""
        self.start()
        self.catch_up()
        self.device.host_write(data)
        self.fw.poll_input()
        return self.device.host_take()

    def maybe_write_stats(self, final: bool = False) -> None:
        if self.stats_path is None:
            return
        now = time.monotonic()
        if not final and now < self._next_stats_s:
            return
        self._next_stats_s = now + STATS_EVERY_S
        stats: dict[str, Any] = self.device.stats()
        stats["bytes_discarded_no_client"] = self.bytes_discarded
        stats["clients"] = self.clients
        stats["clock_paused_s"] = round(self.clock_paused_s, 3)
        stats["final"] = final
        tmp = self.stats_path.with_name(self.stats_path.name + ".tmp")
        tmp.write_text(json.dumps(stats, indent=1, sort_keys=True) + "\n", encoding="utf-8")
        os.replace(tmp, self.stats_path)


def _write_all_nonblocking(fd: int, data: bytes) -> int:
    """Write what the pipe takes now; return the bytes that did not fit (dropped).

    The common case is one os.write that takes it all; a memoryview is made only
    after a partial write."""
    rest: bytes | memoryview = data
    while rest:
        try:
            n = os.write(fd, rest)
        except BlockingIOError:
            return len(rest)
        except OSError as exc:
            if exc.errno in (errno.EIO, errno.EPIPE, errno.ECONNRESET):
                return len(rest)
            raise
        if n == len(rest):
            return 0
        rest = memoryview(rest)[n:]
    return 0


def _serve_pty(rt: RealTimeDevice, stop: _Stop, announce: Any) -> None:
    master, slave = os.openpty()
    # raw: no echo, no line discipline (0x03 would flush the queues in cooked mode)
    tty.setraw(slave)
    tty.setraw(master)
    os.set_blocking(master, False)
    announce(os.ttyname(slave))
    # We keep our own slave fd open: a client closing the port then does not hang up the
    # pty (no EIO on the master), and the next client can open the same path.
    device = rt.device
    watch = [master]
    read = os.read
    wait = select.select
    try:
        while not stop.requested:
            # sleep until the host speaks or the next tick that matters is due
            try:
                ready = wait(watch, [], [], rt.wait_s())[0]
            except InterruptedError:  # pragma: no cover - PEP 475 retries select
                continue
            if ready:
                try:
                    data = read(master, 65536)
                except BlockingIOError:
                    data = b""
                except OSError as exc:
                    if exc.errno != errno.EIO:
                        raise
                    break  # the far end is gone for good
                if data:
                    if not rt.started:
                        rt.clients += 1
                    # the reply leaves before anything else is done (one os.write)
                    out = rt.input(data)
                    if out:
                        rt.bytes_discarded += _write_all_nonblocking(master, out)
            rt.catch_up()
            out = device.host_take()
            if out:
                rt.bytes_discarded += _write_all_nonblocking(master, out)
            rt.maybe_write_stats()
    finally:
        os.close(master)
        os.close(slave)


def _serve_tcp(rt: RealTimeDevice, stop: _Stop, host: str, port: int, announce: Any) -> None:
    family = socket.AF_INET6 if ":" in host else socket.AF_INET
    server = socket.socket(family, socket.SOCK_STREAM)
    server.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
    try:
        server.bind((host, port))
    except OSError as exc:
        server.close()
        raise ServeError(f"--tcp {host}:{port}: cannot listen: {exc.strerror}") from None
    server.listen(1)
    server.setblocking(False)
    bound = server.getsockname()
    announce(f"{bound[0]}:{bound[1]}")
    client: socket.socket | None = None
    try:
        while not stop.requested:
            watch: list[Any] = [server] if client is None else [server, client]
            try:
                ready, _, _ = select.select(watch, [], [], rt.wait_s())
            except InterruptedError:  # pragma: no cover
                continue
            if server in ready:
                try:
                    conn, _ = server.accept()
                except BlockingIOError:
                    conn = None
                if conn is not None:
                    if client is None:
                        client = conn
                        client.setblocking(False)
                        client.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
                        rt.clients += 1
                    else:
                        conn.close()  # one client at a time
            if client is not None and client in ready:
                closed = False
                try:
                    data = client.recv(65536)
                    closed = not data  # orderly shutdown by the client
                except BlockingIOError:
                    data = b""
                except OSError:
                    data, closed = b"", True
                if closed:
                    client.close()
                    client = None
                elif data:
                    out = rt.input(data)
                    if out:
                        rt.bytes_discarded += _write_all_nonblocking(client.fileno(), out)
            rt.catch_up()
            out = rt.device.host_take()
            if out:
                if client is None:
                    rt.bytes_discarded += len(out)
                else:
                    rt.bytes_discarded += _write_all_nonblocking(client.fileno(), out)
            rt.maybe_write_stats()
    finally:
        if client is not None:
            client.close()
        server.close()


def serve_main(argv: list[str]) -> int:
    """Entry point of ``python -m sim_device serve`` and ``needlectl sim serve``."""
    ns = build_parser().parse_args(argv)
    stop = _Stop()
    previous = {s: signal.signal(s, stop) for s in (signal.SIGTERM, signal.SIGINT)}
    rt: RealTimeDevice | None = None
    try:
        options = options_from_args(ns)
        tcp = parse_tcp(ns.tcp, ns.allow_remote) if ns.tcp else None
        try:
            device = Device(options)
        except DeviceOptionError as exc:
            raise ServeError(str(exc)) from None
        rt = RealTimeDevice(device, Path(ns.stats) if ns.stats else None)

        def announce(where: str) -> None:
            line = json.dumps({"port": where, "pid": os.getpid()}) if ns.json else where
            sys.stdout.write(line + "\n")
            sys.stdout.flush()

        if tcp is None:
            _serve_pty(rt, stop, announce)
        else:
            # TCP: the device starts with the first client's bytes, like the pty
            _serve_tcp(rt, stop, tcp[0], tcp[1], announce)
    except ServeError as exc:
        print(f"sim serve: {exc}", file=sys.stderr)
        return 2
    finally:
        for s, handler in previous.items():
            signal.signal(s, handler)
        if rt is not None:
            rt.maybe_write_stats(final=True)
    return 0
