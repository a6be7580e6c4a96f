"""A short digits session driven by ``fednet run`` against real processes."""

from __future__ import annotations

import os
import re
import subprocess
import sys
from typing import Any

import numpy as np
import pytest

from fednet.learning import models
from fednet.learning.datasets import load_builtin_test

pytestmark = [pytest.mark.e2e, pytest.mark.timeout(180)]

ROUNDS = 5
ROW = re.compile(r"^\s*(\d+)\s+(\d+)\s+(\d+)\s+\S+\s+(\d\.\d+)\s+\d+\.\d+\s*$")


def test_fednet_run_follows_a_digits_session_to_the_end(
    cluster: Any, server: Any
) -> None:
    """`fednet run` exits 0, prints a row per round; the API and model agree."""
    cluster.digits_clients(server, 3)
    env = {k: v for k, v in os.environ.items() if not k.startswith("FEDNET_")}

    done = subprocess.run(
        [
            sys.executable,
            "-m",
            "fednet",
            "run",
            "--server",
            server.http_url,
            "--task",
            "digits",
            "--rounds",
            str(ROUNDS),
            "--min-clients",
            "3",
            "--local-epochs",
            "5",
            "--learning-rate",
            "0.1",
            "--seed",
            "0",
        ],
        capture_output=True,
        text=True,
        timeout=150,
        env=env,
    )

    assert done.returncode == 0, done.stdout + done.stderr
    rows = [m for line in done.stdout.splitlines() if (m := ROW.match(line))]
    assert [int(m[1]) for m in rows] == list(range(1, ROUNDS + 1)), done.stdout
    assert all(int(m[2]) == 3 for m in rows), done.stdout
    finished = re.search(r"run (\d+) finished", done.stdout)
    assert finished is not None, done.stdout
    run_id = int(finished[1])
    run = server.api.run(run_id)
    assert run["status"] == "finished" and run["error"] is None
    assert [r["server_round"] for r in run["rounds"]] == list(range(1, ROUNDS + 1))
    for entry in run["rounds"]:
        assert entry["num_clients"] == 3
        assert sorted(entry["clients"]) == ["site-1", "site-2", "site-3"]
    assert run["rounds"][-1]["accuracy"] >= 0.85
    assert float(rows[-1][4]) == pytest.approx(run["rounds"][-1]["accuracy"], abs=1e-4)
    weights, bias = server.api.model(run_id)
    assert (weights.shape, bias.shape) == ((64, 10), (10,))
    assert weights.dtype == bias.dtype == np.float32
    x_test, y_test, _ = load_builtin_test("digits")
    _, accuracy = models.evaluate(
        "logreg", [weights, bias], x_test, y_test, num_classes=10
    )
    assert accuracy == pytest.approx(run["rounds"][-1]["accuracy"])
