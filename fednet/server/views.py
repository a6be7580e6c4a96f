"""Dashboard page handlers: the live overview and one page per run."""

from __future__ import annotations

from typing import Any

import aiohttp_jinja2
from aiohttp import web
from markupsafe import Markup

from fednet.fields import parse_int64
from fednet.server import access, auth
from fednet.server.api import run_with_progress
from fednet.server.dashboard import build_snapshot, strict_dumps
from fednet.server.form import GROUPS, launch_form_fields, trainer_names
from fednet.server.keys import REGISTRY, RUNS, STORE


def _snapshot_json(data: Any) -> Markup:
    """Serialise data for a ``<script type="application/json">`` element.

    Strict JSON (NaN and infinities become null), as the API's answers.
    """
    # "</" would end the script element early; \u003c keeps it inert.
    return Markup(strict_dumps(data).replace("<", "\\u003c"))


async def index(request: web.Request) -> web.Response:
    """Render the live dashboard, seeded with a snapshot of the server.

    Viewers get no launch form (the template) and no sites' addresses.
    """
    details = access.sees_site_details(request)
    context = {
        "page": "dashboard",
        "fields": launch_form_fields(),
        "trainer_names": trainer_names(request.app[REGISTRY].connected()),
        "groups": GROUPS,
        "snapshot": _snapshot_json(build_snapshot(request.app, site_details=details)),
    }
    return auth.render_page(request, "dashboard.html", context)


async def rounds_rows(request: web.Request) -> web.Response:
    """Render the rows of a run's rounds table after round ``since`` (default 0).

    The run page's script inserts them as rounds finish, so the table has
    one renderer: the ``rounds_rows.html`` template.
    """
    run_id = parse_int64(request.match_info["run_id"])
    since = parse_int64(request.query.get("since", "0"))
    if since is None:
        raise web.HTTPBadRequest(text="since must be an integer\n")
    if run_id is None or request.app[STORE].get_run(run_id, with_rounds=False) is None:
        raise web.HTTPNotFound(text="no such run\n")
    rounds = request.app[STORE].get_rounds(run_id, since_round=since)
    context = {"rounds": [r.to_dict() for r in rounds]}
    return aiohttp_jinja2.render_template("rounds_rows.html", request, context)


async def run_page(request: web.Request) -> web.Response:
    """Render one run: config, per-round table with its clients, charts."""
    run_id = parse_int64(request.match_info["run_id"])
    if run_id is None:
        raise web.HTTPNotFound(text="no such run\n")
    view = request.app[STORE].get_run(run_id)
    if view is None:
        context = {"page": "run", "run_id": run_id}
        return auth.render_page(request, "not_found.html", context, status=404)
    run = run_with_progress(view, request.app[RUNS].progress())
    run.pop("schema", None)
    context = {"page": "run", "run": run, "run_json": _snapshot_json(run)}
    return auth.render_page(request, "run.html", context)
