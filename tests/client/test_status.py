"""The client's status server: liveness on /healthz, readiness on /readyz."""

from __future__ import annotations

import asyncio

from pytest_aiohttp import AiohttpClient

from fednet.client.status import create_status_app
from fednet.protocol import Hello
from tests.client.conftest import (
    Peer,
    RunnerFactory,
    ScriptServer,
    make_runner,
    wait_until,
)


async def test_readyz_is_503_and_healthz_200_before_the_coordinator_welcomes(
    coordinator: ScriptServer,
    start_runner: RunnerFactory,
    aiohttp_client: AiohttpClient,
) -> None:
    """Dialled but not welcomed yet: alive (200) but not ready (503)."""
    hello_seen = asyncio.Event()
    release = asyncio.Event()

    async def script(peer: Peer) -> None:
        await peer.expect(Hello)
        hello_seen.set()
        await release.wait()

    server = await coordinator(script)
    runner = start_runner(server.url)
    client = await aiohttp_client(create_status_app(runner, "synthetic"))
    await asyncio.wait_for(hello_seen.wait(), 5)

    ready = await client.get("/readyz")
    alive = await client.get("/healthz")
    release.set()

    assert ready.status == 503
    assert (await ready.json())["connected"] is False
    assert alive.status == 200
    assert (await alive.json())["connected"] is False


async def test_readyz_is_200_once_welcomed(
    coordinator: ScriptServer,
    start_runner: RunnerFactory,
    aiohttp_client: AiohttpClient,
) -> None:
    """After the welcome, /readyz answers 200 with connected true."""

    async def script(peer: Peer) -> None:
        await peer.welcome(client_id="c-5")
        await peer.hold()

    server = await coordinator(script)
    runner = start_runner(server.url)
    client = await aiohttp_client(create_status_app(runner, "synthetic"))
    await wait_until(lambda: runner.state.client_id == "c-5")

    response = await client.get("/readyz")

    assert response.status == 200
    body = await response.json()
    assert body["connected"] is True
    assert body["client_id"] == "c-5"


async def test_readyz_falls_back_to_503_when_the_coordinator_goes_away(
    coordinator: ScriptServer,
    start_runner: RunnerFactory,
    aiohttp_client: AiohttpClient,
) -> None:
    """A closed socket makes the client unready until it is welcomed again."""
    closing = asyncio.Event()

    async def script(peer: Peer) -> None:
        await peer.welcome()
        await closing.wait()

    server = await coordinator(script)
    runner = start_runner(server.url)
    client = await aiohttp_client(create_status_app(runner, "synthetic"))
    await wait_until(lambda: runner.state.connected_since is not None)
    assert (await client.get("/readyz")).status == 200

    closing.set()
    await wait_until(lambda: runner.state.connected_since is None)

    assert (await client.get("/readyz")).status == 503
    assert (await client.get("/healthz")).status == 200


async def test_readyz_is_503_while_the_coordinator_is_unreachable(
    unused_tcp_port: int, aiohttp_client: AiohttpClient
) -> None:
    """No coordinator at all: the client never reports ready."""
    runner = make_runner(f"ws://127.0.0.1:{unused_tcp_port}/ws")
    task = asyncio.create_task(runner.run())
    try:
        client = await aiohttp_client(create_status_app(runner, "synthetic"))
        await wait_until(lambda: runner.state.last_error is not None)

        response = await client.get("/readyz")

        assert response.status == 503
    finally:
        task.cancel()
        await asyncio.gather(task, return_exceptions=True)
