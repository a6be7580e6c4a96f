"""A central DP run launched from the dashboard's form, and its run page's budget."""

from __future__ import annotations

from typing import Any

import pytest

from tests.browser.conftest import WIDE, screenshot
from tests.e2e.conftest import Cluster

pytestmark = pytest.mark.browser


def test_dp_fields_refuse_krum_then_a_dp_run_shows_its_budget(
    cluster: Cluster, page: Any
) -> None:
    """dp=central with krum is flagged; a fedavg dp run stops at its budget.

    The adaptive-clip choice travels as a JSON boolean, and the run's page
    shows the epsilon of each round against the budget.
    """
    server = cluster.server()
    cluster.digits_clients(server, 3)
    page.goto(server.http_url)
    page.wait_for_selector("#live[data-state='open']")

    page.select_option("#f-dp", "central")
    page.select_option("#f-strategy", "krum")
    page.fill("#f-rounds", "5")
    page.fill("#f-min_clients", "3")
    page.click("#launch")
    error = page.locator("#err-strategy")
    error.wait_for(state="visible")
    assert "not covered by the DP analysis" in error.inner_text()
    assert server.api.get("/api/runs") == []

    page.select_option("#f-strategy", "fedavg")
    page.select_option("#f-dp_adaptive_clip", "true")
    page.fill("#f-dp_target_epsilon", "8")  # q = 1, z = 1: 2 rounds of 5
    page.click("#launch")
    page.wait_for_selector("#session-title .badge-finished")
    (run,) = server.api.get("/api/runs")
    detail = server.api.run(run["id"])
    assert detail["config"]["dp_adaptive_clip"] is True
    assert detail["error"].startswith("privacy budget: round 3 would spend")
    assert len(detail["rounds"]) == 2

    page.goto(f"{server.http_url}/runs/{run['id']}")
    page.wait_for_selector("#privacy-body tr")
    assert page.locator("#privacy-body tr").count() == 2
    assert "of 8.000" in page.inner_text("#privacy-spent")
    assert "privacy budget" in page.inner_text("#run-error")
    screenshot(page, "privacy-run", WIDE)
