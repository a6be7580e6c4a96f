"""Scoring fields on the launch form, and a run page's metrics and confusion matrix."""

from __future__ import annotations

from typing import Any

import pytest

from tests.browser.conftest import WIDE, screenshot
from tests.e2e.conftest import Cluster

pytestmark = pytest.mark.browser


def test_chosen_metrics_travel_as_a_list_and_the_run_page_shows_them(
    cluster: Cluster, page: Any
) -> None:
    """An unknown metric is flagged on its field; a good list is what is recorded.

    The run page lists the last round's metrics on the test set and its
    confusion matrix (10 digits: a 10 x 10 table whose counts add up to the
    test set).
    """
    server = cluster.server()
    cluster.digits_clients(server, 3)
    page.goto(server.http_url)
    page.wait_for_selector("#live[data-state='open']")

    page.fill("#f-rounds", "2")
    page.fill("#f-min_clients", "3")
    page.fill("#f-metrics", "accuracy, auroc, f2")
    page.click("#launch")
    error = page.locator("#err-metrics")
    error.wait_for(state="visible")
    assert "unknown metric 'f2'" in error.inner_text()
    assert server.api.get("/api/runs") == []

    page.fill("#f-metrics", "accuracy, macro_f1, auroc")
    page.select_option("#f-selection_metric", "macro_f1")
    page.click("#launch")
    page.wait_for_selector("#session-title .badge-finished")
    (run,) = server.api.get("/api/runs")
    detail = server.api.run(run["id"])
    assert detail["config"]["metrics"] == ["accuracy", "macro_f1", "auroc"]
    assert detail["config"]["selection_metric"] == "macro_f1"
    last = detail["rounds"][-1]
    assert set(last["test_metrics"]) == {"accuracy", "macro_f1", "auroc"}

    page.goto(f"{server.http_url}/runs/{run['id']}")
    page.wait_for_selector("#metrics-card:not([hidden])")
    shown = page.locator("#metrics-list [data-metric]")
    assert [shown.nth(i).get_attribute("data-metric") for i in range(shown.count())
            ] == ["accuracy", "macro_f1", "auroc"]
    auroc = page.inner_text("#metrics-list [data-metric='auroc'] dd")
    assert auroc == f"{last['test_metrics']['auroc']:.4f}"
    assert "test set" in page.inner_text("#metrics-note")
    assert page.locator("#confusion-body tr").count() == 10
    cells = page.locator("#confusion-body td")
    assert sum(int(cells.nth(i).inner_text()) for i in range(cells.count())) == 360
    screenshot(page, "run-metrics", WIDE)
