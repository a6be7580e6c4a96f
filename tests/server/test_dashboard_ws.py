"""The browsers' live socket: snapshot, forwarded events, resync, shutdown."""

from __future__ import annotations

import asyncio
import json
from typing import Any

import aiohttp
import pytest

from fednet.protocol import Status
from fednet.server import dashboard
from fednet.server.events import QUEUE_SIZE, ClientChanged, RoundCompleted
from fednet.server.keys import EVENTS
from tests.server.conftest import AppFactory, hello, receive, round_view, send


async def _next(
    ws: aiohttp.ClientWebSocketResponse, kind: str | None = None
) -> dict[str, Any]:
    """Return the next message (of ``kind``), skipping periodic status ticks."""
    while True:
        msg = await ws.receive(timeout=10)
        assert msg.type is aiohttp.WSMsgType.TEXT, msg
        data: dict[str, Any] = json.loads(msg.data)
        if data["type"] != "server_status" and (kind is None or data["type"] == kind):
            return data


async def test_connect_gets_a_snapshot_of_clients_and_runs(
    make_client: AppFactory,
) -> None:
    """The first message describes the server, its clients and runs."""
    client = await make_client()
    async with client.ws_connect("/ws") as site:
        await send(site, hello("site-a"))
        await receive(site)
        async with client.ws_connect("/ws/dashboard") as ws:
            snap = await _next(ws)
    assert snap["type"] == "snapshot"
    assert [c["name"] for c in snap["clients"]] == ["site-a"]
    assert (
        snap["runs"] == [] and snap["current_run"] is None and snap["progress"] is None
    )
    assert snap["status"]["clients_connected"] == 1


async def test_client_join_and_status_are_pushed(make_client: AppFactory) -> None:
    """A client joining and starting to train reaches the dashboard live."""
    client = await make_client()
    async with client.ws_connect("/ws/dashboard") as ws:
        snap = await _next(ws, "snapshot")
        async with client.ws_connect("/ws") as site:
            await send(site, hello("site-b"))
            await receive(site)
            joined = await _next(ws)
            await send(site, Status("training"))
            status = await _next(ws)
        left = await _next(ws)
    assert joined["type"] == "client_joined" and joined["client"]["name"] == "site-b"
    assert joined["seq"] > snap["seq"]
    assert (
        status["type"] == "client_status" and status["client"]["status"] == "training"
    )
    assert left["type"] == "client_left" and left["client"]["status"] == "disconnected"


async def test_launch_pushes_run_status_and_snapshot_names_current_run(
    make_client: AppFactory,
) -> None:
    """A launched run appears as a run_status event and in later snapshots."""
    client = await make_client()
    async with client.ws_connect("/ws/dashboard") as ws:
        await _next(ws, "snapshot")
        run_id = (await (await client.post("/api/runs", json={"rounds": 3})).json())[
            "id"
        ]
        event = await _next(ws)
        assert event["type"] == "run_status" and event["run"]["id"] == run_id
        assert (
            event["progress"]["run_id"] == run_id and event["progress"]["rounds"] == 3
        )
        await ws.send_str("resync")
        snap = await _next(ws, "snapshot")
    assert snap["current_run"]["id"] == run_id and snap["current_run"]["rounds"] == []
    assert snap["progress"]["phase"] == "waiting"


async def test_slow_subscriber_gets_a_fresh_snapshot(make_client: AppFactory) -> None:
    """When the hub drops a socket's overflowing queue, the socket resyncs."""
    client = await make_client()
    async with client.ws_connect("/ws/dashboard") as ws:
        await _next(ws, "snapshot")
        hub = client.app[EVENTS]
        for i in range(QUEUE_SIZE + 5):  # no await: the pusher cannot drain
            hub.publish(ClientChanged("client_status", {"id": f"c{i}"}))
        snap = await _next(ws)
    assert snap["type"] == "snapshot" and snap["seq"] >= QUEUE_SIZE + 5


async def test_status_ticks_keep_counters_fresh(
    make_client: AppFactory, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Between events the socket sends the server's status periodically."""
    monkeypatch.setattr(dashboard, "STATUS_INTERVAL_S", 0.05)
    client = await make_client()
    async with client.ws_connect("/ws/dashboard") as ws:
        await _next(ws, "snapshot")
        msg = json.loads((await ws.receive(timeout=10)).data)
    assert msg["type"] == "server_status" and msg["seq"] is None
    assert set(msg["status"]) >= {"uptime_s", "clients_connected", "bytes_received"}


async def test_non_finite_metrics_become_null(make_client: AppFactory) -> None:
    """A diverged model's NaN loss does not produce invalid JSON."""
    client = await make_client()
    async with client.ws_connect("/ws/dashboard") as ws:
        await _next(ws, "snapshot")
        client.app[EVENTS].publish(
            RoundCompleted(1, round_view(loss=float("nan"), accuracy=0.5))
        )
        event = await _next(ws)
    assert (event["round"]["loss"], event["round"]["accuracy"]) == (None, 0.5)


async def test_shutdown_closes_dashboard_sockets(make_client: AppFactory) -> None:
    """Stopping the server closes browsers' sockets with GOING_AWAY."""
    client = await make_client()
    ws = await client.ws_connect("/ws/dashboard")
    await _next(ws, "snapshot")
    closing = asyncio.create_task(client.server.close())
    msg = await ws.receive(timeout=10)
    while msg.type is aiohttp.WSMsgType.TEXT:
        msg = await ws.receive(timeout=10)
    await closing
    assert msg.type is aiohttp.WSMsgType.CLOSE
    assert ws.close_code == aiohttp.WSCloseCode.GOING_AWAY
