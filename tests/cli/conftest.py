"""needlectl tested as the operator uses it: the installed console script, in a subprocess."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import pytest

NEEDLECTL = Path(sys.executable).parent / "needlectl"


def run_cli(
    *args: str,
    timeout_s: float = 60.0,
    env: dict[str, str] | None = None,
    stdin: str | None = None,
    cwd: Path | None = None,
) -> subprocess.CompletedProcess[str]:
    full_env = {k: v for k, v in os.environ.items() if k != "NEEDLECTL_PORT"}
    full_env.update(env or {})
    return subprocess.run(
        [str(NEEDLECTL), *args],
        capture_output=True,
        text=True,
        timeout=timeout_s,
        env=full_env,
        input=stdin if stdin is not None else "",
        cwd=cwd,
        check=False,
    )


def assert_one_line_error(proc: subprocess.CompletedProcess[str], code: int) -> str:
    """The operator's contract: exit code, one line on stderr, never a traceback."""
    assert proc.returncode == code, (proc.returncode, proc.stdout, proc.stderr)
    lines = [ln for ln in proc.stderr.splitlines() if ln.strip()]
    assert len(lines) == 1, proc.stderr
    assert lines[0].startswith("needlectl: "), lines[0]
    assert "Traceback" not in proc.stderr and "Traceback" not in proc.stdout
    return lines[0]


class Cli:
    """The helpers as a fixture, so test modules need not import this file."""

    path = NEEDLECTL
    run = staticmethod(run_cli)
    one_line_error = staticmethod(assert_one_line_error)


@pytest.fixture(scope="session")
def cli() -> Cli:
    if not NEEDLECTL.exists():
        pytest.fail(f"{NEEDLECTL} missing: install the package (make venv)")
    return Cli()
