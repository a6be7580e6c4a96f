"""The browsers' live socket: a snapshot on connect, then the server's events."""

from __future__ import annotations

import asyncio
import json
import logging
import math
import time
from typing import Any

from aiohttp import WSMsgType, web

from fednet import __version__
from fednet.server.sites import client_auth_mode
from fednet.server import access
from fednet.server.events import FEED_INTERVAL_S, FeedBatch, Published, Subscription
from fednet.server.keys import (
    EVENTS,
    REGISTRY,
    RUNS,
    SETTINGS,
    SITES,
    SOCKETS,
    STARTED,
    STATS,
    STORE,
)

logger = logging.getLogger(__name__)

STATUS_INTERVAL_S = 5.0
RECENT_RUNS = 20


def server_status(app: web.Application) -> dict[str, Any]:
    """Return the server-wide figures the dashboard's header shows."""
    settings = app[SETTINGS]
    return {
        "version": __version__,
        "uptime_s": time.time() - app[STARTED],
        "clients_connected": len(app[REGISTRY].connected()),
        "join_token_required": settings.join_token is not None,
        "admin_token_required": settings.admin_token is not None,
        "client_auth": client_auth_mode(settings, app[SITES]),
        "bytes_received": app[STATS]["bytes_received"],
        "bytes_sent": app[STATS]["bytes_sent"],
    }


def build_snapshot(
    app: web.Application, *, site_details: bool = False
) -> dict[str, Any]:
    """Return the whole state a dashboard needs to draw itself from scratch.

    ``seq`` is the last event already reflected here: a page applies only
    events with a greater ``seq``. ``current_run`` is the active run, or the
    newest one when none is active, with its rounds (for the charts).
    Clients' addresses are there only with ``site_details`` (for admins);
    schemas never (the page does not show them).
    """
    store, runs = app[STORE], app[RUNS]
    recent = store.list_runs(RECENT_RUNS)
    progress = runs.progress()
    current_id = progress.run_id if progress else (recent[0].id if recent else None)
    current = store.get_run(current_id) if current_id is not None else None
    return {
        "type": "snapshot",
        "seq": app[EVENTS].seq,
        "now": time.time(),
        "status": server_status(app),
        "clients": [_client(c.to_dict(), site_details) for c in app[REGISTRY].all()],
        "runs": [_without_schema(r.to_dict()) for r in recent],
        "progress": progress.to_dict(names=False) if progress else None,
        "current_run": _without_schema(current.to_dict()) if current else None,
    }


def _without_schema(item: dict[str, Any]) -> dict[str, Any]:
    return {k: v for k, v in item.items() if k != "schema"}


def _client(client: dict[str, Any], site_details: bool) -> dict[str, Any]:
    if site_details:
        return _without_schema(client)
    return access.without_site_details(client)


def feed_event(data: dict[str, Any], site_details: bool) -> dict[str, Any]:
    """Return an event as a dashboard receives it: without what it may not see."""
    if isinstance(data.get("client"), dict):
        data = {**data, "client": _client(data["client"], site_details)}
    if isinstance(data.get("run"), dict):
        data = {**data, "run": _without_schema(data["run"])}
    return data


async def dashboard_ws(request: web.Request) -> web.WebSocketResponse:
    """Stream the server's state to one browser until it goes away.

    Only an admin's socket carries the sites' addresses (the read guard
    has let only viewers and admins this far, when tokens are set). A page
    of another origin may not open it: a cookie of the same site (another
    subdomain) would ride along.
    """
    app = request.app
    if not access.origin_allowed(request):  # another site's page, riding a cookie
        raise access.json_error(web.HTTPForbidden, "cross-origin socket refused")
    details = access.sees_site_details(request)
    ws = web.WebSocketResponse(heartbeat=app[SETTINGS].heartbeat_s)
    await ws.prepare(request)
    app[SOCKETS].add(ws)
    pusher = asyncio.create_task(_push(app, ws, details), name="dashboard-push")
    try:
        async for msg in ws:
            if msg.type is WSMsgType.TEXT and msg.data == "resync":
                snapshot = build_snapshot(app, site_details=details)
                await ws.send_str(strict_dumps(snapshot))
    finally:
        pusher.cancel()
        await asyncio.gather(pusher, return_exceptions=True)
    return ws


async def _push(
    app: web.Application, ws: web.WebSocketResponse, details: bool
) -> None:
    hub = app[EVENTS]
    try:
        while not ws.closed:
            # Subscribe before the snapshot so no event falls in between.
            queue = hub.subscribe()
            try:
                snapshot = build_snapshot(app, site_details=details)
                await ws.send_str(strict_dumps(snapshot))
                await _forward(app, ws, queue, details)
            finally:
                hub.unsubscribe(queue)
            logger.info("dashboard socket fell behind; sending a fresh snapshot")
    except (ConnectionError, RuntimeError) as e:
        logger.debug("dashboard socket closed while sending: %s", e)
    except Exception:
        logger.exception("dashboard socket failed")
        await ws.close()


async def _forward(
    app: web.Application,
    ws: web.WebSocketResponse,
    queue: Subscription,
    details: bool,
) -> None:
    """Send queued events until the hub drops the queue (it puts None).

    Progress and client changes are coalesced (:class:`FeedBatch`): however
    many results a round receives, a dashboard gets at most one progress per
    run every FEED_INTERVAL_S, and the last one always. Byte counters and
    uptime change without events, so a ``server_status`` goes out at least
    every STATUS_INTERVAL_S, busy or not.
    """
    loop = asyncio.get_running_loop()
    next_status = loop.time() + STATUS_INTERVAL_S
    batch = FeedBatch(FEED_INTERVAL_S)
    while not ws.closed:
        due = batch.due()
        wake = next_status if due is None else min(next_status, due)
        try:
            async with asyncio.timeout(max(0.0, wake - loop.time())):
                published = await queue.get()
        except TimeoutError:
            pass  # nothing happened: a batch or the status is due
        else:
            if not _drain(queue, published, batch, loop.time()):
                return
        due = batch.due()
        if due is not None and due <= loop.time():
            for event in batch.take(loop.time()):
                data = feed_event(event.to_dict(), details)
                await ws.send_str(strict_dumps(data))
        if loop.time() >= next_status:
            next_status = loop.time() + STATUS_INTERVAL_S
            status = {
                "type": "server_status",
                "seq": None,
                "status": server_status(app),
            }
            await ws.send_str(strict_dumps(status))


def _drain(
    queue: Subscription,
    first: Published | None,
    batch: FeedBatch,
    now: float,
) -> bool:
    """Move ``first`` and every event already queued into the batch.

    Returns:
        False if the hub dropped the queue (the socket needs a snapshot).
    """
    published = first
    while published is not None:
        batch.add(published, now)
        if queue.empty():
            return True
        published = queue.get_nowait()
    return False


def strict_dumps(data: Any) -> str:
    """Return ``data`` as strict JSON: NaN and infinities become null.

    Python's ``json.dumps`` writes them as ``NaN`` and ``Infinity``, which
    strict parsers (browsers' ``JSON.parse`` among them) refuse. Every JSON
    answer of the coordinator goes through here: the API, the pages'
    embedded JSON and the dashboard socket. Other objects become strings.
    """
    try:  # the common case, without walking the data first
        return json.dumps(data, default=str, allow_nan=False)
    except ValueError:
        return json.dumps(json_safe(data), default=str, allow_nan=False)


def json_safe(value: Any) -> Any:
    """Replace NaN and infinities (a diverged model's loss) by None: not JSON."""
    if isinstance(value, float):
        return value if math.isfinite(value) else None
    if isinstance(value, dict):
        return {k: json_safe(v) for k, v in value.items()}
    if isinstance(value, (list, tuple)):
        return [json_safe(v) for v in value]
    return value
