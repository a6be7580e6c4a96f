"""Who a client socket is: credentials at the upgrade, names at hello, revocation."""

from __future__ import annotations

import asyncio
import logging
import time
from pathlib import Path
from typing import Any

import aiohttp
import pytest
from aiohttp import web
from aiohttp.test_utils import TestClient

from fednet.protocol import Error, Welcome
from fednet.server.audit import AuditEntry, AuditLog
from fednet.server.identity import Peer
from fednet.server.keys import AUDIT, SITES
from fednet.server.sites import SiteBook
from fednet.server.store import Store
from tests.server.conftest import AppFactory, hello, receive, send

App = TestClient[Any, web.Application]


def _bearer(token: str) -> dict[str, str]:
    return {"Authorization": f"Bearer {token}"}


async def _audit(client: App, count: int) -> list[AuditEntry]:
    """Return what the app audited, oldest first, once ``count`` entries are in.

    The app's flusher may be writing a batch in its thread: wait for it.
    """
    audit = client.app[AUDIT]
    async with asyncio.timeout(10):
        while len(entries := audit.entries()) < count:
            audit.write_pending()
            await asyncio.sleep(0.01)
    return list(reversed(entries))


async def _refused_upgrade(client: App, headers: dict[str, str]) -> str:
    """Dial /ws, expect 401; return the answer's WWW-Authenticate challenge."""
    with pytest.raises(aiohttp.WSServerHandshakeError) as refused:
        await client.ws_connect("/ws", headers=headers)
    assert refused.value.status == 401
    assert refused.value.headers is not None
    return refused.value.headers["WWW-Authenticate"]


async def _refused_hello(ws: aiohttp.ClientWebSocketResponse, code: str) -> str:
    """Expect the hello to be refused with ``code`` and the socket closed."""
    error = await receive(ws)
    assert isinstance(error, Error) and error.code == code, error
    closing = await ws.receive(timeout=10)
    assert closing.type is aiohttp.WSMsgType.CLOSE and closing.data == 1008
    return error.message


async def test_a_site_credential_under_another_name_is_refused_and_audited(
    make_client: AppFactory, caplog: pytest.LogCaptureFixture
) -> None:
    """Site A's credential under B's name: refused, logged, audited; B stays."""
    client = await make_client(admin_token="adm")
    a = client.app[SITES].add("site-a", time.time())
    b = client.app[SITES].add("site-b", time.time())
    async with client.ws_connect("/ws", headers=_bearer(b)) as real_b:
        await send(real_b, hello("site-b", "b-1"))
        assert isinstance(await receive(real_b), Welcome)
        with caplog.at_level(logging.WARNING):
            async with client.ws_connect("/ws", headers=_bearer(a)) as impostor:
                await send(impostor, hello("site-b", "a-1"))
                reason = await _refused_hello(impostor, "identity_mismatch")
        assert reason == (
            "the credential of site 'site-a' was presented under the name 'site-b'"
        )
        assert not real_b.closed
        listed = await client.get("/api/clients", headers=_bearer("adm"))
        clients = await listed.json()
        assert [(c["name"], c["status"]) for c in clients] == [("site-b", "idle")]
    assert any(reason in r.getMessage() for r in caplog.records)
    (refused,) = await _audit(client, 1)
    assert (refused.actor, refused.target, refused.outcome) == (
        "site:site-a",
        "site-b",
        "refused",
    )
    assert refused.detail == f"identity_mismatch: {reason}"
    assert a not in str(refused) and a.partition(":")[2] not in caplog.text


async def test_a_join_token_client_cannot_take_a_registered_site_name(
    make_client: AppFactory,
) -> None:
    """With the join token, a site's name is refused, revoked or not; others join."""
    client = await make_client(join_token="join")
    book = client.app[SITES]
    book.add("site-a", time.time())
    book.add("site-old", time.time())
    book.revoke("site-old", time.time())
    for name in ("site-a", "site-old"):
        async with client.ws_connect("/ws", headers=_bearer("join")) as ws:
            await send(ws, hello(name))
            reason = await _refused_hello(ws, "name_reserved")
            assert f"{name!r} belongs to a registered site" in reason
    async with client.ws_connect("/ws", headers=_bearer("join")) as ws:
        await send(ws, hello("visitor"))
        assert isinstance(await receive(ws), Welcome)
    refusals = await _audit(client, 2)
    assert [(e.actor, e.target) for e in refusals] == [
        ("join-token", "site-a"),
        ("join-token", "site-old"),
    ]


@pytest.mark.parametrize(
    "settings, site",
    [({"admin_token": "adm"}, False), ({"viewer_token": "view"}, False), ({}, True)],
    ids=["admin-token", "viewer-token", "registered-site"],
)
async def test_a_client_without_credential_is_refused_when_sites_are_required(
    make_client: AppFactory, settings: dict[str, str], site: bool
) -> None:
    """Mode "sites": no bearer token, 401 with the reason, audited as anonymous."""
    client = await make_client(**settings)
    if site:
        client.app[SITES].add("site-a", time.time())
    reader = _bearer(*settings.values()) if settings else {}
    status = await (await client.get("/api/status", headers=reader)).json()
    assert status["client_auth"] == "sites"
    reason = "a site credential is required (--site-token)"
    challenge = f'Bearer realm="fednet", error_description="{reason}"'
    assert await _refused_upgrade(client, {}) == challenge
    (refused,) = await _audit(client, 1)
    assert (refused.actor, refused.action, refused.outcome) == (
        "anonymous",
        "client.refused",
        "refused",
    )
    assert refused.detail == reason
    assert refused.remote == "127.0.0.1"


async def test_a_revoked_or_forged_credential_is_refused_at_the_upgrade(
    make_client: AppFactory, caplog: pytest.LogCaptureFixture
) -> None:
    """A revoked credential, a wrong secret and a garbage token all get 401."""
    client = await make_client()
    book = client.app[SITES]
    revoked = book.add("site-a", time.time())
    book.revoke("site-a", time.time())
    live = book.add("site-b", time.time())
    forged = "site-b:" + "x" * 43
    with caplog.at_level(logging.WARNING):
        for token in (revoked, forged, "nonsense", live + "x"):
            challenge = await _refused_upgrade(client, _bearer(token))
            assert 'error="invalid_token"' in challenge
    entries = await _audit(client, 4)
    assert [e.detail for e in entries] == ["invalid or revoked credential"] * 4
    for token in (revoked, forged, live):
        assert token not in caplog.text and all(token not in str(e) for e in entries)
    async with client.ws_connect("/ws", headers=_bearer(live)) as ws:
        await send(ws, hello("site-b"))
        assert isinstance(await receive(ws), Welcome)


async def test_open_mode_lets_anyone_join_but_refuses_a_wrong_token(
    make_client: AppFactory,
) -> None:
    """No credentials configured: no token joins; a token that is none of ours: 401."""
    client = await make_client()
    status = await (await client.get("/api/status")).json()
    assert status["client_auth"] == "open"
    async with client.ws_connect("/ws") as ws:
        await send(ws, hello("anyone"))
        assert isinstance(await receive(ws), Welcome)
    await _refused_upgrade(client, _bearer("guess"))


async def test_join_token_mode_is_reported_and_required(
    make_client: AppFactory,
) -> None:
    """With a join token, /api/status says so and a client without it gets 401."""
    client = await make_client(join_token="join")
    status = await (await client.get("/api/status")).json()
    assert status["client_auth"] == "join_token"
    await _refused_upgrade(client, {})
    (refused,) = await _audit(client, 1)
    assert refused.detail == "a join token or a site credential is required"


async def test_the_watcher_closes_a_site_revoked_directly_in_the_store(
    make_client: AppFactory, tmp_path: Path
) -> None:
    """A revocation written on the state dir closes the site's socket; 401 after."""
    client = await make_client(heartbeat_s=0.5)
    credential = client.app[SITES].add("site-a", time.time())
    other = client.app[SITES].add("site-b", time.time())
    async with client.ws_connect("/ws", headers=_bearer(other)) as kept:
        await send(kept, hello("site-b"))
        assert isinstance(await receive(kept), Welcome)
        async with client.ws_connect("/ws", headers=_bearer(credential)) as ws:
            await send(ws, hello("site-a"))
            assert isinstance(await receive(ws), Welcome)
            offline = Store(tmp_path / "state")  # as `fednet sites revoke` opens it
            SiteBook(offline).revoke("site-a", time.time())
            offline.close()
            closing = await ws.receive(timeout=10)
            assert closing.type is aiohttp.WSMsgType.CLOSE
            assert (closing.data, closing.extra) == (1008, "revoked")
        assert not kept.closed
    await _refused_upgrade(client, _bearer(credential))
    clients = await (await client.get("/api/clients")).json()
    assert {c["name"]: c["status"] for c in clients}["site-a"] == "disconnected"


async def test_mutual_tls_requires_a_client_certificate_at_the_upgrade(
    make_client: AppFactory, tmp_path: Path
) -> None:
    """With --tls-client-ca, a socket without a verified certificate gets 401."""
    pem = {name: tmp_path / f"{name}.pem" for name in ("cert", "key", "ca")}
    client = await make_client(
        tls_cert=pem["cert"], tls_key=pem["key"], tls_client_ca=pem["ca"]
    )
    await _refused_upgrade(client, {})
    (refused,) = await _audit(client, 1)
    assert refused.detail == "a client certificate is required (mutual TLS)"


@pytest.mark.parametrize(
    "site, cert_name, name, code",
    [
        ("site-a", "site-a", "site-a", None),
        ("site-a", "site-b", "site-a", "certificate_mismatch"),
        (None, "visitor", "visitor", None),
        (None, "site-a", "site-a", "name_reserved"),
        (None, "visitor", "other", "certificate_mismatch"),
    ],
)
def test_under_mutual_tls_the_certificate_names_the_client(
    tmp_path: Path, site: str | None, cert_name: str, name: str, code: str | None
) -> None:
    """The certificate's common name must be the hello's name (audited if not)."""
    store = Store(tmp_path / "state")
    book, audit = SiteBook(store), AuditLog(store)
    book.add("site-a", 1.0)
    principal = f"site:{site}" if site else "join-token"
    peer = Peer(principal, "10.0.0.1", book, audit, site, True, cert_name)
    refusal = peer.admit(name)
    assert (refusal[0] if refusal else None) == code
    audit.write_pending()
    audited = [(e.actor, e.target) for e in audit.entries()]
    assert audited == ([(principal, name)] if code else [])
    store.close()
