"""Failures mid-run: a client killed, the coordinator killed with SIGKILL."""

from __future__ import annotations

import re
import signal
from typing import Any

import pytest

pytestmark = [pytest.mark.e2e, pytest.mark.timeout(180)]

# Minibatches of one make rounds last a fraction of a second; the clients are
# also paused (SIGSTOP) around each kill, so that it always lands mid-run.
SLOW_RUN = {
    "task": "digits",
    "model": "logreg",
    "local_epochs": 20,
    "batch_size": 1,
    "learning_rate": 0.01,
    "seed": 0,
    "round_timeout_s": 60.0,
}
SITES = ["site-1", "site-2", "site-3"]


def _wait_for_rounds(server: Any, run_id: int, count: int) -> list[dict[str, Any]]:
    """Wait until a run has completed ``count`` rounds; return them."""
    server.wait_for(
        lambda: len(server.api.run(run_id)["rounds"]) >= count,
        f"round {count} of run {run_id}",
    )
    rounds: list[dict[str, Any]] = server.api.run(run_id)["rounds"]
    return rounds


def test_run_finishes_without_a_client_killed_mid_run(
    cluster: Any, server: Any
) -> None:
    """Kill -9 one of three clients: later rounds go on without it, the API says so."""
    rounds = 6
    clients = cluster.digits_clients(server, 3)
    run_id = server.api.launch(**SLOW_RUN, rounds=rounds, min_clients=2)
    _wait_for_rounds(server, run_id, 2)
    for client in clients:
        client.pause()
    before = server.api.run(run_id)["rounds"]

    clients[2].kill(signal.SIGKILL)
    for client in clients[:2]:
        client.resume()
    run = server.wait_for_run(run_id)

    assert run["status"] == "finished", run["error"]
    history = run["rounds"]
    assert [r["server_round"] for r in history] == list(range(1, rounds + 1))
    for entry in history:
        assert entry["num_clients"] == len(entry["clients"]) >= 2
    # Rounds recorded before the kill had all three; the one in flight may
    # have had site-3's update already; every later round lacks it.
    for entry in history[: len(before)]:
        assert sorted(entry["clients"]) == SITES
    later = history[len(before) + 1 :]
    assert later, "no round started after the kill"
    for entry in later:
        assert sorted(entry["clients"]) == SITES[:2]
    status = {c["name"]: c["status"] for c in server.api.get("/api/clients")}
    assert status["site-3"] == "disconnected"


def test_killed_server_restarts_and_resumes_the_run(cluster: Any, server: Any) -> None:
    """Kill -9 the server mid-run, start it again: clients rejoin, history is whole."""
    rounds = 5
    clients = cluster.digits_clients(server, 3)
    run_id = server.api.launch(**SLOW_RUN, rounds=rounds, min_clients=3)
    _wait_for_rounds(server, run_id, 2)
    for client in clients:
        client.pause()
    before = server.api.run(run_id)["rounds"]

    server.process.kill(signal.SIGKILL)
    again = cluster.restart(server)
    for client in clients:
        client.resume()
    run = again.wait_for_run(run_id)

    assert run["status"] == "finished", run["error"]
    history = run["rounds"]
    assert [r["server_round"] for r in history] == list(range(1, rounds + 1))
    assert history[: len(before)] == before, "rounds done before the kill changed"
    log = again.process.output()
    resumed = re.search(rf"resuming run {run_id} after round (\d+)", log)
    assert resumed is not None, "the restarted server did not resume the run"
    assert len(before) <= int(resumed[1]) < rounds
    for entry in history[int(resumed[1]) :]:
        assert sorted(entry["clients"]) == SITES, "a client did not come back"
    assert all(c.alive for c in clients)
    weights, bias = again.api.model(run_id)
    assert (weights.shape, bias.shape) == ((64, 10), (10,))
