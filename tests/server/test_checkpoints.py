"""Checkpoint files: the latest round's model, and the best one kept beside it."""

from __future__ import annotations

from pathlib import Path

import numpy as np

from fednet.records import RoundFinished, RoundRecord
from fednet.server.events import EventHub
from fednet.server.recorder import RunRecorder
from fednet.server.registry import Registry
from fednet.server.store import Store
from fednet.typing import ClientId


def _finished(server_round: int, accuracy: float | None) -> RoundFinished:
    record = RoundRecord(
        server_round=server_round, clients=(ClientId("a"),), num_examples=10,
        fit_metrics={}, federated_loss=0.5, federated_accuracy=accuracy,
        evaluated_clients=(), test_loss=None, test_accuracy=None, dropped=(),
        rejected={}, client_metrics={},
    )
    return RoundFinished(record, [np.full(3, server_round, dtype=np.float32)])


def _recorder(store: Store, run_id: int) -> RunRecorder:
    events = EventHub()
    return RunRecorder(run_id, store, Registry(events), events)


async def test_the_best_round_is_kept_through_pruning_and_a_restart(
    tmp_path: Path,
) -> None:
    """Accuracy 0.5, 0.7, 0.6 keeps round 2; a resumed run only replaces it by 0.8."""
    store = Store(tmp_path)
    run_id = store.create_run({}, 0.0)
    recorder = _recorder(store, run_id)
    for server_round, accuracy in ((1, 0.5), (2, 0.7), (3, 0.6)):
        await recorder.round_finished(_finished(server_round, accuracy), 0.1)

    best = store.best_model_path(run_id, 2)
    assert best is not None
    assert store.load_model(run_id, 2) is None  # pruned, the best survives
    with np.load(best) as data:
        np.testing.assert_array_equal(data["arr_0"], [2, 2, 2])

    resumed = _recorder(store, run_id)  # reads the best recorded so far
    await resumed.round_finished(_finished(4, 0.7), 0.1)  # a tie: keeps round 2
    assert store.best_model_path(run_id, 2) is not None
    await resumed.round_finished(_finished(5, 0.8), 0.1)
    assert store.best_model_path(run_id, 5) is not None
    assert store.best_model_path(run_id, 2) is None
    names = sorted(p.name for p in store.models_dir.glob(f"run-{run_id}-*"))
    assert names == [f"run-{run_id}-best-5.npz", f"run-{run_id}-round-5.npz"]


async def test_rounds_without_accuracy_keep_no_best(tmp_path: Path) -> None:
    store = Store(tmp_path)
    run_id = store.create_run({}, 0.0)
    await _recorder(store, run_id).round_finished(_finished(1, None), 0.1)

    assert not list(store.models_dir.glob("*best*"))
