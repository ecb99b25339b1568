"""`export RUN --mcap`: a recorded run as MCAP, for runs recorded before run folders got
their run.mcap (a run recorded now has one already)."""

from __future__ import annotations

import argparse
from pathlib import Path

from firmware_host.cli.command import Command
from firmware_host.cli.exits import CliError, Exit
from firmware_host.cli.output import Output


def _run_folder(run: str) -> Path:
    """RUN: a run folder's path, else the name of a run in the rig server's runs
    directory (as the page's history names it)."""
    path = Path(run)
    if path.is_dir():
        return path
    from firmware_host.server.runs import NAME_RE, default_runs_dir

    named = default_runs_dir() / run
    if NAME_RE.fullmatch(run) and named.is_dir():
        return named
    raise CliError(
        f"no run folder {run} (nor a run of that name in {default_runs_dir()}) — give the"
        " DIR of `needlectl run --record DIR`, or a run's name from the server's history"
    )


def cmd_export(ns: argparse.Namespace, out: Output) -> int:
    from firmware_host.mcap_export import MCAP_FILE, ExportError, write_mcap

    if not ns.mcap:
        raise CliError("say which format: --mcap (the only one today)")
    folder = _run_folder(ns.run)
    target = Path(ns.output) if ns.output else folder / MCAP_FILE
    try:
        written = write_mcap(folder, target)
    except ExportError as exc:
        raise CliError(f"cannot export: {exc}") from None
    except OSError as exc:
        raise CliError(f"cannot write {target}: {exc.strerror or exc}", Exit.USAGE) from None
    out.result({"mcap": str(written), "run_dir": str(folder)}, f"wrote {written}")
    return Exit.OK


def _export_arguments(p: argparse.ArgumentParser) -> None:
    p.add_argument("run", metavar="RUN", help="a run folder, or a run's name in the runs dir")
    p.add_argument(
        "--mcap",
        action="store_true",
        help="write MCAP (JSON-schema channels /telemetry, /events, /notes) that Foxglove,"
        " Lichtblick and PlotJuggler open",
    )
    p.add_argument(
        "-o", "--output", metavar="FILE.mcap", help="where to write (default: RUN/run.mcap)"
    )


EXPORT = Command("export", "a recorded run for other tools (--mcap)", cmd_export, _export_arguments)
