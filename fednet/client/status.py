"""The client's own small web server: a status page and ``/healthz``."""

from __future__ import annotations

import html
import time

from aiohttp import web

from fednet.client.runner import ClientRunner

RUNNER = web.AppKey("runner", ClientRunner)
DESCRIPTION = web.AppKey("description", str)

_PAGE = """<!doctype html>
<html lang="en"><head><meta charset="utf-8">
<meta name="viewport" content="width=device-width, initial-scale=1">
<meta http-equiv="refresh" content="5"><title>fednet client {name}</title>
<style>body{{font:15px system-ui,sans-serif;margin:2rem;color:#1b2430}}
table{{border-collapse:collapse}}td,th{{padding:.3rem .8rem;border-bottom:1px solid #dde;
text-align:left}}.s{{font-weight:600}}</style></head><body>
<h1>fednet client <code>{name}</code></h1><table>{rows}</table></body></html>
"""


def status_dict(runner: ClientRunner, description: str) -> dict[str, object]:
    """Return the client's state as the status page and ``/healthz`` show it."""
    state = runner.state
    return {
        "name": runner.settings.name,
        "server": runner.settings.server,
        "state": state.state,
        "client_id": state.client_id,
        "connected_since": state.connected_since,
        "connects": state.connects,
        "data": description,
        "num_examples": runner.trainer.num_examples,
        "task": runner.trainer.task,
        "rounds_trained": state.rounds_trained,
        "last_round": state.last_round,
        "last_error": state.last_error,
        "uptime_s": round(time.time() - state.started, 1),
    }


async def healthz(request: web.Request) -> web.Response:
    """Answer liveness checks with the client's state as JSON."""
    return web.json_response(status_dict(request.app[RUNNER], request.app[DESCRIPTION]))


async def index(request: web.Request) -> web.Response:
    """Render the status page (refreshes itself every 5 s)."""
    info = status_dict(request.app[RUNNER], request.app[DESCRIPTION])
    rows = "".join(
        f"<tr><th>{html.escape(k.replace('_', ' '))}</th>"
        f"<td{' class=s' if k == 'state' else ''}>{html.escape(str(v))}</td></tr>"
        for k, v in info.items()
    )
    page = _PAGE.format(name=html.escape(runner_name(request)), rows=rows)
    return web.Response(text=page, content_type="text/html")


def runner_name(request: web.Request) -> str:
    """Return the client's name for the page title."""
    return request.app[RUNNER].settings.name


def create_status_app(runner: ClientRunner, description: str) -> web.Application:
    """Build the client's status application."""
    app = web.Application()
    app[RUNNER] = runner
    app[DESCRIPTION] = description
    app.router.add_get("/", index)
    app.router.add_get("/healthz", healthz)
    return app
