"""The client WebSocket endpoint: transport only; the session holds the protocol."""

from __future__ import annotations

import hmac
import logging

from aiohttp import WSCloseCode, web

from fednet.params import Limits
from fednet.server.keys import (
    BUFFERS,
    REGISTRY,
    RUNS,
    SETTINGS,
    SOCKETS,
    STATS,
    UPLOADS,
)
from fednet.server.session import ClientSession

logger = logging.getLogger(__name__)


def _check_join_token(request: web.Request) -> None:
    token = request.app[SETTINGS].join_token
    if token is None:
        return
    scheme, _, given = request.headers.get("Authorization", "").partition(" ")
    if scheme.lower() != "bearer" or not hmac.compare_digest(
        given.encode(), token.encode()
    ):
        logger.warning(
            "refused a client from %s: bad or missing join token", request.remote
        )
        raise web.HTTPUnauthorized(text="join token required\n")


async def client_ws(request: web.Request) -> web.WebSocketResponse:
    """Serve one client: receive, parse, hand to the coordinator, reply."""
    _check_join_token(request)
    app, settings = request.app, request.app[SETTINGS]
    ws = web.WebSocketResponse(
        heartbeat=settings.heartbeat_s, max_msg_size=settings.max_message_bytes
    )
    await ws.prepare(request)
    app[SOCKETS].add(ws)
    session = ClientSession(
        ws,
        request.remote or "unknown",
        registry=app[REGISTRY],
        runs=app[RUNS],
        uploads=app[UPLOADS],
        buffers=app[BUFFERS],
        stats=app[STATS],
        limits=Limits(max_total_bytes=settings.max_message_bytes),
        heartbeat_s=settings.heartbeat_s,
    )
    try:
        async for frame in ws:
            await session.receive(frame)
    except Exception:
        logger.exception("client connection from %s failed", request.remote)
        await ws.close(code=WSCloseCode.INTERNAL_ERROR)
    finally:
        await session.close()
    return ws
