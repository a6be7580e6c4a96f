"""FedAdam's server state survives ``kill -9``: the resumed run ends bit-identical."""

from __future__ import annotations

import re
import signal
from typing import Any

import numpy as np
import pytest

pytestmark = [pytest.mark.e2e, pytest.mark.timeout(180)]

ROUNDS = 4
# Minibatches of one make a round last long enough to pause the clients
# (SIGSTOP) after round 2 is recorded and before the run ends.
SEEDED_RUN = {
    "task": "digits",
    "model": "logreg",
    "strategy": "fedadam",
    "rounds": ROUNDS,
    "min_clients": 3,
    "local_epochs": 5,
    "batch_size": 1,
    "learning_rate": 0.01,
    "seed": 7,
    "round_timeout_s": 60.0,
}


def _history(run: dict[str, Any]) -> list[tuple[Any, ...]]:
    """Return what each round's model scored on the coordinator's test set.

    Not the federated metrics: their running mean follows the order in which
    evaluations arrive, which differs between runs in the last bits.
    """
    return [
        (r["server_round"], sorted(r["clients"]), r["num_examples"], r["test_loss"],
         r["test_accuracy"])
        for r in run["rounds"]
    ]


def test_fedadam_killed_and_resumed_ends_bit_identical(cluster: Any) -> None:
    """Two fresh coordinators play the same seeded FedAdam run side by side.

    The second is killed with SIGKILL once round 2 is recorded, then started
    again on its state dir: it resumes from the checkpointed model and
    moments, and its final model is the uninterrupted run's, bit for bit.
    """
    tmp = cluster.tmp_path
    straight = cluster.server(state_dir=tmp / "straight")
    crashed = cluster.server(state_dir=tmp / "crashed")
    cluster.digits_clients(straight, 3)
    clients = cluster.digits_clients(crashed, 3)
    straight_id = straight.api.launch(**SEEDED_RUN)
    crashed_id = crashed.api.launch(**SEEDED_RUN)

    crashed.wait_for(
        lambda: len(crashed.api.run(crashed_id)["rounds"]) >= 2, "round 2 recorded"
    )
    for client in clients:
        client.pause()
    state_files = sorted(p.name for p in (tmp / "crashed" / "models").iterdir())
    crashed.process.kill(signal.SIGKILL)
    again = cluster.restart(crashed)
    for client in clients:
        client.resume()
    resumed_run = again.wait_for_run(crashed_id)
    straight_run = straight.wait_for_run(straight_id)

    assert straight_run["status"] == resumed_run["status"] == "finished"
    resumed = re.search(
        rf"resuming run {crashed_id} after round (\d+)", again.process.output()
    )
    assert resumed is not None, "the restarted server did not resume the run"
    assert 2 <= int(resumed[1]) < ROUNDS
    # Each recorded round left its model and FedAdam's moments side by side.
    assert any(name.endswith(".state.npz") for name in state_files), state_files
    assert _history(resumed_run) == _history(straight_run)
    expected, got = straight.api.model(straight_id), again.api.model(crashed_id)
    assert len(got) == len(expected) == 2
    for a, b in zip(expected, got):
        assert a.dtype == b.dtype == np.float32
        assert np.array_equal(a, b), "the resumed model differs from the straight one"
    final = sorted(p.name for p in (tmp / "crashed" / "models").iterdir())
    best = [name for name in final if name.startswith(f"run-{crashed_id}-best-")]
    assert len(best) == 1, final  # the most accurate round's model, kept too
    assert sorted(set(final) - set(best)) == [
        f"run-{crashed_id}-round-{ROUNDS}.npz",
        f"run-{crashed_id}-round-{ROUNDS}.state.npz",
    ]
