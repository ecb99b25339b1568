"""The rig server's runs directory: where every run it drives is recorded, and its history.

A client names a run, never a path: the server (which may run as another user, root
even) writes only under its own runs directory, so no client can make it write, or
overwrite, a file anywhere else. A name is one plain path component; a run without a
name is named by its start time and profile.
"""

from __future__ import annotations

import datetime as dt
import json
import os
import re
from pathlib import Path
from typing import Any

RUNS_ENV = "NEEDLECTL_RUNS_DIR"
NAME_RE = re.compile(r"[A-Za-z0-9][A-Za-z0-9._-]{0,79}")
NAME_RULE = "1-80 of A-Z a-z 0-9 . _ -, not starting with . _ or -"


class RunNameError(ValueError):
    """A run name that is not one plain name under the runs directory."""


def default_runs_dir() -> Path:
    """``$NEEDLECTL_RUNS_DIR``, else ``$XDG_DATA_HOME/needlectl/runs``, else
    ``~/.local/share/needlectl/runs``: kept across reboots, unlike the runtime directory."""
    explicit = os.environ.get(RUNS_ENV)
    if explicit:
        return Path(explicit)
    data = os.environ.get("XDG_DATA_HOME") or str(Path.home() / ".local" / "share")
    return Path(data) / "needlectl" / "runs"


def check_name(name: str) -> str:
    if not NAME_RE.fullmatch(name) or ".." in name:
        raise RunNameError(
            f"run name {name!r} refused: a client names a run, never a path ({NAME_RULE});"
            " the server records it in its own runs directory"
        )
    return name


class Runs:
    """One runs directory."""

    def __init__(self, root: Path) -> None:
        self.root = root.resolve()

    def prepare(self) -> None:
        self.root.mkdir(mode=0o700, parents=True, exist_ok=True)

    def new_folder(self, name: str | None, profile: str) -> Path:
        """A fresh folder for a run: the client's name (refused if taken), or a time-stamped
        one. Created here, so two runs can never share one."""
        if name is None:
            stamp = dt.datetime.now(dt.UTC).strftime("%Y%m%d-%H%M%S")
            base = check_name(f"{stamp}-{re.sub(r'[^A-Za-z0-9._-]', '_', profile)}"[:72])
            for n in range(1000):
                candidate = self.root / (base if n == 0 else f"{base}-{n}")
                try:
                    candidate.mkdir()
                except FileExistsError:
                    continue
                return candidate
            raise RunNameError(f"no free run name for {base} in {self.root}")
        folder = self.root / check_name(name)
        try:
            folder.mkdir()
        except FileExistsError:
            raise RunNameError(
                f"run {name!r} already exists in {self.root}: name the run anew"
            ) from None
        return folder

    def folder(self, name: str) -> Path:
        """An existing run's folder, by name (never a path)."""
        folder = self.root / check_name(name)
        if not (folder / "meta.json").is_file():
            raise RunNameError(f"no run named {name!r} in {self.root}")
        return folder

    def history(self) -> list[dict[str, Any]]:
        """Every recorded run, newest first, as the page's history table shows it."""
        rows: list[dict[str, Any]] = []
        if not self.root.is_dir():
            return rows
        for folder in self.root.iterdir():
            try:
                meta = json.loads((folder / "meta.json").read_text(encoding="utf-8"))
            except (OSError, ValueError):
                continue
            rows.append(summarise(folder.name, meta, folder))
        rows.sort(key=lambda r: str(r["start_time_utc"]), reverse=True)
        return rows


def summarise(name: str, meta: dict[str, Any], folder: Path) -> dict[str, Any]:
    summary = meta.get("summary") or {}
    simulation = meta.get("simulation") or {}
    device = meta.get("device") or {}
    rig = f"{device.get('serial_number', '?')} on {meta.get('port', '?')}"
    if simulation and simulation.get("lesion"):
        subject = f"lesion {simulation['lesion']}"
    elif simulation:  # a served simulator does not say its lesion over the link
        subject = f"simulated rig {rig}"
    else:
        subject = f"rig {rig}"
    started = meta.get("started_by") or {}
    return {
        "name": name,
        "start_time_utc": meta.get("start_time_utc", ""),
        "outcome": summary.get("outcome", "running" if "end_time_utc" not in meta else "?"),
        "reason": summary.get("reason", ""),
        "subject": subject,
        "profile": (meta.get("profile") or {}).get("name", ""),
        "peak_force_n": summary.get("peak_force_n"),
        "duration_s": summary.get("duration_s"),
        "client": started.get("client", ""),
        "user": started.get("user", ""),
        "has_mcap": (folder / "run.mcap").is_file(),
    }
