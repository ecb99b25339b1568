"""One timeout policy (hil_runner.py): every test here that runs HIL suites in subprocesses
is marked suite_timeout(N) for at least the N suites it runs, so that a suite's own
timeout fires before pytest-timeout's — and none asks a suite for more than that."""

from __future__ import annotations

import ast
import tomllib
from pathlib import Path

from hil_runner import REPO, SUITE_MARGIN_S, SUITE_TIMEOUT_S

HERE = Path(__file__).parent
# what runs a suite: run_hil itself, a fixture that does (one suite per test that asks),
# the mutant runner in a subprocess
SUITE_CALLS = {"run_hil"}
SUITE_FIXTURES = {"runs", "matrix"}


def _suites_run(fn: ast.FunctionDef) -> int:
    calls = sum(
        isinstance(node, ast.Call)
        and isinstance(node.func, ast.Name)
        and node.func.id in SUITE_CALLS
        for node in ast.walk(fn)
    )
    fixtures = any(a.arg in SUITE_FIXTURES for a in fn.args.args)
    mutants = any(
        isinstance(node, ast.Constant) and node.value == "mutant_run.py" for node in ast.walk(fn)
    )
    return calls + int(fixtures) + int(mutants)


def _marked_for(fn: ast.FunctionDef) -> int:
    """N of the function's @suite_timeout(N) (0 if it has none)."""
    for dec in fn.decorator_list:
        if isinstance(dec, ast.Call) and getattr(dec.func, "id", None) == "suite_timeout":
            if not dec.args:
                return 1
            arg = dec.args[0]
            assert isinstance(arg, ast.Constant) and isinstance(arg.value, int)
            return arg.value
    return 0


def test_every_suite_running_test_has_a_timeout_above_its_suites() -> None:
    checked = 0
    wrong = []
    for path in sorted(HERE.glob("test_*.py")):
        tree = ast.parse(path.read_text())
        for fn in (n for n in ast.walk(tree) if isinstance(n, ast.FunctionDef)):
            if not fn.name.startswith("test_"):
                continue
            runs, marked = _suites_run(fn), _marked_for(fn)
            if runs:
                checked += 1
                if marked < runs:
                    wrong.append(f"{path.name}::{fn.name} runs {runs} suite(s), marked {marked}")
    assert checked >= 15  # the check looked at the tests it is for
    assert wrong == [], wrong


def test_no_suite_is_given_more_than_its_share() -> None:
    """Explicit timeouts of suite runs stay within SUITE_TIMEOUT_S (run_hil checks its own
    argument too), and the default per-test timeout is below a marked test's."""
    for path in sorted(HERE.glob("test_*.py")):
        for node in ast.walk(ast.parse(path.read_text())):
            if isinstance(node, ast.keyword) and node.arg in ("timeout_s", "timeout"):
                value = node.value
                if isinstance(value, ast.Constant) and isinstance(value.value, int | float):
                    assert value.value <= SUITE_TIMEOUT_S, f"{path.name}: {ast.unparse(node)}"
    ini = tomllib.loads((REPO / "pyproject.toml").read_text())["tool"]["pytest"]["ini_options"]
    assert ini["timeout"] < SUITE_TIMEOUT_S + SUITE_MARGIN_S
