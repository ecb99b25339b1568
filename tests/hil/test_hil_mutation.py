"""The mutation tool (tests/hil/mutation.py) on its quick sample: a few fixed mutants of
the C core's safety paths, each built into the simulator and killed by the HIL suite."""

from __future__ import annotations

import subprocess
import sys

from hil_runner import REPO, SUITE_TIMEOUT_S, lower_priority, suite_timeout
from mutation import FIXED, enclosing_function


def test_enclosing_function() -> None:
    lines = [
        "static int f(int a)",
        "{",
        "    return a;",
        "}",
        "void g(void) { h(); }",
        "int x;",
    ]
    assert enclosing_function(lines, 2) == "f"
    assert enclosing_function(lines, 4) == "g"
    assert enclosing_function(lines, 5) == "(file scope)"


@suite_timeout()
def test_fixed_mutants_are_killed() -> None:
    proc = subprocess.run(
        [sys.executable, str(REPO / "tests" / "hil" / "mutation.py"), "--fixed"],
        cwd=REPO,
        preexec_fn=lower_priority,  # virtual time: the real-time tests beside it go first
        capture_output=True,
        text=True,
        timeout=SUITE_TIMEOUT_S * len(FIXED),
    )
    assert proc.returncode == 0, proc.stdout[-3000:] + proc.stderr[-2000:]
    assert f"{len(FIXED)} killed, 0 survived" in proc.stdout, proc.stdout[-2000:]
