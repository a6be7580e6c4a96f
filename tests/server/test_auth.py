"""Dashboard login: session cookie, CSRF tokens, and the API's write endpoints."""

from __future__ import annotations

import re
from typing import Any

from aiohttp.test_utils import TestClient

from tests.server.conftest import AppFactory

TOKEN = "s3cret-admin"


def _csrf(page: str) -> str:
    match = re.search(r'name="csrf-token" content="([^"]+)"', page)
    assert match is not None
    return match.group(1)


async def _login(client: TestClient[Any, Any], token: str = TOKEN) -> Any:
    csrf = _csrf(await (await client.get("/login")).text())
    return await client.post(
        "/login",
        data={"token": token, "csrf_token": csrf, "next": "/runs/1"},
        allow_redirects=False,
    )


async def test_launch_without_login_is_refused(make_client: AppFactory) -> None:
    """With an admin token set, an anonymous launch gets 401 and no run."""
    client = await make_client(admin_token=TOKEN)
    await client.get("/")
    resp = await client.post("/api/runs", json={"rounds": 2})
    assert resp.status == 401
    admin = {"Authorization": f"Bearer {TOKEN}"}
    assert await (await client.get("/api/runs", headers=admin)).json() == []


async def test_login_with_the_token_allows_launch_with_csrf_header(
    make_client: AppFactory,
) -> None:
    """After logging in, the page's CSRF header makes launch and stop work."""
    client = await make_client(admin_token=TOKEN)
    resp = await _login(client)
    assert resp.status == 303 and resp.headers["Location"] == "/runs/1"
    page = await (await client.get("/")).text()
    assert 'id="open-banner"' not in page and "Log out" in page
    headers = {"X-CSRF-Token": _csrf(page)}
    launched = await client.post("/api/runs", json={"rounds": 2}, headers=headers)
    assert launched.status == 201
    run_id = (await launched.json())["id"]
    stopped = await client.post(f"/api/runs/{run_id}/stop", headers=headers)
    assert stopped.status == 200 and (await stopped.json())["status"] == "stopped"


async def test_logged_in_launch_without_csrf_header_is_forbidden(
    make_client: AppFactory,
) -> None:
    """A cross-site request riding on the cookie lacks the CSRF token: 403."""
    client = await make_client(admin_token=TOKEN)
    await _login(client)
    resp = await client.post("/api/runs", json={"rounds": 2})
    assert resp.status == 403 and "CSRF" in (await resp.json())["error"]
    resp = await client.post(
        "/api/runs", json={"rounds": 2}, headers={"X-CSRF-Token": "x"}
    )
    assert resp.status == 403


async def test_wrong_token_does_not_log_in(make_client: AppFactory) -> None:
    """A wrong admin token re-renders the form with an error and no admin session."""
    client = await make_client(admin_token=TOKEN)
    resp = await _login(client, token="guess")
    assert resp.status == 401 and "not correct" in await resp.text()
    page = await (await client.get("/")).text()
    resp = await client.post(
        "/api/runs", json={}, headers={"X-CSRF-Token": _csrf(page)}
    )
    assert resp.status == 401


async def test_login_form_without_csrf_token_is_refused(
    make_client: AppFactory,
) -> None:
    """A login post that does not carry the form's CSRF token is refused."""
    client = await make_client(admin_token=TOKEN)
    await client.get("/login")
    resp = await client.post("/login", data={"token": TOKEN}, allow_redirects=False)
    assert resp.status == 403
    assert (await client.get("/")).url.path == "/login"


async def test_logout_ends_the_admin_session(make_client: AppFactory) -> None:
    """After logout (a CSRF-protected form post), launching is refused again."""
    client = await make_client(admin_token=TOKEN)
    await _login(client)
    csrf = _csrf(await (await client.get("/")).text())
    assert (await client.post("/logout", data={}, allow_redirects=False)).status == 403
    resp = await client.post(
        "/logout", data={"csrf_token": csrf}, allow_redirects=False
    )
    assert resp.status == 303
    launched = await client.post("/api/runs", json={}, headers={"X-CSRF-Token": csrf})
    assert launched.status == 401


async def test_bearer_token_still_works_for_api_clients(
    make_client: AppFactory,
) -> None:
    """`fednet run` and scripts keep using Authorization: Bearer."""
    client = await make_client(admin_token=TOKEN)
    resp = await client.post(
        "/api/runs", json={"rounds": 2}, headers={"Authorization": f"Bearer {TOKEN}"}
    )
    assert resp.status == 201


async def test_forged_session_cookie_is_ignored(make_client: AppFactory) -> None:
    """A cookie not encrypted with the server's key grants nothing."""
    client = await make_client(admin_token=TOKEN)
    client.session.cookie_jar.update_cookies({"fednet_session": "forged"})
    resp = await client.post("/api/runs", json={}, headers={"X-CSRF-Token": "forged"})
    assert resp.status == 401


async def test_login_never_redirects_off_site(make_client: AppFactory) -> None:
    """The `next` target must be a local path."""
    client = await make_client(admin_token=TOKEN)
    csrf = _csrf(await (await client.get("/login")).text())
    resp = await client.post(
        "/login",
        data={"token": TOKEN, "csrf_token": csrf, "next": "//evil.example/"},
        allow_redirects=False,
    )
    assert resp.status == 303 and resp.headers["Location"] == "/"


async def test_without_admin_token_login_page_redirects_home(
    make_client: AppFactory,
) -> None:
    """There is nothing to log in to when no admin token is configured."""
    client = await make_client()
    resp = await client.get("/login", allow_redirects=False)
    assert resp.status == 303 and resp.headers["Location"] == "/"
