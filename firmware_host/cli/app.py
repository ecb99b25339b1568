"""needlectl's argument parser, dispatch and the single error boundary."""

from __future__ import annotations

import argparse
import os
import sys
import traceback
from collections.abc import Sequence
from typing import NoReturn

from firmware_host.cli import device, exportcmd, offline, runcmd, servecmd
from firmware_host.cli.command import Command
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


SUBCOMMAND_EPILOG = "exit codes: see `needlectl --help` (2 usage, 3 link, 4 refused, ...)"

# The commands, in the order --help lists them.
COMMANDS: tuple[Command, ...] = (
    offline.PORTS,
    device.INFO,
    device.STATUS,
    device.EVENTS,
    device.HOME,
    device.STOP,
    device.ESTOP,
    device.CLEAR,
    device.JOG,
    runcmd.RUN,
    servecmd.SERVE,
    runcmd.PLOT,
    exportcmd.EXPORT,
    offline.DECODE,
    offline.SIM,
    offline.CODEGEN,
)


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

    for cmd in COMMANDS:
        p = sub.add_parser(
            cmd.name,
            help=cmd.help,
            description=cmd.help,
            parents=[parents[(cmd.talks_to_a_device, cmd.moves)]],
            epilog=SUBCOMMAND_EPILOG,
        )
        _fill(p, cmd, g)
    return parser


def _fill(p: argparse.ArgumentParser, cmd: Command, g: argparse.ArgumentParser) -> None:
    """A command's parser: its arguments, or its subcommands; the command to call."""
    p.set_defaults(command_to_run=cmd)
    if cmd.arguments is not None:
        cmd.arguments(p)
    if not cmd.subcommands:
        return
    sub = p.add_subparsers(dest=cmd.subcommand_dest, metavar=cmd.subcommand_metavar, required=True)
    for subcommand in cmd.subcommands:
        sp = sub.add_parser(
            subcommand.name,
            help=subcommand.help,
            description=subcommand.description or subcommand.help,
            epilog=subcommand.epilog,
            parents=[g],
        )
        _fill(sp, subcommand, g)


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
        command: Command = ns.command_to_run
        if extras:
            # `sim serve` hands the simulator's other options (--noise, --fault, link
            # faults...) through to the simulator's own parser; nothing else takes extras.
            if not command.passes_extras:
                parser.error(f"unrecognized arguments: {' '.join(extras)}")
            ns.serve_extra = extras
    except SystemExit as exc:  # argparse: --help (0) or a usage error (2), already printed
        return int(exc.code) if isinstance(exc.code, int) else Exit.USAGE
    try:
        if command.talks_to_a_device:
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
        assert command.handler is not None  # (a group's subcommand is required)
        return int(command.handler(ns, out))
    except BaseException as exc:  # the one error boundary
        if isinstance(exc, SystemExit):
            raise
        if isinstance(exc, StdoutClosed):
            # Unwound through the device's context (which stops the rig); say nothing.
            _discard_stdout()
            return int(Exit.STDOUT_CLOSED)
        words = ns.command if command.name == ns.command else f"{ns.command} {command.name}"
        code, message = classify(exc, ns.port, words)
        if verbose:
            traceback.print_exc()
        sys.stderr.write(f"needlectl: {message}\n")
        sys.stderr.flush()
        return int(code)


__all__ = ["CliError", "main"]
