"""Site credentials: the SiteBook, and the admin's /api/sites routes."""

from __future__ import annotations

import asyncio
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import aiohttp
import pytest

from fednet.protocol import Welcome
from fednet.server.keys import AUDIT, SITES
from fednet.server.sites import (
    SiteBook,
    SiteConflict,
    SiteNameError,
    SiteNotFound,
    token_hash,
)
from fednet.server.store import Store
from tests.server.conftest import AppFactory, hello, receive, send

ADMIN = {"Authorization": "Bearer adm", "Content-Type": "application/json"}


@pytest.fixture
def book(tmp_path: Path) -> Iterator[SiteBook]:
    """A SiteBook on a fresh state dir."""
    store = Store(tmp_path / "state")
    yield SiteBook(store)
    store.close()


def test_a_credential_names_its_site_and_only_its_hash_is_stored(
    book: SiteBook,
) -> None:
    """``add`` answers NAME:SECRET once; the table holds its SHA-256 only."""
    credential = book.add("site-a", 1.0)
    name, _, secret = credential.partition(":")
    assert name == "site-a" and len(secret) >= 43
    rows = book.store.read("SELECT * FROM sites", ())
    assert [dict(r) for r in rows] == [
        {
            "name": "site-a",
            "token_hash": token_hash(credential),
            "created_at": 1.0,
            "revoked_at": None,
        }
    ]
    assert book.verify(credential) == "site-a"
    assert book.add("site-b", 2.0) != credential


@pytest.mark.parametrize(
    "token",
    ["", "site-a", "site-a:", "site-a:wrong", "site-b:{secret}", ":{secret}", "\0:x"],
)
def test_verify_refuses_anything_but_the_exact_credential(
    book: SiteBook, token: str
) -> None:
    """A wrong secret, another name with the right secret, no name: None."""
    secret = book.add("site-a", 1.0).partition(":")[2]
    book.add("site-b", 1.0)
    assert book.verify(token.format(secret=secret)) is None


def test_a_revoked_site_no_longer_verifies_and_stays_listed(book: SiteBook) -> None:
    """Revoke once (409 the second time), 404 for an unknown name."""
    credential = book.add("site-a", 1.0)
    book.revoke("site-a", 5.0)
    assert book.verify(credential) is None
    with pytest.raises(SiteConflict):
        book.revoke("site-a", 6.0)
    with pytest.raises(SiteNotFound):
        book.revoke("nobody", 6.0)
    (site,) = book.list()
    assert (site.name, site.revoked_at, site.revoked) == ("site-a", 5.0, True)


@pytest.mark.parametrize("name", ["", "-a", "a b", "a/b", "a\n", "x" * 129, "é"])
def test_an_invalid_name_is_refused(book: SiteBook, name: str) -> None:
    """Only client names are site names (a trailing newline included)."""
    with pytest.raises(SiteNameError):
        book.add(name, 1.0)


def test_revoked_among_looks_up_only_the_names_asked(book: SiteBook) -> None:
    """The watcher's query: which of the given names are revoked (chunked)."""
    for i in range(1200):
        book.add(f"s{i}", 1.0)
    for i in (3, 700, 1100):
        book.revoke(f"s{i}", 2.0)
    asked = [f"s{i}" for i in range(0, 1200, 2)] + ["unknown"]
    assert book.revoked_among(asked) == {"s700", "s1100"}
    assert book.revoked_among([]) == set()


async def test_the_api_adds_lists_and_revokes_sites(make_client: AppFactory) -> None:
    """201 with the credential once, the list without it, 200 on revoke."""
    client = await make_client(admin_token="adm")
    resp = await client.post("/api/sites", json={"name": "site-a"}, headers=ADMIN)
    assert resp.status == 201 and resp.headers["Cache-Control"] == "no-store"
    added = await resp.json()
    assert added["name"] == "site-a"
    assert client.app[SITES].verify(added["credential"]) == "site-a"
    resp = await client.get("/api/sites", headers=ADMIN)
    (listed,) = await resp.json()
    assert listed["name"] == "site-a" and listed["revoked"] is False
    assert set(listed) == {"name", "created_at", "revoked_at", "revoked"}
    resp = await client.post("/api/sites/site-a/revoke", headers=ADMIN)
    assert resp.status == 200
    revoked = await resp.json()
    assert revoked["revoked"] is True and revoked["revoked_at"] >= listed["created_at"]
    audit = client.app[AUDIT]
    async with asyncio.timeout(10):  # the app's flusher may hold a batch
        while len(entries := audit.entries()) < 2:
            audit.write_pending()
            await asyncio.sleep(0.01)
    assert [(e.actor, e.action, e.target) for e in reversed(entries)] == [
        ("admin", "site.add", "site-a"),
        ("admin", "site.revoke", "site-a"),
    ]


@pytest.mark.parametrize(
    "body, status",
    [
        ({"name": "bad name"}, 400),
        ({"name": 7}, 400),
        ({"name": "a", "extra": 1}, 400),
        ([], 400),
        ("not json", 400),
        ({"name": "taken"}, 409),
    ],
)
async def test_adding_a_bad_or_taken_name_is_refused(
    make_client: AppFactory, body: Any, status: int
) -> None:
    """400 for a bad body or name, 409 for a name that exists; JSON errors."""
    client = await make_client(admin_token="adm")
    client.app[SITES].add("taken", time.time())
    if body == "not json":
        resp = await client.post("/api/sites", data=b"{nope", headers=ADMIN)
    else:
        resp = await client.post("/api/sites", json=body, headers=ADMIN)
    assert resp.status == status
    assert "error" in await resp.json()
    assert [s.name for s in client.app[SITES].list()] == ["taken"]


async def test_revoking_an_unknown_or_revoked_site_is_refused(
    make_client: AppFactory,
) -> None:
    """404 for an unknown name, 409 for a second revocation."""
    client = await make_client(admin_token="adm")
    client.app[SITES].add("site-a", time.time())
    assert (await client.post("/api/sites/x/revoke", headers=ADMIN)).status == 404
    assert (await client.post("/api/sites/site-a/revoke", headers=ADMIN)).status == 200
    assert (await client.post("/api/sites/site-a/revoke", headers=ADMIN)).status == 409


async def test_the_sites_routes_need_the_admin_token(make_client: AppFactory) -> None:
    """Without the admin token: 401 on list, add and revoke; nothing changes."""
    client = await make_client(admin_token="adm")
    client.app[SITES].add("site-a", time.time())
    json = {"Content-Type": "application/json"}
    for headers in (json, {**json, "Authorization": "Bearer nope"}):
        assert (await client.get("/api/sites", headers=headers)).status == 401
        resp = await client.post("/api/sites", json={"name": "b"}, headers=headers)
        assert resp.status == 401
        resp = await client.post("/api/sites/site-a/revoke", headers=headers)
        assert resp.status == 401
    assert [(s.name, s.revoked) for s in client.app[SITES].list()] == [
        ("site-a", False)
    ]


async def test_revoking_through_the_api_closes_the_live_socket_at_once(
    make_client: AppFactory,
) -> None:
    """The revoked site's socket closes with 1008 "revoked", long before a heartbeat."""
    client = await make_client(admin_token="adm", heartbeat_s=600.0)
    credential = client.app[SITES].add("site-a", time.time())
    auth = {"Authorization": f"Bearer {credential}"}
    async with client.ws_connect("/ws", headers=auth) as ws:
        await send(ws, hello("site-a"))
        assert isinstance(await receive(ws), Welcome)
        resp = await client.post("/api/sites/site-a/revoke", headers=ADMIN)
        assert resp.status == 200
        closing = await ws.receive(timeout=10)
        assert closing.type is aiohttp.WSMsgType.CLOSE
        assert (closing.data, closing.extra) == (1008, "revoked")
    with pytest.raises(aiohttp.WSServerHandshakeError) as refused:
        await client.ws_connect("/ws", headers=auth)
    assert refused.value.status == 401
