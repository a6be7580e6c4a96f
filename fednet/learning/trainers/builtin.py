"""The built-in ``logreg`` and ``mlp`` models as trainers of the protocol.

They wrap :mod:`fednet.learning.models` without changing a number: a round
through :class:`BuiltinTrainer` gives the parameters :func:`models.fit`
gives with a generator seeded by ``[seed, server_round, site_number]``, as
the client has always seeded it.
"""

from __future__ import annotations

from collections.abc import Callable

import numpy as np

from fednet.learning import models
from fednet.learning.trainers.base import (
    Architecture,
    EvaluateResult,
    FitResult,
    TrainConfig,
    TrainerContext,
    check_parameters,
)
from fednet.typing import NDArray, NDArrays

NAMES = {"logreg": ("W", "b"), "mlp": ("W1", "b1", "W2", "b2")}
HIDDEN_UNITS = 64


class BuiltinTrainer:
    """Softmax regression or a one-hidden-layer MLP on the site's data.

    A regression context (``num_classes`` None) makes the same model with
    one output and squared loss: ``logreg`` is then linear regression.

    Args:
        model: ``logreg`` or ``mlp``.
        context: the site's data.
        hidden_units: width of the MLP's hidden layer (part of its
            architecture, so of its fingerprint).
        init_seed: seed of the initial parameters.

    Raises:
        ValueError: on an unknown model or a bad size.
    """

    def __init__(
        self,
        model: str,
        context: TrainerContext,
        *,
        hidden_units: int = HIDDEN_UNITS,
        init_seed: int = 0,
    ) -> None:
        if model not in NAMES:
            raise ValueError(
                f"unknown built-in model {model!r}; expected one of"
                f" {', '.join(NAMES)}"
            )
        self._model = model
        self._context = context
        self._regression = context.num_classes is None
        self._num_classes = 1 if context.num_classes is None else context.num_classes
        self._params = models.init_params(
            model,
            context.num_features,
            self._num_classes,
            hidden_units=hidden_units,
            seed=init_seed,
        )
        self._architecture = Architecture.from_arrays(
            f"fednet.{model}", NAMES[model], self._params
        )

    def architecture(self) -> Architecture:
        """Return the model's arrays: ``W, b`` or ``W1, b1, W2, b2`` (float32)."""
        return self._architecture

    def get_parameters(self) -> NDArrays:
        """Return the current parameters (the trainer's own arrays)."""
        return list(self._params)

    def set_parameters(self, parameters: NDArrays) -> None:
        """Replace the current parameters with float32 copies.

        Raises:
            ValueError: if they do not match the architecture.
        """
        check_parameters(self._architecture, parameters)
        self._params = [np.array(p, dtype=np.float32, copy=True) for p in parameters]

    def fit(self, parameters: NDArrays, config: TrainConfig) -> FitResult:
        """Train with minibatch SGD (and FedProx's term when ``proximal_mu``).

        Returns:
            ``(new_parameters, num_examples, {"train_loss", "train_accuracy"})``
            (regression: ``train_loss``, the mean squared error).

        Raises:
            ValueError: on parameters that do not match, or divergence.
        """
        check_parameters(self._architecture, parameters)
        ctx = self._context
        new, metrics = models.fit(
            self._model,
            parameters,
            ctx.x_train,
            ctx.y_train,
            num_classes=self._num_classes,
            epochs=config.epochs,
            batch_size=config.batch_size,
            learning_rate=config.learning_rate,
            rng=np.random.default_rng(config.local_seed(ctx.site_number)),
            proximal_mu=config.proximal_mu,
            regression=self._regression,
        )
        self._params = new
        return list(new), ctx.num_examples, metrics

    def evaluate(self, parameters: NDArrays, config: TrainConfig) -> EvaluateResult:
        """Return the cross-entropy and accuracy on the validation split.

        Regression: the mean squared error (of the targets as the context
        holds them) and no metrics.

        Raises:
            ValueError: on parameters that do not match, or no validation rows.
        """
        check_parameters(self._architecture, parameters)
        ctx = self._context
        if self._regression:
            mse = models.evaluate_regression(self._model, parameters, ctx.x_val,
                                             ctx.y_val)
            return mse, len(ctx.y_val), {}
        loss, accuracy = models.evaluate(
            self._model, parameters, ctx.x_val, ctx.y_val, num_classes=self._num_classes
        )
        return loss, len(ctx.y_val), {"accuracy": accuracy}

    def predict(self, parameters: NDArrays, x: NDArray) -> NDArray:
        """Return softmax probabilities (n, classes), or values (n,) in regression.

        Raises:
            ValueError: on parameters that do not match.
        """
        check_parameters(self._architecture, parameters)
        if self._regression:
            return models.predict_values(self._model, parameters, x)
        return models.predict_proba(self._model, parameters, x)


def make_logreg(context: TrainerContext) -> BuiltinTrainer:
    """Return the built-in logistic regression on ``context`` (factory)."""
    return BuiltinTrainer("logreg", context)


def make_mlp(context: TrainerContext) -> BuiltinTrainer:
    """Return the built-in MLP on ``context`` (factory).

    Its hidden width is the run's ``hidden_units`` option (64 without one).
    """
    hidden = context.options.get("hidden_units", HIDDEN_UNITS)
    if isinstance(hidden, bool) or not isinstance(hidden, int) or hidden < 1:
        raise ValueError(f"hidden_units must be a positive integer, got {hidden!r}")
    return BuiltinTrainer("mlp", context, hidden_units=hidden)


def mlp_factory(hidden_units: int) -> Callable[[TrainerContext], BuiltinTrainer]:
    """Return a factory of the built-in MLP with another hidden width.

    A site module may expose ``mlp32 = mlp_factory(32)`` and be named with
    ``--trainer mysite:mlp32``; its fingerprint differs from ``mlp``'s.
    """

    def make(context: TrainerContext) -> BuiltinTrainer:
        return BuiltinTrainer("mlp", context, hidden_units=hidden_units)

    return make


BUILTIN: dict[str, Callable[[TrainerContext], BuiltinTrainer]] = {
    "logreg": make_logreg,
    "mlp": make_mlp,
}
"""The trainers every site has, consulted before the entry points."""
