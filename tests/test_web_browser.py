"""The dashboard in a real headless Chromium, as an operator uses it.

``rac-store web`` runs in a subprocess over the session's redis-server, logged in
as the read-only inspector, with the demo's data. The browser loads the overview,
follows a run link, and watches a new finding arrive on /findings while the test
writes it; pausing holds new findings back and resuming catches up. The
screenshots go to docs/ (the README shows them).
"""

from __future__ import annotations

import time
import uuid
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
import redis

from rac_store import AuditExpectation, AuditStore
from rac_store.web.server import fill_demo

from .conftest import ACL_PASSWORD
from .support import browser
from .support.redis_server import RedisServer
from .support.web import ROOT, WebProcess, mark_missing, pending_run, wait_for, web_process

pytestmark = [pytest.mark.slow, pytest.mark.redis_only]

DOCS = ROOT / "docs"
HOSTILE = '"><img src=x onerror="window.__xss=1">'


@pytest.fixture
def dashboard(
    redis_server: RedisServer, redis_client: redis.Redis, acl_users: dict[str, str]
) -> Iterator[tuple[WebProcess, AuditStore]]:
    writer = AuditStore(redis_client, metrics=False)
    fill_demo(writer)
    url = f"redis://{acl_users['inspector']}:{ACL_PASSWORD}@127.0.0.1:{redis_server.port}/0"
    with web_process("--redis-url", url) as web:
        yield web, writer


@pytest.fixture
def chromium() -> Iterator[Any]:
    assert browser.available(), "install Debian's chromium and chromium-driver (.ci/run does)"
    with browser.chromium() as driver:
        yield driver


def _rows_with(driver: Any, text: str) -> list[Any]:
    rows = driver.find_elements("css selector", "#findings tbody tr")
    return [row for row in rows if text in row.text]


def _shot(driver: Any, name: str) -> Path:
    path = DOCS / name
    driver.save_screenshot(str(path))
    assert path.stat().st_size > 10_000
    return path


def _open_findings(driver: Any, web: WebProcess) -> Any:
    """Load /findings and wait until its live feed is connected; the status element."""
    driver.get(web.base + "/findings")
    status = driver.find_element("id", "live-status")
    wait_for(lambda: status.text == "live", what="the live feed to connect")
    return status


def _console_errors(driver: Any) -> list[str]:
    return [entry["message"] for entry in driver.get_log("browser") if entry["level"] == "SEVERE"]


def test_overview_run_page_and_a_live_finding(
    dashboard: tuple[WebProcess, AuditStore], chromium: Any
) -> None:
    web, writer = dashboard
    driver = chromium
    driver.get(web.base + "/")
    assert driver.title.startswith("Overview")
    cards = driver.find_element("css selector", ".cards").text
    assert "past due" in cards and "INCOMPLETE" in cards
    _shot(driver, "web-overview.png")

    link = driver.find_element("css selector", "table.findings a.run")
    run_id = link.text
    link.click()
    wait_for(lambda: "/runs/" in driver.current_url, what="the run page")
    assert run_id in driver.find_element("tag name", "h1").text
    assert driver.find_elements("css selector", "#expectations tbody tr")
    assert "If the run ended now" in driver.page_source
    _shot(driver, "web-run.png")

    status = _open_findings(driver, web)
    fresh = pending_run(writer)
    mark_missing(writer, fresh)  # written while the page is open
    wait_for(lambda: len(_rows_with(driver, fresh)) == 2, what="the new findings to appear")
    # the mark, and the verdict of the run it settled, written in one step
    row = next(r for r in _rows_with(driver, fresh) if "MISSING" in r.text)
    assert "logs/start_trace" in row.text
    assert "fresh" in row.get_attribute("class")
    assert row.find_element("css selector", "a.run").get_attribute("href").endswith(fresh)
    _shot(driver, "web-findings.png")

    toggle = driver.find_element("id", "live-toggle")
    toggle.click()
    assert status.text == "paused" and toggle.text == "resume"
    held = pending_run(writer)
    mark_missing(writer, held)
    time.sleep(1.5)
    assert not _rows_with(driver, held)  # paused: not shown
    toggle.click()
    wait_for(lambda: _rows_with(driver, held), what="the held finding after resuming")
    assert len(_rows_with(driver, fresh)) == 2  # resuming did not repeat what was shown
    assert _console_errors(driver) == []


def test_a_hostile_live_finding_is_shown_as_text(
    dashboard: tuple[WebProcess, AuditStore], chromium: Any
) -> None:
    web, writer = dashboard
    _open_findings(chromium, web)
    driver = chromium
    run = pending_run(writer)
    writer.add_expectations(run, [AuditExpectation(uuid.UUID(run), "x", HOSTILE)])
    mark_missing(writer, run, "x", HOSTILE)
    wait_for(lambda: _rows_with(driver, run), what="the hostile finding")
    row = _rows_with(driver, run)[0]
    assert HOSTILE in row.text
    assert driver.find_elements("css selector", "#findings img") == []
    assert driver.execute_script("return window.__xss === undefined")
    driver.get(web.base + f"/runs/{run}")
    assert HOSTILE in driver.find_element("id", "expectations").text
    assert driver.find_elements("css selector", "img") == []
    assert driver.execute_script("return window.__xss === undefined")
    assert _console_errors(driver) == []
