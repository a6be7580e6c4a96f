"""The client WebSocket endpoint: transport only; the session holds the protocol."""

from __future__ import annotations

import logging

from aiohttp import WSCloseCode, web

from fednet.params import Limits
from fednet.protocol import DEFAULT_PART_BYTES, MAX_TEXT_BYTES
from fednet.server.identity import Peer, identify
from fednet.server.keys import (
    BUFFERS,
    CLIENT_SOCKETS,
    REGISTRY,
    RUNS,
    SETTINGS,
    SOCKETS,
    STATS,
    UPLOADS,
)
from fednet.server.session import ClientSession

logger = logging.getLogger(__name__)

PREFIX_BYTES = 4
"""The length prefix of a binary frame."""


def message_limit(part_bytes: int, limits: Limits) -> int:
    """Return the longest WebSocket message a client may send.

    One part of a frame (the first also holds the length prefix and the
    header) or one text message, never a whole large upload: memory spent on
    a message that the session refuses is bounded by this, not by the frame
    size limit.
    """
    return max(part_bytes, MAX_TEXT_BYTES) + PREFIX_BYTES + limits.max_header_bytes


def _check_capacity(request: web.Request) -> None:
    app = request.app
    if len(app[CLIENT_SOCKETS]) >= app[SETTINGS].max_clients:
        app[STATS]["rejected:too_many_clients"] += 1
        logger.warning("refused a client from %s: too many clients", request.remote)
        raise web.HTTPServiceUnavailable(text="too many clients\n")


async def client_ws(request: web.Request) -> web.WebSocketResponse:
    """Serve one client: receive, parse, hand to the coordinator, reply."""
    peer = identify(request)
    _check_capacity(request)
    app, settings = request.app, request.app[SETTINGS]
    limits = Limits(max_total_bytes=settings.max_message_bytes)
    ws = web.WebSocketResponse(
        heartbeat=settings.heartbeat_s,
        max_msg_size=message_limit(DEFAULT_PART_BYTES, limits),
    )
    app[CLIENT_SOCKETS].add(ws)
    try:
        await ws.prepare(request)
        app[SOCKETS].add(ws)
        await _serve(request, ws, limits, peer)
    finally:
        app[CLIENT_SOCKETS].discard(ws)
    return ws


async def _serve(
    request: web.Request, ws: web.WebSocketResponse, limits: Limits, peer: Peer
) -> None:
    app, settings = request.app, request.app[SETTINGS]
    session = ClientSession(
        ws,
        request.remote or "unknown",
        registry=app[REGISTRY],
        runs=app[RUNS],
        uploads=app[UPLOADS],
        buffers=app[BUFFERS],
        stats=app[STATS],
        limits=limits,
        heartbeat_s=settings.heartbeat_s,
        hello_timeout_s=settings.hello_timeout_s,
        part_bytes=DEFAULT_PART_BYTES,
        peer=peer,
    )
    try:
        async for frame in ws:
            await session.receive(frame)
    except Exception:
        logger.exception("client connection from %s failed", request.remote)
        await ws.close(code=WSCloseCode.INTERNAL_ERROR)
    finally:
        await session.close()
