"""Gossip mode with real processes: label-skewed sites reach consensus; a resume."""

from __future__ import annotations

import re
import signal
from typing import Any

import pytest

from tests.e2e.conftest import Cluster, Process, Server

pytestmark = [pytest.mark.e2e, pytest.mark.timeout(300)]

COMMON = {
    "task": "digits",
    "model": "logreg",
    "min_clients": 4,
    "local_epochs": 2,
    "batch_size": 16,
    "learning_rate": 0.1,
    "seed": 3,
    "round_timeout_s": 60.0,
}
GOSSIP = {**COMMON, "mode": "gossip", "gossip_peers": 2}
STEPS = 20
EIGHT = 8


def _sites(cluster: Cluster, server: Server, count: int = 4) -> list[Process]:
    """Start ``count`` digits clients with Dirichlet(0.5) label skew; wait for them."""
    procs = [
        cluster.client(
            server, f"site-{i}", "--dataset", "digits", "--partition",
            f"{i}/{count}", "--alpha", "0.5", "--seed", "0",
        )
        for i in range(1, count + 1)
    ]
    server.wait_for_clients(count, procs)
    return procs


def _distances(run: dict[str, Any]) -> list[float]:
    return [r["fit_metrics"]["consensus_distance"] for r in run["rounds"]]


def test_gossip_reaches_consensus_and_fedavg_accuracy(cluster: Cluster) -> None:
    """8 skewed sites, k = 2, 20 steps: distance falls; the mean is near FedAvg's.

    FedAvg runs the same seeded local work (20 rounds of 2 epochs) on the
    same sites for comparison.
    """
    server = cluster.server()
    _sites(cluster, server, EIGHT)
    run_id = server.api.launch(**{**GOSSIP, "min_clients": EIGHT}, rounds=STEPS)
    run = server.wait_for_run(run_id)
    assert run["status"] == "finished", run["error"]
    assert [r["server_round"] for r in run["rounds"]] == list(range(1, STEPS + 1))
    assert all(len(r["clients"]) == EIGHT for r in run["rounds"])
    distances = _distances(run)
    early, late = sum(distances[:3]) / 3, sum(distances[-3:]) / 3
    sync_id = server.api.launch(**{**COMMON, "min_clients": EIGHT}, rounds=STEPS)
    sync = server.wait_for_run(sync_id)
    assert sync["status"] == "finished", sync["error"]
    gossip_acc = run["rounds"][-1]["test_accuracy"]
    sync_acc = sync["rounds"][-1]["test_accuracy"]
    print(f"gossip accuracy {gossip_acc:.4f} (FedAvg {sync_acc:.4f}); consensus"
          f" distance {', '.join(f'{d:.3f}' for d in distances)}")
    assert late < early, distances
    assert gossip_acc >= sync_acc - 0.03, (gossip_acc, sync_acc)


def test_gossip_run_resumes_after_kill_9_from_the_recorded_step(
    cluster: Cluster,
) -> None:
    """A coordinator killed mid-run resumes from its last step and its models."""
    server = cluster.server()
    _sites(cluster, server)
    run_id = server.api.launch(**GOSSIP, rounds=14)
    server.wait_for(
        lambda: len(server.api.run(run_id)["rounds"]) >= 3, "step 3 recorded"
    )
    server.process.kill(signal.SIGKILL)
    again = cluster.restart(server)
    run = again.wait_for_run(run_id)
    assert run["status"] == "finished", run["error"]
    output = again.process.output()
    resumed = re.search(rf"resuming run {run_id} after round (\d+)", output)
    assert resumed is not None, "the restarted server did not resume the run"
    assert 3 <= int(resumed[1]) < 14
    assert [r["server_round"] for r in run["rounds"]] == list(range(1, 15))
    first = re.search(r"fit: step (\d+) of run", output)
    assert first is not None and int(first[1]) == int(resumed[1]) + 1
    assert run["rounds"][-1]["test_accuracy"] > 0.8
