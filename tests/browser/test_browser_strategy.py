"""A non-default strategy (FedAdam) launched from the dashboard's form."""

from __future__ import annotations

from typing import Any

import pytest

from tests.browser.conftest import WIDE, screenshot
from tests.e2e.conftest import Cluster

pytestmark = pytest.mark.browser

FEDOPT_FIELDS = ("server_learning_rate", "beta_1", "beta_2", "tau")
OTHER_FIELDS = ("proximal_mu", "trim_fraction", "num_malicious", "clip_norm")


def _field(tab: Any, name: str) -> Any:
    return tab.locator(f'label[data-field="{name}"]')


def _fill(tab: Any, **fields: object) -> None:
    for name, value in fields.items():
        tab.fill(f"#f-{name}", str(value))


def test_fedadam_shows_its_fields_refuses_a_bad_beta_and_runs(
    cluster: Cluster, page: Any
) -> None:
    """FedAdam's own fields appear, beta_1 = 2 is flagged, a good launch finishes."""
    server = cluster.server()
    cluster.digits_clients(server, 3)
    page.goto(server.http_url)
    page.wait_for_selector("#live[data-state='open']")
    assert all(not _field(page, n).is_visible() for n in FEDOPT_FIELDS)

    page.select_option("#f-strategy", "fedadam")
    for name in FEDOPT_FIELDS:
        assert _field(page, name).is_visible(), name
    for name in (*OTHER_FIELDS, "server_momentum"):
        assert not _field(page, name).is_visible(), name

    _fill(page, beta_1=2, rounds=3, min_clients=3)
    page.click("#launch")
    error = page.locator("#err-beta_1")
    error.wait_for(state="visible")
    assert "2" in error.inner_text()
    assert "invalid" in (_field(page, "beta_1").get_attribute("class") or "")
    assert page.locator("#err-beta_2").inner_text() == ""
    assert server.api.get("/api/runs") == []
    screenshot(page, "strategy-fedadam-error", WIDE)

    _fill(page, beta_1=0.8, server_learning_rate=0.05, tau=0.001)
    page.click("#launch")
    page.wait_for_selector("#session-title .badge-finished")
    (run,) = server.api.get("/api/runs")
    config = server.api.run(run["id"])["config"]
    assert config["strategy"] == "fedadam"
    assert (config["beta_1"], config["server_learning_rate"]) == (0.8, 0.05)

    page.goto(f"{server.http_url}/runs/{run['id']}")
    assert page.inner_text("#run-status") == "finished"
    assert "fedadam" in page.inner_text("#run .card-head p")
    assert page.locator("#rounds-body tr").count() == 3
    screenshot(page, "strategy-fedadam-run", WIDE)
