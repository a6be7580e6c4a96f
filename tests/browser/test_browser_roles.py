"""Roles in a real browser: what a viewer and an admin see on the dashboard."""

from __future__ import annotations

from typing import Any

import pytest

from tests.browser.conftest import WIDE, screenshot
from tests.e2e.conftest import Cluster, Process, Server

pytestmark = pytest.mark.browser

ADMIN, VIEWER, JOIN = "admin-horse", "viewer-horse", "join-horse"


def _site(cluster: Cluster, server: Server, i: int) -> Process:
    return cluster.client(
        server,
        f"site-{i}",
        *("--dataset", "digits", "--partition", f"{i}/2", "--join-token", JOIN),
    )


def _log_in(page: Any, server: Server, token: str) -> None:
    page.goto(server.http_url)
    page.wait_for_url(server.http_url + "/login?next=/")
    page.fill("#token", token)
    page.click("#login-submit")
    page.wait_for_url(server.http_url + "/")
    page.wait_for_selector("#live[data-state='open']")


def test_viewer_sees_runs_but_no_launch_stop_or_site_addresses(
    cluster: Cluster, page: Any
) -> None:
    """A viewer watches runs and clients; Launch, Stop and addresses are admins'."""
    extra = ("--admin-token", ADMIN, "--viewer-token", VIEWER, "--join-token", JOIN)
    server = cluster.server(*extra, token=ADMIN)
    first = _site(cluster, server, 1)
    server.wait_for_clients(1, [first])
    run_id = server.api.launch(rounds=2, min_clients=1)
    assert server.wait_for_run(run_id)["status"] == "finished"

    _log_in(page, server, VIEWER)
    page.wait_for_selector(f"#runs-body tr[data-run='{run_id}']")
    assert page.locator("#role").text_content() == "viewer"
    assert page.inner_text("#session-label") == "Round 2 of 2"
    assert page.locator("#launch, #launch-form, #stop-run").count() == 0
    assert page.locator("#viewer-notice").is_visible()
    assert page.inner_text("#srv-client-auth") == "shared join token"
    # A site joining while the page is open comes over the viewer's socket.
    second = _site(cluster, server, 2)
    server.wait_for_clients(2, [first, second])
    page.wait_for_selector("#clients-body tr >> nth=1")
    names = page.locator("#clients-body .cell-name").all_inner_texts()
    assert sorted(names) == ["site-1", "site-2"]
    assert "127.0.0.1" not in page.inner_text("#clients-body")
    assert "127.0.0.1" not in page.content()
    screenshot(page, "viewer", WIDE)

    page.click("#logout")
    page.wait_for_url(server.http_url + "/login?next=/")
    _log_in(page, server, ADMIN)
    assert page.locator("#role").text_content() == "admin"
    assert page.locator("#launch").is_visible()
    assert page.locator("#stop-run").count() == 1
    page.wait_for_selector("#clients-body tr >> nth=1")
    subs = page.locator("#clients-body .cell-sub").all_inner_texts()
    # the admin sees each site's address (and the trainers it offers)
    assert subs == ["digits · 127.0.0.1 · trainers logreg, mlp"] * 2
