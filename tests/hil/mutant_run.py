"""Run the HIL suite against the in-process simulator with one behaviour broken on purpose.

    python tests/hil/mutant_run.py MUTANT [pytest args ...]

The planted defects (``defect=``) cover six behaviours; these mutants break others the
suite checks, so that every conformance test is shown able to fail. Each is a build of the
one firmware core with its flag (-DND_DEFECT_<MUTANT>, sim_device/core_build.py MUTANTS),
selected by the suite's port URL like a planted defect.
"""

from __future__ import annotations

import sys

import pytest

from sim_device.core_build import MUTANTS


def main(argv: list[str]) -> int:
    name, *args = argv
    if name not in MUTANTS:
        print(f"unknown mutant {name!r}; known: {', '.join(sorted(MUTANTS))}", file=sys.stderr)
        return 2
    port = f"sim://?defect={name}"
    return int(pytest.main(["-q", "-p", "no:cacheprovider", "hil_tests", "--port", port, *args]))


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
