"""``python -m safety_case [--junit FILE ...] [--out FILE]`` (``make safety``): the
traceability matrix from docs/safety/ and the JUnit XML of a test run (make test writes
two: the C firmware's real-time suites run as a pytest of their own beside the rest).
Exit 0 when every risk control was verified by a test that ran and passed (or is marked
pending parallel work), 1 when not (each reason one line), 2 when the inputs cannot be
read."""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

from safety_case.case import CaseError, load
from safety_case.junit import JunitError, TestResult, results_by_control
from safety_case.matrix import judge, markdown

REPO = Path(__file__).resolve().parent.parent
DEFAULT_JUNIT = Path("build/test-results/junit.xml")
DEFAULT_OUT = Path("build/safety/matrix.md")


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m safety_case", description=__doc__)
    parser.add_argument(
        "--junit",
        type=Path,
        nargs="+",
        default=[DEFAULT_JUNIT],
        help="pytest's JUnit XML: one file, or several of one run",
    )
    parser.add_argument("--out", type=Path, default=DEFAULT_OUT, help="the matrix (Markdown)")
    parser.add_argument(
        "--repo", type=Path, default=REPO, help="the tree holding docs/safety (doorstop)"
    )
    args = parser.parse_args(argv)
    try:
        case = load(args.repo)
        results: dict[str, list[TestResult]] = {}
        for path in args.junit:
            for control, tests in results_by_control(path).items():
                results.setdefault(control, []).extend(tests)
    except (CaseError, JunitError) as exc:
        print(f"safety: {exc}", file=sys.stderr)
        return 2
    matrix = judge(case, results)
    args.out.parent.mkdir(parents=True, exist_ok=True)
    args.out.write_text(markdown(case, matrix, ", ".join(map(str, args.junit))), encoding="utf-8")
    for problem in matrix.problems:
        print(f"safety: {problem}", file=sys.stderr)
    state = "green" if matrix.ok else "RED"
    print(f"safety: {state}: {matrix.summary()} -> {args.out}")
    return 0 if matrix.ok else 1


if __name__ == "__main__":
    sys.exit(main())
