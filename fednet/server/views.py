"""Dashboard page handlers."""

from __future__ import annotations

from typing import Any

import aiohttp_jinja2
from aiohttp import web

from fednet.server.keys import REGISTRY, RUNS, STORE


@aiohttp_jinja2.template("index.html")
async def index(request: web.Request) -> dict[str, Any]:
    """Render the dashboard with the server's current state."""
    app = request.app
    return {
        "clients": [c.to_dict() for c in app[REGISTRY].all()],
        "runs": app[STORE].list_runs(20),
        "progress": app[RUNS].progress(),
    }
