"""The dashboard pages through aiohttp_client: overview, run page, assets."""

from __future__ import annotations

import asyncio
import dataclasses
import json
import re
from pathlib import Path
from typing import Any

from fednet.config import RunConfig
from fednet.protocol import Trainers
from fednet.records import RoundRecord
from fednet.server.keys import STORE
from fednet.typing import ClientId
from tests.server.conftest import AppFactory, hello, receive, send

WEB_DIR = Path(__file__).resolve().parents[2] / "web"


def _snapshot(page: str) -> dict[str, Any]:
    match = re.search(
        r'<script type="application/json" id="snapshot">(.*?)</script>', page, re.S
    )
    assert match is not None
    data: dict[str, Any] = json.loads(match.group(1))
    return data


def _record(server_round: int, accuracy: float) -> RoundRecord:
    return RoundRecord(
        server_round=server_round,
        clients=(ClientId("site-a"), ClientId("site-b")),
        num_examples=200,
        fit_metrics={},
        federated_loss=0.5,
        federated_accuracy=accuracy,
        evaluated_clients=(ClientId("site-a"),),
        test_loss=0.4,
        test_accuracy=accuracy,
        dropped=(ClientId("site-c"),),
        rejected={},
        client_metrics={ClientId("site-a"): {"train_loss": 0.3}},
    )


async def test_index_has_an_input_for_every_run_config_field(
    make_client: AppFactory,
) -> None:
    """The launch form covers RunConfig, each input prefilled with its default."""
    client = await make_client()
    page = await (await client.get("/")).text()
    defaults = RunConfig()
    for field in dataclasses.fields(RunConfig):
        assert f'name="{field.name}"' in page, field.name
        assert f'data-error-for="{field.name}"' in page, field.name
    assert (
        f'id="f-rounds" type="number" inputmode="decimal" step="1"'
        f' value="{defaults.rounds}"' in page
    )
    assert '<option value="digits" selected>' in page


async def test_index_warns_when_no_admin_token_is_set(make_client: AppFactory) -> None:
    """Without an admin token the page says anyone may launch training."""
    client = await make_client()
    page = await (await client.get("/")).text()
    assert 'id="open-banner"' in page and "Anyone who can reach this page" in page
    assert 'href="/login' not in page


async def test_index_with_admin_token_sends_anonymous_browsers_to_login(
    make_client: AppFactory,
) -> None:
    """With an admin token an anonymous browser lands on the login form, no banner."""
    client = await make_client(admin_token="s3cret")
    resp = await client.get("/")
    page = await resp.text()
    assert resp.url.path == "/login" and resp.url.query["next"] == "/"
    assert 'id="open-banner"' not in page and 'name="token"' in page
    assert "s3cret" not in page


async def test_index_embeds_a_snapshot_with_clients(make_client: AppFactory) -> None:
    """The first paint needs no socket: clients are in the embedded snapshot."""
    client = await make_client()
    async with client.ws_connect("/ws") as ws:
        await send(ws, hello("site-a"))
        await receive(ws)
        page = await (await client.get("/")).text()
    snap = _snapshot(page)
    assert snap["type"] == "snapshot"
    assert [c["name"] for c in snap["clients"]] == ["site-a"]
    assert "schema" not in snap["clients"][0]


async def test_run_page_shows_config_rounds_and_clients(
    make_client: AppFactory,
) -> None:
    """A past run's page lists its config and which clients took part per round."""
    client = await make_client()
    store = client.app[STORE]
    run_id = store.create_run(RunConfig(rounds=2, learning_rate=0.25).to_dict(), 1.0)
    store.record_round(run_id, _record(1, 0.5), 0.75, 2.0)
    store.record_round(run_id, _record(2, 0.875), 0.5, 3.0)
    store.end_run(run_id, "finished", None, 4.0)
    resp = await client.get(f"/runs/{run_id}")
    assert resp.status == 200
    page = await resp.text()
    assert "<code>0.25</code>" in page
    assert page.count('<span class="chip" title=') == 4
    assert '<span class="chip chip-dropped" title="dropped">site-c</span>' in page
    assert "87.5%" in page and "0.75 s" in page
    assert f'href="/api/runs/{run_id}/model"' in page


async def test_async_run_page_shows_versions_and_staleness(
    make_client: AppFactory,
) -> None:
    """An async run's page counts versions and shows each client's staleness."""
    client = await make_client(web_dir=WEB_DIR)  # this tree's templates
    store = client.app[STORE]
    config = RunConfig(mode="async", rounds=3, buffer_size=2, max_concurrency=2)
    run_id = store.create_run(config.to_dict(), 1.0)
    staleness = {"updates": 2.0, "mean_staleness": 0.5, "max_staleness": 1.0,
                 "stale_refused": 1.0}
    per_client = {ClientId("site-a"): {"staleness": 1.0, "updates": 1.0}}
    record = dataclasses.replace(
        _record(1, 0.5), fit_metrics=staleness, client_metrics=per_client
    )
    store.record_round(run_id, record, 0.75, 2.0)
    page = await (await client.get(f"/runs/{run_id}")).text()
    assert "of 3 versions" in page and ">Version</th>" in page
    assert ">Staleness</th>" in page
    assert "0.50 / 1 (1 refused)" in page
    assert 'site-a <span class="muted">s=1</span>' in page


async def test_run_page_of_unknown_run_is_404(make_client: AppFactory) -> None:
    """Unknown or malformed run ids get a 404 page."""
    client = await make_client()
    assert (await client.get("/runs/99")).status == 404
    assert (await client.get("/runs/abc")).status == 404


async def test_client_names_are_escaped_in_the_embedded_snapshot(
    make_client: AppFactory,
) -> None:
    """Data embedded in the page cannot close its script element."""
    client = await make_client()
    store = client.app[STORE]
    run_id = store.create_run(RunConfig().to_dict(), 1.0)
    store.end_run(run_id, "failed", "</script><script>alert(1)</script>", 2.0)
    page = await (await client.get("/")).text()
    assert "</script><script>alert(1)" not in page
    assert _snapshot(page)["runs"][0]["error"].startswith("</script>")


async def test_static_assets_are_served_locally(make_client: AppFactory) -> None:
    """The page's scripts, styles and the vendored chart library are served."""
    client = await make_client()
    page = await (await client.get("/")).text()
    assets = re.findall(r'(?:src|href)="(/static/[^"?]+)', page)
    assert any("vendor/uplot" in a for a in assets)
    for asset in assets:
        assert (await client.get(asset)).status == 200, asset
    assert "https://" not in page.split("<body")[0]


async def test_rounds_rows_come_from_the_run_page_template(
    make_client: AppFactory,
) -> None:
    """GET /runs/N/rounds?since=K renders the rows after K exactly as the page does."""
    client = await make_client()
    store = client.app[STORE]
    run_id = store.create_run(RunConfig(rounds=2).to_dict(), 1.0)
    store.record_round(run_id, _record(1, 0.5), 0.75, 2.0)
    store.record_round(run_id, _record(2, 0.875), 0.5, 3.0)
    page = await (await client.get(f"/runs/{run_id}")).text()
    later = await (await client.get(f"/runs/{run_id}/rounds?since=1")).text()
    every = await (await client.get(f"/runs/{run_id}/rounds")).text()
    assert later.count("<tr") == 1 and 'data-round="2"' in later
    assert "87.5%" in later and "0.50 s" in later
    assert every.count("<tr") == 2 and every.strip() in page
    bad = await client.get(f"/runs/{run_id}/rounds?since=x")
    missing = await client.get("/runs/999/rounds")
    assert (bad.status, missing.status) == (400, 404)


async def test_launch_form_lists_the_trainers_of_the_connected_sites(
    make_client: AppFactory,
) -> None:
    """The model field suggests the built-ins and every connected site's trainers."""
    client = await make_client(web_dir=WEB_DIR)  # this tree's templates
    async with client.ws_connect("/ws") as ws:
        await send(ws, hello("site-a"))
        await receive(ws)
        await send(ws, Trainers(({"name": "digits_cnn", "fingerprint": "a" * 64},)))
        await _until_trainers(client)
        page = await (await client.get("/")).text()
    datalist = re.search(r'<datalist id="trainer-names">(.*?)</datalist>', page)
    assert datalist is not None
    assert re.findall(r'value="([^"]+)"', datalist.group(1)) == [
        "logreg", "mlp", "digits_cnn",
    ]
    assert 'list="trainer-names"' in page


async def _until_trainers(client: Any) -> None:
    for _ in range(100):
        clients = await (await client.get("/api/clients")).json()
        if clients and clients[0]["trainers"][0]["name"] == "digits_cnn":
            return
        await asyncio.sleep(0.02)
    raise AssertionError("the trainers never reached the registry")
