"""The server's web page in a real browser (Debian's chromium, headless, driven by
selenium): it loads through the printed address (the token traded for a cookie), the
trace moves while a simulated run advances and survives a reload, its STOP stops the rig
(checked on the device's depth), the run's outcome, the procedure's notes and the run
history are shown, a lost server is greyed and found again when it comes back on its
port; in an 800 px window STOP and ESTOP cover no readout, ESTOP is the largest target,
and an idle trace's y-range follows the data; without the token there is no page."""

from __future__ import annotations

import os
import pwd
import shutil
import signal
import socket
import tempfile
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from conftest import Served, start_run, start_server, stop_process, wait_phase_advance

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


def _fetch_status(driver: Any, path: str) -> int:
    """GET path from the page (its cookie, its origin): the HTTP status."""
    return int(
        driver.execute_async_script(
            "const done = arguments[arguments.length - 1];"
            "fetch(arguments[0]).then(r => done(r.status), () => done(0));",
            path,
        )
    )


# The browser first in every test's arguments: chromium's start is the heaviest moment,
# and on a loaded machine it starves a real-time simulator started before it.
def test_the_page_traces_a_run_stops_it_and_shows_a_lost_server(
    browser: Any, served: Served
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
    events = browser.find_element(By.ID, "events").text
    assert "STOP from client" in events
    assert "procedure: home" in events and "procedure: end outcome aborted" in events
    # the run's outcome, and why
    wait.until(lambda d: _view(d, "outcome") == "aborted")
    outcome = browser.find_element(By.ID, "outcome").text
    assert outcome.startswith("ABORTED: ") and "STOP from client" in outcome, outcome
    assert "pierce" in outcome
    # the history: the run recorded by the server, with its files
    wait.until(lambda d: _view(d, "history") == 1)
    (row,) = browser.find_elements(By.CSS_SELECTOR, "#history tbody tr")
    cells = [c.text for c in row.find_elements(By.TAG_NAME, "td")]
    assert cells[2].startswith("ABORTED: ") and "STOP from client" in cells[2], cells
    # a served simulator does not report its lesion over the link: the rig, then
    assert cells[3].startswith("simulated rig ") and served.port in cells[3], cells
    assert cells[4] == "pierce"
    assert float(cells[5]) > 0 and float(cells[6]) > 0 and "client" in cells[7]
    assert cells[7].endswith(f", user {pwd.getpwuid(os.getuid()).pw_name}"), cells
    links = {a.text: a.get_attribute("href") for a in row.find_elements(By.TAG_NAME, "a")}
    assert set(links) == {"plot", "CSV", "MCAP"}
    for href in links.values():
        assert _fetch_status(browser, href) == 200, href
    # the server gone: the page says so instead of showing a frozen trace as live
    served.proc.send_signal(signal.SIGINT)
    served.proc.wait(timeout=WAIT_S)
    wait.until(lambda d: _view(d, "lost") is True)
    assert "CONNECTION LOST" in browser.find_element(By.ID, "conn").text
    assert "lost" in (browser.find_element(By.TAG_NAME, "body").get_attribute("class") or "")
    assert browser.find_element(By.ID, "banner").is_displayed()


def _free_tcp_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def _greyed(driver: Any) -> bool:
    return all(
        float(e.value_of_css_property("opacity")) < 0.5
        for e in driver.find_elements("css selector", ".live")
    )


def test_a_reload_keeps_the_trace_and_a_restarted_server_is_found_again(
    browser: Any, sim_pty: str, runtime_env: dict[str, str]
) -> None:
    from selenium.webdriver.support.ui import WebDriverWait

    wait = WebDriverWait(browser, WAIT_S)
    http_port = str(_free_tcp_port())
    served = start_server(sim_pty, runtime_env, "--http-port", http_port)
    try:
        browser.get(served.web)
        wait.until(lambda d: _view(d, "connected") is True)
        assert "token" not in browser.current_url  # traded for the cookie
        run = start_run(served)
        wait_phase_advance(run)
        wait.until(lambda d: (_view(d, "lastDepth") or 0) > 0.5)
        first_t = _view(browser, "trace()")["t"][0]
        clock_0 = _view(browser, "clock")
        assert clock_0["homing"] is False and clock_0["s"] > 0.5, clock_0
        browser.refresh()  # the live trace survives: the server sends its last minutes
        wait.until(lambda d: _view(d, "connected") is True and _view(d, "points") > 0)
        trace = _view(browser, "trace()")
        assert max(trace["depth"]) > 0.5  # the run's advance, from before the reload...
        assert trace["t"][0] <= first_t + 0.05  # ...back to where the old page began
        # the run clock goes on from the run's first motion, not from this page's load
        wait.until(lambda d: _view(d, "clock") is not None)
        # the clock and the text it shows, read at one instant (the run goes on meanwhile)
        clock_1, shown = browser.execute_script(
            "return [window.needleView.clock, document.getElementById('run').textContent];"
        )
        assert clock_1["homing"] is False and clock_1["s"] >= clock_0["s"], (clock_0, clock_1)
        assert f"t {clock_1['s']:.1f} s" in shown, (clock_1, shown)
        run.send_signal(signal.SIGINT)
        run.communicate(timeout=WAIT_S)
        # one clock: the last time the page showed is the outcome's (no homing counted)
        wait.until(lambda d: _view(d, "outcome") is not None)
        last_s, duration_s = _view(browser, "clock")["s"], _view(browser, "outcomeDurationS")
        assert last_s <= duration_s <= last_s + 1.0, (last_s, duration_s)
        stop_process(served.proc)
        wait.until(lambda d: _view(d, "lost") is True)
        assert _greyed(browser)
        served = start_server(sim_pty, runtime_env, "--http-port", http_port)
        # the page finds the server again by itself, on the same port, with its cookie
        wait.until(lambda d: _view(d, "connected") is True and _view(d, "opens") >= 2)
        assert not _greyed(browser)
        wait.until(lambda d: _view(d, "state") is not None)
    finally:
        stop_process(served.proc)


def test_an_800px_window_estop_stop_and_readouts(browser: Any, served: Served) -> None:
    from selenium.webdriver.common.by import By
    from selenium.webdriver.support.ui import WebDriverWait

    browser.set_window_size(800, 900)
    wait = WebDriverWait(browser, WAIT_S)
    browser.get(served.base)  # the bare address: no token, no cookie — no page
    assert "token required" in browser.find_element(By.TAG_NAME, "body").text
    assert browser.find_elements(By.ID, "estop") == []
    browser.get(served.web)
    wait.until(lambda d: _view(d, "connected") is True and _view(d, "state") is not None)
    wait.until(lambda d: _view(d, "points") > 50)

    def rect(el: Any) -> tuple[float, float, float, float]:
        r = el.rect
        return r["x"], r["y"], r["x"] + r["width"], r["y"] + r["height"]

    def overlap(a: Any, b: Any) -> bool:
        ax0, ay0, ax1, ay1 = rect(a)
        bx0, by0, bx1, by1 = rect(b)
        return ax0 < bx1 and bx0 < ax1 and ay0 < by1 and by0 < ay1

    halts = [browser.find_element(By.ID, i) for i in ("stop", "estop")]
    readouts = [
        browser.find_element(By.ID, i)
        for i in ("state", "depthnow", "forcenow", "faults", "run", "outcome", "force", "depth")
    ]
    for h in halts:
        assert h.is_displayed()
        for r in readouts:
            assert not overlap(h, r), (h.get_attribute("id"), r.get_attribute("id"))
    buttons = browser.find_elements(By.TAG_NAME, "button")
    area = {b.get_attribute("id"): b.size["width"] * b.size["height"] for b in buttons}
    assert max(area, key=lambda k: area[k]) == "estop"
    # the axes: what the charts draw, caught at the canvas (ticks, units, time window)
    browser.execute_script(
        "window.drawn = {force: [], depth: []};"
        "const fill = CanvasRenderingContext2D.prototype.fillText;"
        "CanvasRenderingContext2D.prototype.fillText = function (text, x, y) {"
        "  (window.drawn[this.canvas.id] || []).push(String(text));"
        "  return fill.apply(this, arguments); };"
    )
    wait.until(lambda d: all(len(v) > 8 for v in d.execute_script("return window.drawn;").values()))
    drawn = browser.execute_script("return window.drawn;")
    for chart, unit in (("force", "force (N)"), ("depth", "depth (mm)")):
        texts = set(drawn[chart])
        assert {unit, "time (s before the latest sample; device clock)"} <= texts, texts
        assert {"-20 s", "-15 s", "-10 s", "-5 s", "0 s"} <= texts, texts  # the window
        values = sorted({float(t) for t in texts if t.replace(".", "").lstrip("-").isdigit()})
        assert len(values) >= 2, texts  # y ticks (two at least, labelled)...
        lo, hi = _view(browser, f"range.{chart}")
        assert all(lo <= v <= hi for v in values), (values, lo, hi)  # ...within the range
    windows = browser.find_elements(By.CSS_SELECTOR, ".window")
    assert [w.text for w in windows] == ["20", "20"]  # the window stated above each chart
    # idle: the y-range follows the trace, not the 40 N / soft-limit lines far away
    lo, hi = _view(browser, "range.force")
    assert hi - lo < 5 and hi < 40
    assert "limit 40.0 (above)" in browser.find_element(By.ID, "forcenote").text
    # ESTOP acts at once, no confirmation
    browser.find_element(By.ID, "estop").click()
    wait.until(lambda d: "ESTOP" in d.find_element(By.ID, "faults").text)
    assert served.json("status")["latched_faults"] == ["ESTOP"]
