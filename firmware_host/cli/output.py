"""How needlectl talks back: one JSON object (or JSON lines) with --json, plain
lines otherwise; rich progress only when stdout is a terminal and not --json."""

from __future__ import annotations

import dataclasses
import enum
import json
import sys
from collections.abc import Mapping
from typing import Any, TextIO

from rich.console import Console


def jsonable(value: Any) -> Any:
    """Plain JSON values from dataclasses, enums, numpy scalars, paths, flags."""
    if isinstance(value, enum.Enum):
        return value.name if value.name is not None else int(value.value)
    if dataclasses.is_dataclass(value) and not isinstance(value, type):
        return {f.name: jsonable(getattr(value, f.name)) for f in dataclasses.fields(value)}
    if isinstance(value, Mapping):
        return {str(k): jsonable(v) for k, v in value.items()}
    if isinstance(value, list | tuple | set | frozenset):
        return [jsonable(v) for v in value]
    if isinstance(value, bytes | bytearray):
        return value.hex()
    if isinstance(value, str | int | float | bool) or value is None:
        return value
    item = getattr(value, "item", None)  # numpy scalars
    if callable(item):
        return item()
    return str(value)


class StdoutClosed(Exception):
    """The reader of stdout went away (`needlectl … | head -2`): EPIPE on our own
    output, not on the rig's link. needlectl stops quietly, as Unix tools do."""


class Output:
    def __init__(self, json_mode: bool, stream: TextIO | None = None, quiet: bool = False) -> None:
        self.json_mode = json_mode
        self.quiet = quiet  # -q: only the result line (and errors)
        self.stream = stream if stream is not None else sys.stdout
        self.interactive = self.stream.isatty() and not json_mode and not quiet
        # Progress and decorations go through rich only on a terminal.
        self.console = Console(file=self.stream, highlight=False, soft_wrap=True)

    def emit(self, obj: Mapping[str, Any]) -> None:
        """One JSON object per line (a whole answer, or one item of a stream)."""
        self.write(json.dumps(jsonable(obj), separators=(",", ":")) + "\n")

    def line(self, text: str = "") -> None:
        if not self.json_mode:
            self.write(text + "\n")

    def extra(self, text: str) -> None:
        """A line beside the answer (details, hints): left out with -q."""
        if not self.quiet:
            self.line(text)

    def write(self, text: str) -> None:
        """Write and flush; a closed pipe becomes StdoutClosed (never a link error)."""
        try:
            self.stream.write(text)
            self.stream.flush()
        except BrokenPipeError:
            raise StdoutClosed from None

    def result(self, obj: Mapping[str, Any], text: str) -> None:
        """The answer of a command: JSON with --json, else the human text."""
        if self.json_mode:
            self.emit(obj)
        else:
            self.line(text)


def note(text: str) -> None:
    """A remark for the operator that is not the command's answer (stderr)."""
    sys.stderr.write(f"needlectl: {text}\n")
    sys.stderr.flush()
