"""Roles (admin, viewer, anonymous), the session they come from, and the guards.

A request's role: ``Authorization: Bearer`` equal to the admin token is an
admin, equal to the viewer token a viewer; otherwise the dashboard session's
role (set at login); otherwise anonymous. A server with neither an admin nor
a viewer token (the loopback demo) makes everyone an admin.

:func:`read_guard`, one middleware, keeps every route but :data:`PUBLIC_PATHS`
for viewers and admins once a token is configured: pages send anonymous
browsers to the login form, the rest answers 401. :func:`require_admin`
guards the writes: a same-origin ``Origin`` (when there is one), a JSON body
and an admin; a session's write must also echo its CSRF token.

The session is a small JSON object (``csrf``; ``role`` and ``sid`` once
logged in) encrypted and authenticated with Fernet in an HttpOnly,
SameSite=Lax cookie. The key is random per process. Logout puts the
session's ``sid`` on a revoked list until the session would have expired.
"""

from __future__ import annotations

import hmac
import json
import time
from collections import OrderedDict
from typing import Any, Callable, Literal, cast
from urllib.parse import quote

from aiohttp import hdrs, web
from aiohttp.typedefs import Handler
from cryptography.fernet import Fernet, InvalidToken
from yarl import URL

from fednet.server.keys import SETTINGS
from fednet.settings import ServerSettings

Role = Literal["admin", "viewer", "anonymous"]
Session = dict[str, Any]

COOKIE_NAME = "fednet_session"
CSRF_HEADER = "X-CSRF-Token"
SESSION_MAX_AGE_S = 12 * 3600
MAX_REVOKED = 10_000
"""Revoked sessions remembered; past it (all still live) the key is renewed."""

# The OpenAPI document (openapi.OPENAPI_PATH; importing it here would be a cycle).
PUBLIC_PATHS = frozenset(
    {"/healthz", "/login", "/logout", "/api/openapi.json", "/ws"}
)
PUBLIC_PREFIXES = ("/static/",)
_API_PREFIXES = ("/api/", "/ws/", "/metrics")
SITE_DETAILS = ("address", "schema")
"""Members of a client that only admins see: where a site is, what it holds."""
_ROLE_KEY = web.RequestKey("role", str)
_SAFE_METHODS = frozenset({"GET", "HEAD", "OPTIONS"})
_SIMPLE_TYPES = frozenset(
    {"application/x-www-form-urlencoded", "multipart/form-data", "text/plain"}
)
"""The bodies a cross-site page may send without a CORS preflight (Fetch spec)."""


class SessionKeys:
    """The session cookie's key and the revoked session ids (bounded)."""

    def __init__(self, clock: Callable[[], float] = time.time) -> None:
        self.fernet = Fernet(Fernet.generate_key())
        self.clock = clock
        self._revoked: OrderedDict[str, float] = OrderedDict()

    def revoke(self, sid: str) -> None:
        """Refuse the session ``sid`` from now until it would have expired."""
        now = self.clock()
        while self._revoked and next(iter(self._revoked.values())) <= now:
            self._revoked.popitem(last=False)
        if len(self._revoked) >= MAX_REVOKED:
            # All still live: a new key ends every session at once, in O(1) memory.
            self.fernet = Fernet(Fernet.generate_key())
            self._revoked.clear()
            return
        self._revoked[sid] = now + SESSION_MAX_AGE_S

    def revoked(self, sid: object) -> bool:
        """Return whether the session ``sid`` was logged out."""
        return isinstance(sid, str) and sid in self._revoked


SESSIONS = web.AppKey("sessions", SessionKeys)


def credentials_configured(settings: ServerSettings) -> bool:
    """Return whether reads and writes are guarded (an admin or a viewer token)."""
    return settings.admin_token is not None or settings.viewer_token is not None


def load_session(request: web.Request) -> Session:
    """Return the request's session, or an empty one if absent, forged or expired."""
    cookie = request.cookies.get(COOKIE_NAME)
    if not cookie:
        return {}
    keys = request.app[SESSIONS]
    try:
        token = cookie.encode("utf-8", "surrogatepass")  # a peer's bytes
        raw = keys.fernet.decrypt(token, ttl=SESSION_MAX_AGE_S)
        data = json.loads(raw)
    except (InvalidToken, ValueError):
        return {}
    if not isinstance(data, dict) or keys.revoked(data.get("sid")):
        return {}
    return data


def same_secret(given: str, expected: str | None) -> bool:
    """Compare a presented secret with a configured one in constant time."""
    if expected is None or not given:
        return False
    encoding = ("utf-8", "surrogatepass")
    return hmac.compare_digest(given.encode(*encoding), expected.encode(*encoding))


def token_role(settings: ServerSettings, token: str) -> Role | None:
    """Return the role a token grants (admin or viewer), or None."""
    admin = same_secret(token, settings.admin_token)
    viewer = same_secret(token, settings.viewer_token)  # both compared, always
    return "admin" if admin else "viewer" if viewer else None


def _bearer(request: web.Request) -> str:
    scheme, _, given = request.headers.get(hdrs.AUTHORIZATION, "").partition(" ")
    return given.strip() if scheme.lower() == "bearer" else ""


def request_role(request: web.Request) -> Role:
    """Return the role of a request: bearer token, then session, then anonymous."""
    cached = request.get(_ROLE_KEY)
    if cached in ("admin", "viewer", "anonymous"):
        return cast(Role, cached)
    settings = request.app[SETTINGS]
    role: Role = "anonymous"
    if not credentials_configured(settings):
        role = "admin"
    elif (by_token := token_role(settings, _bearer(request))) is not None:
        role = by_token
    elif (by_session := load_session(request).get("role")) in ("admin", "viewer"):
        role = by_session
    request[_ROLE_KEY] = role
    return role


def sees_site_details(request: web.Request) -> bool:
    """Return whether the request may see sites' addresses and schemas (admins)."""
    return request_role(request) == "admin"


def without_site_details(client: dict[str, Any]) -> dict[str, Any]:
    """Return a client as a viewer sees it: no address, no schema."""
    return {k: v for k, v in client.items() if k not in SITE_DETAILS}


def json_error(status: type[web.HTTPException], message: str) -> web.HTTPException:
    """Return an HTTP error whose body is ``{"error": message}``."""
    body = json.dumps({"error": message})
    return status(text=body, content_type="application/json")


def _is_page(path: str) -> bool:
    return not path.startswith(_API_PREFIXES)


def login_redirect(request: web.Request) -> web.HTTPException:
    """Return a redirect to the login form that comes back to this page."""
    target = quote(request.path_qs, safe="/")
    return web.HTTPSeeOther(location=f"/login?next={target}")


def _is_public(path: str) -> bool:
    return path in PUBLIC_PATHS or path.startswith(PUBLIC_PREFIXES)


@web.middleware
async def read_guard(request: web.Request, handler: Handler) -> web.StreamResponse:
    """Keep every non-public route for viewers and admins once a token is set."""
    if _is_public(request.path) or request_role(request) != "anonymous":
        return await handler(request)
    if _is_page(request.path) and request.method in ("GET", "HEAD"):
        raise login_redirect(request)
    raise json_error(web.HTTPUnauthorized, "a viewer or admin token is required")


async def require_admin_read(request: web.Request) -> None:
    """Raise unless an admin asks: 401 (or the login form) anonymous, 403 viewer."""
    role = request_role(request)
    if role == "admin":
        return
    if role == "anonymous":
        if _is_page(request.path):
            raise login_redirect(request)
        raise json_error(web.HTTPUnauthorized, "admin token required")
    raise json_error(web.HTTPForbidden, "this needs the admin role")


def origin_allowed(request: web.Request) -> bool:
    """Return whether the ``Origin`` header (if any) is this server's own."""
    origin = request.headers.get(hdrs.ORIGIN)
    if origin is None:
        return True  # not a browser: curl, `fednet run`, scripts
    try:
        theirs = URL(origin)
        ours = URL(f"{request.scheme}://{request.host}")
        return (theirs.scheme, theirs.host, theirs.port) == (
            ours.scheme,
            ours.host,
            ours.port,
        ) and theirs.host is not None
    except ValueError:
        return False


def _json_body_allowed(request: web.Request, body_type: str) -> bool:
    """Return whether the body is ``body_type``, or there is none and no form.

    A form or a ``text/plain`` body is what a cross-site page can post
    without a CORS preflight (even an empty form); a body-less stop from
    curl needs no content type. ``body_type`` is JSON, or another type a
    page can only send after a preflight (a bundle's ``application/zip``).
    """
    if request.content_type == body_type:
        return True
    return not request.body_exists and request.content_type not in _SIMPLE_TYPES


async def require_admin(
    request: web.Request, body_type: str = "application/json"
) -> None:
    """Guard a write: same origin, a JSON (or ``body_type``) body or none, an admin.

    Raises:
        web.HTTPForbidden: a foreign ``Origin``, a viewer, or a session
            write without the session's ``X-CSRF-Token``.
        web.HTTPUnsupportedMediaType: a body that is not ``body_type``.
        web.HTTPUnauthorized: no admin credential.
    """
    if request.method not in _SAFE_METHODS:
        if not origin_allowed(request):
            raise json_error(web.HTTPForbidden, "cross-origin request refused")
        if not _json_body_allowed(request, body_type):
            raise json_error(
                web.HTTPUnsupportedMediaType, f"the body must be {body_type}"
            )
    settings = request.app[SETTINGS]
    if not credentials_configured(settings):
        return
    if token_role(settings, _bearer(request)) == "admin":
        return
    role = request_role(request)
    if role == "anonymous":
        raise json_error(web.HTTPUnauthorized, "admin token required")
    if role == "viewer":
        raise json_error(web.HTTPForbidden, "this needs the admin role")
    csrf = load_session(request).get("csrf")
    given = request.headers.get(CSRF_HEADER, "")
    if request.method not in _SAFE_METHODS and not (
        isinstance(csrf, str) and same_secret(given, csrf)
    ):
        raise json_error(web.HTTPForbidden, "missing or invalid CSRF token")
