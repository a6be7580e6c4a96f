"""Asynchronous mode (FedBuff) with real processes: a slow site, and a resume."""

from __future__ import annotations

import re
import signal
from collections import Counter
from typing import Any

import pytest

from tests.e2e.conftest import Cluster, Process, Server

pytestmark = [pytest.mark.e2e, pytest.mark.timeout(240)]

COMMON = {
    "task": "digits",
    "model": "logreg",
    "min_clients": 3,
    "local_epochs": 2,
    "batch_size": 16,
    "learning_rate": 0.1,
    "seed": 3,
    "round_timeout_s": 60.0,
}
ASYNC = {**COMMON, "mode": "async", "buffer_size": 2, "max_staleness": 10}
FAST_S, SLOW_S = 0.2, 1.0  # the slow site is 5x slower


def _sites(cluster: Cluster, server: Server, delays: list[float]) -> list[Process]:
    """Start one digits client per delay (``--fit-delay-s``); wait for them."""
    procs = [
        cluster.client(
            server, f"site-{i}", "--dataset", "digits", "--partition",
            f"{i}/{len(delays)}", "--alpha", "0.5", "--seed", "0",
            "--fit-delay-s", str(delay),
        )
        for i, delay in enumerate(delays, start=1)
    ]
    server.wait_for_clients(len(delays), procs)
    return procs


def _updates(run: dict[str, Any]) -> Counter[str]:
    """Return how many updates each client had folded into the run's versions."""
    counts: Counter[str] = Counter()
    for r in run["rounds"]:
        for cid, metrics in r["client_metrics"].items():
            counts[cid] += int(metrics.get("updates", 0))
    return counts


def _wall_s(run: dict[str, Any]) -> float:
    """Return the time from the run's start to its end."""
    return float(run["finished_at"] - run["started_at"])


def test_async_run_with_a_slow_site_finishes_every_version(cluster: Cluster) -> None:
    """10 versions; the fast sites send more updates; accuracy near sync's.

    The slow site never holds a version back (versions are made without it),
    and no folded update is older than max_staleness. Wall times are printed,
    not judged: `fednet bench --workloads stragglers` measures them.
    """
    server = cluster.server()
    _sites(cluster, server, [FAST_S, FAST_S, SLOW_S])
    run_id = server.api.launch(**ASYNC, rounds=10)
    run = server.wait_for_run(run_id)
    assert run["status"] == "finished", run["error"]
    versions = [r["server_round"] for r in run["rounds"]]
    assert versions == list(range(1, 11))
    assert all(r["fit_metrics"]["max_staleness"] <= 10 for r in run["rounds"])
    assert all(0 < r["duration_s"] < 60 for r in run["rounds"])
    counts = _updates(run)
    assert counts["site-1"] > counts["site-3"] and counts["site-2"] > counts["site-3"]
    assert any("site-3" not in r["clients"] for r in run["rounds"])

    sync_id = server.api.launch(**COMMON, rounds=10)
    sync = server.wait_for_run(sync_id)
    assert sync["status"] == "finished", sync["error"]
    async_acc = run["rounds"][-1]["test_accuracy"]
    sync_acc = sync["rounds"][-1]["test_accuracy"]
    async_s, sync_s = _wall_s(run), _wall_s(sync)
    print(f"async accuracy {async_acc:.3f} in {async_s:.1f} s, sync"
          f" {sync_acc:.3f} in {sync_s:.1f} s, updates {dict(counts)}")
    assert async_acc >= sync_acc - 0.08, (async_acc, sync_acc)


def test_async_run_resumes_after_kill_9_from_the_recorded_version(
    cluster: Cluster,
) -> None:
    """A coordinator killed mid-run resumes from its last recorded version."""
    server = cluster.server()
    _sites(cluster, server, [0.3, 0.3, 0.3])
    run_id = server.api.launch(**ASYNC, rounds=14)
    server.wait_for(
        lambda: len(server.api.run(run_id)["rounds"]) >= 3, "version 3 recorded"
    )
    server.process.kill(signal.SIGKILL)
    again = cluster.restart(server)
    run = again.wait_for_run(run_id)
    assert run["status"] == "finished", run["error"]
    resumed = re.search(
        rf"resuming run {run_id} after round (\d+)", again.process.output()
    )
    assert resumed is not None, "the restarted server did not resume the run"
    assert 3 <= int(resumed[1]) < 14
    assert [r["server_round"] for r in run["rounds"]] == list(range(1, 15))
    first = re.search(r"fit: version (\d+) of run", again.process.output())
    assert first is not None and int(first[1]) == int(resumed[1])
