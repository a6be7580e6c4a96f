"""The audit log over HTTP: ``GET /api/audit`` and the dashboard's ``/audit`` page.

Both are for admins only; entries come newest first, ``limit`` at a time
(at most :data:`MAX_LIMIT`), older ones with ``before=<id>``.
"""

from __future__ import annotations

import asyncio
import time

from aiohttp import web

from fednet.fields import parse_int64
from fednet.server import access, auth
from fednet.server.api import json_response
from fednet.server.audit import AuditEntry
from fednet.server.keys import AUDIT

DEFAULT_LIMIT = 100
MAX_LIMIT = 1000


def _page(request: web.Request) -> tuple[int, int | None]:
    """Return ``limit`` and ``before`` of the query; 400 on anything else in it."""
    unknown = sorted(set(request.query) - {"limit", "before"})
    if unknown:
        raise _bad(f"unknown query parameter {unknown[0]!r}; use limit and before")
    if any(len(request.query.getall(key)) > 1 for key in request.query):
        raise _bad("limit and before may each be given once")
    limit = parse_int64(request.query.get("limit", str(DEFAULT_LIMIT)))
    before_text = request.query.get("before")
    before = parse_int64(before_text) if before_text is not None else None
    if limit is None or not 1 <= limit <= MAX_LIMIT:
        raise _bad(f"limit must be an integer from 1 to {MAX_LIMIT}")
    if before_text is not None and before is None:
        raise _bad("before must be an integer (an entry id)")
    return limit, before


def _bad(message: str) -> web.HTTPException:
    return access.json_error(web.HTTPBadRequest, message)


async def _entries(request: web.Request) -> list[AuditEntry]:
    limit, before = _page(request)
    audit = request.app[AUDIT]
    await asyncio.to_thread(audit.write_pending)  # what was just done shows
    return audit.entries(limit=limit, before_id=before)


async def list_audit(request: web.Request) -> web.Response:
    """Return audit entries as JSON, newest first (admin only)."""
    await access.require_admin_read(request)
    return json_response([e.to_dict() for e in await _entries(request)])


async def audit_page(request: web.Request) -> web.Response:
    """Render the audit log for an admin's browser."""
    await access.require_admin_read(request)
    entries = await _entries(request)
    rows = [
        {**e.to_dict(), "when": time.strftime("%Y-%m-%d %H:%M:%S", time.gmtime(e.at))}
        for e in entries
    ]
    limit, _ = _page(request)
    older = entries[-1].id if len(entries) == limit else None
    context = {"page": "audit", "entries": rows, "older": older}
    return auth.render_page(request, "audit.html", context)
