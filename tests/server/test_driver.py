"""The run driver against a scripted machine: what it sends, records and ends with."""

from __future__ import annotations

import asyncio
from collections import Counter
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import numpy as np
import pytest

from fednet.config import RunConfig
from fednet.machine import Fold, MachineOutputs, MachineProgress, Wait
from fednet.protocol import EvaluateResult, FitResult, Hello, Status
from fednet.records import RoundFinished, RoundRecord, RunFinished
from fednet.server import driver as driver_module
from fednet.server.driver import RunDriver
from fednet.server.events import EventHub
from fednet.server.registry import ClientConn, Registry
from fednet.server.store import Store
from fednet.typing import ClientId

SITE = ClientId("site")


class _OpenSocket:
    closed = False


class _ScriptedMachine(MachineOutputs):
    """Wants one client, sends it a status, ends the run on its evaluate_result."""

    def __init__(self) -> None:
        super().__init__()
        self.done = False
        self.clients_wanted = 1
        self.wait: Wait | None = None

    def clients_available(self, available: Sequence[ClientId]) -> None:
        self.clients_wanted = 0
        self.wait = Wait("scripted", 30.0)
        self._send(tuple(available), Status("idle"))

    def evaluate_received(self, client_id: ClientId, result: EvaluateResult) -> None:
        record = RoundRecord(
            server_round=1, clients=(client_id,), num_examples=1, fit_metrics={},
            federated_loss=None, federated_accuracy=None, evaluated_clients=(),
            test_loss=None, test_accuracy=None, dropped=(), rejected={},
            client_metrics={},
        )
        self._record(RoundFinished(record, [np.ones(3, np.float32)]))
        self._record(RunFinished())
        self.done, self.wait = True, None

    def accept_update(self, client_id: ClientId, result: FitResult) -> Fold | None:
        return None

    def update_folded(self, fold: Fold) -> None:
        """Never called: no update is accepted."""

    def client_left(self, client_id: ClientId) -> None:
        """Nothing to drop."""

    def timed_out(self) -> None:
        """Never waits long enough to time out in these tests."""

    def fail(self, reason: str) -> None:
        """Not used."""

    def progress(self) -> MachineProgress:
        return MachineProgress("scripted", 1, (), (), ())


class _AnsweringConn(ClientConn):
    """A client that answers the first message with an evaluate_result, at once."""

    driver: RunDriver | None = None

    async def send(self, parts: Sequence[Any]) -> bool:
        assert self.driver is not None
        self.driver.evaluate_received(self, EvaluateResult(1, 1, 1, 0.5, {}))
        await asyncio.sleep(0)
        return True


async def test_the_last_round_closing_during_a_send_is_still_recorded(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """An input that ends the run while the driver sends is recorded: finished."""
    machine = _ScriptedMachine()
    monkeypatch.setattr(driver_module, "build_machine", lambda *args: machine)
    store, events = Store(tmp_path), EventHub()
    registry = Registry(events)
    hello = Hello("site", "i-1", 1, "synthetic")
    socket: Any = _OpenSocket()
    conn = _AnsweringConn(SITE, hello, socket, "test", 0.0, 0.0)
    registry.add(conn)
    config = RunConfig(task="synthetic", min_clients=1, rounds=1, synthetic_params=3)
    run_id = store.create_run(config.to_dict(), 0.0)
    driver = RunDriver(
        run_id, config, 0, store=store, registry=registry, events=events,
        stats=Counter(),
    )
    conn.driver = driver
    driver.start()
    await asyncio.wait_for(_ended(store, run_id), 10)
    run = store.get_run(run_id)
    assert run is not None and (run.status, run.error) == ("finished", None)
    assert run.rounds is not None and [r.server_round for r in run.rounds] == [1]
    store.close()


async def _ended(store: Store, run_id: int) -> None:
    while (run := store.get_run(run_id, with_rounds=False)) is None or not run.ended:
        await asyncio.sleep(0.01)
