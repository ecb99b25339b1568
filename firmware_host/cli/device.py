"""Commands that talk to a device: info, status, events, home, stop, estop, clear, jog."""

from __future__ import annotations

import argparse
import logging
import signal
import sys
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from typing import TYPE_CHECKING, Any

from firmware_host import driver as ops
from firmware_host import waiting
from firmware_host.cli.command import Command, add_number
from firmware_host.cli.exits import CLEAR_THEN_HOME, CliError, Exit, Interrupted
from firmware_host.cli.interrupt import StopRequest, stop_on_signals
from firmware_host.cli.output import Output, jsonable
from firmware_host.errors import Nak

if TYPE_CHECKING:
    from firmware_host.client import DeviceStatus
    from firmware_host.driver import Driver

log = logging.getLogger("needlectl")

POLL_S = 0.05
_SAFETY_STATES = (
    "STALLED",
    "LIMIT",
    "FAULT",
    "ESTOPPED",
)  # how often needlectl's own loops look at the device and the signals


@contextmanager
def connect(ns: argparse.Namespace) -> Iterator[Driver]:
    """A NeedleDriver on the chosen port (closing it sends STOP, best effort) — or, when
    a rig server (`needlectl serve`) owns that port, the same calls through it."""
    from firmware_host.server.runtime import find_server

    server = find_server(ns.port)
    if server is not None:
        from firmware_host.server.remote import RemoteDriver

        with RemoteDriver.open(ns.port, server) as remote:
            yield remote
        return
    from firmware_host.client import NeedleDriver

    with NeedleDriver.open(ns.port) as nd:
        yield nd


def name_of(value: object) -> str:
    return str(getattr(value, "name", value))


def confirm_motion(nd: Driver, ns: argparse.Namespace, what: str) -> None:
    """Real hardware moves only when the operator says so (--yes, or 'y' on a terminal)."""
    if nd.identity.simulated or getattr(ns, "yes", False):
        return
    serial = nd.identity.serial_number
    rig = f"rig {serial} on {ns.port}" if serial else f"rig on {ns.port}"
    if not sys.stdin.isatty():
        raise CliError(
            f"refusing to move the real {rig} ({what}) without confirmation: "
            "add --yes, or run from a terminal"
        )
    sys.stderr.write(f"needlectl: about to move the real {rig}: {what}. Proceed? [y/N] ")
    sys.stderr.flush()
    answer = sys.stdin.readline().strip().lower()
    if answer not in ("y", "yes"):
        raise CliError("cancelled by the operator: nothing moved")


def stop_rig(nd: Driver, why: str) -> str:
    """STOP, and ESTOP if STOP cannot be delivered. Returns what was done."""
    try:
        nd.stop()
        return f"STOP sent ({why})"
    except BaseException as first:  # a failed STOP, or a second Ctrl-C while stopping
        try:
            nd.estop()
            return f"ESTOP sent ({why}; STOP failed: {first})"
        except Exception as second:
            return (
                f"could not stop the rig ({first}; {second}); its watchdog stops it"
                " when needlectl goes silent"
            )


def wait_until_idle(
    nd: Driver,
    stop: StopRequest,
    timeout_s: float,
    on_status: Callable[[DeviceStatus], None] | None = None,
) -> DeviceStatus:
    """Poll until no axis moves; a signal stops the rig and raises Interrupted."""

    def timed_out(status: DeviceStatus) -> CliError:
        done = stop_rig(nd, "timeout")
        return CliError(
            f"motion not finished after {timeout_s:g} s: {done} — raise --timeout-s"
            " or check the rig",
            Exit.LINK,
        )

    status = waiting.wait_driver_idle(
        nd,
        poll_s=POLL_S,
        timeout_s=timeout_s,
        on_timeout=timed_out,
        abort=stop.event,
        on_status=on_status,
    )
    if status is None:
        done = stop_rig(nd, "operator signal")
        raise Interrupted(stop.signum or signal.SIGINT, f"{stop.signal_name}: {done}")
    return status


# ---------------------------------------------------------------- queries


def _status_dict(nd: Driver, status: DeviceStatus) -> dict[str, Any]:
    d: dict[str, Any] = dict(jsonable(status))
    d["state"] = name_of(status.state)
    d["latched_faults"] = fault_list(status.latched_faults)
    d["moving"] = bool(status.moving)
    d["link"] = jsonable(nd.stats.as_dict())
    d["port"] = str(nd.url)
    d["simulation"] = simulation(nd)
    return d


def simulation(nd: Driver) -> dict[str, Any] | None:
    """None on a real device; the lesion and seed (None when unknown) on a simulated one."""
    from firmware_host.simulation import simulation_of

    return simulation_of(str(nd.url), nd.identity)


def with_simulated(nd: Driver, text: str) -> str:
    """A result line, marked SIMULATED (lesion, seed) when the device is simulated."""
    from firmware_host.simulation import simulated_label

    label = simulated_label(simulation(nd))
    return f"{text} — {label}" if label else text


def fault_list(faults: int) -> list[str]:
    from protocol import FaultFlags

    return [f.name or "" for f in FaultFlags if faults & f]


def status_line(status: DeviceStatus) -> str:
    faults = fault_list(status.latched_faults)
    homed = "homed" if status.homed else "NOT homed"
    return (
        f"{name_of(status.state)}, {homed}, depth {status.depth_mm:.3f} mm,"
        f" angle {status.angle_deg:.1f} deg, force {status.force_n:.2f} N,"
        f" latched faults: {', '.join(faults) if faults else 'none'}"
    )


def cmd_status(ns: argparse.Namespace, out: Output) -> int:
    with connect(ns) as nd:
        status = nd.status()
        d = _status_dict(nd, status)
        if out.json_mode:
            out.emit(d)
            return Exit.OK
        out.line(with_simulated(nd, status_line(status)))
        if "WATCHDOG" in d["latched_faults"]:
            out.line(
                "(WATCHDOG: a host went silent while the rig moved and the device stopped it"
                " — see `needlectl events`, then `needlectl clear`)"
            )
        lc = status.load_cell
        if "LOAD_CELL" in d["latched_faults"]:
            out.line(f"(LOAD_CELL: {lc.fault.name} — see docs/protocol.md §7a)")
        limits = d.get("limits")
        if isinstance(limits, dict):
            out.extra("limits: " + ", ".join(f"{k} {v}" for k, v in limits.items()))
        out.extra(
            f"load cell: {lc.rate_hz} conversions/s, {lc.samples} since boot,"
            f" {lc.stale_samples} samples held, {lc.saturated} saturated,"
            f" tare offset {lc.offset_n:.3f} N, filters: drift {lc.drift_corner_hz:g} Hz,"
            f" notch {lc.notch_hz} Hz, low-pass {lc.lowpass_hz} Hz (0: off)"
        )
        out.extra(link_line(d["link"]))
        out.extra(f"port: {nd.url}")
    return Exit.OK


def link_line(link: dict[str, Any]) -> str:
    """The link statistics an operator looks at, in one line (all of them: --json)."""

    def ms(key: str) -> str:
        v = link.get(key)
        return f"{v * 1e3:.2f} ms" if isinstance(v, int | float) else "-"

    return (
        f"link: frames out/in {link.get('frames_out')}/{link.get('frames_in')},"
        f" CRC failures {link.get('crc_failures')}, retransmits {link.get('retransmits')},"
        f" timeouts {link.get('timeouts')}, round trip {ms('rtt_smoothed_s')}"
        f" (p99 {ms('rtt_p99_s')}), telemetry samples lost {link.get('telemetry_samples_lost')}"
    )


def _fmt(v: object) -> str:
    return f"{v:.4g}" if isinstance(v, float) else str(v)


def cmd_info(ns: argparse.Namespace, out: Output) -> int:
    from firmware_host.simulation import simulated_label
    from protocol import PROTOCOL_VERSION, SCHEMA_HASH

    with connect(ns) as nd:
        ident = dict(jsonable(nd.identity))
        ident["host_protocol_version"] = PROTOCOL_VERSION
        # Hashes stay integers in JSON; the human lines show them in hex (operator §12).
        ident["host_schema_hash"] = SCHEMA_HASH
        ident["port"] = ns.port
        ident["simulation"] = simulation(nd)
        if out.json_mode:
            out.emit(ident)
            return Exit.OK
        for key, value in ident.items():
            if key == "simulated":
                value = simulated_label(ident["simulation"]) or "no"
            if key.endswith("hash") and isinstance(value, int):
                value = f"{value:#010x}"
            if key != "simulation":
                out.line(f"{key:<24} {_fmt(value)}")
    return Exit.OK


def cmd_events(ns: argparse.Namespace, out: Output) -> int:
    with connect(ns) as nd:
        events = nd.events()
        for ev in events:
            d = dict(jsonable(ev.as_dict()))
            if out.json_mode:
                out.emit(d)
            else:
                out.line(
                    f"#{d['number']:<5} device t {d['device_time_s']:10.3f} s  {d['code']:<16}"
                    f" value {d['value']}"
                )
        if not events:
            out.line("no events")
    return Exit.OK


# ---------------------------------------------------------------- motion


def _report(
    out: Output, nd: Driver, what: str, status: DeviceStatus | None = None, motion: bool = False
) -> int:
    """Print the state after a command; a motion that ended in a latched fault is a
    safety stop (exit 5) even though the command itself was accepted."""
    status = status if status is not None else nd.status()
    d = _status_dict(nd, status)
    d["done"] = what
    out.result(d, with_simulated(nd, f"{what}: {status_line(status)}"))
    if motion and (status.latched_faults or name_of(status.state) in _SAFETY_STATES):
        faults = ", ".join(fault_list(status.latched_faults)) or name_of(status.state)
        raise CliError(
            f"safety stop: the motion ended in {name_of(status.state)} ({faults}) at"
            f" {status.depth_mm:.3f} mm — see `needlectl events`, fix the cause, then"
            f" {CLEAR_THEN_HOME}",
            Exit.SAFETY_STOP,
        )
    return Exit.OK


STOP_SETTLE_S = 2.0  # a STOP decelerates on the ramp: wait this long for rest


def _at_rest_after_stop(nd: Driver) -> tuple[DeviceStatus, str]:
    """The state once the rig has halted (the state the instant after STOP is still
    MOVING on the deceleration ramp): 'stopped', or 'stopping' if it is not yet at rest."""
    deadline_s = nd.clock.monotonic() + STOP_SETTLE_S
    while True:
        status = nd.status()
        if not status.moving:
            return status, "stopped"
        if nd.clock.monotonic() >= deadline_s:
            return status, "stopping (not yet at rest)"
        nd.wait_s(0.02)  # a poll period of the rig's own deceleration, not a test's sleep


def cmd_stop(ns: argparse.Namespace, out: Output) -> int:
    with connect(ns) as nd:
        nd.stop()
        status, what = _at_rest_after_stop(nd)
        return _report(out, nd, what, status)


def cmd_estop(ns: argparse.Namespace, out: Output) -> int:
    with connect(ns) as nd:
        nd.estop()
        return _report(out, nd, "e-stopped (latched: `needlectl clear` to release)")


def cmd_clear(ns: argparse.Namespace, out: Output) -> int:
    with connect(ns) as nd:
        nd.clear_fault()
        return _report(out, nd, "faults cleared")


def home(nd: Driver, ns: argparse.Namespace, out: Output, stop: StopRequest) -> DeviceStatus:
    """Home with a spinner; a signal stops the rig. Returns the status after."""
    from rich.status import Status as Spinner

    from firmware_host.procedure.homing import home_interruptibly

    spinner = Spinner("homing…", console=out.console) if out.interactive else None
    if spinner is not None:
        spinner.start()
    log.info("homing at %.3f mm/s on %s", ns.speed_mm_s, ns.port)
    try:
        # A signal only sets stop.event; the homing wait sees it within a slice.
        status = home_interruptibly(
            nd, speed_mm_s=ns.speed_mm_s, timeout_s=ns.timeout_s, abort=stop.event
        )
    except Interrupted as exc:  # a second signal: the operator insists
        done = stop_rig(nd, "homing interrupted")
        raise Interrupted(exc.signum, f"{stop.signal_name} while homing: {done}") from None
    except Nak:
        # HOME refused (BUSY: another client's run, a latched fault): this command started
        # nothing, so it stops nothing — a STOP here would end someone else's motion
        raise
    except BaseException:
        stop_rig(nd, "homing failed")  # nothing may keep moving; the error says the rest
        raise
    finally:
        if spinner is not None:
            spinner.stop()
    if status is None:
        done = stop_rig(nd, "homing interrupted")
        raise Interrupted(stop.signum or signal.SIGINT, f"{stop.signal_name} while homing: {done}")
    return status


def cmd_home(ns: argparse.Namespace, out: Output) -> int:
    with stop_on_signals() as stop, connect(ns) as nd:
        confirm_motion(nd, ns, "home the advance axis")
        status = home(nd, ns, out, stop)
        return _report(out, nd, "homed", status, motion=True)


def cmd_jog(ns: argparse.Namespace, out: Output) -> int:
    if ns.advance_mm == 0 and ns.rotate_deg == 0:
        raise CliError("jog: nothing to do — give --advance-mm and/or --rotate-deg")
    with stop_on_signals() as stop, connect(ns) as nd:
        what = []
        if ns.advance_mm:
            what.append(f"advance {ns.advance_mm:+g} mm at {ns.speed_mm_s:g} mm/s")
        if ns.rotate_deg:
            what.append(f"rotate {ns.rotate_deg:+g} deg at {ns.rate_rpm:g} rpm")
        confirm_motion(nd, ns, " and ".join(what))
        log.info("jog: %s on %s", " and ".join(what), ns.port)
        status = jog(nd, ns, stop)
        return _report(out, nd, "jogged", status, motion=True)


def jog(nd: Driver, ns: argparse.Namespace, stop: StopRequest) -> DeviceStatus:
    """Start the jog's moves and wait for rest. Stops the rig on the way out only when this
    jog may have set something moving: a refusal of its first move changed nothing (it may
    be another client's run that made the rig BUSY), so it stops nothing."""
    stop.check_before_motion()
    advancing = False  # our advance was accepted: it moves now
    try:
        if ns.advance_mm:
            nd.advance_mm(ns.advance_mm, speed_mm_s=ns.speed_mm_s)
            advancing = True
        if ns.rotate_deg:
            nd.rotate_deg(ns.rotate_deg, rate_rpm=ns.rate_rpm)
    except Interrupted as exc:
        done = stop_rig(nd, "jog interrupted")
        raise Interrupted(exc.signum, f"{stop.signal_name} during jog: {done}") from None
    except Nak:
        if advancing:  # the rotation refused after our advance began: stop our advance
            stop_rig(nd, "jog refused")
        raise
    except BaseException:
        # a timeout, a lost link: a move of ours may have run (its reply lost)
        stop_rig(nd, "jog failed")
        raise
    return wait_until_idle(nd, stop, ns.timeout_s)


# ---------------------------------------------------------------- the commands


def _home_arguments(p: argparse.ArgumentParser) -> None:
    add_number(p, "--speed-mm-s", 0.01, 50, 2.0, "homing speed in mm/s (2.0)")
    add_number(
        p, "--timeout-s", 1, 3600, 120.0, "stop the rig and fail if homing takes longer (120)"
    )


def _jog_arguments(p: argparse.ArgumentParser) -> None:
    add_number(p, "--advance-mm", -200, 200, 0.0, "relative advance in mm (negative retracts)")
    add_number(p, "--rotate-deg", -36000, 36000, 0.0, "relative rotation in degrees")
    add_number(p, "--speed-mm-s", 0.001, 50, 0.5, "advance speed in mm/s (0.5)")
    add_number(p, "--rate-rpm", 0.1, 600, 30.0, "rotation rate in rpm (30)")
    add_number(
        p, "--timeout-s", 1, 3600, 120.0, "stop the rig and fail if the move takes longer (120)"
    )


INFO = Command(
    "info",
    "identity: firmware, protocol version, schema hash, limits",
    cmd_info,
    operations=(ops.IDENTITY,),
)
STATUS = Command(
    "status",
    "state, homed, depth_mm, angle_deg, force_n, latched faults, link statistics",
    cmd_status,
    operations=(ops.STATUS,),
)
EVENTS = Command(
    "events",
    "the device's numbered event log (JSON lines with --json)",
    cmd_events,
    operations=(ops.EVENTS,),
)
HOME = Command(
    "home",
    "home the advance axis (motion)",
    cmd_home,
    _home_arguments,
    operations=(ops.START_HOME,),
)
STOP = Command(
    "stop", "stop all motion (controlled deceleration)", cmd_stop, operations=(ops.STOP,)
)
ESTOP = Command(
    "estop",
    "emergency stop: latched until `needlectl clear`",
    cmd_estop,
    operations=(ops.ESTOP,),
)
CLEAR = Command(
    "clear",
    "clear latched faults and e-stop (after fixing the cause)",
    cmd_clear,
    operations=(ops.CLEAR,),
)
JOG = Command(
    "jog",
    "small manual move: advance and/or rotate, then wait until idle",
    cmd_jog,
    _jog_arguments,
    operations=(ops.ADVANCE_MM, ops.ROTATE_DEG),
)
