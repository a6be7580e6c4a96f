"""Site credentials over HTTP: list, add and revoke sites (admin only).

``POST /api/sites`` answers the new credential once; the coordinator keeps
only its hash. Revoking a site closes its live connection at once.
"""

from __future__ import annotations

import asyncio
import json
import logging
import time

from aiohttp import web

from fednet.server.api import json_response, require_admin
from fednet.server.dashboard import strict_dumps
from fednet.server.identity import disconnect_site
from fednet.server.keys import AUDIT, REGISTRY, SITES
from fednet.server.sites import SiteConflict, SiteNameError, SiteNotFound

logger = logging.getLogger(__name__)

MAX_SITE_BODY_BYTES = 4096
"""The longest body of ``POST /api/sites`` read (a name has 128 characters at most)."""


def _error(status: type[web.HTTPException], message: str) -> web.HTTPException:
    body = strict_dumps({"error": message})
    return status(text=body, content_type="application/json")


async def list_sites(request: web.Request) -> web.Response:
    """Return every registered site, revoked ones included, by name."""
    await require_admin(request)
    sites = await asyncio.to_thread(request.app[SITES].list)
    return json_response([site.to_dict() for site in sites])


async def add_site(request: web.Request) -> web.Response:
    """Register a site: 201 with its credential (shown once), 400, or 409."""
    await require_admin(request)
    name = await _read_name(request)
    app = request.app
    try:
        credential = await asyncio.to_thread(app[SITES].add, name, time.time())
    except SiteNameError as e:
        raise _error(web.HTTPBadRequest, str(e)) from None
    except SiteConflict as e:
        raise _error(web.HTTPConflict, str(e)) from None
    app[AUDIT].record("admin", "site.add", target=name, remote=request.remote)
    logger.info("site %s added", name)
    return json_response(
        {"name": name, "credential": credential},
        status=201,
        headers={"Cache-Control": "no-store"},
    )


async def revoke_site(request: web.Request) -> web.Response:
    """Revoke a site and close its connection: 200 the site, 404, or 409."""
    await require_admin(request)
    app, name = request.app, request.match_info["name"]
    book = app[SITES]
    try:
        await asyncio.to_thread(book.revoke, name, time.time())
    except SiteNotFound as e:
        raise _error(web.HTTPNotFound, str(e)) from None
    except SiteConflict as e:
        raise _error(web.HTTPConflict, str(e)) from None
    app[AUDIT].record("admin", "site.revoke", target=name, remote=request.remote)
    connected = await disconnect_site(app[REGISTRY], name)
    logger.warning("site %s revoked%s", name, " and disconnected" if connected else "")
    site = book.get(name)
    assert site is not None  # it was just revoked, and sites are never deleted
    return json_response(site.to_dict())


async def _read_name(request: web.Request) -> str:
    """Return the ``name`` of a ``{"name": ...}`` body; 400 otherwise."""
    try:
        raw = await request.read()  # at most the app's client_max_size
        if len(raw) > MAX_SITE_BODY_BYTES:
            raise ValueError("too long")
        body = json.loads(raw.decode(request.charset or "utf-8"))
    except (
        ValueError,
        RecursionError,
        LookupError,
        web.RequestPayloadError,
        web.HTTPRequestEntityTooLarge,
    ):
        logger.warning("sites: refused a body that is not a short JSON object")
        raise _error(web.HTTPBadRequest, 'body must be {"name": "..."}') from None
    if not isinstance(body, dict) or set(body) != {"name"}:
        raise _error(web.HTTPBadRequest, 'body must be {"name": "..."}')
    name = body["name"]
    if not isinstance(name, str):
        raise _error(web.HTTPBadRequest, "name must be a string")
    return name
