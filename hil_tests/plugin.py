"""pytest plugin (entry point ``needle_hil``): options and the figures report of the HIL
conformance suite.

It is loaded in every pytest run of the repository, so it only adds options, a marker and a
report that is written only when HIL tests ran. The fixtures that open a port live in
hil_tests/conftest.py and are used by the suite's tests alone.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import pytest

from hil_tests.report import HilReport, report_path

REPORT_KEY = pytest.StashKey[HilReport]()
HIL_NODES_KEY = pytest.StashKey[set[str]]()
# set by the suite's session fixture: the last frames the device sent, for a failure report
DUMP_KEY = pytest.StashKey[Callable[[], str]]()


def pytest_addoption(parser: pytest.Parser) -> None:
    group = parser.getgroup("needle-driver HIL")
    group.addoption(
        "--port",
        default="sim://",
        help="URL of the device under test (default: the in-process simulator, sim://). "
        "A serial device path (/dev/ttyACM0), socket://HOST:PORT, or sim://?defect=NAME.",
    )
    group.addoption(
        "--allow-motion",
        action="store_true",
        default=False,
        help="let the suite move a device that is not a simulator (motion tests are "
        "skipped on real hardware without it)",
    )
    group.addoption(
        "--rig-config",
        default=None,
        metavar="FILE",
        help="TOML file describing the rig: expected identity, travel the suite may use, "
        "how to load the needle for the force and stall tests (see docs/hil.md)",
    )
    group.addoption(
        "--hil-report",
        default=None,
        metavar="FILE",
        help="write the figures each HIL test measured as JSON here (default: next to "
        "--junitxml as NAME.hil.json; not written otherwise)",
    )


def pytest_configure(config: pytest.Config) -> None:
    config.addinivalue_line(
        "markers", "hil_motion: the HIL test moves the device (needs --allow-motion on a rig)"
    )
    config.stash[REPORT_KEY] = HilReport(port=str(config.getoption("--port")))
    config.stash[HIL_NODES_KEY] = set()


def pytest_collection_modifyitems(config: pytest.Config, items: list[pytest.Item]) -> None:
    nodes = config.stash[HIL_NODES_KEY]
    for item in items:
        if "hil_session" in getattr(item, "fixturenames", ()):
            nodes.add(item.nodeid)


@pytest.hookimpl(hookwrapper=True)
def pytest_runtest_makereport(item: pytest.Item, call: pytest.CallInfo[None]) -> Any:
    outcome = yield
    rep: pytest.TestReport = outcome.get_result()
    if item.nodeid not in item.config.stash[HIL_NODES_KEY]:
        return
    rec = item.config.stash[REPORT_KEY].record(item.nodeid)
    rec.duration_s += rep.duration
    if rep.when == "call" or rep.outcome != "passed":
        if rep.outcome == "failed" and rep.when != "call":
            rec.outcome = "error"
        elif rec.outcome in ("unknown", "passed"):
            rec.outcome = rep.outcome
    if rep.skipped and isinstance(rep.longrepr, tuple):
        rec.skip_reason = str(rep.longrepr[2]).removeprefix("Skipped: ")
    if rep.failed:
        crash = getattr(rep.longrepr, "reprcrash", None)
        rec.failure = crash.message.splitlines()[0] if crash else str(rep.longrepr)[:300]
        dump = item.config.stash.get(DUMP_KEY, None)
        if dump is not None:
            rep.sections.append(("needle-hil: last frames from the device", dump()))


def pytest_sessionfinish(session: pytest.Session) -> None:
    config = session.config
    report = config.stash.get(REPORT_KEY, None)
    if report is None or not report.tests:
        return
    path = report_path(config.getoption("--hil-report"), config.getoption("xmlpath", None))
    if path is not None:
        report.write(path)


def pytest_terminal_summary(terminalreporter: Any, config: pytest.Config) -> None:
    report = config.stash.get(REPORT_KEY, None)
    if report is None or not report.tests:
        return
    path = report_path(config.getoption("--hil-report"), config.getoption("xmlpath", None))
    if path is not None:
        terminalreporter.write_line(f"needle-hil: figures written to {path}")
