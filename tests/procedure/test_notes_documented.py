"""docs/recording.md lists exactly the host note kinds the code writes (no more, no
fewer): the procedure's notes and the one needlectl run adds."""

from __future__ import annotations

import re
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]
WRITERS = ("firmware_host/procedure/loop.py", "firmware_host/cli/runcmd.py")


def kinds_written() -> set[str]:
    kinds: set[str] = set()
    for rel in WRITERS:
        kinds |= set(re.findall(r"\bnote\(\s*\"(\w+)\"", (ROOT / rel).read_text()))
    return kinds


def kinds_documented() -> set[str]:
    text = (ROOT / "docs/recording.md").read_text()
    section = text[text.index("Host notes") : text.index("## meta.json")]
    return set(re.findall(r"^\| `(\w+)` \|", section, flags=re.MULTILINE))


def test_every_host_note_kind_is_documented_and_no_other() -> None:
    written = kinds_written()
    assert {"hold_start", "hold_end", "end", "stopped", "operator_signal"} <= written
    assert kinds_documented() == written
