"""A client that stops reading stalls nothing: sends have deadlines, run apart."""

from __future__ import annotations

import asyncio
import random
from collections.abc import AsyncIterator, Callable
from contextlib import asynccontextmanager
from pathlib import Path
from typing import Any

import aiohttp
import numpy as np
import pytest
from aiohttp import web
from aiohttp.test_utils import TestClient

from fednet.client.runner import ClientRunner
from fednet.client.trainer import Trainer
from fednet.settings import ClientSettings, ServerSettings
from fednet.exceptions import ConfigError
from fednet.protocol import (
    Error,
    Fit,
    FitResult,
    Hello,
    Message,
    Status,
    Welcome,
    parse,
)
from fednet.server.events import EventHub
from fednet.server.keys import REGISTRY, RUNS
from fednet.server.registry import ClientConn, Registry
from fednet.server.sender import Outbox
from fednet.server.store import Store
from fednet.typing import ClientId
from tests.server.conftest import AppFactory, receive, send

Client = TestClient[Any, web.Application]

# A fit of 20 million float32 parameters (80 MB) fills any socket's buffers.
LARGE_MODEL = 20_000_000


@asynccontextmanager
async def _stuck(client: Client, name: str = "stuck") -> AsyncIterator[ClientConn]:
    """Join as a client that never reads again after ``welcome`` but keeps talking.

    Its own HTTP session keeps its socket open while the coordinator shuts down.
    """
    async with aiohttp.ClientSession() as session, session.ws_connect(
        client.make_url("/ws")
    ) as ws:
        await send(ws, Hello(name, "i-1", 1, "synthetic"))
        await receive(ws)
        chatter = asyncio.create_task(_chatter(ws))
        try:
            conn = client.app[REGISTRY].get(ClientId(name))
            assert conn is not None
            yield conn
        finally:
            chatter.cancel()
            await asyncio.gather(chatter, return_exceptions=True)


async def _chatter(ws: aiohttp.ClientWebSocketResponse) -> None:
    """Send ``status`` every half second (as a live client would), read nothing."""
    while not ws.closed:
        try:
            await send(ws, Status("idle"))
        except ConnectionError:
            return
        await asyncio.sleep(0.5)


@asynccontextmanager
async def _well_behaved(client: Client, name: str = "good") -> AsyncIterator[None]:
    """Run a real synthetic client that answers every fit."""
    url = str(client.make_url("/ws")).replace("http://", "ws://")
    settings = ClientSettings(server=url, name=name, dataset="synthetic")
    runner = ClientRunner(settings, Trainer(None, client_number=1), random.Random(1))
    task = asyncio.create_task(runner.run())
    try:
        yield
    finally:
        task.cancel()
        await asyncio.gather(task, return_exceptions=True)


async def _until(check: Callable[[], bool], timeout: float = 60) -> None:
    """Wait until ``check()`` holds, polling."""
    async with asyncio.timeout(timeout):
        while not check():
            await asyncio.sleep(0.05)


async def _stalled(conn: ClientConn) -> None:
    """Wait until a send to ``conn`` has begun and its socket takes no more."""
    before = 0
    async with asyncio.timeout(60):
        while not 0 < before == conn.bytes_sent:
            before = conn.bytes_sent
            await asyncio.sleep(0.5)


def _sending(client: Client) -> Callable[[], bool]:
    """Return whether the active run is in its fit phase (sending the fit)."""

    def check() -> bool:
        progress = client.app[RUNS].progress()
        return progress is not None and progress.phase == "fit"

    return check


def _connected(client: Client, count: int) -> Callable[[], bool]:
    return lambda: len(client.app[REGISTRY].connected()) >= count


async def _launch(client: Client, **config: Any) -> int:
    body = {"task": "synthetic", "synthetic_params": LARGE_MODEL, **config}
    resp = await client.post("/api/runs", json=body)
    assert resp.status == 201, await resp.text()
    run_id: int = (await resp.json())["id"]
    return run_id


async def _ended(client: Client, run_id: int, timeout: float = 120) -> dict[str, Any]:
    """Return the run once it is no longer queued or running."""
    async with asyncio.timeout(timeout):
        while True:
            run: dict[str, Any] = await (await client.get(f"/api/runs/{run_id}")).json()
            if run["status"] not in ("queued", "running"):
                return run
            await asyncio.sleep(0.1)


async def _next_text(ws: aiohttp.ClientWebSocketResponse) -> Message:
    """Return the next text message, skipping binary frames (parts of a fit)."""
    while True:
        frame = await ws.receive(timeout=60)
        if frame.type is aiohttp.WSMsgType.TEXT:
            return parse(frame.data)
        assert frame.type is aiohttp.WSMsgType.BINARY, frame


async def test_a_send_the_peer_does_not_take_fails_after_send_timeout_s(
    make_client: AppFactory,
) -> None:
    """ClientConn.send to a peer that does not read returns False and drops it."""
    client = await make_client(send_timeout_s=0.5)
    async with _stuck(client) as conn:
        ok = await asyncio.wait_for(conn.send([bytes(1 << 20)] * 64), 30)
        assert ok is False
        await _until(lambda: not conn.connected)


async def test_a_client_that_stops_reading_is_dropped_at_the_round_timeout(
    make_client: AppFactory,
) -> None:
    """The round closes at round_timeout_s without the stuck client; the run goes on."""
    client = await make_client(send_timeout_s=600.0)
    async with _stuck(client), _well_behaved(client):
        await _until(_connected(client, 2))
        # Long enough for the good client's 80 MB round trip on a busy machine.
        run_id = await _launch(client, rounds=2, min_clients=1, round_timeout_s=8.0)
        run = await _ended(client, run_id)
    assert run["status"] == "finished", (run["error"], run["rounds"])
    assert len(run["rounds"]) == 2
    assert (run["rounds"][0]["clients"], run["rounds"][0]["dropped"]) == (
        ["good"],
        ["stuck"],
    )


async def test_a_stuck_client_does_not_delay_what_the_others_are_sent(
    make_client: AppFactory,
) -> None:
    """While a send to a stuck client is pending, another client gets its reply."""
    client = await make_client(send_timeout_s=600.0)
    async with _stuck(client) as stuck, client.ws_connect("/ws") as ws:
        await send(ws, Hello("quick", "i-1", 1, "synthetic"))
        await receive(ws)
        await _until(_connected(client, 2))
        run_id = await _launch(client, rounds=1, min_clients=2, round_timeout_s=600.0)
        frame = await ws.receive(timeout=30)
        assert frame.type is aiohttp.WSMsgType.BINARY  # the fit began
        await send(ws, FitResult(run_id, 1, 1, {}, [np.zeros(3, np.float32)]))
        error = await _next_text(ws)
        assert isinstance(error, Error) and error.code == "invalid_update"
        assert stuck.connected
        resp = await client.post(f"/api/runs/{run_id}/stop")
        assert (await resp.json())["status"] == "stopped"


async def test_shutting_down_with_a_send_pending_ends_cleanly(
    make_client: AppFactory,
) -> None:
    """A coordinator shutting down while a send is stuck ends in time, cleanly."""
    client = await make_client(send_timeout_s=5.0)
    async with _stuck(client) as stuck:
        run_id = await _launch(client, rounds=1, min_clients=1, round_timeout_s=600.0)
        await _until(_sending(client))
        await _stalled(stuck)
        assert stuck.connected and run_id
        await asyncio.wait_for(client.close(), 30)


async def test_a_shutdown_mid_round_leaves_the_run_to_resume(
    make_client: AppFactory, tmp_path: Path
) -> None:
    """Runs stop before sockets close: a client leaving does not fail the run."""
    client = await make_client()
    async with aiohttp.ClientSession() as session, session.ws_connect(
        client.make_url("/ws")
    ) as ws:
        await send(ws, Hello("silent", "i-1", 1, "synthetic"))
        await receive(ws)
        run_id = await _launch(
            client, rounds=1, min_clients=1, synthetic_params=10, round_timeout_s=600.0
        )
        assert isinstance(await receive(ws), Fit)
        reader = asyncio.create_task(_read_all(ws))
        await asyncio.wait_for(client.close(), 30)
        await reader
    store = Store(tmp_path / "state")
    run = store.get_run(run_id, with_rounds=False)
    store.close()
    assert run is not None and run.status == "running"


async def _read_all(ws: aiohttp.ClientWebSocketResponse) -> None:
    """Read (and ignore) what comes until the socket closes."""
    async for _ in ws:
        pass


class _GatedConn(ClientConn):
    """Records the states it was sent; a send of ``slow`` waits for ``gate``."""

    sent: list[str]
    gate: asyncio.Event
    answer = True

    async def send(self, parts: Any) -> bool:
        message = parse(parts[0])
        state = message.state if isinstance(message, Status) else message.type
        if state == "slow":
            await self.gate.wait()
        self.sent.append(state)
        return self.answer


def _gated(answer: bool = True) -> tuple[Registry, _GatedConn]:
    registry = Registry(EventHub())
    conn = _GatedConn(ClientId("a"), Hello("a", "i", 1, "synthetic"), None, "", 0, 0)
    conn.sent, conn.gate, conn.answer = [], asyncio.Event(), answer
    registry.add(conn)
    return registry, conn


async def test_a_clients_messages_leave_in_the_order_posted() -> None:
    """A message to a client waits until the one posted before it has left."""
    registry, conn = _gated()
    outbox = Outbox(registry, lambda *args: None)
    outbox.post((conn.client_id,), Status("slow"))
    outbox.post((conn.client_id,), Status("fast"))
    await asyncio.sleep(0.05)
    assert conn.sent == []
    conn.gate.set()
    await _until(lambda: outbox.pending == 0)
    assert conn.sent == ["slow", "fast"]


async def test_a_message_after_one_that_failed_is_not_sent() -> None:
    """Once a send to a client fails, its later messages fail without going out."""
    registry, conn = _gated(answer=False)
    outcomes: list[tuple[str, bool]] = []
    outbox = Outbox(registry, lambda cid, msg, ok: outcomes.append((msg.type, ok)))
    outbox.post((conn.client_id,), Status("first"))
    outbox.post((conn.client_id,), Error("invalid_update", "late"))
    await _until(lambda: outbox.pending == 0)
    assert conn.sent == ["first"]
    assert outcomes == [("status", False), ("error", False)]


async def test_a_new_connection_does_not_wait_for_the_old_ones_sends() -> None:
    """A client that reconnected is sent to at once, while its old socket is stuck."""
    registry, old = _gated()
    outbox = Outbox(registry, lambda *args: None)
    outbox.post((old.client_id,), Status("slow"))
    new = _GatedConn(old.client_id, old.hello, None, "", 0, 0)
    new.sent, new.gate = [], asyncio.Event()
    registry.add(new)
    outbox.post((new.client_id,), Status("fast"))
    await _until(lambda: outbox.pending == 1)
    assert (old.sent, new.sent) == ([], ["fast"])
    await outbox.close()


def test_send_timeout_s_must_be_positive() -> None:
    """A send deadline of zero is refused, naming the setting."""
    with pytest.raises(ConfigError) as caught:
        ServerSettings(send_timeout_s=0)
    assert "send_timeout_s" in caught.value.errors


async def test_a_client_back_on_a_new_socket_replaces_its_stuck_one_at_once(
    make_client: AppFactory,
) -> None:
    """The same instance saying hello again is welcomed while the old socket hangs."""
    client = await make_client(send_timeout_s=600.0)
    async with _stuck(client) as stuck:
        await _launch(client, rounds=1, min_clients=1, round_timeout_s=600.0)
        await _until(_sending(client))
        await _stalled(stuck)
        async with client.ws_connect("/ws") as again:
            await send(again, Hello("stuck", "i-1", 1, "synthetic"))
            welcome = await asyncio.wait_for(receive(again), 10)
        assert isinstance(welcome, Welcome) and not stuck.connected
