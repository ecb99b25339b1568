"""pytest plugin (entry point ``needle_safety``): the ``control`` marker.

``@pytest.mark.control("RC-WATCHDOG", "RC-LATCH")`` on a test says it verifies those risk
controls (docs/safety/controls). Each id becomes a ``control`` property of the test's
JUnit record — added at collection, so a skipped test carries its ids too and the matrix
can say the control's test was skipped rather than missing.
"""

from __future__ import annotations

import re

import pytest

from safety_case import CONTROL_MARKER, CONTROL_PROPERTY

# the doorstop UIDs of docs/safety/controls: RC-, then letters and digits
CONTROL_ID = re.compile(r"RC-[A-Z0-9]+\Z")


def pytest_configure(config: pytest.Config) -> None:
    config.addinivalue_line(
        "markers",
        f"{CONTROL_MARKER}(*ids): the risk controls (docs/safety/controls, e.g. RC-WATCHDOG) "
        "this test verifies; written into the JUnit XML for make safety",
    )


def pytest_itemcollected(item: pytest.Item) -> None:
    seen: list[str] = []
    for mark in item.iter_markers(CONTROL_MARKER):
        for control in mark.args:
            if not isinstance(control, str) or not CONTROL_ID.match(control):
                raise pytest.UsageError(
                    f"{item.nodeid}: control id {control!r} is not of the form RC-NAME"
                )
            if control not in seen:
                seen.append(control)
    item.user_properties.extend((CONTROL_PROPERTY, c) for c in seen)
