"""Smoke tests of the Flower comparison harness and the shared workloads.

The Flower runs need ``benchmarks/.venv-flower`` (``benchmarks/flower/setup.sh``)
and are skipped without it; they use a tiny synthetic model and 2 clients.
"""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest

from fednet.bench import loopback, workloads

REPO = Path(__file__).resolve().parents[2]
FLOWER_PYTHON = REPO / "benchmarks" / ".venv-flower" / "bin" / "python"
needs_flower = pytest.mark.skipif(
    not FLOWER_PYTHON.exists(),
    reason="Flower environment absent; run benchmarks/flower/setup.sh",
)


def test_w1_matches_the_issue_definition() -> None:
    """W1 is digits, 10 clients, Dirichlet(0.5), 20 rounds of 5 epochs, lr 0.1."""
    w1 = workloads.get_workload("w1")
    assert (w1.task, w1.model) == ("digits", "logreg")
    assert (w1.num_clients, w1.rounds) == (10, 20)
    assert (w1.local_epochs, w1.batch_size, w1.learning_rate) == (5, 32, 0.1)
    assert (w1.alpha, w1.seed) == (0.5, 0)


def test_w2_grid_and_bytes_per_round() -> None:
    """W2 covers P in {1e6, 1e7} x N in {10, 20, 50}; a round moves P*4*2*N bytes."""
    names = [w.name for w in workloads.W2]
    assert names == [f"w2-p1e{e}-n{n}" for e in (6, 7) for n in (10, 20, 50)]
    w = workloads.get_workload("w2-p1e7-n20")
    assert w.synthetic_params == 10_000_000 and w.rounds == 3
    assert w.bytes_per_round == 10_000_000 * 4 * 2 * 20


def test_unknown_workload_is_rejected() -> None:
    """A name that is neither known nor a W2 pattern raises KeyError."""
    with pytest.raises(KeyError, match="unknown workload"):
        workloads.get_workload("w9")


def test_synthetic_update_adds_the_client_offset() -> None:
    """A W2 client returns what it received plus 1e-3 times its number."""
    params = workloads.synthetic_params(100, seed=0)
    update = workloads.synthetic_update(params, client_number=7)
    assert update[0].dtype == np.float32
    np.testing.assert_allclose(update[0] - params[0], 7e-3, rtol=1e-3)


def test_w1_partition_covers_the_train_part_once() -> None:
    """The 10 W1 clients hold disjoint slices with all 10 digit classes known."""
    sizes = []
    for k in range(1, 11):
        data = workloads.load_client_data(workloads.W1, k)
        assert len(data.classes) == 10
        sizes.append(data.num_examples + len(data.y_val))
    test_set = workloads.load_test_set(workloads.W1)
    assert sum(sizes) + len(test_set.y) == 1797


def test_to_run_config_is_a_valid_fednet_run_config() -> None:
    """Each workload's RunConfig JSON is accepted by fednet."""
    from fednet.config import RunConfig

    for w in (workloads.W1, workloads.W2[0], workloads.SCALE):
        config = RunConfig.from_dict(w.to_run_config())
        assert config.rounds == w.rounds


def test_loopback_probe_moves_bytes() -> None:
    """The loopback probe measures a positive rate within its time bound."""
    assert loopback.measure_loopback(0.05, max_bytes=64 << 20) > 0


@needs_flower
def test_flower_legacy_run_writes_a_complete_report(tmp_path: Path) -> None:
    """A tiny W2 run on Flower's legacy path reports every round and memory."""
    out = tmp_path / "flower.json"
    proc = subprocess.run(
        [
            sys.executable,
            "benchmarks/flower/run_flower.py",
            "--workloads",
            "w2-p1000-n2",
            "--paths",
            "legacy",
            "--json",
            str(out),
            "--timeout",
            "120",
            "--loopback-seconds",
            "0.05",
        ],
        cwd=REPO,
        capture_output=True,
        text=True,
        timeout=300,
    )
    assert proc.returncode == 0, proc.stdout + proc.stderr
    report = json.loads(out.read_text())
    (result,) = report["results"]
    assert (result["workload"], result["path"], result["status"]) == (
        "w2-p1e3-n2",
        "legacy",
        "ok",
    )
    assert len(result["s_per_round"]) == 3
    assert result["server_peak_rss_mb"] > 0 and result["client_peak_rss_mb"] > 0
    assert result["bytes_per_round"] == 1000 * 4 * 2 * 2
    assert "w2-p1e3-n2" in proc.stdout


@needs_flower
def test_flower_deployment_run_completes(tmp_path: Path) -> None:
    """A tiny W2 run on SuperLink + SuperNodes (flwr run) completes every round."""
    out = tmp_path / "flower.json"
    proc = subprocess.run(
        [
            sys.executable,
            "benchmarks/flower/run_flower.py",
            "--workloads",
            "w2-p1000-n2",
            "--paths",
            "deployment",
            "--deployment-workloads",
            "all",
            "--json",
            str(out),
            "--timeout",
            "240",
            "--loopback-seconds",
            "0",
        ],
        cwd=REPO,
        capture_output=True,
        text=True,
        timeout=400,
    )
    assert proc.returncode == 0, proc.stdout + proc.stderr
    (result,) = json.loads(out.read_text())["results"]
    assert (result["path"], result["status"]) == ("deployment", "ok")
    assert len(result["s_per_round"]) == 3
