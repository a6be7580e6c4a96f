"""Roles: what anonymous visitors, viewers and admins may read and write."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import aiohttp
import numpy as np
from aiohttp.test_utils import TestClient

from fednet.config import RunConfig
from fednet.records import RoundRecord
from fednet.server.access import PUBLIC_PATHS
from fednet.server.keys import STORE
from fednet.server.openapi import OPENAPI_PATH, build_document
from fednet.typing import ClientId
from tests.server.conftest import AppFactory, hello, receive, send

ADMIN, VIEWER, JOIN = "admin-s3cret", "viewer-s3cret", "join-s3cret"
AS_ADMIN = {"Authorization": f"Bearer {ADMIN}"}
AS_VIEWER = {"Authorization": f"Bearer {VIEWER}"}
AS_SITE = {"Authorization": f"Bearer {JOIN}"}
READS = ("/api/runs/1/model", "/api/clients", "/api/status", "/api/runs", "/metrics")

Client = TestClient[Any, Any]


async def _guarded(make_client: AppFactory, **settings: Any) -> Client:
    return await make_client(
        admin_token=ADMIN, viewer_token=VIEWER, join_token=JOIN, **settings
    )


def _with_model(client: Client) -> int:
    """Record a one-round run with its model, as a finished round leaves it."""
    store = client.app[STORE]
    run_id: int = store.create_run(RunConfig(rounds=1).to_dict(), 1.0)
    record = RoundRecord(
        server_round=1,
        clients=(ClientId("site-a"),),
        num_examples=10,
        fit_metrics={},
        federated_loss=None,
        federated_accuracy=None,
        evaluated_clients=(),
        test_loss=None,
        test_accuracy=None,
        dropped=(),
        rejected={},
        client_metrics={},
    )
    store.save_model(run_id, 1, [np.zeros(3, dtype=np.float32)])
    store.record_round(run_id, record, 0.5, 2.0)
    return run_id


async def test_anonymous_reads_are_refused_once_a_viewer_token_is_set(
    make_client: AppFactory,
) -> None:
    """Model, clients, status, runs and metrics answer 401; pages go to login."""
    client = await _guarded(make_client)
    _with_model(client)
    for path in READS:
        resp = await client.get(path)
        assert resp.status == 401, path
        assert "token" in (await resp.json())["error"]
    for path in ("/", "/runs/1", "/runs/1/rounds"):
        resp = await client.get(path, allow_redirects=False)
        assert resp.status == 303, path
        assert resp.headers["Location"] == f"/login?next={path}"
    resp = await client.get("/ws/dashboard")
    assert resp.status == 401


async def test_the_viewer_token_reads_everything(make_client: AppFactory) -> None:
    """With the viewer token every read answers, the model included."""
    client = await _guarded(make_client)
    run_id = _with_model(client)
    for path in READS:
        resp = await client.get(path, headers=AS_VIEWER)
        assert resp.status == 200, path
    model = await client.get(f"/api/runs/{run_id}/model", headers=AS_VIEWER)
    assert model.headers["Content-Disposition"].endswith('-1.npz"')
    page = await client.get("/", headers=AS_VIEWER, allow_redirects=False)
    assert page.status == 200


async def test_public_routes_stay_public(make_client: AppFactory) -> None:
    """Liveness, the login form, static files and the OpenAPI document need nothing."""
    client = await _guarded(make_client)
    assert OPENAPI_PATH in PUBLIC_PATHS
    for path in ("/healthz", "/login", OPENAPI_PATH, "/static/css/app.css"):
        assert (await client.get(path)).status == 200, path


async def test_a_viewer_cannot_launch_or_stop(make_client: AppFactory) -> None:
    """The viewer token is refused for writes with 403; no run is created."""
    client = await _guarded(make_client)
    resp = await client.post("/api/runs", json={}, headers=AS_VIEWER)
    assert resp.status == 403 and "admin" in (await resp.json())["error"]
    run_id = _with_model(client)
    resp = await client.post(f"/api/runs/{run_id}/stop", headers=AS_VIEWER)
    assert resp.status == 403
    runs = await (await client.get("/api/runs", headers=AS_ADMIN)).json()
    assert [r["id"] for r in runs] == [run_id]


async def test_a_viewer_token_alone_allows_no_writes(make_client: AppFactory) -> None:
    """A server with a viewer token and no admin token is read-only."""
    client = await make_client(viewer_token=VIEWER)
    assert (await client.post("/api/runs", json={})).status == 401
    assert (await client.post("/api/runs", json={}, headers=AS_VIEWER)).status == 403


async def _site_connected(client: Client) -> aiohttp.ClientWebSocketResponse:
    ws = await client.ws_connect("/ws", headers=AS_SITE)
    await send(ws, hello("site-a"))
    await receive(ws)
    return ws


async def test_clients_show_address_and_schema_to_admins_only(
    make_client: AppFactory,
) -> None:
    """A viewer's /api/clients has neither the site's address nor its schema."""
    client = await _guarded(make_client)
    site = await _site_connected(client)
    try:
        admin_view = await (await client.get("/api/clients", headers=AS_ADMIN)).json()
        viewer_view = await (await client.get("/api/clients", headers=AS_VIEWER)).json()
    finally:
        await site.close()
    assert admin_view[0]["address"] == "127.0.0.1"
    assert admin_view[0]["schema"] is not None
    assert [c["name"] for c in viewer_view] == ["site-a"]
    assert "address" not in viewer_view[0] and "schema" not in viewer_view[0]


async def _dashboard_messages(client: Client, headers: dict[str, str]) -> list[Any]:
    """Return a dashboard's snapshot and the client_joined a site then causes."""
    async with client.ws_connect("/ws/dashboard", headers=headers) as ws:
        snapshot = json.loads((await ws.receive(timeout=10)).data)
        site = await _site_connected(client)
        try:
            while True:
                event = json.loads((await ws.receive(timeout=10)).data)
                if event["type"] == "client_joined":
                    return [snapshot, event]
        finally:
            await site.close()


async def test_a_viewers_dashboard_socket_never_carries_site_details(
    make_client: AppFactory,
) -> None:
    """Snapshot and events of a viewer's socket lack addresses; an admin's have them."""
    client = await _guarded(make_client)
    site = await _site_connected(client)  # in the snapshot
    try:
        viewer = await _dashboard_messages(client, AS_VIEWER)
        admin = await _dashboard_messages(client, AS_ADMIN)
    finally:
        await site.close()
    for text in map(json.dumps, viewer):
        assert "127.0.0.1" not in text and '"address"' not in text
        assert '"schema"' not in text
    assert admin[0]["clients"][0]["address"] == "127.0.0.1"
    assert admin[1]["client"]["address"] == "127.0.0.1"


async def test_viewer_page_has_no_launch_form_stop_button_or_addresses(
    make_client: AppFactory,
) -> None:
    """The viewer's dashboard leaves out what only admins may use or see."""
    client = await _guarded(make_client)
    site = await _site_connected(client)
    try:
        viewer = await (await client.get("/", headers=AS_VIEWER)).text()
        admin = await (await client.get("/", headers=AS_ADMIN)).text()
    finally:
        await site.close()
    assert 'id="launch"' not in viewer and 'id="stop-run"' not in viewer
    assert 'id="viewer-notice"' in viewer and "127.0.0.1" not in viewer
    assert 'id="launch"' in admin and 'id="stop-run"' in admin
    assert "127.0.0.1" in admin
    assert 'id="srv-client-auth">shared join token<' in viewer


async def test_insecure_mode_shows_what_is_missing(make_client: AppFactory) -> None:
    """--insecure on a network address: a banner names TLS and the admin token."""
    client = await make_client(host="0.0.0.0", insecure=True)
    page = await (await client.get("/")).text()
    assert 'id="insecure-banner"' in page and 'id="open-banner"' not in page
    assert "TLS (--tls-cert and --tls-key)" in page
    assert "an admin token (--admin-token)" in page
    assert 'id="srv-client-auth">open<' in page


async def test_cross_site_text_plain_post_is_refused_on_an_open_server(
    make_client: AppFactory,
) -> None:
    """A form or text/plain body (no CORS preflight) gets 415 and launches nothing."""
    client = await make_client()
    for content_type in ("text/plain", "application/x-www-form-urlencoded"):
        resp = await client.post(
            "/api/runs", data=b'{"rounds": 2}', headers={"Content-Type": content_type}
        )
        assert resp.status == 415, content_type
    empty_form = {"Content-Type": "application/x-www-form-urlencoded"}
    assert (await client.post("/api/runs/1/stop", headers=empty_form)).status == 415
    assert await (await client.get("/api/runs")).json() == []


async def test_a_foreign_origin_is_refused_even_with_the_admin_token(
    make_client: AppFactory, tmp_path: Path
) -> None:
    """A POST whose Origin is another site gets 403; this site's Origin works."""
    for settings, auth in (({}, {}), ({"admin_token": ADMIN}, AS_ADMIN)):
        client = await make_client(state_dir=tmp_path / str(len(auth)), **settings)
        own = f"http://{client.host}:{client.port}"
        for origin in ("http://evil.example", "null", own.replace("http:", "https:")):
            headers = {**auth, "Origin": origin}
            resp = await client.post("/api/runs", json={}, headers=headers)
            assert resp.status == 403, origin
            assert "origin" in (await resp.json())["error"]
        resp = await client.post("/api/runs", json={}, headers={**auth, "Origin": own})
        assert resp.status == 201
        await client.close()


async def test_another_origins_page_cannot_open_the_dashboard_socket(
    make_client: AppFactory,
) -> None:
    """A viewer's cookie riding on another origin's socket gets 403; ours opens."""
    client = await _guarded(make_client)
    foreign = {**AS_VIEWER, "Origin": "https://evil.example"}
    try:
        await client.ws_connect("/ws/dashboard", headers=foreign)
    except aiohttp.WSServerHandshakeError as e:
        assert e.status == 403
    else:
        raise AssertionError("a cross-origin dashboard socket was accepted")
    own = {**AS_VIEWER, "Origin": f"http://{client.host}:{client.port}"}
    async with client.ws_connect("/ws/dashboard", headers=own) as ws:
        assert json.loads((await ws.receive(timeout=10)).data)["type"] == "snapshot"


async def test_the_login_redirect_keeps_the_whole_query(
    make_client: AppFactory,
) -> None:
    """``/runs/1?a=1&b=2`` comes back whole after the login form."""
    client = await _guarded(make_client)
    resp = await client.get("/runs/1/rounds?since=1&x=2")
    assert 'name="next" value="/runs/1/rounds?since=1&amp;x=2"' in await resp.text()


def test_the_openapi_document_states_the_read_guard_and_write_answers() -> None:
    """With tokens, guarded reads declare 401; every write declares 403 and 415."""
    guarded = build_document(admin_token_required=True)["paths"]
    open_doc = build_document(admin_token_required=False)["paths"]
    for path in ("/metrics", "/api/clients", "/api/runs/{run_id}/model"):
        read = guarded[path]["get"]
        assert "401" in read["responses"], path
        assert {"viewerToken": []} in read["security"], path
        assert "401" not in open_doc[path]["get"]["responses"], path
    for path in ("/healthz", OPENAPI_PATH):
        assert "security" not in guarded[path]["get"], path
    for doc in (guarded, open_doc):
        for path in ("/api/runs", "/api/runs/{run_id}/stop"):
            assert {"403", "415"} <= set(doc[path]["post"]["responses"]), path
