"""Trainer plug-ins that tests name with ``--trainer tests.trainers.plugins:...``.

A site's own module, as an operator would write one: factories that take a
TrainerContext and return a trainer.
"""

from __future__ import annotations

from sklearn.linear_model import SGDClassifier
from sklearn.neural_network import MLPRegressor

from fednet.learning.trainers.base import TrainerContext
from fednet.learning.trainers.builtin import mlp_factory
from fednet.learning.trainers.sklearn_adapter import SklearnTrainer

mlp16 = mlp_factory(16)
"""The built-in MLP with 16 hidden units, whatever the run's hidden_units."""
mlp32 = mlp_factory(32)
"""The same with 32: another architecture under the same trainer name."""


def make_sgd() -> SGDClassifier:
    """Return the SGDClassifier every site of the federation trains."""
    return SGDClassifier(loss="log_loss", alpha=1e-4, random_state=0)


def sgd_classifier(context: TrainerContext) -> SklearnTrainer:
    """Return a logistic-loss SGDClassifier on the site's data."""
    return SklearnTrainer(make_sgd(), context)


def make_mlp_regressor() -> MLPRegressor:
    """Return the MLPRegressor every site of the federation trains."""
    return MLPRegressor(
        hidden_layer_sizes=(16,),
        solver="sgd",
        learning_rate_init=0.003,
        momentum=0.9,
        batch_size=32,
        alpha=1.0,
    )


def mlp_regressor(context: TrainerContext) -> SklearnTrainer:
    """Return a one-hidden-layer MLPRegressor on the site's data."""
    return SklearnTrainer(make_mlp_regressor(), context)


def broken(context: TrainerContext) -> SklearnTrainer:
    """Fail as a plug-in with a bug does."""
    raise RuntimeError("this plug-in is broken")
