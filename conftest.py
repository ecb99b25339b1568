"""Repository-wide pytest set-up."""

import os
import sys

import pytest
from hypothesis import settings

# No example database: a database left by an earlier edit of a test replays examples that
# no longer fit it (FlakyStrategyDefinition). In CI, derandomize so a run is reproducible.
settings.register_profile("needle-driver", database=None, derandomize=bool(os.environ.get("CI")))
settings.load_profile("needle-driver")


# make test's order: the real-time tests first, then the tests that run in virtual time
# (the simulator in-process: not timing-sensitive), with the C firmware's real-time HIL
# suites (tests/hil/test_hil_firmware.py) started as they begin and judged last — those
# suites mostly wait on real time, so they use the second core while the virtual-time
# tests use the first.
_VIRTUAL_TIME = (
    "tests/procedure/",
    "tests/protocol/",
    "tests/sim/",
    "tests/sweep/",
    "tests/test_codec_smoke.py",
    "tests/safety/test_campaign.py",
    "hil_tests/",
)
_FIRMWARE_SUITES = "tests/hil/test_hil_firmware.py"


_firmware_selected = False  # this session runs the firmware suites' tests


def pytest_collection_modifyitems(items: list[pytest.Item]) -> None:
    global _firmware_selected

    def group(item: pytest.Item) -> int:
        if item.nodeid.startswith(_FIRMWARE_SUITES):
            return 2
        return 1 if item.nodeid.startswith(_VIRTUAL_TIME) else 0

    items.sort(key=group)  # stable: each group keeps its order
    _firmware_selected = any(group(item) == 2 for item in items)


def pytest_runtest_setup(item: pytest.Item) -> None:
    if not _firmware_selected or not item.nodeid.startswith(_VIRTUAL_TIME):
        return
    firmware = sys.modules.get("test_hil_firmware")
    if firmware is not None and firmware._started is None:
        factory = item.config._tmp_path_factory  # type: ignore[attr-defined]
        firmware.start_runs(factory.mktemp("hil-firmware"))
