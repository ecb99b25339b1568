"""Fixtures for host tests (helpers live in helpers.py)."""

from __future__ import annotations

from collections.abc import Iterator

import pytest

from .helpers import Pty


@pytest.fixture
def pty_pair() -> Iterator[Pty]:
    p = Pty()
    yield p
    p.close()
