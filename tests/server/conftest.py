"""Fixtures: a coordinator app on a temp state dir, and protocol helpers."""

from __future__ import annotations

from collections.abc import Awaitable, Callable
from pathlib import Path
from typing import Any

import aiohttp
import pytest
from aiohttp import web
from aiohttp.test_utils import TestClient

from fednet.settings import ServerSettings
from fednet.learning.datasets import load_builtin_test
from fednet.protocol import Hello, Message, parse, serialize
from fednet.server.app import create_app
from fednet.views import RoundView, RunView

AppFactory = Callable[..., Awaitable[TestClient[Any, web.Application]]]


@pytest.fixture
def make_client(aiohttp_client: Any, tmp_path: Path) -> AppFactory:
    """Return a factory of test clients for apps built with given settings."""

    async def make(**settings: Any) -> TestClient[Any, web.Application]:
        options: dict[str, Any] = {"state_dir": tmp_path / "state", "heartbeat_s": 5.0}
        options.update(settings)
        client: TestClient[Any, web.Application] = await aiohttp_client(
            create_app(ServerSettings(**options))
        )
        return client

    return make


async def send(ws: aiohttp.ClientWebSocketResponse, message: Message) -> None:
    """Send a protocol message on a raw client socket."""
    frame = serialize(message)
    if isinstance(frame, str):
        await ws.send_str(frame)
    else:
        await ws.send_bytes(bytes(frame))


async def receive(ws: aiohttp.ClientWebSocketResponse, timeout: float = 10) -> Message:
    """Receive and parse the next protocol message, skipping nothing."""
    frame = await ws.receive(timeout=timeout)
    assert frame.type in (aiohttp.WSMsgType.TEXT, aiohttp.WSMsgType.BINARY), frame
    return parse(frame.data)


def hello(name: str = "site-a", instance: str = "i-1") -> Hello:
    """Return a hello as a built-in digits client would send it."""
    schema = load_builtin_test("digits")[2].to_dict()
    return Hello(name, instance, 100, "digits", schema)


def round_view(server_round: int = 1, **fields: Any) -> RoundView:
    """Return a recorded round with neutral values, overridden by ``fields``."""
    values: dict[str, Any] = {
        "server_round": server_round,
        "num_clients": 0,
        "num_examples": 0,
        "loss": None,
        "accuracy": None,
        "federated_loss": None,
        "federated_accuracy": None,
        "test_loss": None,
        "test_accuracy": None,
        "duration_s": 0.0,
        "finished_at": 0.0,
        "clients": (),
        "fit_metrics": {},
        "evaluated_clients": (),
        "dropped": (),
        "rejected": {},
        "client_metrics": {},
    }
    return RoundView(**{**values, **fields})


def run_view(run_id: int, status: str) -> RunView:
    """Return a run of the given status with neutral values."""
    return RunView(
        id=run_id,
        status=status,
        config={},
        schema=None,
        error=None,
        created_at=0.0,
        started_at=None,
        finished_at=None,
        completed_rounds=0,
    )
