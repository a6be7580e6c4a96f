"""Federated statistics over HTTP: ``POST /api/stats`` and the ``/stats`` page.

Both are for admins only. The figures are merged from the summaries the
connected CSV sites sent in their ``hello`` (:mod:`fednet.server.stats_report`);
nothing is asked of the sites and nothing is stored, but each collection is
audited (``stats.collect``): it tells what the sites hold.
"""

from __future__ import annotations

import logging
from typing import Any

from aiohttp import web

from fednet.exceptions import SchemaError
from fednet.server import access, auth
from fednet.server.api import json_response, require_admin
from fednet.server.keys import AUDIT, REGISTRY
from fednet.server.stats_report import collect_stats

logger = logging.getLogger(__name__)


def _collect(request: web.Request) -> dict[str, Any]:
    """Return the merged statistics of the connected sites, audited.

    Raises:
        SchemaError: if no CSV client is connected, or none has a valid schema.
    """
    hellos = [conn.hello for conn in request.app[REGISTRY].connected()]
    report = collect_stats(hellos)
    request.app[AUDIT].record(
        access.request_role(request),
        "stats.collect",
        remote=request.remote,
        detail=f"{len(report['sites'])} sites, {len(report['excluded'])} excluded",
    )
    logger.info(
        "stats: merged the summaries of %d sites (%d excluded)",
        len(report["sites"]),
        len(report["excluded"]),
    )
    return report


async def post_stats(request: web.Request) -> web.Response:
    """Return the merged statistics of the connected CSV sites (admin): 200 or 409."""
    await require_admin(request)
    try:
        report = _collect(request)
    except SchemaError as e:
        raise access.json_error(web.HTTPConflict, str(e)) from None
    return json_response(report)


async def stats_page(request: web.Request) -> web.Response:
    """Render the merged and the per-site statistics for an admin's browser."""
    await access.require_admin_read(request)
    context: dict[str, Any] = {"page": "stats", "report": None, "error": None}
    try:
        context["report"] = _collect(request)
    except SchemaError as e:
        context["error"] = str(e)
    return auth.render_page(request, "stats.html", context)
