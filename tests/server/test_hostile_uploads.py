"""Hostile sockets cannot make the coordinator allocate before it trusts them."""

from __future__ import annotations

import asyncio
import contextlib
import json
import struct
import tracemalloc
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from typing import Any

import aiohttp
import numpy as np
import pytest
from aiohttp import web
from aiohttp.test_utils import TestClient

from fednet.protocol import (
    Error,
    Fit,
    FitResult,
    Hello,
    UploadGrant,
    UploadRequest,
    serialize,
)
from fednet.server.keys import UPLOADS
from tests.server.conftest import AppFactory, receive, send

Client = TestClient[Any, web.Application]
DECLARED = 66_000_000 * 4  # 264 MB of float32
PEAK_BYTES = 8 << 20
_CLOSED = (aiohttp.WSMsgType.CLOSE, aiohttp.WSMsgType.CLOSED, aiohttp.WSMsgType.ERROR)
SYNTHETIC_RUN = {"task": "synthetic", "synthetic_params": 1000, "min_clients": 1}


def first_part(run_id: int = 1, count: int = DECLARED // 4) -> bytes:
    """Return the first part of a round-1 fit_result declaring ``count`` float32s."""
    header = {
        "type": "fit_result",
        "run_id": run_id,
        "server_round": 1,
        "num_examples": 1,
        "metrics": {},
        "arrays": [{"dtype": "<f4", "shape": [count]}],
    }
    head = json.dumps(header, separators=(",", ":")).encode()
    return struct.pack(">I", len(head)) + head


async def expect_refusal(ws: aiohttp.ClientWebSocketResponse, code: str) -> None:
    """Read the error with ``code``, then the close frame with 1008."""
    error = await receive(ws)
    assert isinstance(error, Error) and error.code == code, error
    closing = await ws.receive(timeout=10)
    assert closing.type is aiohttp.WSMsgType.CLOSE and closing.data == 1008


async def peak_while(exchange: Any) -> int:
    """Run an awaitable under tracemalloc; return the peak bytes it allocated."""
    tracemalloc.start()
    try:
        await exchange
        return tracemalloc.get_traced_memory()[1]
    finally:
        tracemalloc.stop()


async def refused_cheaply(
    ws: aiohttp.ClientWebSocketResponse, frame: bytes, code: str
) -> None:
    """Send a frame; expect refusal with ``code`` at under PEAK_BYTES allocated."""

    async def exchange() -> None:
        await ws.send_bytes(frame)
        await expect_refusal(ws, code)

    peak = await peak_while(exchange())
    assert peak < PEAK_BYTES, f"peak {peak} bytes"


@asynccontextmanager
async def selected_client(
    client: Client, name: str = "site-a"
) -> AsyncIterator[tuple[aiohttp.ClientWebSocketResponse, Fit]]:
    """Launch a one-client synthetic run; yield the joined socket and its fit."""
    await client.post("/api/runs", json={**SYNTHETIC_RUN, "rounds": 1})
    async with client.ws_connect("/ws") as ws:
        await send(ws, Hello(name, "i", 10, "synthetic"))
        await receive(ws)
        fit = await receive(ws)
        assert isinstance(fit, Fit)
        yield ws, fit


async def test_huge_first_part_before_hello_is_refused_without_allocating(
    make_client: AppFactory,
) -> None:
    """A 143-byte part declaring 264 MB before hello: close 1008, nothing joined."""
    client = await make_client()
    async with client.ws_connect("/ws") as ws:
        await refused_cheaply(ws, first_part(), "hello_required")


async def test_huge_first_part_after_hello_without_grant_allocates_nothing(
    make_client: AppFactory,
) -> None:
    """After hello, a 264 MB declaration without a grant is refused before joining."""
    client = await make_client()
    async with client.ws_connect("/ws") as ws:
        await send(ws, Hello("greedy", "i", 1, "synthetic"))
        await receive(ws)
        await refused_cheaply(ws, first_part(), "upload_not_granted")
    status = await (await client.get("/api/status")).json()
    assert status["stats"]["rejected:upload_not_granted"] == 1


async def test_declaration_above_the_granted_size_is_refused(
    make_client: AppFactory,
) -> None:
    """A granted client declaring more than it asked for: upload_too_large, 1008."""
    client = await make_client()
    async with selected_client(client) as (ws, fit):
        await send(ws, UploadRequest(fit.run_id, 1, 1_000_000))
        assert isinstance(await receive(ws), UploadGrant)
        await refused_cheaply(ws, first_part(fit.run_id), "upload_too_large")


async def test_single_message_over_the_direct_limit_needs_a_grant(
    make_client: AppFactory,
) -> None:
    """A whole 1.5 MB fit_result in one message without a grant is refused (1008)."""
    client = await make_client()
    async with client.ws_connect("/ws") as ws:
        await send(ws, Hello("greedy", "i", 1, "synthetic"))
        await receive(ws)
        frame = serialize(FitResult(1, 1, 1, {}, [np.zeros(375_000, np.float32)]))
        assert 1 << 20 < len(frame) < 2 << 20
        await ws.send_bytes(bytes(frame))
        await expect_refusal(ws, "upload_not_granted")


async def test_single_message_of_5_mb_is_over_the_message_limit(
    make_client: AppFactory,
) -> None:
    """A whole 5 MB fit_result in one message is over one part: the socket closes."""
    client = await make_client()
    async with client.ws_connect("/ws") as ws:
        await send(ws, Hello("greedy", "i", 1, "synthetic"))
        await receive(ws)
        frame = serialize(FitResult(1, 1, 1, {}, [np.zeros(1_250_000, np.float32)]))
        with contextlib.suppress(ConnectionError):  # closed while still sending
            await ws.send_bytes(bytes(frame))
        closing = await ws.receive(timeout=5)
        assert closing.type in _CLOSED, closing
    status = await (await client.get("/api/status")).json()
    assert status["stats"]["bytes_received"] < 1 << 20


@pytest.mark.parametrize(
    "who, server_round, nbytes",
    [("late", 1, 1000), ("site-a", 2, 1000), ("site-a", 1, 10**9)],
    ids=["not-selected", "wrong-round", "above-the-model"],
)
async def test_upload_request_the_run_does_not_await_is_refused(
    make_client: AppFactory, who: str, server_round: int, nbytes: int
) -> None:
    """A request from an unselected client, for another round or too big: refused."""
    client = await make_client()
    async with selected_client(client) as (ws, fit):
        async with client.ws_connect("/ws") as late:
            await send(late, Hello("late", "j", 10, "synthetic"))
            await receive(late)
            sender = late if who == "late" else ws
            await send(sender, UploadRequest(fit.run_id, server_round, nbytes))
            error = await receive(sender)
            assert isinstance(error, Error) and error.code == "upload_refused"
            assert client.app[UPLOADS].in_flight == 0


async def test_unused_grant_expires_on_its_timer(make_client: AppFactory) -> None:
    """A granted slot frees itself after its timeout, with no other request."""
    client = await make_client()
    client.app[UPLOADS].grant_timeout_s = 0.2
    async with selected_client(client) as (ws, fit):
        await send(ws, UploadRequest(fit.run_id, 1, 1000))
        assert isinstance(await receive(ws), UploadGrant)
        assert client.app[UPLOADS].in_flight == 1
        await asyncio.sleep(0.5)
        assert client.app[UPLOADS].in_flight == 0


async def test_upload_that_trickles_is_dropped_and_frees_its_slot(
    make_client: AppFactory,
) -> None:
    """A begun upload slower than the minimum rate loses its socket and its slot."""
    client = await make_client()
    gate = client.app[UPLOADS]
    gate.grant_timeout_s, gate.min_rate = 0.3, 1e9
    async with selected_client(client) as (ws, fit):
        await send(ws, UploadRequest(fit.run_id, 1, 5000))
        assert isinstance(await receive(ws), UploadGrant)
        await ws.send_bytes(first_part(fit.run_id, count=1000))  # then nothing
        await asyncio.sleep(0.1)
        assert gate.in_flight == 1  # begun: its slot is held for now
        closing = await ws.receive(timeout=5)
        assert closing.type in _CLOSED, closing
        assert gate.in_flight == 0


async def test_socket_without_hello_is_closed_at_the_deadline(
    make_client: AppFactory,
) -> None:
    """A socket that says nothing is refused with hello_timeout and 1008."""
    client = await make_client(hello_timeout_s=0.2)
    async with client.ws_connect("/ws") as ws:
        await expect_refusal(ws, "hello_timeout")


async def test_connections_beyond_the_cap_get_503(make_client: AppFactory) -> None:
    """With max_clients=2 a third client socket is refused before the upgrade."""
    client = await make_client(max_clients=2)
    async with client.ws_connect("/ws"), client.ws_connect("/ws"):
        with pytest.raises(aiohttp.WSServerHandshakeError) as refused:
            await client.ws_connect("/ws")
    assert refused.value.status == 503


async def test_a_closed_socket_frees_its_place_under_the_cap(
    make_client: AppFactory,
) -> None:
    """Once a client socket closed, another one may connect under the cap."""
    client = await make_client(max_clients=1)
    async with client.ws_connect("/ws"):
        pass
    for _ in range(100):
        try:
            async with client.ws_connect("/ws") as ws:
                assert not ws.closed
                return
        except aiohttp.WSServerHandshakeError:
            await asyncio.sleep(0.02)
    raise AssertionError("the closed socket kept its place")
