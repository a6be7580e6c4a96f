"""Central DP with real processes: the budget stop, per-round epsilon, a resume."""

from __future__ import annotations

import logging
import os
import re
import signal
import subprocess
import sys
from typing import Any

import pytest

from fednet.privacy import accountant

pytestmark = [pytest.mark.e2e, pytest.mark.timeout(240)]

logging.getLogger("absl").setLevel(logging.ERROR)

ROUNDS = 6
DELTA = 1e-5
Q = 2 / 3  # clients_per_round 2 of 3 sites
ROW = re.compile(
    r"^\s*(\d+)\s+(\d+)\s+(\d+)\s+\S+\s+\S+\s+\d+\.\d+\s+(\d+\.\d{4})\s*$"
)


def _epsilon(rounds: int) -> float:
    return accountant.epsilon(1.0, Q, rounds, DELTA)


def _target_for(k: int) -> float:
    """Return a target epsilon that allows exactly k rounds."""
    return round((_epsilon(k) + _epsilon(k + 1)) / 2, 3)


def test_fednet_run_stops_a_dp_run_at_its_privacy_budget(
    cluster: Any, server: Any
) -> None:
    """3 digits sites, a budget of 3 rounds of 6: `fednet run` shows 3 rows and why.

    Each round's epsilon is the accountant's for q = 2/3, the run finishes
    (not fails) with the budget reason, and the run's privacy shows it.
    """
    k, target = 3, _target_for(3)
    cluster.digits_clients(server, 3)
    env = {k: v for k, v in os.environ.items() if not k.startswith("FEDNET_")}
    done = subprocess.run(
        [
            sys.executable, "-m", "fednet", "run", "--server", server.http_url,
            "--task", "digits", "--rounds", str(ROUNDS), "--clients-per-round", "2",
            "--min-clients", "2", "--seed", "0", "--dp", "central",
            "--dp-noise-multiplier", "1.0", "--dp-clip-norm", "1.0",
            "--dp-target-epsilon", str(target), "--dp-delta", str(DELTA),
        ],
        capture_output=True, text=True, timeout=200, env=env,
    )

    assert done.returncode == 0, done.stdout + done.stderr
    assert "epsilon" in done.stdout.splitlines()[1], done.stdout  # the header
    rows = [m for line in done.stdout.splitlines() if (m := ROW.match(line))]
    assert [int(m[1]) for m in rows] == list(range(1, k + 1)), done.stdout
    for m in rows:
        assert float(m[4]) == pytest.approx(_epsilon(int(m[1])), abs=1e-4)
    reason = (
        f"privacy budget: round {k + 1} would spend epsilon {_epsilon(k + 1):.4f}"
        f" > target {target:g}"
    )
    assert reason in done.stdout, done.stdout
    finished = re.search(r"run (\d+) finished", done.stdout)
    assert finished is not None, done.stdout
    run = server.api.run(int(finished[1]))
    assert run["status"] == "finished" and run["error"] == reason
    assert [r["server_round"] for r in run["rounds"]] == list(range(1, k + 1))
    for entry in run["rounds"]:
        assert 2 <= entry["num_clients"] <= 3
        assert entry["epsilon"] == pytest.approx(
            _epsilon(entry["server_round"]), rel=1e-9
        )
    assert run["privacy"] == {
        "secure_aggregation": False, "threshold": None, "dropouts_recovered": 0,
        "epsilon": pytest.approx(_epsilon(k), rel=1e-9), "delta": DELTA,
        "budget": target,
    }
    assert "absl" not in server.process.output()  # dp-accounting kept quiet


SEEDED_DP_RUN = {
    "task": "digits",
    "model": "logreg",
    "rounds": ROUNDS,
    "clients_per_round": 2,
    "min_clients": 2,
    "local_epochs": 5,
    "batch_size": 1,  # rounds long enough to pause the clients
    "learning_rate": 0.01,
    "seed": 7,
    "round_timeout_s": 60.0,
    "dp": "central",
    "dp_adaptive_clip": True,
    "dp_target_epsilon": _target_for(4),
    "dp_delta": DELTA,
}
CLIP = re.compile(r"dp: clip norm (\S+) -> (\S+)")


def test_dp_run_killed_and_resumed_keeps_its_accounting(cluster: Any) -> None:
    """SIGKILL after round 2; the restarted server resumes with q and the clip norm.

    The resumed rounds spend what the accountant says for the saved q, the
    clip norm goes on from round 2's checkpoint, and the budget still stops
    the run after 4 rounds.
    """
    server = cluster.server()
    clients = cluster.digits_clients(server, 3)
    run_id = server.api.launch(**SEEDED_DP_RUN)
    server.wait_for(
        lambda: len(server.api.run(run_id)["rounds"]) >= 2, "round 2 recorded"
    )
    for client in clients:
        client.pause()
    recorded = len(server.api.run(run_id)["rounds"])
    state_files = sorted(p.name for p in (server.state_dir / "models").iterdir())
    server.process.kill(signal.SIGKILL)
    before = CLIP.findall(server.process.output())
    again = cluster.restart(server)
    for client in clients:
        client.resume()
    run = again.wait_for_run(run_id)

    assert f"run-{run_id}-round-{recorded}.state.npz" in state_files, state_files
    resumed = re.search(rf"resuming run {run_id} after round (\d+)",
                        again.process.output())
    assert resumed is not None and int(resumed[1]) == recorded
    assert run["status"] == "finished", run["error"]
    assert run["error"] is not None and run["error"].startswith(
        "privacy budget: round 5 would spend epsilon"
    )
    assert [r["server_round"] for r in run["rounds"]] == [1, 2, 3, 4]
    for entry in run["rounds"]:
        assert entry["epsilon"] == pytest.approx(
            _epsilon(entry["server_round"]), rel=1e-9
        )
    after = again.process.output()
    assert "sampling rate" not in after  # q came from the checkpoint
    # The first clip norm the resumed server adapts is round `recorded`'s result.
    assert CLIP.findall(after)[0][0] == before[recorded - 1][1]
