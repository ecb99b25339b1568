"""needlectl's argument parser, dispatch and the single error boundary."""

from __future__ import annotations

import argparse
import importlib
import os
import sys
import traceback
from collections.abc import Callable, Sequence
from typing import NoReturn

from firmware_host.cli.exits import EXIT_CODES_HELP, CliError, Exit, classify
from firmware_host.cli.output import Output, StdoutClosed

DEFAULT_PORT = "sim://"
PORT_ENV = "NEEDLECTL_PORT"

DESCRIPTION = """\
needlectl: drive the needle driver rig (or its simulator) from the bench.

The port is --port URL, else $NEEDLECTL_PORT, else sim:// (the simulator): nothing
on the desk moves unless you name a real port, e.g. --port /dev/needle-driver.
Ports: a device path, socket://HOST:PORT, usb://1209:4e44[/SERIAL], sim://?lesion=NAME&seed=N.
In sim://?lesion=... give a library lesion's NAME or a lesion file's PATH; the URL's
query is percent-encoded, so a path with '+', '&', '%' or '#' spells them %2B, %26,
%25, %23 (a bare '+' reads as a space): sim://?lesion=/data/a%2Bb/x.toml.
The default sim:// starts a FRESH in-process simulator for every command, so state
(homed, position, faults) does not carry from one command to the next. For a device
that keeps its state, serve one in another terminal:
  needlectl sim serve --pty                  # prints the pty path to use as --port
Motion on a device that is not simulated asks for confirmation unless --yes."""


def _float_in(lo: float, hi: float, name: str) -> Callable[[str], float]:
    """An argparse type: a number within [lo, hi] (the CLI's own sanity range;
    the device's limits are checked again by the library and the device)."""

    def parse(text: str) -> float:
        try:
            value = float(text)
        except ValueError:
            raise argparse.ArgumentTypeError(f"{name} must be a number, got {text!r}") from None
        if not (lo <= value <= hi):  # also rejects nan
            raise argparse.ArgumentTypeError(f"{name} must be within {lo:g}..{hi:g}, got {text}")
        return value

    parse.__name__ = name
    return parse


def _int_in(lo: int, hi: int, name: str) -> Callable[[str], int]:
    def parse(text: str) -> int:
        try:
            value = int(text, 0)
        except ValueError:
            raise argparse.ArgumentTypeError(f"{name} must be an integer, got {text!r}") from None
        if not (lo <= value <= hi):
            raise argparse.ArgumentTypeError(f"{name} must be within {lo}..{hi}, got {text}")
        return value

    parse.__name__ = name
    return parse


class _Parser(argparse.ArgumentParser):
    """argparse, but a usage error is one line (what was wrong, where to look)."""

    def error(self, message: str) -> NoReturn:
        self.exit(Exit.USAGE, f"needlectl: {message} — see `{self.prog} --help`\n")


def _globals_parent(suppress: bool, port: bool = True, yes: bool = True) -> _Parser:
    """Global options, accepted before or after the command. After the command
    their defaults are suppressed so they never undo what came before; a command's
    own --help lists only those that apply to it (no --yes where nothing moves)."""
    p = _Parser(add_help=False)
    d = {"default": argparse.SUPPRESS} if suppress else {}
    if port:
        p.add_argument(
            "--port",
            metavar="URL",
            help=f"device URL (default: ${PORT_ENV}, else {DEFAULT_PORT})",
            **d,  # type: ignore[arg-type]
        )
    p.add_argument(
        "--json",
        action="store_true",
        help="print one JSON object (JSON lines for streams)",
        **d,  # type: ignore[arg-type]
    )
    if yes:
        p.add_argument(
            "--yes",
            "-y",
            action="store_true",
            help="do not ask before moving a real rig",
            **d,  # type: ignore[arg-type]
        )
    p.add_argument(
        "-q",
        "--quiet",
        action="store_true",
        help="print only the result line (and errors): no progress, no extra lines",
        **d,  # type: ignore[arg-type]
    )
    p.add_argument(
        "-v",
        "--verbose",
        action="store_true",
        help="show tracebacks and library logs",
        **d,  # type: ignore[arg-type]
    )
    return p


# Commands whose --help lists --yes (they move the rig) and --port (they talk to one).
_MOVES = frozenset({"home", "jog", "run"})
_OFFLINE = frozenset({"ports", "plot", "decode", "sim", "codegen"})
SUBCOMMAND_EPILOG = "exit codes: see `needlectl --help` (2 usage, 3 link, 4 refused, ...)"


def _version() -> str:
    import firmware_host
    from protocol import PROTOCOL_VERSION, SCHEMA_HASH

    return (
        f"needlectl {firmware_host.__version__} (protocol {PROTOCOL_VERSION},"
        f" schema {SCHEMA_HASH:#010x})"
    )


def build_parser() -> argparse.ArgumentParser:
    g = _globals_parent(suppress=True, port=False, yes=False)  # offline commands
    parents = {
        (port, yes): _globals_parent(suppress=True, port=port, yes=yes)
        for port in (False, True)
        for yes in (False, True)
    }
    parser = _Parser(
        prog="needlectl",
        description=DESCRIPTION,
        epilog=EXIT_CODES_HELP,
        formatter_class=argparse.RawDescriptionHelpFormatter,
        parents=[_globals_parent(suppress=False)],
    )
    parser.add_argument("--version", action="version", version=_version())
    sub = parser.add_subparsers(
        dest="command", metavar="COMMAND", required=True, parser_class=_Parser
    )

    def add(name: str, help_: str, handler: str) -> argparse.ArgumentParser:
        p = sub.add_parser(
            name,
            help=help_,
            description=help_,
            parents=[parents[(name not in _OFFLINE, name in _MOVES)]],
            epilog=SUBCOMMAND_EPILOG,
        )
        p.set_defaults(handler=handler)
        return p

    p = add("ports", "serial ports and USB devices that look like a rig", "offline:cmd_ports")
    p.add_argument("--all", action="store_true", help="list every serial port, rig or not")
    add("info", "identity: firmware, protocol version, schema hash, limits", "device:cmd_info")
    add(
        "status",
        "state, homed, depth_mm, angle_deg, force_n, latched faults, link statistics",
        "device:cmd_status",
    )
    add("events", "the device's numbered event log (JSON lines with --json)", "device:cmd_events")
    p = add("home", "home the advance axis (motion)", "device:cmd_home")
    p.add_argument(
        "--speed-mm-s",
        type=_float_in(0.01, 50, "--speed-mm-s"),
        default=2.0,
        help="homing speed in mm/s (2.0)",
    )
    p.add_argument(
        "--timeout-s",
        type=_float_in(1, 3600, "--timeout-s"),
        default=120.0,
        help="stop the rig and fail if homing takes longer (120)",
    )
    add("stop", "stop all motion (controlled deceleration)", "device:cmd_stop")
    add("estop", "emergency stop: latched until `needlectl clear`", "device:cmd_estop")
    add("clear", "clear latched faults and e-stop (after fixing the cause)", "device:cmd_clear")
    p = add(
        "jog", "small manual move: advance and/or rotate, then wait until idle", "device:cmd_jog"
    )
    p.add_argument(
        "--advance-mm",
        type=_float_in(-200, 200, "--advance-mm"),
        default=0.0,
        help="relative advance in mm (negative retracts)",
    )
    p.add_argument(
        "--rotate-deg",
        type=_float_in(-36000, 36000, "--rotate-deg"),
        default=0.0,
        help="relative rotation in degrees",
    )
    p.add_argument(
        "--speed-mm-s",
        type=_float_in(0.001, 50, "--speed-mm-s"),
        default=0.5,
        help="advance speed in mm/s (0.5)",
    )
    p.add_argument(
        "--rate-rpm",
        type=_float_in(0.1, 600, "--rate-rpm"),
        default=30.0,
        help="rotation rate in rpm (30)",
    )
    p.add_argument(
        "--timeout-s",
        type=_float_in(1, 3600, "--timeout-s"),
        default=120.0,
        help="stop the rig and fail if the move takes longer (120)",
    )
    p = add(
        "run",
        "the PIERCE procedure with live progress; outcome at the end (starts only with the"
        " needle at home; homes first)",
        "runcmd:cmd_run",
    )
    p.add_argument(
        "profile", metavar="PROFILE", help="built-in profile name (e.g. pierce) or TOML file"
    )
    p.add_argument("--record", metavar="DIR", help="record the run into DIR (a new run folder)")
    p.add_argument(
        "--target-mm",
        type=_float_in(0.1, 500, "--target-mm"),
        metavar="MM",
        help="target depth in mm: the lesion's far end plus a margin (default: the"
        " profile's; on sim://?lesion=NAME|PATH the lesion's end + 2 mm)",
    )
    p = add(
        "serve",
        "own the port and keep its session; other needlectl commands, a web page and a"
        " stop from any terminal go through it (until Ctrl-C)",
        "servecmd:cmd_serve",
    )
    p.add_argument(
        "--http-port",
        type=_int_in(0, 65535, "--http-port"),
        default=0,
        help="TCP port of the web page and API (default 0: a free one, printed)",
    )
    p.add_argument(
        "--allow-remote",
        action="store_true",
        help="listen on every interface, with a token (printed; or $NEEDLECTL_TOKEN)",
    )
    p.add_argument(
        "--client-queue",
        type=_int_in(4, 100_000, "--client-queue"),
        default=256,
        metavar="N",
        help="messages a client may fall behind before it is cut off (256)",
    )
    p = add("plot", "picture of a recorded run (PNG)", "runcmd:cmd_plot")
    p.add_argument("run_dir", metavar="DIR", help="a run folder written by `run --record`")
    p.add_argument(
        "-o", "--output", metavar="FILE.png", help="where to write the PNG (default: DIR/plot.png)"
    )
    p = add(
        "decode",
        "decode a raw byte capture, one message a line (JSON lines with --json)",
        "offline:cmd_decode",
    )
    p.add_argument("file", metavar="FILE", help="raw bytes as captured from the wire ('-': stdin)")

    p = add("sim", "the simulator: serve it, list its lesions", "offline:cmd_sim_help")
    simsub = p.add_subparsers(dest="sim_command", metavar="SIM_COMMAND", required=True)
    sp = simsub.add_parser(
        "serve",
        help="serve a simulated rig in real time on a pty or TCP (until Ctrl-C)",
        description="Serve a simulated rig in real time on a pty or TCP until Ctrl-C. The "
        "first line printed is the port: a pty path to pass as --port, or HOST:PORT to "
        "pass as --port socket://HOST:PORT. State persists between needlectl commands.",
        epilog="The simulator's other options (--noise, --fault, --fault-at-s, --corrupt, "
        "--drop, --duplicate, --cut-at-s, --cut-for-s, --watchdog-ms, --serial, --defect) "
        "are passed through: see `python -m sim_device serve --help`.",
        parents=[g],
    )
    sp.set_defaults(handler="offline:cmd_sim_serve")
    where = sp.add_mutually_exclusive_group()
    where.add_argument("--pty", action="store_true", help="serve on a new pty (default)")
    where.add_argument(
        "--tcp", metavar="HOST:PORT", help="serve on TCP (then use --port socket://HOST:PORT)"
    )
    sp.add_argument("--lesion", metavar="NAME|FILE", help="lesion from the library or a TOML file")
    sp.add_argument("--seed", type=_int_in(0, 2**32 - 1, "--seed"), help="random seed")
    sp.add_argument("--stats", metavar="FILE", help="write the device's statistics here (JSON)")
    sp = simsub.add_parser(
        "lesions",
        help="the lesion library",
        description="The simulator's lesion library.",
        parents=[g],
    )
    sp.set_defaults(handler="offline:cmd_sim_lesions")
    sp = simsub.add_parser(
        "sweep",
        help="run every combination of a sweep file (lesions × seeds × noise × profiles)",
        description="Run every combination of a sweep file as independent seeded in-process"
        " simulations, on local processes or a Dask cluster; write one results table (CSV,"
        " Parquet), a summary and a figure. Runs already in the table are not redone.",
        parents=[g],
    )
    sp.set_defaults(handler="sweepcmd:cmd_sim_sweep")
    sp.add_argument("sweep", metavar="SWEEP.toml", help="the sweep file (docs/operator.md)")
    sp.add_argument("--out", metavar="DIR", help="results folder (default: NAME-results)")
    sp.add_argument(
        "--jobs", type=_int_in(1, 1024, "--jobs"), help="local processes (default: all cores)"
    )
    sp.add_argument(
        "--dask", metavar="ADDRESS", help="run on Dask: tcp://HOST:8786, or local:N workers"
    )
    sp.add_argument("--fresh", action="store_true", help="ignore the table already in --out")
    sp.add_argument("--no-figure", action="store_true", help="skip the figure")

    p = add("codegen", "generate code from the protocol schema", "offline:cmd_codegen_help")
    cgsub = p.add_subparsers(dest="lang", metavar="LANG", required=True)
    cp = cgsub.add_parser(
        "c", help="the firmware's C header", description="The firmware's C header.", parents=[g]
    )
    cp.set_defaults(handler="offline:cmd_codegen_c")
    cp.add_argument(
        "-o", "--output", metavar="FILE.h", required=True, help="the header to write ('-': stdout)"
    )
    return parser


def resolve_port(ns: argparse.Namespace) -> str:
    """--port, else $NEEDLECTL_PORT, else sim://. An empty or malformed port is a usage
    error: it must never quietly mean the simulator."""
    given = getattr(ns, "port", None)
    if given is not None:
        where = "--port"
    elif PORT_ENV in os.environ:
        given, where = os.environ[PORT_ENV], f"${PORT_ENV}"
    else:
        return DEFAULT_PORT
    port = str(given).strip()
    if not port:
        raise CliError(f"{where} is empty: name the port (see `needlectl ports`), or unset it")
    if port.startswith("sim://"):
        _check_sim_url(port, where)
    if port.startswith("socket://"):
        _check_socket_url(port, where)
    return port


def _talks_to_a_device(handler: str) -> bool:
    return handler.startswith("device:") or handler in ("runcmd:cmd_run", "servecmd:cmd_serve")


def _check_sim_url(port: str, where: str) -> None:
    """needlectl's own rules (nothing between 'sim://' and '?', no empty value: it must
    never quietly mean a default), then the simulator's parser checks the options."""
    from urllib.parse import urlsplit

    from firmware_host.simulation import sim_options
    from sim_device.device import parse_query

    parts = urlsplit(port)
    if parts.netloc or parts.path:
        raise CliError(
            f"{where} {port!r}: a simulator URL is sim:// or sim://?lesion=NAME&seed=N"
            f" (nothing between 'sim://' and '?'; got {parts.netloc + parts.path!r})"
        )
    try:
        for key, value in parse_query(parts.query).items():
            if not value.strip():
                raise CliError(f"{where} {port!r}: {key}= is empty — give a value or leave it out")
        sim_options(port)
    except ValueError as exc:  # the simulator's DeviceOptionError
        code, message = classify(exc, port)
        raise CliError(message, code) from None


def _check_socket_url(port: str, where: str) -> None:
    from firmware_host.transports.serial import socket_url_problem

    problem = socket_url_problem(port)
    if problem is not None:
        raise CliError(f"{where} {port!r}: {problem}")


def _handler(spec: str) -> Callable[[argparse.Namespace, Output], int]:
    module, func = spec.split(":")
    mod = importlib.import_module(f"firmware_host.cli.{module}")
    fn: Callable[[argparse.Namespace, Output], int] = getattr(mod, func)
    return fn


def _discard_stdout() -> None:
    """Point fd 1 at /dev/null so the interpreter's last flush of what sits in
    sys.stdout's buffer does not meet EPIPE again (and print about it) on exit."""
    devnull = os.open(os.devnull, os.O_WRONLY)
    try:
        os.dup2(devnull, sys.stdout.fileno())
    except (OSError, ValueError):
        pass
    finally:
        os.close(devnull)


def main(argv: Sequence[str] | None = None) -> int:
    parser = build_parser()
    # Shell completion (argcomplete: a maintained library, not hand-written completion
    # scripts): a no-op unless the shell's completion hook called us.
    import argcomplete

    argcomplete.autocomplete(parser)
    args = list(sys.argv[1:] if argv is None else argv)
    try:
        ns, extras = parser.parse_known_args(args)
        if extras:
            # `sim serve` hands the simulator's other options (--noise, --fault, link
            # faults...) through to the simulator's own parser; nothing else takes extras.
            if getattr(ns, "handler", "") != "offline:cmd_sim_serve":
                parser.error(f"unrecognized arguments: {' '.join(extras)}")
            ns.serve_extra = extras
    except SystemExit as exc:  # argparse: --help (0) or a usage error (2), already printed
        return int(exc.code) if isinstance(exc.code, int) else Exit.USAGE
    try:
        if _talks_to_a_device(str(getattr(ns, "handler", ""))):
            ns.port = resolve_port(ns)
        else:  # plot, decode, ports, sim, codegen: the port is only named in messages
            ns.port = getattr(ns, "port", None) or os.environ.get(PORT_ENV) or DEFAULT_PORT
    except CliError as exc:
        sys.stderr.write(f"needlectl: {exc}\n")
        return int(exc.code)
    verbose = bool(getattr(ns, "verbose", False))
    out = Output(
        json_mode=bool(getattr(ns, "json", False)), quiet=bool(getattr(ns, "quiet", False))
    )
    import logging

    # The library logs what it sees (a closed link, a retransmit); needlectl reports
    # what matters itself, in one line, so those logs show only with -v.
    logging.basicConfig(
        level=logging.DEBUG if verbose else logging.CRITICAL,
        format="needlectl: %(name)s: %(message)s",
    )
    try:
        return int(_handler(ns.handler)(ns, out))
    except BaseException as exc:  # the one error boundary
        if isinstance(exc, SystemExit):
            raise
        if isinstance(exc, StdoutClosed):
            # Unwound through the device's context (which stops the rig); say nothing.
            _discard_stdout()
            return int(Exit.STDOUT_CLOSED)
        code, message = classify(exc, ns.port)
        if verbose:
            traceback.print_exc()
        sys.stderr.write(f"needlectl: {message}\n")
        sys.stderr.flush()
        return int(code)


__all__ = ["CliError", "main"]
