"""The audit log over HTTP: admins only, newest first, paged; the /audit page."""

from __future__ import annotations

from typing import Any

from aiohttp.test_utils import TestClient

from tests.server.conftest import AppFactory

ADMIN, VIEWER = "admin-s3cret", "viewer-s3cret"
AS_ADMIN = {"Authorization": f"Bearer {ADMIN}"}
AS_VIEWER = {"Authorization": f"Bearer {VIEWER}"}

Client = TestClient[Any, Any]


async def _with_history(make_client: AppFactory) -> Client:
    """A guarded server where an admin added a site and tried a bad launch."""
    client = await make_client(admin_token=ADMIN, viewer_token=VIEWER)
    resp = await client.post("/api/sites", json={"name": "site-a"}, headers=AS_ADMIN)
    assert resp.status == 201
    resp = await client.post("/api/runs", json={"task": "digits"}, headers=AS_ADMIN)
    assert resp.status == 201
    return client


async def test_an_admin_reads_the_log_newest_first(make_client: AppFactory) -> None:
    """What the admin just did is there at once, with actor, target and address."""
    client = await _with_history(make_client)
    resp = await client.get("/api/audit", headers=AS_ADMIN)
    assert resp.status == 200
    entries = await resp.json()
    assert [(e["actor"], e["action"]) for e in entries[:2]] == [
        ("admin", "run.launch"),
        ("admin", "site.add"),
    ]
    assert entries[1]["target"] == "site-a"
    assert entries[0]["remote"] == "127.0.0.1" and entries[0]["outcome"] == "ok"
    page = await client.get(
        "/api/audit", params={"limit": 1, "before": entries[0]["id"]}, headers=AS_ADMIN
    )
    assert [e["action"] for e in await page.json()] == ["site.add"]


async def test_only_admins_read_the_log(make_client: AppFactory) -> None:
    """Anonymous: 401 (the page sends them to login); a viewer: 403."""
    client = await _with_history(make_client)
    assert (await client.get("/api/audit")).status == 401
    assert (await client.get("/api/audit", headers=AS_VIEWER)).status == 403
    page = await client.get("/audit", allow_redirects=False)
    assert page.status == 303 and page.headers["Location"] == "/login?next=/audit"
    assert (await client.get("/audit", headers=AS_VIEWER)).status == 403


async def test_bad_paging_is_a_400_not_a_500(make_client: AppFactory) -> None:
    """limit outside 1..1000, or a before that is no integer, is refused."""
    client = await _with_history(make_client)
    for params in ({"limit": "0"}, {"limit": "1001"}, {"limit": "x"}, {"before": "y"}):
        resp = await client.get("/api/audit", params=params, headers=AS_ADMIN)
        assert resp.status == 400, params
        assert "error" in await resp.json()


async def test_an_unknown_or_repeated_query_parameter_is_a_400(
    make_client: AppFactory,
) -> None:
    """A misspelt ``limt`` is refused, not silently read as the default page."""
    client = await _with_history(make_client)
    for query in ("limt=5", "limit=5&x=1", "limit=5&limit=6"):
        resp = await client.get(f"/api/audit?{query}", headers=AS_ADMIN)
        assert resp.status == 400, query
        assert "query parameter" in (await resp.json())["error"] or "once" in (
            await resp.json()
        )["error"]


async def test_the_page_lists_the_entries_for_an_admin(
    make_client: AppFactory,
) -> None:
    """The dashboard's Audit page shows each entry's action and actor."""
    client = await _with_history(make_client)
    resp = await client.get("/audit", headers=AS_ADMIN)
    assert resp.status == 200
    html = await resp.text()
    assert 'data-action="site.add"' in html and 'data-action="run.launch"' in html
    assert "<code>admin</code>" in html
    index = await (await client.get("/", headers=AS_ADMIN)).text()
    assert 'href="/audit"' in index
