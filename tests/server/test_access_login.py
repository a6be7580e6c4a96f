"""Login safety: rate limit, revocation, Secure cookies, redirects, the audit log."""

from __future__ import annotations

import re
import ssl
from pathlib import Path
from typing import Any

import aiohttp
import pytest
import trustme
from aiohttp.test_utils import TestClient

from fednet.server.app import create_app
from fednet.server.access import MAX_REVOKED, SessionKeys
from fednet.server.auth import MAX_FAILURES, LoginLimiter, safe_next
from fednet.server.keys import AUDIT
from fednet.settings import ServerSettings
from tests.server.conftest import AppFactory
from tests.server.test_access import ADMIN, AS_ADMIN, AS_VIEWER, VIEWER, _with_model

Client = TestClient[Any, Any]


def _csrf(page: str) -> str:
    match = re.search(r'name="csrf-token" content="([^"]+)"', page)
    assert match is not None
    return match.group(1)


async def _login(client: Client, token: str, next_path: str = "/") -> Any:
    csrf = _csrf(await (await client.get("/login")).text())
    return await client.post(
        "/login",
        data={"token": token, "csrf_token": csrf, "next": next_path},
        allow_redirects=False,
    )


async def _guarded(make_client: AppFactory) -> Client:
    return await make_client(admin_token=ADMIN, viewer_token=VIEWER)


@pytest.mark.parametrize(
    ("target", "expected"),
    [
        ("/runs/1?x=2", "/runs/1?x=2"),
        ("/\t/evil.example", "/"),
        ("/\r\n/evil.example", "/"),
        ("//evil.example", "/"),
        ("/\\evil.example", "/"),
        ("/ /evil.example", "/"),
        ("https://evil.example", "/"),
        ("evil.example", "/"),
        ("/\x00", "/"),
    ],
)
def test_next_accepts_only_paths_of_this_site(target: str, expected: str) -> None:
    """Whatever a browser would read as another host goes home instead."""
    assert safe_next(target) == expected


async def test_login_next_with_a_tab_redirects_home(make_client: AppFactory) -> None:
    """``next=/\\t/evil.example`` (a browser drops the tab: //evil) ends at ``/``."""
    client = await _guarded(make_client)
    resp = await _login(client, VIEWER, "/\t/evil.example")
    assert resp.status == 303 and resp.headers["Location"] == "/"
    page = await client.get("/login?next=/%09/evil.example")
    assert 'name="next" value="/"' in await page.text()


async def test_the_viewer_token_logs_in_as_a_viewer(make_client: AppFactory) -> None:
    """A viewer's session reads pages and the API, but a launch gets 403."""
    client = await _guarded(make_client)
    resp = await _login(client, VIEWER, "/runs/7")
    assert resp.status == 303 and resp.headers["Location"] == "/runs/7"
    page = await (await client.get("/")).text()
    assert 'id="role"' in page and ">viewer<" in page and 'id="launch"' not in page
    assert (await client.get("/api/clients")).status == 200
    resp = await client.post(
        "/api/runs", json={}, headers={"X-CSRF-Token": _csrf(page)}
    )
    assert resp.status == 403


async def test_failed_logins_are_rate_limited(make_client: AppFactory) -> None:
    """After MAX_FAILURES wrong tokens, even the right one gets 429 + Retry-After."""
    client = await _guarded(make_client)
    for _ in range(MAX_FAILURES):
        assert (await _login(client, "guess")).status == 401
    resp = await _login(client, ADMIN)
    assert resp.status == 429
    assert 1 <= int(resp.headers["Retry-After"]) <= 60
    assert "Too many failed attempts" in await resp.text()
    assert (await client.get("/api/runs")).status == 401  # not logged in


async def test_a_cookie_copied_before_logout_is_worthless_after(
    make_client: AppFactory,
) -> None:
    """Logout revokes the session on the server, not only in this browser."""
    client = await _guarded(make_client)
    resp = await _login(client, VIEWER)
    copied = resp.cookies["fednet_session"].value
    assert (await client.get("/api/runs")).status == 200
    csrf = _csrf(await (await client.get("/")).text())
    out = await client.post("/logout", data={"csrf_token": csrf}, allow_redirects=False)
    assert out.status == 303
    client.session.cookie_jar.update_cookies({"fednet_session": copied})
    assert (await client.get("/api/runs")).status == 401


async def _set_cookie(url: str, ssl_context: ssl.SSLContext | None) -> str:
    """Log in as admin at ``url`` and return the session's Set-Cookie header."""
    connector = aiohttp.TCPConnector(ssl=ssl_context if ssl_context else False)
    jar = aiohttp.CookieJar(unsafe=True)  # keep cookies of an IP address
    async with aiohttp.ClientSession(connector=connector, cookie_jar=jar) as http:
        async with http.get(f"{url}/login") as page:
            csrf = _csrf(await page.text())
        form = {"token": ADMIN, "csrf_token": csrf, "next": "/"}
        async with http.post(f"{url}/login", data=form, allow_redirects=False) as r:
            assert r.status == 303
            (cookie,) = r.headers.getall("Set-Cookie")
            return cookie


async def test_the_session_cookie_is_secure_under_https(
    aiohttp_server: Any, tmp_path: Path
) -> None:
    """Over a real TLS socket the cookie says Secure; over plain http it cannot."""
    ca = trustme.CA()
    server_ctx = ssl.create_default_context(ssl.Purpose.CLIENT_AUTH)
    ca.issue_cert("127.0.0.1").configure_cert(server_ctx)
    client_ctx = ssl.create_default_context()
    ca.configure_trust(client_ctx)
    cookies = {}
    for name, ctx in (("https", server_ctx), ("http", None)):
        settings = ServerSettings(state_dir=tmp_path / name, admin_token=ADMIN)
        server = await aiohttp_server(create_app(settings), ssl=ctx)
        url = f"{name}://127.0.0.1:{server.port}"
        cookies[name] = await _set_cookie(url, client_ctx if ctx else None)
    assert "secure" in cookies["https"].lower().split("; ")
    assert "httponly" in cookies["https"].lower()
    assert "secure" not in cookies["http"].lower().split("; ")


async def test_every_action_is_in_the_audit_log_with_its_actor(
    make_client: AppFactory,
) -> None:
    """Launch, stop, model download, login, failed login and logout are recorded."""
    client = await _guarded(make_client)
    run_id = _with_model(client)
    model = await client.get(f"/api/runs/{run_id}/model", headers=AS_VIEWER)
    assert model.status == 200
    launched = await client.post("/api/runs", json={}, headers=AS_ADMIN)
    new_id = (await launched.json())["id"]
    stop = await client.post(f"/api/runs/{new_id}/stop", headers=AS_ADMIN)
    assert stop.status == 200
    assert (await _login(client, "guess")).status == 401
    assert (await _login(client, VIEWER)).status == 303
    csrf = _csrf(await (await client.get("/")).text())
    await client.post("/logout", data={"csrf_token": csrf}, allow_redirects=False)
    audit = client.app[AUDIT]
    audit.write_pending()
    entries = [
        (e.actor, e.action, e.target, e.outcome) for e in reversed(audit.entries())
    ]
    assert entries == [
        ("viewer", "model.download", str(run_id), "ok"),
        ("admin", "run.launch", str(new_id), "ok"),
        ("admin", "run.stop", str(new_id), "ok"),
        ("anonymous", "login.failed", None, "refused"),
        ("viewer", "login", None, "ok"),
        ("viewer", "logout", None, "ok"),
    ]
    assert all(e.remote == "127.0.0.1" for e in audit.entries())


def test_the_limiter_forgets_old_failures_and_bounds_its_addresses() -> None:
    """A failure older than the window no longer counts; few addresses are kept."""
    now = [0.0]
    limiter = LoginLimiter(max_failures=2, window_s=60, max_addresses=3)
    limiter.clock = lambda: now[0]
    limiter.failed("a")
    limiter.failed("a")
    assert limiter.retry_after("a") == 60
    now[0] = 30.0
    assert limiter.retry_after("a") == 30
    now[0] = 61.0
    assert limiter.retry_after("a") is None
    for address in ("b", "c", "d", "e"):
        limiter.failed(address)
    assert len(limiter._failures) == 3 and "a" not in limiter._failures


def test_revoked_sessions_are_bounded_by_renewing_the_key() -> None:
    """Past MAX_REVOKED live revocations the key changes: every session ends."""
    keys = SessionKeys(clock=lambda: 0.0)
    old = keys.fernet
    for i in range(MAX_REVOKED):
        keys.revoke(f"s{i}")
    assert keys.revoked("s0") and keys.fernet is old
    keys.revoke("one-more")
    assert keys.fernet is not old and not keys.revoked("s0")


async def test_forged_or_garbled_cookies_grant_nothing(make_client: AppFactory) -> None:
    """A cookie that is not the server's own (or not even ASCII) is anonymous."""
    client = await _guarded(make_client)
    for cookie in ("forged", "gAAAA" + "x" * 100, "é\udcff", ""):
        headers = {"Cookie": f"fednet_session={cookie}"}
        resp = await client.get("/api/runs", headers=headers)
        assert resp.status == 401, cookie
