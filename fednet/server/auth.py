"""Dashboard login and logout: the session cookie, its CSRF token, a rate limit.

The login form takes the admin token or the viewer token; the session then
records the role (see :mod:`fednet.server.access`, which reads it). Failed
logins are limited per remote address (:class:`LoginLimiter`), the cookie is
``Secure`` when the request came over https, and logout revokes the session
on the server, so a copied cookie is worth nothing afterwards.
"""

from __future__ import annotations

import json
import logging
import secrets
import time
from collections import OrderedDict, deque
from typing import Any, Callable

import aiohttp_jinja2
from aiohttp import web
from multidict import MultiDictProxy

from fednet import __version__
from fednet.server import access
from fednet.server.access import (
    COOKIE_NAME,
    SESSION_MAX_AGE_S,
    SESSIONS,
    Session,
    SessionKeys,
    load_session,
    same_secret,
)
from fednet.server.keys import AUDIT, SETTINGS, SITES
from fednet.server.sites import client_auth_mode

logger = logging.getLogger(__name__)

MAX_FAILURES = 5
"""Failed logins one address may make per :data:`FAILURE_WINDOW_S`."""
FAILURE_WINDOW_S = 60.0
MAX_ADDRESSES = 4096
"""Addresses whose failures are remembered (least recently failed go first)."""
MAX_NEXT_CHARS = 2000

CLIENT_AUTH_LABELS = {
    "sites": "site credentials",
    "join_token": "shared join token",
    "open": "open",
}


class LoginLimiter:
    """Count failed logins per address in a sliding window, in bounded memory.

    Args:
        max_failures: failures allowed per window; the next attempt waits.
        window_s: the window's length.
        max_addresses: the addresses remembered, least recently failed dropped.
        clock: a monotonic clock.
    """

    def __init__(
        self,
        max_failures: int = MAX_FAILURES,
        window_s: float = FAILURE_WINDOW_S,
        max_addresses: int = MAX_ADDRESSES,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        self.max_failures = max_failures
        self.window_s = window_s
        self.max_addresses = max_addresses
        self.clock = clock
        self._failures: OrderedDict[str, deque[float]] = OrderedDict()

    def retry_after(self, address: str) -> float | None:
        """Return the seconds ``address`` must wait before trying again, or None."""
        times = self._failures.get(address)
        if times is None:
            return None
        horizon = self.clock() - self.window_s
        while times and times[0] <= horizon:
            times.popleft()
        if len(times) < self.max_failures:
            return None
        return times[0] - horizon

    def failed(self, address: str) -> None:
        """Count one failed login of ``address``."""
        times = self._failures.pop(address, None) or deque(maxlen=self.max_failures)
        times.append(self.clock())
        self._failures[address] = times
        while len(self._failures) > self.max_addresses:
            self._failures.popitem(last=False)


LOGINS = web.AppKey("logins", LoginLimiter)


def setup_auth(app: web.Application) -> None:
    """Create the session key, the limiter, the read guard and the login routes."""
    app[SESSIONS] = SessionKeys()
    app[LOGINS] = LoginLimiter()
    app.middlewares.append(access.read_guard)
    app.router.add_get("/login", login_page, name="login")
    app.router.add_post("/login", login)
    app.router.add_post("/logout", logout, name="logout")


def save_session(
    request: web.Request, response: web.StreamResponse, session: Session
) -> None:
    """Set the session cookie on a response (``Secure`` under https)."""
    fernet = request.app[SESSIONS].fernet
    token = fernet.encrypt(json.dumps(session).encode()).decode()
    response.set_cookie(
        COOKIE_NAME,
        token,
        max_age=SESSION_MAX_AGE_S,
        path="/",
        httponly=True,
        samesite="Lax",
        secure=request.secure,
    )


def render_page(
    request: web.Request, template: str, context: dict[str, Any], *, status: int = 200
) -> web.Response:
    """Render a dashboard page with the visitor's role, CSRF token and banners.

    A visitor without a session gets one (holding only a CSRF token), so
    the forms on the page can be posted.
    """
    session = load_session(request)
    fresh = not isinstance(session.get("csrf"), str)
    if fresh:
        session = {"csrf": secrets.token_urlsafe(32)}
    settings = request.app[SETTINGS]
    role = access.request_role(request)
    mode = client_auth_mode(settings, request.app[SITES])
    full = {
        "version": __version__,
        "csrf_token": session["csrf"],
        "role": role,
        "is_admin": role == "admin",
        "auth_required": access.credentials_configured(settings),
        "admin_required": settings.admin_token is not None,
        "client_auth": CLIENT_AUTH_LABELS[mode],
        "exposure": settings.exposure() if settings.insecure else [],
        "audit_page": role == "admin" and _has_route(request.app, "/audit"),
        "path": request.path_qs,
        **context,
    }
    response = aiohttp_jinja2.render_template(template, request, full, status=status)
    if fresh:
        save_session(request, response, session)
    return response


async def login_page(request: web.Request) -> web.Response:
    """Show the login form (or go home when no token is configured)."""
    if not access.credentials_configured(request.app[SETTINGS]):
        return _redirect("/")
    return _render_login(request, None, 200)


async def login(request: web.Request) -> web.Response:
    """Check the posted token and turn the session into an admin or viewer one."""
    settings = request.app[SETTINGS]
    if not access.credentials_configured(settings):
        return _redirect("/")
    remote = request.remote or "unknown"
    wait = request.app[LOGINS].retry_after(remote)
    if wait is not None:
        logger.warning("dashboard login from %s refused: too many failures", remote)
        response = _render_login(
            request, "Too many failed attempts; wait a minute and try again.", 429
        )
        response.headers["Retry-After"] = str(max(1, int(wait + 0.999)))
        return response
    form = await _read_form(request)
    next_path = str(form.get("next", "/"))
    if not same_secret(str(form.get("csrf_token", "")), _csrf(request)):
        error = "Your session expired; try again."
        return _render_login(request, error, 403, next_path)
    role = access.token_role(settings, str(form.get("token", "")))
    audit = request.app[AUDIT]
    if role is None:
        request.app[LOGINS].failed(remote)
        audit.record("anonymous", "login.failed", outcome="refused", remote=remote)
        logger.warning("dashboard login from %s refused: wrong token", remote)
        return _render_login(request, "That token is not correct.", 401, next_path)
    audit.record(role, "login", remote=remote)
    logger.info("dashboard login from %s as %s", remote, role)
    response = _redirect(safe_next(next_path))
    # A new CSRF token on login: a token seen before login is worth nothing after.
    session = {
        "role": role,
        "sid": secrets.token_urlsafe(16),
        "csrf": secrets.token_urlsafe(32),
    }
    save_session(request, response, session)
    return response


async def logout(request: web.Request) -> web.Response:
    """End the session here and on the server (the form must carry the CSRF token)."""
    form = await _read_form(request)
    session = load_session(request)
    if not same_secret(str(form.get("csrf_token", "")), _csrf(request)):
        raise web.HTTPForbidden(text="missing or invalid CSRF token\n")
    sid, role = session.get("sid"), session.get("role")
    if isinstance(sid, str):
        request.app[SESSIONS].revoke(sid)
        request.app[AUDIT].record(str(role), "logout", remote=request.remote)
    response = _redirect("/")
    response.del_cookie(COOKIE_NAME, path="/")
    return response


def _has_route(app: web.Application, path: str) -> bool:
    return any(r.canonical == path for r in app.router.resources())


def _csrf(request: web.Request) -> str | None:
    csrf = load_session(request).get("csrf")
    return csrf if isinstance(csrf, str) else None


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
    target = safe_next(next_path or request.query.get("next", "/"))
    context = {"page": "login", "error": error, "next": target}
    return render_page(request, "login.html", context, status=status)


def _redirect(location: str) -> web.Response:
    return web.Response(status=303, headers={"Location": location})


def safe_next(target: str) -> str:
    """Return ``target`` if it is a path on this site, else ``/``.

    Browsers drop tabs and newlines from a URL and read ``\\`` as ``/``,
    so ``/\\t/evil.example`` would leave the site: any control character,
    whitespace or backslash is refused, as is a ``//`` start (another host).
    """
    if not target.startswith("/") or target.startswith("//"):
        return "/"
    if len(target) > MAX_NEXT_CHARS or "\\" in target:
        return "/"
    if any(c.isspace() or not c.isprintable() for c in target):
        return "/"
    return target
