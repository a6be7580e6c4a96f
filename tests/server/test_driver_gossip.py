"""The run driver drives the gossip machine: eligibility, checkpoints, resume."""

from __future__ import annotations

import asyncio
from collections import Counter
from pathlib import Path
from typing import Any

import numpy as np

from fednet.config import RunConfig
from fednet.gossip import average_relay
from fednet.protocol import Error, Fit, FitResult, Hello, Message
from fednet.server.driver import RunDriver
from fednet.server.events import EventHub
from fednet.server.registry import ClientConn, Registry
from fednet.server.store import Store
from fednet.typing import ClientId

CONFIG = RunConfig(
    task="synthetic", synthetic_params=3, min_clients=3, rounds=4, mode="gossip",
    gossip_peers=2,
)


class _OpenSocket:
    closed = False


class _GossipOutbox:
    """Stands for the sender: each fit is averaged and answered as a client would."""

    def __init__(self, driver: RunDriver, registry: Registry) -> None:
        self.driver, self.registry = driver, registry
        self.fits: dict[ClientId, list[Fit]] = {}
        self.errors: list[tuple[ClientId, Error]] = []
        self.tasks: set[asyncio.Task[None]] = set()

    def post(self, recipients: tuple[ClientId, ...], message: Message) -> None:
        for client_id in recipients:
            if isinstance(message, Error):
                self.errors.append((client_id, message))
            if isinstance(message, Fit):
                self.fits.setdefault(client_id, []).append(message)
                task = asyncio.create_task(self._answer(client_id, message))
                self.tasks.add(task)
                task.add_done_callback(self.tasks.discard)

    async def _answer(self, client_id: ClientId, fit: Fit) -> None:
        await asyncio.sleep(0.01)
        conn = self.registry.get(client_id)
        assert conn is not None
        mean = average_relay(fit.parameters, fit.config.peer_models)
        offset = np.float32(ord(client_id))  # each client drifts its own way
        params = [p + offset for p in mean]
        result = FitResult(fit.run_id, fit.server_round, 1, {}, params)
        await self.driver.update_received(conn, result)

    async def close(self, *, cancel: bool) -> None:
        for task in list(self.tasks):
            task.cancel()


def _conn(name: str, capabilities: tuple[str, ...] = ("gossip",)) -> ClientConn:
    hello = Hello(name, f"i-{name}", 1, "synthetic", capabilities=capabilities)
    socket: Any = _OpenSocket()
    return ClientConn(ClientId(name), hello, socket, "test", 0.0, 0.0)


def _driver(
    store: Store, registry: Registry, run_id: int, completed: int
) -> tuple[RunDriver, _GossipOutbox]:
    driver = RunDriver(run_id, CONFIG, completed, store=store, registry=registry,
                       events=EventHub(), stats=Counter())
    outbox = _GossipOutbox(driver, registry)
    driver._outbox = outbox  # type: ignore[assignment]
    return driver, outbox


async def _rounds(store: Store, run_id: int, count: int) -> None:
    while True:
        run = store.get_run(run_id)
        if run is not None and (run.ended or len(run.rounds or ()) >= count):
            return
        await asyncio.sleep(0.01)


async def test_gossip_run_skips_an_earlier_release_and_checkpoints_replicas(
    tmp_path: Path,
) -> None:
    """A client without the gossip capability is told why; the others play 4 steps."""
    store, registry = Store(tmp_path), Registry(EventHub())
    for name in "abc":
        registry.add(_conn(name))
    registry.add(_conn("old", capabilities=()))
    run_id = store.create_run(CONFIG.to_dict(), 0.0)
    driver, outbox = _driver(store, registry, run_id, 0)
    driver.start()
    await asyncio.wait_for(_rounds(store, run_id, 10_000), 20)
    run = store.get_run(run_id)
    assert run is not None and run.status == "finished", run
    assert [r.server_round for r in run.rounds or ()] == [1, 2, 3, 4]
    assert all("consensus_distance" in r.fit_metrics for r in run.rounds or ())
    assert ClientId("old") not in outbox.fits
    ((who, error),) = [(c, e) for c, e in outbox.errors if e.code == "schema_mismatch"]
    assert who == "old" and "gossip capability" in error.message
    state = store.load_server_state(run_id, 4)
    assert state is not None and sorted(state["clients"].tolist()) == ["a", "b", "c"]
    store.close()


async def test_a_resumed_gossip_run_relays_the_checkpointed_models(
    tmp_path: Path,
) -> None:
    """Stopped after step 2 and resumed, the next step relays the saved models."""
    store, registry = Store(tmp_path), Registry(EventHub())
    for name in "abc":
        registry.add(_conn(name))
    run_id = store.create_run(CONFIG.to_dict(), 0.0)
    driver, _ = _driver(store, registry, run_id, 0)
    driver.start()
    await asyncio.wait_for(_rounds(store, run_id, 2), 20)
    await driver.shutdown()
    done = len(store.get_run(run_id).rounds or ())  # type: ignore[union-attr]
    saved = store.load_server_state(run_id, done)
    assert saved is not None
    again, outbox = _driver(store, registry, run_id, done)
    again.start()
    await asyncio.wait_for(_rounds(store, run_id, 10_000), 20)
    run = store.get_run(run_id)
    assert run is not None and run.status == "finished", run
    assert [r.server_round for r in run.rounds or ()] == [1, 2, 3, 4]
    names = saved["clients"].tolist()
    for client, fits in outbox.fits.items():
        assert fits[0].server_round == done + 1
        own = saved[f"m{names.index(client)}_0"]
        np.testing.assert_array_equal(fits[0].parameters[0], own)
    store.close()
