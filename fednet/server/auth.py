"""Admin login for the dashboard: an encrypted session cookie plus CSRF tokens.

The session is a small JSON object (``csrf``, and ``admin`` once logged in)
encrypted and authenticated with Fernet (AES-128-CBC + HMAC-SHA256) and kept
in an HttpOnly, SameSite=Lax cookie. The key is random per process, so a
restarted server logs everyone out and no key is kept on disk.
"""

from __future__ import annotations

import hmac
import json
import logging
import secrets
from typing import Any

import aiohttp_jinja2
from aiohttp import web
from cryptography.fernet import Fernet, InvalidToken
from multidict import MultiDictProxy

from fednet import __version__
from fednet.server.keys import SETTINGS

logger = logging.getLogger(__name__)

COOKIE_NAME = "fednet_session"
CSRF_HEADER = "X-CSRF-Token"
SESSION_MAX_AGE_S = 12 * 3600

FERNET = web.AppKey("session_fernet", Fernet)
Session = dict[str, Any]


def setup_auth(app: web.Application) -> None:
    """Create the session key and register the login and logout routes."""
    app[FERNET] = Fernet(Fernet.generate_key())
    app.router.add_get("/login", login_page, name="login")
    app.router.add_post("/login", login)
    app.router.add_post("/logout", logout, name="logout")


def load_session(request: web.Request) -> Session:
    """Return the request's session, or an empty one if absent, forged or expired."""
    cookie = request.cookies.get(COOKIE_NAME)
    if not cookie:
        return {}
    try:
        raw = request.app[FERNET].decrypt(cookie.encode(), ttl=SESSION_MAX_AGE_S)
        data = json.loads(raw)
    except (InvalidToken, ValueError):
        return {}
    return data if isinstance(data, dict) else {}


def save_session(
    request: web.Request, response: web.StreamResponse, session: Session
) -> None:
    """Set the session cookie on a response."""
    token = request.app[FERNET].encrypt(json.dumps(session).encode()).decode()
    response.set_cookie(
        COOKIE_NAME,
        token,
        max_age=SESSION_MAX_AGE_S,
        path="/",
        httponly=True,
        samesite="Lax",
    )


def is_admin(request: web.Request, session: Session) -> bool:
    """Return whether this browser may launch and stop runs (all, if no token)."""
    return request.app[SETTINGS].admin_token is None or session.get("admin") is True


async def check_admin_session(request: web.Request) -> bool:
    """Return whether a write request comes from a logged-in dashboard.

    The session must be an admin one and the request must echo the session's
    CSRF token in the ``X-CSRF-Token`` header.

    Raises:
        web.HTTPForbidden: logged in, but the CSRF token is missing or wrong.
    """
    session = load_session(request)
    if session.get("admin") is not True:
        return False
    if not _same(request.headers.get(CSRF_HEADER, ""), session.get("csrf")):
        raise web.HTTPForbidden(
            text='{"error": "missing or invalid CSRF token"}',
            content_type="application/json",
        )
    return True


def render_page(
    request: web.Request, template: str, context: dict[str, Any], *, status: int = 200
) -> web.Response:
    """Render a dashboard page with the visitor's login state and CSRF token.

    A visitor without a session gets one (holding only a CSRF token), so
    the forms on the page can be posted.
    """
    session = load_session(request)
    fresh = not isinstance(session.get("csrf"), str)
    if fresh:
        session = {"csrf": secrets.token_urlsafe(32)}
    settings = request.app[SETTINGS]
    full = {
        "version": __version__,
        "csrf_token": session["csrf"],
        "is_admin": is_admin(request, session),
        "admin_required": settings.admin_token is not None,
        "path": request.path_qs,
        **context,
    }
    response = aiohttp_jinja2.render_template(template, request, full, status=status)
    if fresh:
        save_session(request, response, session)
    return response


async def login_page(request: web.Request) -> web.Response:
    """Show the admin login form (or go home when no token is configured)."""
    if request.app[SETTINGS].admin_token is None:
        return _redirect("/")
    return _render_login(request, None, 200)


async def login(request: web.Request) -> web.Response:
    """Check the posted admin token and turn the session into an admin one."""
    token = request.app[SETTINGS].admin_token
    if token is None:
        return _redirect("/")
    form = await _read_form(request)
    next_path = str(form.get("next", "/"))
    if not _same(str(form.get("csrf_token", "")), load_session(request).get("csrf")):
        return _render_login(
            request, "Your session expired; try again.", 403, next_path
        )
    if not _same(str(form.get("token", "")), token):
        logger.warning(
            "dashboard login from %s refused: wrong admin token", request.remote
        )
        return _render_login(
            request, "That admin token is not correct.", 401, next_path
        )
    logger.info("dashboard login from %s", request.remote)
    response = _redirect(_safe_next(next_path))
    # A new CSRF token on login: a token seen before login is worth nothing after.
    save_session(request, response, {"admin": True, "csrf": secrets.token_urlsafe(32)})
    return response


async def logout(request: web.Request) -> web.Response:
    """End the admin session (the form must carry the CSRF token)."""
    form = await _read_form(request)
    if not _same(str(form.get("csrf_token", "")), load_session(request).get("csrf")):
        raise web.HTTPForbidden(text="missing or invalid CSRF token\n")
    response = _redirect("/")
    response.del_cookie(COOKIE_NAME, path="/")
    return response


async def _read_form(request: web.Request) -> MultiDictProxy[Any]:
    """Return the posted form; 400 (one log line) if it cannot be decoded.

    A form may name a charset Python does not know (``LookupError``), be
    multipart without (or with a wrong) boundary (``ValueError``), or carry
    a ``Content-Encoding`` it is not encoded in (``RequestPayloadError``).
    """
    try:
        return await request.post()
    except (ValueError, LookupError, web.RequestPayloadError) as e:
        logger.warning("%s: refused a malformed form: %.200s", request.path, e)
        raise web.HTTPBadRequest(text="malformed form\n") from None


def _render_login(
    request: web.Request, error: str | None, status: int, next_path: str | None = None
) -> web.Response:
    target = _safe_next(next_path or request.query.get("next", "/"))
    context = {"page": "login", "error": error, "next": target}
    return render_page(request, "login.html", context, status=status)


def _redirect(location: str) -> web.Response:
    return web.Response(status=303, headers={"Location": location})


def _same(given: str, expected: object) -> bool:
    if not isinstance(expected, str) or not given:
        return False
    return hmac.compare_digest(given.encode(), expected.encode())


def _safe_next(target: str) -> str:
    """Allow only local paths as a redirect target (no open redirect)."""
    if target.startswith("/") and not target.startswith("//") and "\\" not in target:
        return target
    return "/"
