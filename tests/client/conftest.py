"""Fixtures: a scripted coordinator on a test server, and runners dialing it."""

from __future__ import annotations

import asyncio
import random
from collections.abc import AsyncIterator, Awaitable, Callable, Sequence
from typing import Any, TypeVar

import aiohttp
import numpy as np
import pytest
from aiohttp import web
from pytest_aiohttp import AiohttpServer

from fednet.client.runner import ClientRunner
from fednet.client.trainer import Trainer
from fednet.settings import ClientSettings
from fednet.fitconfig import FitConfig
from fednet.protocol import (
    DEFAULT_PART_BYTES,
    Hello,
    Message,
    Status,
    Welcome,
    serialize_parts,
)
from fednet.reader import MessageReader
from fednet.typing import NDArrays

TIMEOUT = 5.0
CLIENT_NUMBER = 3
# fednet.client.trainer: the synthetic task adds 1e-3 * client_number.
OFFSET = np.float32(1e-3 * CLIENT_NUMBER)

M = TypeVar("M", bound=Message)


def fit_config(server_round: int = 1) -> FitConfig:
    """Return the config of a synthetic run's fit or evaluate."""
    return FitConfig(
        server_round=server_round,
        task="synthetic",
        model="logreg",
        local_epochs=1,
        batch_size=32,
        learning_rate=0.1,
        seed=0,
        hidden_units=16,
    )


def params(size: int = 4) -> NDArrays:
    """Return a global model of ``size`` distinct float32 values."""
    return [np.arange(size, dtype=np.float32)]


def assert_trained(result: NDArrays, model: NDArrays) -> None:
    """Check that ``result`` is ``model`` after one synthetic fit."""
    assert len(result) == len(model)
    for got, sent in zip(result, model):
        np.testing.assert_allclose(
            np.asarray(got, np.float32), np.asarray(sent, np.float32) + OFFSET
        )


class Peer:
    """The coordinator's side of one client socket, as a script drives it."""

    def __init__(self, ws: web.WebSocketResponse) -> None:
        self.ws = ws
        self.reader = MessageReader()

    async def send(
        self, message: Message, part_bytes: int = DEFAULT_PART_BYTES
    ) -> None:
        """Send a message in the parts a coordinator would use."""
        for part in serialize_parts(message, part_bytes):
            if isinstance(part, str):
                await self.ws.send_str(part)
            else:
                await self.ws.send_bytes(bytes(part))

    async def receive_frame(self, timeout: float = TIMEOUT) -> aiohttp.WSMessage:
        """Return the next text or binary WebSocket message."""
        frame = await self.ws.receive(timeout=timeout)
        assert frame.type in (aiohttp.WSMsgType.TEXT, aiohttp.WSMsgType.BINARY), frame
        return frame

    async def receive(self, timeout: float = TIMEOUT) -> Message:
        """Return the next complete message, joining multi-part frames."""
        while True:
            message = self.reader.feed((await self.receive_frame(timeout)).data)
            if message is not None:
                return message

    async def expect(self, cls: type[M], timeout: float = TIMEOUT) -> M:
        """Receive the next message and check it is a ``cls``."""
        message = await self.receive(timeout)
        assert isinstance(message, cls), message
        return message

    async def expect_status(self, state: str) -> None:
        """Receive the next message and check it is ``status`` ``state``."""
        assert await self.expect(Status) == Status(state)

    async def welcome(self, **fields: Any) -> Hello:
        """Take the client's hello and welcome it (no keepalive unless asked)."""
        hello = await self.expect(Hello)
        await self.send(Welcome(**{"client_id": "c-1", "heartbeat_s": 60.0, **fields}))
        return hello

    async def hold(self) -> None:
        """Keep the socket open until the client closes it."""
        async for _ in self.ws:
            pass


Script = Callable[[Peer], Awaitable[None]]


class ScriptedCoordinator:
    """A ``/ws`` endpoint that plays the n-th script on the n-th connection.

    Connections beyond the scripts are held open without a word. A script
    that fails fails the test at teardown, or when the test awaits it.
    """

    def __init__(self, scripts: Sequence[Script]) -> None:
        self.scripts = list(scripts)
        loop = asyncio.get_running_loop()
        self.done = [loop.create_future() for _ in self.scripts]
        self.awaited: set[int] = set()
        self.connections = 0
        self.url = ""

    async def handle(self, request: web.Request) -> web.WebSocketResponse:
        """Play the next script on this connection, then close it."""
        ws = web.WebSocketResponse()
        await ws.prepare(request)
        index, self.connections = self.connections, self.connections + 1
        if index >= len(self.scripts):
            await Peer(ws).hold()
            return ws
        try:
            await self.scripts[index](Peer(ws))
        except Exception as e:
            self.done[index].set_exception(e)
        else:
            self.done[index].set_result(None)
        finally:
            await ws.close()
        return ws

    async def finished(self, index: int = 0) -> None:
        """Wait for script ``index`` to end; raise what it raised."""
        self.awaited.add(index)
        await asyncio.wait_for(asyncio.shield(self.done[index]), TIMEOUT)


ScriptServer = Callable[..., Awaitable[ScriptedCoordinator]]
RunnerFactory = Callable[..., ClientRunner]


@pytest.fixture
async def coordinator(
    aiohttp_server: AiohttpServer,
) -> AsyncIterator[ScriptServer]:
    """Return a factory of scripted coordinators listening on a free port."""
    started: list[ScriptedCoordinator] = []

    async def start(*scripts: Script) -> ScriptedCoordinator:
        scripted = ScriptedCoordinator(scripts)
        app = web.Application()
        app.router.add_get("/ws", scripted.handle)
        server = await aiohttp_server(app)
        scripted.url = str(server.make_url("/ws")).replace("http://", "ws://")
        started.append(scripted)
        return scripted

    yield start
    for scripted in started:
        for index, done in enumerate(scripted.done):
            if not done.done():
                done.cancel()
            elif index not in scripted.awaited:
                done.result()


@pytest.fixture
async def start_runner(coordinator: ScriptServer) -> AsyncIterator[RunnerFactory]:
    """Return a factory of runners running in tasks, cancelled at teardown.

    It asks for ``coordinator`` only to be torn down first.
    """
    tasks: list[asyncio.Task[None]] = []

    def start(url: str, **settings: Any) -> ClientRunner:
        runner = make_runner(url, **settings)
        tasks.append(asyncio.create_task(runner.run()))
        return runner

    yield start
    for task in tasks:
        task.cancel()
    await asyncio.gather(*tasks, return_exceptions=True)


def make_runner(url: str, **settings: Any) -> ClientRunner:
    """Return a synthetic-task runner that retries fast, for ``url``."""
    options: dict[str, Any] = {
        "server": url,
        "name": "site-3",
        "dataset": "synthetic",
        "partition": (CLIENT_NUMBER, CLIENT_NUMBER),
        "backoff_initial_s": 0.01,
        "backoff_max_s": 0.05,
    }
    options.update(settings)
    trainer = Trainer(None, client_number=CLIENT_NUMBER)
    return ClientRunner(ClientSettings(**options), trainer, random.Random(0))


async def wait_until(condition: Callable[[], bool], timeout: float = TIMEOUT) -> None:
    """Poll ``condition`` until it holds; fail after ``timeout`` seconds."""
    async with asyncio.timeout(timeout):
        while not condition():
            await asyncio.sleep(0.01)
