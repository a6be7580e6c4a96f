"""Accuracy targets of federated training, simulated in-process with FedAvg."""

from __future__ import annotations

import csv
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import numpy as np
import pytest
from sklearn.datasets import load_breast_cancer
from sklearn.model_selection import train_test_split

from fednet.client.trainer import Trainer
from fednet.fitconfig import FitConfig
from fednet.learning import models
from fednet.learning.datasets import load_builtin_partition, load_builtin_test, load_csv
from fednet.learning.schema import merge_schemas
from fednet.typing import NDArray, NDArrays


def _fedavg(results: Sequence[tuple[NDArrays, int]]) -> NDArrays:
    """Average parameters weighted by num_examples (McMahan et al. 2017)."""
    weights = np.array([n for _, n in results], dtype=np.float64)
    weights /= weights.sum()
    return [
        np.tensordot(
            weights, np.stack([params[i] for params, _ in results]), axes=1
        ).astype(np.float32)
        for i in range(len(results[0][0]))
    ]


def _federate(
    trainers: list[Trainer], params: NDArrays, config: dict[str, Any], rounds: int
) -> NDArrays:
    for server_round in range(1, rounds + 1):
        round_config = FitConfig.from_dict({**config, "server_round": server_round})
        results = [trainer.fit(params, round_config)[:2] for trainer in trainers]
        params = _fedavg(results)
    return params


def _config(task: str, classes: Sequence[str], **overrides: Any) -> dict[str, Any]:
    return {
        "task": task,
        "model": "logreg",
        "classes": list(classes),
        "local_epochs": 5,
        "batch_size": 32,
        "learning_rate": 0.1,
        "seed": 0,
        "server_round": 1,
        "hidden_units": 64,
        **overrides,
    }


def test_fedavg_logreg_on_label_skewed_digits_reaches_90_percent() -> None:
    clients = [
        load_builtin_partition("digits", (i, 3), alpha=0.5, seed=0) for i in (1, 2, 3)
    ]
    x_test, y_test, test_schema = load_builtin_test("digits")
    run_schema = merge_schemas([c.schema for c in clients])
    assert run_schema == test_schema
    # Label skew: at least one client misses or nearly misses some digit.
    assert min(np.bincount(c.y_train, minlength=10).min() for c in clients) < 5
    trainers = [Trainer(c, client_number=i) for i, c in enumerate(clients, start=1)]
    params = models.init_params("logreg", 64, 10, seed=0)

    params = _federate(trainers, params, _config("digits", run_schema.classes), 10)

    _, accuracy = models.evaluate("logreg", params, x_test, y_test, num_classes=10)
    assert accuracy >= 0.90


def test_fedavg_mlp_on_iid_digits_learns() -> None:
    clients = [
        load_builtin_partition("digits", (i, 3), alpha=None, seed=0) for i in (1, 2, 3)
    ]
    x_test, y_test, schema = load_builtin_test("digits")
    trainers = [Trainer(c, client_number=i) for i, c in enumerate(clients, start=1)]
    params = models.init_params("mlp", 64, 10, hidden_units=32, seed=0)
    config = _config("digits", schema.classes, model="mlp", hidden_units=32)

    params = _federate(trainers, params, config, 5)

    _, accuracy = models.evaluate("mlp", params, x_test, y_test, num_classes=10)
    assert accuracy >= 0.90


def _write_csv(path: Path, x: NDArray, y: NDArray, names: Sequence[str]) -> Path:
    with open(path, "w", newline="") as handle:
        writer = csv.writer(handle)
        writer.writerow([*names, "diagnosis"])
        labels = np.array(["malignant", "benign"])[y]
        writer.writerows(
            [*map(repr, row.tolist()), label] for row, label in zip(x, labels)
        )
    return path


@pytest.fixture
def breast_cancer_files(tmp_path: Path) -> dict[str, Any]:
    bunch = load_breast_cancer()
    names = [str(n) for n in bunch.feature_names]
    x, x_test, y, y_test = train_test_split(
        bunch.data, bunch.target, test_size=0.2, stratify=bunch.target, random_state=1
    )
    order = np.random.default_rng(0).permutation(len(y))
    splits = np.array_split(order, 3)
    return {
        "pooled": _write_csv(tmp_path / "pooled.csv", x, y, names),
        "sites": [
            _write_csv(tmp_path / f"site{i}.csv", x[s], y[s], names)
            for i, s in enumerate(splits, start=1)
        ],
        "x_test": x_test,
        "y_test": np.array(["malignant", "benign"])[y_test],
    }


def test_federated_csv_sites_match_centralised_training(
    breast_cancer_files: dict[str, Any],
) -> None:
    pooled = load_csv(breast_cancer_files["pooled"], "diagnosis")
    sites = [load_csv(p, "diagnosis") for p in breast_cancer_files["sites"]]
    schema = merge_schemas([s.schema for s in sites])
    assert schema == pooled.schema
    y_test = np.array(
        [schema.classes.index(label) for label in breast_cancer_files["y_test"]]
    )
    x_test_raw = breast_cancer_files["x_test"]
    config = _config("csv", schema.classes, local_epochs=2, learning_rate=0.05)
    start = models.init_params("logreg", 30, 2, seed=0)

    central = Trainer(pooled)
    central_params = start
    for server_round in range(1, 11):
        round_config = FitConfig.from_dict({**config, "server_round": server_round})
        central_params, _, _ = central.fit(central_params, round_config)
    federated_params = _federate(
        [Trainer(s, client_number=i) for i, s in enumerate(sites, start=1)],
        start,
        config,
        10,
    )

    _, central_accuracy = models.evaluate(
        "logreg", central_params, pooled.transform(x_test_raw), y_test, num_classes=2
    )
    # Each site scales the test rows its own way; average over the sites.
    federated_accuracy = np.mean(
        [
            models.evaluate(
                "logreg",
                federated_params,
                s.transform(x_test_raw),
                y_test,
                num_classes=2,
            )[1]
            for s in sites
        ]
    )
    assert central_accuracy >= 0.93
    assert abs(central_accuracy - federated_accuracy) <= 0.03
