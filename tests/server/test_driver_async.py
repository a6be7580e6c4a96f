"""The run driver drives the FedBuff machine: newcomers join a busy run."""

from __future__ import annotations

import asyncio
from collections import Counter
from pathlib import Path
from typing import Any

import numpy as np

from fednet.config import RunConfig
from fednet.protocol import Fit, FitResult, Hello, Message
from fednet.server.driver import RunDriver
from fednet.server.events import EventHub
from fednet.server.registry import ClientConn, Registry
from fednet.server.store import Store
from fednet.typing import ClientId


class _OpenSocket:
    closed = False


class _AnsweringOutbox:
    """Stands for the sender: each fit is answered by its client after a delay."""

    def __init__(self, driver: RunDriver, registry: Registry) -> None:
        self.driver, self.registry = driver, registry
        self.fits: Counter[ClientId] = Counter()
        self.tasks: set[asyncio.Task[None]] = set()

    def post(self, recipients: tuple[ClientId, ...], message: Message) -> None:
        for client_id in recipients:
            if isinstance(message, Fit):
                self.fits[client_id] += 1
                task = asyncio.create_task(self._answer(client_id, message))
                self.tasks.add(task)
                task.add_done_callback(self.tasks.discard)

    async def _answer(self, client_id: ClientId, fit: Fit) -> None:
        await asyncio.sleep(0.02)
        conn = self.registry.get(client_id)
        assert conn is not None
        params = [p + np.float32(1.0) for p in fit.parameters]
        result = FitResult(fit.run_id, fit.server_round, 1, {}, params)
        await self.driver.update_received(conn, result)

    async def close(self, *, cancel: bool) -> None:
        for task in list(self.tasks):
            task.cancel()


def _conn(name: str) -> ClientConn:
    hello = Hello(name, f"i-{name}", 1, "synthetic")
    socket: Any = _OpenSocket()
    return ClientConn(ClientId(name), hello, socket, "test", 0.0, 0.0)


async def test_a_client_joining_a_busy_async_run_gets_work(tmp_path: Path) -> None:
    """The third client, joining after version 1, trains for the same run."""
    store, events = Store(tmp_path), EventHub()
    registry = Registry(events)
    for name in ("a", "b"):
        registry.add(_conn(name))
    config = RunConfig(
        task="synthetic", synthetic_params=3, min_clients=2, rounds=12,
        mode="async", buffer_size=2,
    )
    run_id = store.create_run(config.to_dict(), 0.0)
    driver = RunDriver(
        run_id, config, 0, store=store, registry=registry, events=events,
        stats=Counter(),
    )
    outbox = _AnsweringOutbox(driver, registry)
    driver._outbox = outbox  # type: ignore[assignment]
    driver.start()
    await asyncio.wait_for(_rounds(store, run_id, 1), 10)
    late = _conn("c")
    registry.add(late)
    driver.client_joined(late)
    await asyncio.wait_for(_rounds(store, run_id, 10_000), 20)  # until it ends
    run = store.get_run(run_id)
    assert run is not None and run.status == "finished", run
    assert run.rounds is not None
    assert [r.server_round for r in run.rounds] == list(range(1, 13))
    assert outbox.fits[ClientId("c")] >= 1
    assert any("c" in r.clients for r in run.rounds)
    store.close()


async def _rounds(store: Store, run_id: int, count: int) -> None:
    while True:
        run = store.get_run(run_id)
        if run is not None and (run.ended or len(run.rounds or ()) >= count):
            return
        await asyncio.sleep(0.01)
