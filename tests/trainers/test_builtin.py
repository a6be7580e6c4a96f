"""The built-in models as trainers: the same numbers as the models module."""

from __future__ import annotations

import dataclasses

import numpy as np
import pytest

from fednet.client.trainer import Trainer as ClientTrainer
from fednet.fitconfig import FitConfig
from fednet.learning import models
from fednet.learning.datasets import load_builtin_partition
from fednet.learning.trainers.base import TrainConfig, TrainerContext
from fednet.learning.trainers.builtin import BUILTIN, BuiltinTrainer, make_mlp
from fednet.typing import NDArrays


def _site(number: int = 2) -> tuple[ClientTrainer, TrainerContext]:
    data = load_builtin_partition("digits", (number, 3), alpha=0.5, seed=0)
    context = TrainerContext(
        data.x_train,
        data.y_train,
        data.x_val,
        data.y_val,
        len(data.classes),
        data.feature_names,
        site_number=number,
    )
    return ClientTrainer(data, client_number=number), context


def _read_only(params: NDArrays) -> NDArrays:
    for p in params:
        p.flags.writeable = False
    return params


@pytest.mark.parametrize("model", ["logreg", "mlp"])
@pytest.mark.parametrize("proximal_mu", [0.0, 0.5])
def test_builtin_fit_is_bit_identical_to_models_fit(
    model: str, proximal_mu: float
) -> None:
    """A round through the protocol gives exactly what models.fit gives."""
    _, context = _site()
    trainer = BUILTIN[model](context)
    start = _read_only(models.init_params(model, 64, 10, seed=3))
    config = TrainConfig(
        epochs=2,
        batch_size=16,
        learning_rate=0.05,
        seed=7,
        server_round=4,
        proximal_mu=proximal_mu,
    )

    got, num_examples, metrics = trainer.fit(start, config)
    want, want_metrics = models.fit(
        model,
        start,
        context.x_train,
        context.y_train,
        num_classes=10,
        epochs=2,
        batch_size=16,
        learning_rate=0.05,
        rng=np.random.default_rng([7, 4, 2]),
        proximal_mu=proximal_mu,
    )

    assert num_examples == len(context.y_train)
    assert metrics == want_metrics
    for g, w in zip(got, want):
        np.testing.assert_array_equal(g, w)
        assert g.dtype == np.float32


def test_builtin_trainer_matches_the_client_trainer() -> None:
    """The client's current Trainer and the protocol's agree on one round."""
    client, context = _site(number=3)
    start = models.init_params("mlp", 64, 10, seed=0)
    fit_config = FitConfig.from_dict(
        {
            "server_round": 2,
            "task": "digits",
            "model": "mlp",
            "local_epochs": 1,
            "batch_size": 32,
            "learning_rate": 0.1,
            "seed": 5,
            "hidden_units": 64,
            "classes": [str(d) for d in range(10)],
        }
    )
    config = TrainConfig(
        epochs=1, batch_size=32, learning_rate=0.1, seed=5, server_round=2
    )

    want = client.fit(start, fit_config)
    got = BUILTIN["mlp"](context).fit(start, config)

    assert got[1:] == want[1:]
    for g, w in zip(got[0], want[0]):
        np.testing.assert_array_equal(g, w)
    assert BUILTIN["mlp"](context).evaluate(got[0], config) == client.evaluate(
        got[0], fit_config
    )


def test_builtin_evaluate_reports_loss_and_accuracy() -> None:
    """evaluate gives the validation cross-entropy, row count and accuracy."""
    _, context = _site()
    trainer = BuiltinTrainer("logreg", context)
    params = trainer.get_parameters()

    loss, num_examples, metrics = trainer.evaluate(params, TrainConfig())

    want = models.evaluate(
        "logreg", params, context.x_val, context.y_val, num_classes=10
    )
    assert (loss, metrics["accuracy"]) == want
    assert num_examples == len(context.y_val)


def test_builtin_refuses_parameters_of_another_architecture() -> None:
    """Parameters of another hidden width are refused before training."""
    _, context = _site()
    trainer = BuiltinTrainer("mlp", context, hidden_units=64)
    other = BuiltinTrainer("mlp", context, hidden_units=32).get_parameters()

    with pytest.raises(ValueError, match=r"W1: expected float32 \(64, 64\)"):
        trainer.fit(other, TrainConfig())
    with pytest.raises(ValueError, match="W1"):
        trainer.set_parameters(other)


def test_builtin_set_parameters_copies_and_get_returns_them() -> None:
    """set_parameters keeps float32 copies; later changes to the input do not leak."""
    _, context = _site()
    trainer = BuiltinTrainer("logreg", context)
    params = [np.ones((64, 10), np.float32), np.zeros(10, np.float32)]

    trainer.set_parameters(params)
    params[0][:] = 5.0

    np.testing.assert_array_equal(trainer.get_parameters()[0], 1.0)


def test_builtin_regresses_with_one_output() -> None:
    """A regression context makes the built-in a one-output model (squared loss)."""
    _, context = _site()
    regression = TrainerContext(
        context.x_train,
        context.y_train.astype(np.float64),
        context.x_val,
        context.y_val.astype(np.float64),
        None,
    )
    trainer = BuiltinTrainer("logreg", regression)
    assert trainer.architecture().shapes == ((64, 1), (1,))
    start = trainer.get_parameters()
    before = trainer.evaluate(start, TrainConfig())[0]

    new, _, metrics = trainer.fit(start, TrainConfig(epochs=5, learning_rate=0.01))

    assert trainer.evaluate(new, TrainConfig())[0] < before
    assert set(metrics) == {"train_loss"}
    assert trainer.predict(new, regression.x_val).shape == (len(regression.y_val),)


def test_builtin_mlp_takes_the_run_hidden_units_option() -> None:
    """make_mlp reads hidden_units from the run's options: another fingerprint."""
    _, context = _site()
    narrow = dataclasses.replace(context, options={"hidden_units": 16})

    assert make_mlp(narrow).architecture().shapes[0] == (64, 16)
    assert make_mlp(narrow).architecture().fingerprint != (
        make_mlp(context).architecture().fingerprint
    )


def test_builtin_refuses_unknown_models() -> None:
    """An unknown built-in model is refused."""
    _, context = _site()
    with pytest.raises(ValueError, match="unknown built-in model"):
        BuiltinTrainer("svm", context)
