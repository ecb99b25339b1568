"""issue 12: --version, -q, shell completion (argcomplete), and a subcommand's --help
that lists only what applies to it, each option described, the exit-code table once."""

from __future__ import annotations

import argparse
from pathlib import Path
from typing import TYPE_CHECKING

import firmware_host
from firmware_host.cli.app import build_parser

if TYPE_CHECKING:
    from conftest import Cli


def test_version(cli: Cli) -> None:
    proc = cli.run("--version")
    assert proc.returncode == 0
    assert proc.stdout.startswith(f"needlectl {firmware_host.__version__} (protocol ")


def test_quiet_prints_only_the_result_line(cli: Cli, tmp_path: Path) -> None:
    assert len(cli.run("status").stdout.splitlines()) > 1
    proc = cli.run("-q", "status")
    assert proc.returncode == 0 and len(proc.stdout.splitlines()) == 1, proc.stdout
    run_dir = tmp_path / "run"
    proc = cli.run(
        "--port",
        "sim://?lesion=soft-stenosis&seed=2",
        "run",
        "pierce",
        "-q",
        "--record",
        str(run_dir),
    )
    assert proc.returncode == 0, proc.stderr
    assert proc.stdout.splitlines() == [proc.stdout.splitlines()[0]]
    assert proc.stdout.startswith("CROSSED") and proc.stderr == ""


def test_shell_completion_through_argcomplete(cli: Cli, tmp_path: Path) -> None:
    out = tmp_path / "completions"
    env = {
        "_ARGCOMPLETE": "1",
        "COMP_LINE": "needlectl st",
        "COMP_POINT": "12",
        "_ARGCOMPLETE_STDOUT_FILENAME": str(out),
    }
    proc = cli.run(env=env)
    assert proc.returncode == 0, proc.stderr
    assert set(out.read_text().split()) == {"status", "stop"}


def test_subcommand_help_has_no_exit_code_table_and_only_flags_that_apply(cli: Cli) -> None:
    top = cli.run("--help").stdout
    assert "130" in top and "141" in top  # the table stays on the top-level help
    for command in cli.commands:
        text = cli.run(command, "--help").stdout
        assert "130" not in text and "141" not in text, command
        assert "needlectl --help" in text, command
        assert ("--yes" in text) == (command in ("home", "jog", "run")), command
        offline = ("ports", "plot", "export", "decode", "sim", "codegen")
        assert ("--port" in text) == (command not in offline), command


def _parsers(parser: argparse.ArgumentParser) -> list[tuple[str, argparse.ArgumentParser]]:
    out = [(parser.prog, parser)]
    for action in parser._actions:
        if isinstance(action, argparse._SubParsersAction):
            for sub in dict.fromkeys(action.choices.values()):
                out += _parsers(sub)
    return out


def test_every_option_is_described() -> None:
    for prog, parser in _parsers(build_parser()):
        assert parser.description, prog
        for action in parser._actions:
            if isinstance(action, argparse._SubParsersAction):
                continue
            text = (action.help or "").strip()
            what = f"{prog} {'/'.join(action.option_strings) or action.dest}"
            # a description, not only a default in parentheses
            assert text and not text.startswith("("), what


def test_exit_code_table_has_one_code_per_line() -> None:
    """issue 17: 141's entry and 143's ran together on one line."""
    from firmware_host.cli.exits import EXIT_CODES_HELP, Exit

    starts = [line.split()[0] for line in EXIT_CODES_HELP.splitlines()[1:] if line[:3].strip()]
    assert starts == [str(int(code)) for code in Exit], EXIT_CODES_HELP
