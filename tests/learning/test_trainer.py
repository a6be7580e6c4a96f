"""Tests of fednet.client.trainer.Trainer: config handling, remapping, synthetic."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import numpy as np
import pytest

from fednet.client.trainer import Trainer
from fednet.exceptions import DataError, SchemaError
from fednet.fitconfig import FitConfig
from fednet.learning import models
from fednet.learning.datasets import load_builtin_partition, load_csv
from fednet.typing import NDArray

DIGITS = [str(d) for d in range(10)]


def _config(**overrides: Any) -> FitConfig:
    config: dict[str, Any] = {
        "task": "digits",
        "model": "logreg",
        "classes": DIGITS,
        "local_epochs": 1,
        "batch_size": 32,
        "learning_rate": 0.1,
        "seed": 0,
        "server_round": 1,
        "hidden_units": 16,
    }
    config.update(overrides)
    return FitConfig.from_dict(config)


@pytest.fixture
def csv_trainer(tmp_path: Path) -> Trainer:
    rows = "".join(
        f"{i % 7},{(i * 3) % 5},{'yes' if i % 7 > 3 else 'no'}\n" for i in range(40)
    )
    path = tmp_path / "site.csv"
    path.write_text("a,b,outcome\n" + rows)
    return Trainer(load_csv(path, "outcome"), client_number=2)


def test_synthetic_fit_returns_params_plus_client_offset() -> None:
    trainer = Trainer(None, client_number=3)
    params = [np.ones(4, np.float32), np.zeros((2, 2), np.float32)]

    new, num_examples, metrics = trainer.fit(params, _config(task="synthetic"))

    np.testing.assert_allclose(np.asarray(new[0], np.float32), 1.003, rtol=1e-6)
    np.testing.assert_allclose(np.asarray(new[1], np.float32), 0.003, rtol=1e-6)
    assert all(p.dtype == np.float32 for p in new)
    assert (num_examples, metrics) == (1, {})
    assert trainer.schema is None and trainer.num_examples == 1


def test_synthetic_evaluate_is_trivial() -> None:
    config = _config(task="synthetic", classes=None)
    assert Trainer(None).evaluate([], config) == (0.0, 1, {})


def test_fit_trains_on_the_local_split_and_reports_metrics() -> None:
    data = load_builtin_partition("digits", (1, 2), alpha=None, seed=0)
    trainer = Trainer(data, client_number=1)
    params = models.init_params("logreg", 64, 10)

    new, num_examples, metrics = trainer.fit(params, _config(local_epochs=5))

    assert num_examples == data.num_examples == trainer.num_examples
    assert metrics["train_accuracy"] > 0.9
    loss, n_val, val_metrics = trainer.evaluate(new, _config())
    assert n_val == len(data.y_val)
    assert val_metrics["accuracy"] > 0.85
    assert loss < 0.5


def test_fit_randomness_depends_on_seed_round_and_client() -> None:
    data = load_builtin_partition("digits", (1, 2), alpha=None, seed=0)
    params = models.init_params("logreg", 64, 10)

    def run(client: int, **overrides: Any) -> NDArray:
        trainer = Trainer(data, client_number=client)
        return trainer.fit(params, _config(**overrides))[0][0]

    np.testing.assert_array_equal(run(1), run(1))
    assert not np.array_equal(run(1), run(2))
    assert not np.array_equal(run(1), run(1, server_round=2))
    assert not np.array_equal(run(1), run(1, seed=9))


def test_labels_are_remapped_to_the_run_classes(csv_trainer: Trainer) -> None:
    # The run knows a third class "maybe" between this client's "no" and "yes".
    run_classes = ["maybe", "no", "yes"]
    params = models.init_params("logreg", 2, 3)
    config = _config(task="csv", classes=run_classes, local_epochs=30, batch_size=4)

    new, _, _ = csv_trainer.fit(params, config)

    # The bias of the class no client holds is pushed down, the others are not.
    bias = new[1]
    assert bias[0] < bias[1] and bias[0] < bias[2]
    _, _, metrics = csv_trainer.evaluate(new, config)
    assert metrics["accuracy"] > 0.8


def test_run_classes_missing_a_client_label_raise_schema_error(
    csv_trainer: Trainer,
) -> None:
    params = models.init_params("logreg", 2, 2)

    with pytest.raises(SchemaError, match="'yes' are not among"):
        csv_trainer.fit(params, _config(task="csv", classes=["no", "maybe"]))


def test_run_without_classes_is_a_schema_error(csv_trainer: Trainer) -> None:
    params = models.init_params("logreg", 2, 2)

    with pytest.raises(SchemaError, match="run of task 'csv' names no classes"):
        csv_trainer.fit(params, _config(task="csv", classes=None))


def test_task_mismatch_is_a_data_error(csv_trainer: Trainer) -> None:
    params = models.init_params("logreg", 2, 2)

    with pytest.raises(DataError, match="run task is 'digits'.*task 'csv'"):
        csv_trainer.fit(params, _config(task="digits"))
    with pytest.raises(DataError, match="holds no data"):
        Trainer(None).fit(params, _config(task="digits"))


def test_wrong_param_shapes_are_rejected(csv_trainer: Trainer) -> None:
    params = models.init_params("logreg", 64, 10)

    with pytest.raises(ValueError, match="expected"):
        csv_trainer.fit(params, _config(task="csv", classes=["no", "yes"]))


def test_integer_learning_rate_is_accepted(csv_trainer: Trainer) -> None:
    config = _config(task="csv", classes=["no", "yes"], learning_rate=1)

    _, num_examples, _ = csv_trainer.fit(models.init_params("logreg", 2, 2), config)

    assert num_examples == csv_trainer.num_examples
