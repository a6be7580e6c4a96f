"""The client WebSocket: hello, refusals, malformed frames, a whole run."""

from __future__ import annotations

import asyncio
import io
import random

import aiohttp
import numpy as np

from fednet.client.runner import ClientRunner
from fednet.client.trainer import Trainer
from fednet.settings import ClientSettings
from fednet.learning.datasets import load_builtin_partition
from fednet.protocol import Error, Fit, FitResult, Hello, Status, Welcome
from fednet.rounds import ROUND_ATTEMPTS
from tests.server.conftest import AppFactory, hello, receive, send


async def test_hello_gets_welcome_and_the_client_is_listed(
    make_client: AppFactory,
) -> None:
    """A client that says hello is welcomed and shows up in /api/clients."""
    client = await make_client()
    async with client.ws_connect("/ws") as ws:
        await send(ws, hello("site-a"))
        welcome = await receive(ws)
        assert isinstance(welcome, Welcome) and welcome.client_id == "site-a"
        clients = await (await client.get("/api/clients")).json()
        assert [(c["name"], c["status"], c["num_examples"]) for c in clients] == [
            ("site-a", "idle", 100)
        ]
        await send(ws, Status("training"))
        await asyncio.sleep(0.05)
        clients = await (await client.get("/api/clients")).json()
        assert clients[0]["status"] == "training"
    await asyncio.sleep(0.05)
    clients = await (await client.get("/api/clients")).json()
    assert clients[0]["status"] == "disconnected"


async def test_first_message_must_be_hello(make_client: AppFactory) -> None:
    """Anything before hello is refused and the socket closed with 1008."""
    client = await make_client()
    async with client.ws_connect("/ws") as ws:
        await send(ws, Status("idle"))
        error = await receive(ws)
        assert isinstance(error, Error) and error.code == "hello_required"
        closing = await ws.receive()
        assert closing.type is aiohttp.WSMsgType.CLOSE and closing.data == 1008


async def test_wrong_protocol_version_is_refused(make_client: AppFactory) -> None:
    """A client speaking another protocol version is told so."""
    client = await make_client()
    async with client.ws_connect("/ws") as ws:
        await send(ws, Hello("a", "i", 1, "digits", protocol_version=99))
        error = await receive(ws)
        assert isinstance(error, Error) and "protocol 1" in error.message


async def test_malformed_frames_get_errors_and_the_socket_stays_open(
    make_client: AppFactory,
) -> None:
    """Garbage text and binary frames are answered with error; serving goes on."""
    client = await make_client()
    async with client.ws_connect("/ws") as ws:
        await send(ws, hello())
        await receive(ws)
        await ws.send_str("{not json")
        await ws.send_bytes(b"\x00\x00\x00\x05{}")
        for _ in range(2):
            error = await receive(ws)
            assert isinstance(error, Error) and error.code == "protocol_error"
        await send(ws, Status("idle"))
        status = await (await client.get("/api/status")).json()
        assert status["clients_connected"] == 1
        assert status["stats"]["rejected:protocol_error"] == 2


async def test_join_token_is_required_when_set(make_client: AppFactory) -> None:
    """Without the bearer join token the upgrade is refused with 401."""
    client = await make_client(join_token="tok")
    try:
        await client.ws_connect("/ws")
        raise AssertionError("connected without a token")
    except aiohttp.WSServerHandshakeError as e:
        assert e.status == 401
    async with client.ws_connect("/ws", headers={"Authorization": "Bearer tok"}) as ws:
        await send(ws, hello())
        assert isinstance(await receive(ws), Welcome)


async def test_same_name_from_another_process_is_refused(
    make_client: AppFactory,
) -> None:
    """Two live clients cannot share a name; the same process may reconnect."""
    client = await make_client()
    async with client.ws_connect("/ws") as first:
        await send(first, hello("site-a", instance="one"))
        await receive(first)
        async with client.ws_connect("/ws") as second:
            await send(second, hello("site-a", instance="two"))
            error = await receive(second)
            assert isinstance(error, Error) and error.code == "name_in_use"
        async with client.ws_connect("/ws") as again:
            await send(again, hello("site-a", instance="one"))
            assert isinstance(await receive(again), Welcome)


async def test_wrong_shaped_updates_get_errors_and_never_touch_the_model(
    make_client: AppFactory,
) -> None:
    """Each bad update gets invalid_update; the round is replayed, then the run fails.

    The model is untouched all along.
    """
    client = await make_client()
    run_id = (
        await (
            await client.post("/api/runs", json={"min_clients": 1, "rounds": 1})
        ).json()
    )["id"]
    async with client.ws_connect("/ws") as ws:
        await send(ws, hello())
        await receive(ws)
        for _ in range(ROUND_ATTEMPTS):
            fit = await receive(ws)
            assert isinstance(fit, Fit) and fit.run_id == run_id
            assert fit.server_round == 1
            before = [p.copy() for p in fit.parameters]
            bad = [np.zeros((2, 2), np.float32)]
            await send(ws, FitResult(run_id, 1, 10, {}, bad))
            error = await receive(ws)
            assert isinstance(error, Error) and error.code == "invalid_update"
        for _ in range(100):
            run = await (await client.get(f"/api/runs/{run_id}")).json()
            if run["status"] == "failed":
                break
            await asyncio.sleep(0.05)
    assert run["status"] == "failed", run
    assert f"min_clients is 1 ({ROUND_ATTEMPTS} attempts)" in run["error"]
    model = await (await client.get(f"/api/runs/{run_id}/model")).read()
    with np.load(io.BytesIO(model)) as saved:
        for i, p in enumerate(before):
            np.testing.assert_array_equal(saved[f"arr_{i}"], p)


async def test_two_real_clients_finish_a_digits_run(make_client: AppFactory) -> None:
    """ClientRunners over real sockets train 3 rounds; history and model are kept."""
    client = await make_client()
    url = str(client.make_url("/ws")).replace("http://", "ws://")
    runners = []
    for i in (1, 2):
        settings = ClientSettings(
            server=url, name=f"site-{i}", dataset="digits", partition=(i, 2), alpha=0.5
        )
        data = load_builtin_partition("digits", (i, 2), alpha=0.5, seed=0)
        runners.append(
            ClientRunner(settings, Trainer(data, client_number=i), random.Random(i))
        )
    tasks = [asyncio.create_task(r.run()) for r in runners]
    try:
        body = {"rounds": 3, "local_epochs": 3, "min_clients": 2}
        run_id = (await (await client.post("/api/runs", json=body)).json())["id"]
        for _ in range(400):
            run = await (await client.get(f"/api/runs/{run_id}")).json()
            if run["status"] not in ("queued", "running"):
                break
            await asyncio.sleep(0.05)
    finally:
        for task in tasks:
            task.cancel()
        await asyncio.gather(*tasks, return_exceptions=True)
    assert run["status"] == "finished", run
    assert [r["server_round"] for r in run["rounds"]] == [1, 2, 3]
    assert all(r["clients"] == ["site-1", "site-2"] for r in run["rounds"])
    assert run["rounds"][-1]["accuracy"] > 0.8
    assert run["rounds"][-1]["federated_accuracy"] is not None
    model = await (await client.get(f"/api/runs/{run_id}/model")).read()
    with np.load(io.BytesIO(model)) as saved:
        assert [saved[k].shape for k in saved.files] == [(64, 10), (10,)]


async def test_idle_client_stays_recently_seen(make_client: AppFactory) -> None:
    """A connected client repeats its status each heartbeat: last_seen advances."""
    client = await make_client(heartbeat_s=0.2)
    url = str(client.make_url("/ws")).replace("http://", "ws://")
    settings = ClientSettings(server=url, name="quiet", dataset="synthetic")
    runner = ClientRunner(settings, Trainer(None), random.Random(0))
    task = asyncio.create_task(runner.run())
    try:
        for _ in range(100):
            clients = await (await client.get("/api/clients")).json()
            if clients:
                break
            await asyncio.sleep(0.02)
        first = clients[0]["last_seen"]
        await asyncio.sleep(0.7)
        clients = await (await client.get("/api/clients")).json()
    finally:
        task.cancel()
        await asyncio.gather(task, return_exceptions=True)
    assert clients[0]["status"] == "idle"
    assert clients[0]["last_seen"] - first >= 0.3
