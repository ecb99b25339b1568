"""The server's web page in a real browser (Debian's chromium, headless, driven by
selenium): it loads, the trace moves while a simulated run advances, its STOP stops the
rig (checked on the device's depth), and a lost server is shown as lost."""

from __future__ import annotations

import shutil
import signal
import tempfile
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from conftest import Served, start_run, wait_phase_advance

CHROMIUM = Path("/usr/bin/chromium")
CHROMEDRIVER = Path("/usr/bin/chromedriver")
WAIT_S = 30.0


@pytest.fixture
def browser() -> Iterator[Any]:
    if not (CHROMIUM.exists() and CHROMEDRIVER.exists()):
        pytest.skip("no headless browser: apt-get install -y chromium chromium-driver")
    from selenium import webdriver
    from selenium.webdriver.chrome.service import Service

    profile = tempfile.mkdtemp(prefix="nd-chromium-")
    options = webdriver.ChromeOptions()
    options.binary_location = str(CHROMIUM)
    for arg in (
        "--no-sandbox",
        "--headless",
        "--disable-gpu",
        "--disable-background-networking",
        "--disable-component-update",
        "--disable-sync",
        "--no-first-run",
        f"--user-data-dir={profile}",
    ):
        options.add_argument(arg)
    driver = webdriver.Chrome(service=Service(str(CHROMEDRIVER)), options=options)
    try:
        yield driver
    finally:
        driver.quit()
        shutil.rmtree(profile, ignore_errors=True)


def _view(driver: Any, key: str) -> Any:
    return driver.execute_script(f"return window.needleView.{key};")


def test_the_page_traces_a_run_stops_it_and_shows_a_lost_server(
    served: Served, browser: Any
) -> None:
    from selenium.webdriver.common.by import By
    from selenium.webdriver.support.ui import WebDriverWait

    wait = WebDriverWait(browser, WAIT_S)
    browser.get(served.web)
    wait.until(lambda d: _view(d, "connected") is True)
    assert browser.find_element(By.ID, "stop").is_displayed()
    run = start_run(served)
    wait_phase_advance(run)
    # the trace moves while the run advances
    wait.until(lambda d: (_view(d, "lastDepth") or 0) > 0.3)
    depth_0 = _view(browser, "lastDepth")
    wait.until(lambda d: _view(d, "lastDepth") > depth_0 + 0.2)
    wait.until(lambda d: "pierce" in d.find_element(By.ID, "run").text)
    assert browser.find_element(By.ID, "state").text == "MOVING"
    # STOP on the page stops the run and the rig
    browser.find_element(By.ID, "stop").click()
    _, err = run.communicate(timeout=WAIT_S)
    assert run.returncode == 5 and "STOP from client" in err, err
    s1 = served.json("status")
    assert s1["moving"] is False and s1["latched_faults"] == []
    assert s1["depth_mm"] < 48
    s2 = served.json("status")
    assert s2["depth_mm"] == pytest.approx(s1["depth_mm"], abs=0.005)  # at rest, it stays
    assert "STOP from client" in browser.find_element(By.ID, "events").text
    # the server gone: the page says so instead of showing a frozen trace as live
    served.proc.send_signal(signal.SIGINT)
    served.proc.wait(timeout=WAIT_S)
    wait.until(lambda d: _view(d, "lost") is True)
    assert "CONNECTION LOST" in browser.find_element(By.ID, "conn").text
    assert "lost" in (browser.find_element(By.TAG_NAME, "body").get_attribute("class") or "")
    assert browser.find_element(By.ID, "banner").is_displayed()
