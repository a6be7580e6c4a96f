"""Label-skewed CSV sites with missing cells: one preprocessing for all, in-process.

The sites announce their statistics in a hello, the coordinator's
``run_preprocess`` fixes the run's preprocessing, and every site trains on it.
The same federation with each site scaling its own data (the behaviour of
earlier releases, and of a coordinator that sends no preprocessing) falls well
short of the pooled model: the comparison shows the test can fail.
"""

from __future__ import annotations

import logging
from pathlib import Path

import numpy as np
import pytest
from sklearn.linear_model import LogisticRegression

from fednet.client.trainer import Trainer
from fednet.exceptions import SchemaError
from fednet.fitconfig import FitConfig
from fednet.learning import models
from fednet.learning.datasets import ClientData, load_csv
from fednet.learning.preprocess import Preprocess
from fednet.learning.schema import merge_schemas
from fednet.protocol import Hello
from fednet.server.setup import RunSetup, run_preprocess
from fednet.typing import NDArrays
from tests.learning.skewed import CATEGORICAL, write_skewed_sites

CLASSES = ("benign", "malignant")


def _hello(name: str, trainer: Trainer) -> Hello:
    assert trainer.schema is not None
    return Hello(name=name, instance="i", num_examples=trainer.num_examples,
                 task="csv", schema=trainer.schema.to_dict(), stats=trainer.stats)


def _federate(trainers: list[Trainer], pre: Preprocess | None, rounds: int = 20
              ) -> float:
    """Play FedAvg; return the sites' validation accuracy, weighted by examples."""
    params: NDArrays = models.init_params("logreg", pre.width if pre else 30, 2, seed=0)
    extra = {} if pre is None else {"preprocess": pre.to_dict()}
    for server_round in range(1, rounds + 1):
        config = FitConfig.from_dict({
            "task": "csv", "model": "logreg", "classes": list(CLASSES),
            "local_epochs": 20, "batch_size": 8, "learning_rate": 0.05, "seed": 0,
            "server_round": server_round, "hidden_units": 64, **extra,
        })
        results = [trainer.fit(params, config)[:2] for trainer in trainers]
        weights = np.array([n for _, n in results], dtype=np.float64)
        weights /= weights.sum()
        params = [
            sum(w * p[k] for w, (p, _) in zip(weights, results)).astype(np.float32)
            for k in range(len(params))
        ]
    scores = [trainer.evaluate(params, config) for trainer in trainers]
    return sum(m["accuracy"] * n for _, n, m in scores) / sum(n for _, n, _ in scores)


def _pooled_accuracy(sites: list[ClientData], pre: Preprocess) -> float:
    """One LogisticRegression on all sites' train rows, scored on all validation."""

    def run_labels(site: ClientData, y: np.ndarray) -> np.ndarray:
        return np.array([CLASSES.index(site.classes[k]) for k in y])

    assert all(s.raw_train is not None and s.raw_val is not None for s in sites)
    x_train = np.vstack([pre.apply(s.raw_train, s.categories) for s in sites])
    x_val = np.vstack([pre.apply(s.raw_val, s.categories) for s in sites])
    y_train = np.concatenate([run_labels(s, s.y_train) for s in sites])
    y_val = np.concatenate([run_labels(s, s.y_val) for s in sites])
    model = LogisticRegression(max_iter=5000).fit(x_train, y_train)
    return float(model.score(x_val, y_val))


@pytest.mark.parametrize(("seed", "categorical"), [(1, False), (3, True)])
def test_shared_preprocessing_reaches_the_pooled_model_where_local_scaling_fails(
    tmp_path: Path, seed: int, categorical: bool
) -> None:
    """Within 2 points of pooled logistic regression; per-site scaling 10+ behind."""
    paths = write_skewed_sites(tmp_path, seed, categorical=categorical)
    sites = [load_csv(p, "diagnosis") for p in paths]
    # Strong label skew: some site holds under 20% of one class or none of it.
    assert any(len(s.classes) < 2 or min(np.bincount(s.y_train)) < 0.2 * s.num_examples
               for s in sites)
    trainers = [Trainer(s, client_number=i) for i, s in enumerate(sites, start=1)]
    hellos = [_hello(f"site-{i}", t) for i, t in enumerate(trainers, start=1)]
    schema = merge_schemas([t.schema for t in trainers if t.schema is not None])

    pre = run_preprocess(schema, None, hellos)

    assert pre is not None
    if categorical:  # one-hot: low, mid, high and "other" for one column
        assert schema.categorical == (CATEGORICAL,)
        j = schema.feature_names.index(CATEGORICAL)
        assert pre.vocab == {j: ("high", "low", "mid")}
    assert pre.width == (33 if categorical else 30)
    pooled = _pooled_accuracy(sites, pre)
    shared = _federate(trainers, pre)
    local = _federate(trainers, None)
    assert shared >= pooled - 0.02, (shared, pooled)
    assert local < pooled - 0.10, (local, pooled)


def test_clients_without_statistics_leave_each_site_to_scale_its_own(
    tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    """Clients of an earlier release send no stats: no preprocessing, a warning."""
    sites = [load_csv(p, "diagnosis") for p in write_skewed_sites(tmp_path, 1)]
    hellos = [Hello(name=f"s{i}", instance="i", num_examples=s.num_examples,
                    task="csv", schema=s.schema.to_dict()) for i, s in enumerate(sites)]
    schema = merge_schemas([s.schema for s in sites])

    with caplog.at_level(logging.WARNING):
        assert run_preprocess(schema, None, hellos) is None

    assert "no site sent feature statistics" in caplog.text


def test_a_sites_bad_statistics_are_logged_and_left_out(
    tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    sites = [load_csv(p, "diagnosis") for p in write_skewed_sites(tmp_path, 1)]
    trainers = [Trainer(s) for s in sites]
    hellos = [_hello(f"s{i}", t) for i, t in enumerate(trainers)]
    bad = Hello(**{**hellos[0].__dict__, "name": "liar",
                   "stats": {**hellos[0].stats, "rows": -5}})
    schema = merge_schemas([s.schema for s in sites])

    with caplog.at_level(logging.WARNING):
        pre = run_preprocess(schema, None, [*hellos, bad])

    assert "client liar sent invalid statistics: stats rows" in caplog.text
    assert pre == run_preprocess(schema, None, hellos)


def test_a_resumed_run_keeps_its_stored_preprocessing(tmp_path: Path) -> None:
    """The preprocessing is stored with the run's schema and read back on resume."""
    sites = [load_csv(p, "diagnosis") for p in write_skewed_sites(tmp_path, 1)]
    hellos = [_hello(f"s{i}", Trainer(s)) for i, s in enumerate(sites)]
    schema = merge_schemas([s.schema for s in sites])
    pre = run_preprocess(schema, None, hellos)
    setup = RunSetup(task="csv", schema=schema, parameters=[], central_evaluate=None,
                     federated_evaluate=True, preprocess=pre)
    stored = setup.schema_dict

    assert run_preprocess(schema, stored, hellos[:1]) == pre
    assert run_preprocess(schema, schema.to_dict(), hellos) is None  # older run


def test_a_trainer_refuses_a_preprocessing_for_other_columns(tmp_path: Path) -> None:
    site = load_csv(write_skewed_sites(tmp_path, 1)[0], "diagnosis")
    narrow = Preprocess(np.zeros(3), np.ones(3))
    config = FitConfig.from_dict({
        "task": "csv", "model": "logreg", "classes": list(CLASSES), "local_epochs": 1,
        "batch_size": 8, "learning_rate": 0.1, "seed": 0, "server_round": 1,
        "hidden_units": 8, "preprocess": narrow.to_dict(),
    })

    with pytest.raises(SchemaError, match="preprocessing is for 3 columns.* holds 30"):
        Trainer(site).fit(models.init_params("logreg", 3, 2, seed=0), config)
