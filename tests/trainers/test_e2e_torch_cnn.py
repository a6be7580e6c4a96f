"""The example PyTorch CNN trained by three real client processes (needs torch).

It runs where torch is installed: ``make test`` runs ``tests/trainers`` in the
torch virtual environment; elsewhere it is skipped.
"""

from __future__ import annotations

import os
from pathlib import Path
from typing import Any

import numpy as np
import pytest

from fednet.learning.trainers.base import TrainConfig
from fednet.learning.trainers.registry import load_trainer
from tests.trainers.federation import digits_test

torch = pytest.importorskip("torch")

pytestmark = [pytest.mark.e2e, pytest.mark.timeout(400)]

ROOT = Path(__file__).resolve().parents[2]
EXAMPLE = ROOT / "examples" / "torch-digits-cnn"


@pytest.fixture
def example_importable(monkeypatch: pytest.MonkeyPatch) -> None:
    """Let the client processes (and this test) import the example package."""
    path = os.environ.get("PYTHONPATH")
    parts = [str(ROOT), str(EXAMPLE), *([path] if path else [])]
    monkeypatch.setenv("PYTHONPATH", os.pathsep.join(parts))
    monkeypatch.setenv("OMP_NUM_THREADS", "1")  # three clients on two cores
    monkeypatch.syspath_prepend(str(EXAMPLE))


def test_three_clients_train_the_example_cnn_to_95_percent(
    cluster: Any, example_importable: None
) -> None:
    """Label-skewed digits, Dirichlet(0.5): the federated CNN reaches >= 0.95."""
    server = cluster.server()
    procs = [
        cluster.client(
            server, f"site-{i}", "--dataset", "digits", "--partition", f"{i}/3",
            "--alpha", "0.5", "--seed", "0",
            "--trainer", "digits_cnn=fednet_digits_cnn:make_trainer",
        )
        for i in (1, 2, 3)
    ]
    server.wait_for(
        lambda: sum(
            any(t["name"] == "digits_cnn" for t in c["trainers"])
            for c in server.connected()
        ) == 3,
        "3 clients offering digits_cnn",
        timeout_s=180,
    )

    run_id = server.api.launch(
        task="digits", model="digits_cnn", rounds=10, local_epochs=2,
        batch_size=32, learning_rate=0.05, min_clients=3, round_timeout_s=120,
    )
    run = server.wait_for_run(run_id, timeout_s=300)

    assert run["status"] == "finished", run["error"]
    assert all(len(r["clients"]) == 3 for r in run["rounds"])
    judge = load_trainer("fednet_digits_cnn:make_trainer", digits_test())
    params = server.api.model(run_id)
    _, _, metrics = judge.evaluate([np.asarray(p) for p in params], TrainConfig())
    print(f"digits_cnn: test accuracy {metrics['accuracy']:.3f}")
    assert metrics["accuracy"] >= 0.95
    assert all(p.alive for p in procs)
