"""pytest plugin (entry point ``needle_hil``): options for the HIL conformance suite."""

from __future__ import annotations

import pytest


def pytest_addoption(parser: pytest.Parser) -> None:
    group = parser.getgroup("needle-driver HIL")
    group.addoption(
        "--port",
        default="sim://",
        help="URL of the device under test (default: the in-process simulator, sim://)",
    )
