"""The browsers' live socket: snapshot, forwarded events, resync, shutdown."""

from __future__ import annotations

import asyncio
import json
from typing import Any

import aiohttp
import pytest

from fednet.protocol import Status
from fednet.server import dashboard
from fednet.server.events import (
    QUEUE_SIZE,
    ClientChanged,
    FeedBatch,
    Published,
    RoundCompleted,
    RoundProgress,
    RunStatus,
    Subscription,
)
from fednet.server.keys import EVENTS
from fednet.views import ProgressView, RunView
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


async def test_client_join_and_status_are_pushed(
    make_client: AppFactory, monkeypatch: pytest.MonkeyPatch
) -> None:
    """A client joining and starting to train reaches the dashboard live."""
    monkeypatch.setattr(dashboard, "FEED_INTERVAL_S", 0.0)  # one event per change
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
            hub.publish(RoundCompleted(1, round_view(i + 1)))
        snap = await _next(ws)
    assert snap["type"] == "snapshot" and snap["seq"] >= QUEUE_SIZE + 5


async def test_a_burst_of_client_changes_is_coalesced_not_dropped(
    make_client: AppFactory,
) -> None:
    """5,000 changes of 2,000 clients at once: each client's last row, no resync."""
    client = await make_client()
    async with client.ws_connect("/ws/dashboard") as ws:
        await _next(ws, "snapshot")
        hub = client.app[EVENTS]
        for i in range(5000):  # no await: all queued before the pusher runs
            hub.publish(ClientChanged("client_status", {"id": f"c{i % 2000}", "n": i}))
        hub.publish(RoundCompleted(1, round_view()))
        rows: dict[str, int] = {}
        while (event := await _next(ws))["type"] != "round_finished":
            assert event["type"] == "client_status"
            rows[event["client"]["id"]] = event["client"]["n"]
    assert len(rows) == 2000 and rows["c0"] == 4000 and rows["c999"] == 4999


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


def _progress(selected: int, reported: int, run_id: int = 1) -> ProgressView:
    """Return a round in progress with ``selected`` clients, ``reported`` of them in."""
    names = tuple(f"client-{i:05d}" for i in range(selected))
    return ProgressView(
        run_id=run_id,
        rounds=3,
        elapsed_s=1.0,
        server_round=1,
        phase="fit",
        selected=names,
        reported=names[:reported],
        pending=names[reported:],
        round_elapsed_s=0.5,
    )


async def _published_text(make_client: AppFactory, progress: ProgressView) -> str:
    client = await make_client()
    async with client.ws_connect("/ws/dashboard") as ws:
        await _next(ws, "snapshot")
        client.app[EVENTS].publish(RoundProgress(progress))
        while True:
            msg = await ws.receive(timeout=10)
            if json.loads(msg.data)["type"] == "round_progress":
                return str(msg.data)


async def test_progress_event_size_does_not_grow_with_selected_clients(
    make_client: AppFactory,
) -> None:
    """A round_progress of 1000 selected clients weighs what one of 10 does."""
    small = await _published_text(make_client, _progress(10, 5))
    large = await _published_text(make_client, _progress(1000, 500))
    event = json.loads(large)
    assert len(large) - len(small) <= 6  # the counts' extra digits only
    assert "selected" not in event["progress"] and "client-00001" not in large
    assert (
        event["progress"]["selected_count"],
        event["progress"]["reported_count"],
        event["progress"]["pending_count"],
    ) == (1000, 500, 500)


async def test_progress_is_coalesced_and_the_last_value_arrives(
    make_client: AppFactory,
) -> None:
    """A burst of 200 results reaches the page as a few events, ending on the last."""
    client = await make_client()
    async with client.ws_connect("/ws/dashboard") as ws:
        await _next(ws, "snapshot")
        hub = client.app[EVENTS]
        for reported in range(1, 201):
            hub.publish(RoundProgress(_progress(200, reported)))
            if reported % 20 == 0:
                await asyncio.sleep(0.01)  # the results come in over 0.1 s
        counts = []
        while not counts or counts[-1] != 200:
            event = await _next(ws, "round_progress")
            counts.append(event["progress"]["reported_count"])
    assert len(counts) <= 3 and counts == sorted(counts)
    assert event["seq"] == hub.seq


async def test_run_status_goes_out_at_once_after_pending_progress(
    make_client: AppFactory, monkeypatch: pytest.MonkeyPatch
) -> None:
    """A run's status is not held back; progress it supersedes is not sent."""
    monkeypatch.setattr(dashboard, "FEED_INTERVAL_S", 60.0)
    client = await make_client()
    async with client.ws_connect("/ws/dashboard") as ws:
        await _next(ws, "snapshot")
        hub = client.app[EVENTS]
        hub.publish(RoundProgress(_progress(5, 1)))
        first = await _next(ws)  # nothing sent for a while: due at once
        hub.publish(RoundProgress(_progress(5, 2)))  # held for 60 s
        hub.publish(ClientChanged("client_status", {"id": "client-00001"}))
        hub.publish(RoundCompleted(1, round_view()))
        run = RunView(1, "running", {}, None, None, 0.0, 0.0, None, 1)
        hub.publish(RunStatus(run, _progress(5, 5)))
        events = [await _next(ws) for _ in range(3)]
    assert first["progress"]["reported_count"] == 1
    assert [e["type"] for e in events] == [
        "client_status",
        "round_finished",
        "run_status",
    ]
    assert events[-1]["progress"]["reported_count"] == 5


def test_feed_batch_keeps_the_latest_per_key_in_seq_order() -> None:
    """Per run and per client the latest event is kept, in publishing order."""
    batch = FeedBatch(0.25)
    batch.add(Published(1, RoundProgress(_progress(5, 1))), now=10.0)
    batch.add(Published(2, ClientChanged("client_status", {"id": "a"})), now=10.0)
    batch.add(Published(3, RoundProgress(_progress(5, 2))), now=10.0)
    batch.add(Published(4, ClientChanged("client_left", {"id": "b"})), now=10.0)
    assert batch.due() == 10.0
    assert [p.seq for p in batch.take(now=10.0)] == [2, 3, 4]
    assert batch.due() is None and len(batch) == 0


def test_feed_batch_waits_an_interval_then_is_due() -> None:
    """After a send, the next coalesced event waits out the interval."""
    batch = FeedBatch(0.25)
    batch.add(Published(1, RoundProgress(_progress(5, 1))), now=10.0)
    batch.take(now=10.0)
    batch.add(Published(2, RoundProgress(_progress(5, 2))), now=10.1)
    assert batch.due() == 10.25
    batch.add(Published(3, RoundCompleted(1, round_view())), now=10.2)
    assert batch.due() is not None and batch.due() < 10.2  # type: ignore[operator]
    assert [p.seq for p in batch.take(now=10.2)] == [2, 3]


def test_api_progress_keeps_the_names_and_adds_counts() -> None:
    """``GET /api/...`` progress lists the names; the feed only counts them."""
    progress = _progress(3, 1)
    api, feed = progress.to_dict(), progress.to_dict(names=False)
    assert api["selected"] == ["client-00000", "client-00001", "client-00002"]
    assert (api["selected_count"], api["reported_count"], api["pending_count"]) == (
        3,
        1,
        2,
    )
    names = ("selected", "reported", "pending")
    assert feed == {k: v for k, v in api.items() if k not in names}
    assert ProgressView.from_dict(api) == progress
    assert ProgressView.from_dict(feed).reported_count == 1


def test_subscription_replaces_superseded_events_and_keeps_seq_order() -> None:
    """A client's newer row replaces its queued one and moves behind the others."""
    queue = Subscription(limit=1)
    queue.put(Published(1, ClientChanged("client_joined", {"id": "a"})))
    queue.put(Published(2, RoundCompleted(1, round_view())))
    queue.put(Published(3, ClientChanged("client_status", {"id": "a"})))
    refused = queue.put(Published(4, RoundCompleted(1, round_view(2))))
    taken = [queue.get_nowait(), queue.get_nowait()]
    assert [p.seq for p in taken if p is not None] == [2, 3] and queue.empty()
    assert not refused  # a second round_finished is over the limit of 1
