"""The client's own small web server: a status page, ``/healthz`` and ``/readyz``."""

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
<style>
:root{{--bg:#f5f6f8;--card:#fff;--line:#e4e7ec;--text:#101828;--muted:#667085;
--ok:#079455;--okbg:#ecfdf3;--warn:#b54708;--warnbg:#fffaeb;
--acc:#4f46e5;--accbg:#eef0ff}}
@media (prefers-color-scheme:dark){{:root{{--bg:#0c111d;--card:#161b26;--line:#283041;
--text:#f5f5f6;--muted:#94969c;--okbg:#053321;--ok:#47cd89;--warnbg:#3b2600;
--warn:#fdb022;
--accbg:#1f2543;--acc:#8098f9}}}}
body{{margin:0;background:var(--bg);color:var(--text);
font:14px/1.5 system-ui,-apple-system,"Segoe UI",Roboto,sans-serif}}
main{{max-width:640px;margin:32px auto;padding:0 16px}}
.card{{background:var(--card);border:1px solid var(--line);border-radius:12px;
padding:18px 20px}}
h1{{font-size:18px;margin:0 0 2px;display:flex;gap:10px;align-items:center;
flex-wrap:wrap}}
p{{margin:0 0 14px;color:var(--muted)}}
.b{{font-size:12px;font-weight:600;border-radius:999px;padding:2px 9px;
background:var(--warnbg);color:var(--warn)}}
.b.connected,.b.idle{{background:var(--okbg);color:var(--ok)}}
.b.training,.b.evaluating,.b.sending{{background:var(--accbg);color:var(--acc)}}
table{{width:100%;border-collapse:collapse}}
th,td{{padding:7px 0;border-top:1px solid var(--line);text-align:left;
vertical-align:top}}
th{{color:var(--muted);font-weight:500;width:38%}}
td{{overflow-wrap:anywhere;font-variant-numeric:tabular-nums}}
</style></head><body><main><div class="card">
<h1>fednet client <code>{name}</code> <span class="b {state}">{state}</span></h1>
<p>Refreshes every 5 s &middot; JSON at <a href="/healthz">/healthz</a>
&middot; <a href="/readyz">/readyz</a></p>
<table>{rows}</table></div></main></body></html>
"""


def _show(key: str, value: object) -> str:
    """Format one status value for people (times as dates, dicts as k=v)."""
    if value is None:
        return "\u2013"
    if key == "connected_since" and isinstance(value, (int, float)):
        return time.strftime("%Y-%m-%d %H:%M:%S", time.localtime(value))
    if isinstance(value, dict):
        return ", ".join(
            f"{k}={v:.4g}" if isinstance(v, float) else f"{k}={v}"
            for k, v in value.items()
        )
    return str(value)


def status_dict(runner: ClientRunner, description: str) -> dict[str, object]:
    """Return the client's state as the status page and ``/healthz`` show it."""
    state = runner.state
    return {
        "name": runner.settings.name,
        "server": runner.settings.server,
        "state": state.state,
        "connected": is_connected(runner),
        "client_id": state.client_id,
        "connected_since": state.connected_since,
        "connects": state.connects,
        "data": description,
        "num_examples": runner.trainer.num_examples,
        "task": runner.trainer.task,
        "trainers": ", ".join(t["name"] for t in runner.trainer.announce()) or None,
        "unavailable_trainers": dict(runner.trainer.trainers.failures) or None,
        "rounds_trained": state.rounds_trained,
        "last_round": state.last_round,
        "last_error": state.last_error,
        "uptime_s": round(time.time() - state.started, 1),
    }


def is_connected(runner: ClientRunner) -> bool:
    """Return whether the client holds a welcomed socket to the coordinator."""
    return runner.state.connected_since is not None


async def healthz(request: web.Request) -> web.Response:
    """Answer liveness checks (200 while the process serves) with the state."""
    return web.json_response(status_dict(request.app[RUNNER], request.app[DESCRIPTION]))


async def readyz(request: web.Request) -> web.Response:
    """Answer readiness checks: 200 while connected to the coordinator, else 503."""
    runner = request.app[RUNNER]
    status = 200 if is_connected(runner) else 503
    return web.json_response(
        status_dict(runner, request.app[DESCRIPTION]), status=status
    )


async def index(request: web.Request) -> web.Response:
    """Render the status page (refreshes itself every 5 s)."""
    info = status_dict(request.app[RUNNER], request.app[DESCRIPTION])
    rows = "".join(
        f"<tr><th>{html.escape(k.replace('_', ' '))}</th>"
        f"<td>{html.escape(_show(k, v))}</td></tr>"
        for k, v in info.items()
        if k not in ("name", "state")
    )
    page = _PAGE.format(
        name=html.escape(runner_name(request)),
        state=html.escape(str(info["state"])),
        rows=rows,
    )
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
    app.router.add_get("/readyz", readyz)
    return app
