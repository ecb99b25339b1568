"""A needlectl command as a value: its name and help, its arguments, its handler and what
it does to a rig. Each command module declares its own (device.py, runcmd.py, ...);
cli/app.py builds the parser from them and calls the chosen one's handler.

What a command asks of the rig is the operations it uses (driver.OPERATIONS): one that
moves the rig makes the command ask before moving a real one (``--yes``), and any makes
it talk to a device (``--port``); ``serve`` owns the port without calling any.
"""

from __future__ import annotations

import argparse
from collections.abc import Callable
from dataclasses import dataclass
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from firmware_host.cli.output import Output
    from firmware_host.driver import Operation

Handler = Callable[[argparse.Namespace, "Output"], int]
Arguments = Callable[[argparse.ArgumentParser], None]


@dataclass(frozen=True)
class Command:
    name: str
    help: str
    handler: Handler | None = None  # None: a group, one of its subcommands is chosen
    arguments: Arguments | None = None  # adds the command's own arguments to its parser
    operations: tuple[Operation, ...] = ()  # what it asks of the rig
    owns_port: bool = False  # talks to a device without operations of its own (serve)
    description: str | None = None  # (a subcommand's; a command's is its help)
    epilog: str | None = None  # (a subcommand's)
    subcommands: tuple[Command, ...] = ()
    subcommand_dest: str = ""  # where the chosen subcommand's name goes
    subcommand_metavar: str = ""
    passes_extras: bool = False  # unknown options go to the handler (ns.serve_extra)

    @property
    def moves(self) -> bool:
        """It moves the rig: its --help lists --yes."""
        return any(op.moves for op in self.operations)

    @property
    def talks_to_a_device(self) -> bool:
        """It opens the port: its --help lists --port, and the port is checked first."""
        return self.owns_port or bool(self.operations)


def add_number(
    p: argparse.ArgumentParser,
    flag: str,
    lo: float,
    hi: float,
    default: float | None,
    help: str,
    *,
    integer: bool = False,
    metavar: str | None = None,
) -> None:
    """An option taking a number within [lo, hi] (an integer if ``integer``)."""
    kind = int_in(int(lo), int(hi), flag) if integer else float_in(lo, hi, flag)
    p.add_argument(flag, type=kind, default=default, help=help, metavar=metavar)


def float_in(lo: float, hi: float, name: str) -> Callable[[str], float]:
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


def int_in(lo: int, hi: int, name: str) -> Callable[[str], int]:
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
