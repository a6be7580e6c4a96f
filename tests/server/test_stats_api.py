"""``POST /api/stats`` and the ``/stats`` page: the CSV sites' merged figures."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator
from contextlib import AsyncExitStack, asynccontextmanager
from typing import Any

import numpy as np
from aiohttp.test_utils import TestClient

from fednet.learning.fedstats import FeatureStats, merge_stats
from fednet.learning.sketch import quantile
from fednet.protocol import Hello
from fednet.server.stats_report import NO_STATS
from tests.server.conftest import AppFactory, hello, receive, send

ADMIN, VIEWER, JOIN = "admin-s3cret", "viewer-s3cret", "join-s3cret"
AS_ADMIN = {"Authorization": f"Bearer {ADMIN}"}
AS_VIEWER = {"Authorization": f"Bearer {VIEWER}"}
AS_SITE = {"Authorization": f"Bearer {JOIN}"}
COLUMNS = ["age", "dose", "ward"]
WARDS = ["east", "north", "west"]
SCHEMA = {"feature_names": COLUMNS, "classes": ["no", "yes"], "categorical": ["ward"]}

Client = TestClient[Any, Any]


def _site_stats(seed: int, rows: int) -> FeatureStats:
    """Summarise a random table: two numeric columns with blanks, one categorical."""
    rng = np.random.default_rng(seed)
    x = np.column_stack(
        [
            rng.normal(40 + 10 * seed, 12, rows),
            rng.exponential(3.0 + seed, rows),
            rng.integers(0, len(WARDS), rows).astype(np.float64),
        ]
    )
    x[rng.random(x.shape) < 0.1] = np.nan
    return FeatureStats.from_matrix(x, categories={2: WARDS})


def _csv_hello(name: str, stats: Any, schema: Any = None) -> Hello:
    rows = stats["rows"] if stats is not None and type(stats["rows"]) is int else 50
    return Hello(name, "i-1", rows, "csv", schema or SCHEMA, stats=stats)


async def _guarded(make_client: AppFactory) -> Client:
    return await make_client(admin_token=ADMIN, viewer_token=VIEWER, join_token=JOIN)


@asynccontextmanager
async def _connected(client: Client, *hellos: Hello) -> AsyncIterator[None]:
    """Keep a client socket open, welcomed, per hello."""
    async with AsyncExitStack() as stack:
        for message in hellos:
            ws = await stack.enter_async_context(
                client.ws_connect("/ws", headers=AS_SITE)
            )
            await send(ws, message)
            assert (await receive(ws)).type == "welcome"
        yield


async def _collect(client: Client, **kwargs: Any) -> Any:
    resp = await client.post("/api/stats", json={}, headers=AS_ADMIN, **kwargs)
    assert resp.status == 200, await resp.text()
    return await resp.json()


async def test_only_admins_collect_statistics(make_client: AppFactory) -> None:
    """Anonymous: 401 (the page sends them to login); a viewer: 403, page too."""
    client = await _guarded(make_client)
    assert (await client.post("/api/stats", json={})).status == 401
    resp = await client.post("/api/stats", json={}, headers=AS_VIEWER)
    assert resp.status == 403
    page = await client.get("/stats", allow_redirects=False)
    assert page.status == 303 and page.headers["Location"] == "/login?next=/stats"
    assert (await client.get("/stats", headers=AS_VIEWER)).status == 403
    viewer_index = await (await client.get("/", headers=AS_VIEWER)).text()
    assert 'href="/stats"' not in viewer_index
    admin_index = await (await client.get("/", headers=AS_ADMIN)).text()
    assert 'href="/stats"' in admin_index


async def test_without_a_csv_client_the_answer_is_a_409(
    make_client: AppFactory,
) -> None:
    """No client, or only clients of a built-in data set: 409 with the reason."""
    client = await _guarded(make_client)
    resp = await client.post("/api/stats", headers=AS_ADMIN)
    assert resp.status == 409
    assert "no CSV client is connected" in (await resp.json())["error"]
    async with _connected(client, hello("digits-site")):
        resp = await client.post("/api/stats", json={}, headers=AS_ADMIN)
        assert resp.status == 409
        page = await client.get("/stats", headers=AS_ADMIN)
        assert page.status == 200
        assert 'id="stats-error"' in await page.text()


async def test_merged_figures_equal_merge_stats_of_the_hellos(
    make_client: AppFactory,
) -> None:
    """Means, stds, counts, missing cells and categories are those merge_stats gives."""
    client = await _guarded(make_client)
    stats = {f"site-{i}": _site_stats(i, 40 + 15 * i) for i in (1, 2, 3)}
    hellos = [_csv_hello(name, s.to_dict()) for name, s in stats.items()]
    async with _connected(client, *reversed(hellos)):
        answer = await _collect(client)
    merged = merge_stats(list(stats.values()))

    assert answer["excluded"] == []
    assert [s["name"] for s in answer["sites"]] == ["site-1", "site-2", "site-3"]
    assert [s["rows"] for s in answer["sites"]] == [55, 70, 85]
    columns = {c["name"]: c for c in answer["columns"]}
    assert list(columns) == COLUMNS
    for j, name in enumerate(COLUMNS[:2]):
        assert columns[name]["kind"] == "numeric"
        assert columns[name]["count"] == merged.count[j]
        assert columns[name]["missing"] == merged.missing[j]
        np.testing.assert_allclose(columns[name]["mean"], merged.mean[j], rtol=1e-15)
        np.testing.assert_allclose(columns[name]["std"], merged.std[j], rtol=1e-15)
        assert "categories" not in columns[name]
    ward = columns["ward"]
    assert ward["kind"] == "categorical" and ward["mean"] is None
    assert ward["categories"] == merged.categories[2]
    assert ward["count"] == sum(merged.categories[2].values())
    first = answer["sites"][0]["columns"][0]
    assert first["mean"] == stats["site-1"].mean[0]


async def test_each_site_reports_its_threshold_and_the_median_is_merged(
    make_client: AppFactory,
) -> None:
    """Sites say the k they suppress at; the median is the merged histograms'."""
    client = await _guarded(make_client)
    rng = np.random.default_rng(5)
    x = np.column_stack([rng.lognormal(size=80), rng.normal(size=80), np.zeros(80)])
    loose = FeatureStats.from_matrix(x, 3, {2: WARDS})
    stats = {"site-1": _site_stats(1, 60), "site-2": loose}
    hellos = [_csv_hello(name, s.to_dict()) for name, s in stats.items()]
    async with _connected(client, *hellos):
        answer = await _collect(client)
    merged = merge_stats(list(stats.values()))

    assert [s["min_count"] for s in answer["sites"]] == [10, 3]
    age = answer["columns"][0]
    assert age["median"] == quantile(merged.histograms[0], 0.5)
    assert answer["columns"][2]["median"] is None  # categorical
    site = answer["sites"][1]["columns"][0]
    assert site["median"] == quantile(loose.histograms[0], 0.5)


async def _audit_entries(client: Client) -> list[dict[str, Any]]:
    """Return the audit log once it holds an entry (the flusher may be writing)."""
    for _ in range(100):
        entries: list[dict[str, Any]] = await (
            await client.get("/api/audit", headers=AS_ADMIN)
        ).json()
        if entries:
            return entries
        await asyncio.sleep(0.02)
    raise AssertionError("the audit log stayed empty")


async def test_collecting_is_audited(make_client: AppFactory) -> None:
    """Each collection is an audit entry ``stats.collect`` with the admin's role."""
    client = await _guarded(make_client)
    async with _connected(client, _csv_hello("site-1", _site_stats(1, 30).to_dict())):
        await _collect(client)
    entries = await _audit_entries(client)
    assert (entries[0]["actor"], entries[0]["action"]) == ("admin", "stats.collect")
    assert entries[0]["detail"] == "1 sites, 0 excluded"


async def test_sites_left_out_are_listed_with_their_reason(
    make_client: AppFactory,
) -> None:
    """No summary, other columns, or a malformed summary: excluded, never a 500."""
    client = await _guarded(make_client)
    good = _site_stats(1, 50).to_dict()
    other = {**SCHEMA, "feature_names": ["age", "dose", "room"], "categorical": []}
    malformed = {**good, "mean": [1.0, "x", 0.0]}
    hellos = [
        _csv_hello("a-good", good),
        _csv_hello("b-good", _site_stats(2, 50).to_dict()),
        _csv_hello("c-silent", None),
        _csv_hello("d-other", good, other),
        _csv_hello("e-malformed", malformed),
        _csv_hello("f-negative", {**good, "m2": [-1.0, 0.0, 0.0]}),
        _csv_hello("g-no-rows", {**good, "rows": "many"}),
    ]
    async with _connected(client, *hellos):
        answer = await _collect(client)

    assert [s["name"] for s in answer["sites"]] == ["a-good", "b-good"]
    reasons = {e["name"]: e["reason"] for e in answer["excluded"]}
    assert list(reasons) == [
        "c-silent",
        "d-other",
        "e-malformed",
        "f-negative",
        "g-no-rows",
    ]
    assert reasons["c-silent"] == NO_STATS
    assert "other columns" in reasons["d-other"] and "room" in reasons["d-other"]
    assert reasons["e-malformed"].startswith("sent invalid statistics: stats mean")
    assert "m2" in reasons["f-negative"]
    assert "rows must be an integer" in reasons["g-no-rows"]


async def test_without_any_usable_summary_the_columns_are_empty(
    make_client: AppFactory,
) -> None:
    """CSV sites that sent no summary: 200, no columns, each site excluded."""
    client = await _guarded(make_client)
    async with _connected(client, _csv_hello("site-1", None)):
        answer = await _collect(client)
    assert answer == {
        "columns": [],
        "sites": [],
        "excluded": [{"name": "site-1", "reason": NO_STATS}],
    }


async def test_the_page_shows_the_merged_and_per_site_tables(
    make_client: AppFactory,
) -> None:
    """An admin's /stats has the merged table, one table per site, and exclusions."""
    client = await _guarded(make_client)
    hellos = [
        _csv_hello("site-1", _site_stats(1, 40).to_dict()),
        _csv_hello("site-2", _site_stats(2, 40).to_dict()),
        _csv_hello("site-3", None),
    ]
    async with _connected(client, *hellos):
        resp = await client.get("/stats", headers=AS_ADMIN)
    assert resp.status == 200
    page = await resp.text()
    assert 'id="stats-merged"' in page
    assert 'id="stats-site-1"' in page and 'id="stats-site-2"' in page
    assert page.count('data-column="ward" data-kind="categorical"') == 3
    assert '<tr data-site="site-3">' in page
    assert 'aria-current="page">Statistics</a>' in page
