"""The dashboard in a real browser against a real server and real clients."""

from __future__ import annotations

import os
import shutil
import signal
from pathlib import Path
from typing import Any

import pytest

from tests.browser.conftest import PHONE, WIDE, screenshot
from tests.e2e.conftest import Cluster

pytestmark = pytest.mark.browser

README_SHOT = (
    Path(__file__).resolve().parents[2] / "web" / "static" / "img" / "dashboard.png"
)

# Record every value the charts' point counters take, to prove they grow live.
_WATCH_POINTS = """() => {
  window.__pageId = Math.random();
  window.__points = [];
  const chart = document.getElementById('chart-accuracy');
  new MutationObserver(() => window.__points.push(Number(chart.dataset.points)))
    .observe(chart, {attributes: true, attributeFilter: ['data-points']});
  return window.__pageId;
}"""


def _fill(tab: Any, **fields: object) -> None:
    for name, value in fields.items():
        tab.fill(f"#f-{name}", str(value))


def _launch_bad_learning_rate(tab: Any, server: Any) -> None:
    _fill(tab, learning_rate=-1)
    tab.click("#launch")
    error = tab.locator("#err-learning_rate")
    error.wait_for(state="visible")
    assert "-1" in error.inner_text()
    assert "invalid" in (
        tab.locator('label[data-field="learning_rate"]').get_attribute("class") or ""
    )
    assert server.api.get("/api/runs") == []


def test_session_runs_live_from_launch_to_finish(cluster: Cluster, page: Any) -> None:
    """3 clients listed; a bad field is flagged; a launched session fills in live."""
    server = cluster.server()
    clients = [
        cluster.client(
            server,
            f"site-{i}",
            "--dataset",
            "digits",
            "--partition",
            f"{i}/3",
            "--alpha",
            "0.5",
            "--seed",
            "0",
        )
        for i in (1, 2, 3)
    ]
    server.wait_for_clients(3, clients)
    page.goto(server.http_url)
    page.wait_for_selector("#live[data-state='open']")
    rows = page.locator("#clients-body tr")
    assert rows.count() == 3
    assert sorted(rows.locator(".cell-name").all_inner_texts()) == [
        "site-1",
        "site-2",
        "site-3",
    ]
    assert rows.locator(".client-status").all_inner_texts() == ["idle"] * 3

    _launch_bad_learning_rate(page, server)

    page_id = page.evaluate(_WATCH_POINTS)
    _fill(page, learning_rate=0.1, rounds=5, local_epochs=2, min_clients=3)
    page.click("#launch")
    page.wait_for_selector("#session-bar[aria-valuenow='100']")
    page.wait_for_selector("#session-title .badge-finished")
    assert page.get_attribute("#chart-accuracy", "data-points") == "5"
    assert page.get_attribute("#chart-loss", "data-points") == "5"
    points = page.evaluate("window.__points")
    assert points and points[-1] == 5 and points == sorted(points)
    assert page.evaluate("window.__pageId") == page_id  # no reload happened
    assert page.inner_text("#session-label") == "Round 5 of 5"
    assert page.locator("#runs-body tr").count() == 1
    assert page.locator("#download-model").get_attribute("href") == "/api/runs/1/model"
    assert all(
        r.startswith("R5")
        for r in page.locator("#clients-body td:last-child").all_inner_texts()
    )
    for width in (WIDE, PHONE):
        screenshot(page, "after-session", width)

    # A long session: screenshots mid-way, then the Stop button ends it.
    page.set_viewport_size({"width": WIDE, "height": 900})
    # Long enough that it cannot finish before Stop, however fast rounds get.
    _fill(page, rounds=10000, local_epochs=1)
    page.click("#launch")
    page.wait_for_selector("#session-title .badge-running")
    page.wait_for_function(
        "Number(document.getElementById('chart-accuracy').dataset.points) >= 12"
    )
    for width in (WIDE, PHONE):
        shot = screenshot(page, "during-session", width)
        if width == WIDE and os.environ.get("FEDNET_UPDATE_SCREENSHOT"):
            shutil.copyfile(shot, README_SHOT)
    page.set_viewport_size({"width": WIDE, "height": 900})
    page.click("#stop-run")
    page.click("#stop-run")  # the second click confirms
    page.wait_for_selector("#session-title .badge-stopped")
    assert server.api.run(2)["status"] == "stopped"

    page.goto(f"{server.http_url}/runs/1")
    assert page.locator("#rounds-body tr").count() == 5
    assert page.locator("#rounds-body tr").first.locator(".chip").count() == 3
    assert page.get_attribute("#chart-accuracy", "data-points") == "5"
    screenshot(page, "run-page", WIDE)


def test_admin_token_gates_the_dashboard_until_login(
    cluster: Cluster, page: Any
) -> None:
    """With an admin token, the browser logs in before it sees or launches anything."""
    server = cluster.server("--admin-token", "correct-horse", token="correct-horse")
    page.goto(server.http_url)
    page.wait_for_url(server.http_url + "/login?next=/")
    assert page.locator("#open-banner").count() == 0
    assert page.locator("#launch").count() == 0
    assert server.api.get("/api/runs") == []

    page.fill("#token", "wrong")
    page.click("#login-submit")
    assert "not correct" in page.inner_text("#login-error")
    page.fill("#token", "correct-horse")
    page.click("#login-submit")
    page.wait_for_url(server.http_url + "/")
    _fill(page, rounds=2)
    page.click("#launch")
    page.wait_for_selector("#session-title .badge")
    assert [r["id"] for r in server.api.get("/api/runs")] == [1]
    screenshot(page, "admin-logged-in", WIDE)


def test_page_reconnects_and_resyncs_after_server_restart(
    cluster: Cluster, page: Any
) -> None:
    """A dropped socket comes back by itself and the page catches up."""
    server = cluster.server()
    page.goto(server.http_url)
    page.wait_for_selector("#live[data-state='open']")
    page_id = page.evaluate("window.__pageId = Math.random()")
    server.process.kill(signal.SIGTERM)
    page.wait_for_selector("#live[data-state='closed']")
    again = cluster.server(port=server.port)
    again.api.launch(rounds=3, min_clients=1)
    page.wait_for_selector("#live[data-state='open']")
    page.wait_for_selector("#runs-body tr[data-run='1']")
    page.wait_for_selector(
        "#session-title .badge-queued, #session-title .badge-running"
    )
    assert page.evaluate("window.__pageId") == page_id
