"""The Trainer protocol: what any model a site trains offers the federation.

A trainer holds one site's model. Its parameters travel as a list of NumPy
arrays in the order of its :class:`Architecture`'s names; nothing else about
it (code, data) leaves the site. Built-in, scikit-learn and PyTorch trainers
all implement this protocol, and nothing special-cases any of them.
"""

from __future__ import annotations

import types
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Protocol, runtime_checkable

import numpy as np

from fednet.learning.trainers.architecture import (
    DTYPES,
    MAX_ARRAYS,
    Architecture,
    check_parameters,
    name_parameters,
)
from fednet.typing import Metrics, NDArray, NDArrays

__all__ = [
    "DTYPES",
    "MAX_ARRAYS",
    "Architecture",
    "EvaluateResult",
    "FitResult",
    "Scalar",
    "TrainConfig",
    "Predictor",
    "Trainer",
    "TrainerContext",
    "check_parameters",
    "name_parameters",
]

Scalar = float | int | str | bool
FitResult = tuple[NDArrays, int, Metrics]
EvaluateResult = tuple[float, int, Metrics]
MAX_EXTRA = 256


@dataclass(frozen=True, kw_only=True)
class TrainConfig:
    """How a trainer trains or evaluates in one round (mapped from the wire config).

    Attributes:
        epochs: local passes over the train split.
        batch_size: examples per optimiser step.
        learning_rate: the optimiser's step size.
        seed: the run's seed.
        server_round: the round, counted from 1.
        proximal_mu: FedProx's proximal weight (Li et al. 2020); 0 is plain
            local training.
        extra: further options of a trainer, by name (read-only).

    Raises:
        ValueError: on a value out of range.
    """

    epochs: int = 1
    batch_size: int = 32
    learning_rate: float = 0.1
    seed: int = 0
    server_round: int = 1
    proximal_mu: float = 0.0
    extra: Mapping[str, Scalar] = field(default_factory=dict)

    def __post_init__(self) -> None:
        if self.epochs < 1 or self.batch_size < 1 or self.server_round < 1:
            raise ValueError(
                f"need epochs, batch_size and server_round >= 1, got {self.epochs},"
                f" {self.batch_size}, {self.server_round}"
            )
        if not self.learning_rate > 0 or not self.proximal_mu >= 0 or self.seed < 0:
            raise ValueError(
                f"need learning_rate > 0, proximal_mu >= 0 and seed >= 0, got"
                f" {self.learning_rate}, {self.proximal_mu}, {self.seed}"
            )
        if len(self.extra) > MAX_EXTRA or not all(
            isinstance(k, str) and isinstance(v, (float, int, str, bool))
            for k, v in self.extra.items()
        ):
            raise ValueError(
                f"extra must map at most {MAX_EXTRA} names to numbers, strings"
                " or booleans"
            )
        object.__setattr__(self, "extra", types.MappingProxyType(dict(self.extra)))

    def local_seed(self, site_number: int) -> list[int]:
        """Return the seed of a site's randomness this round: run, round, site."""
        return [self.seed, self.server_round, site_number]


@dataclass(frozen=True, eq=False)
class TrainerContext:
    """One site's data, as a trainer factory receives it.

    The arrays are not copied and may be read-only; trainers never write to
    them.

    Attributes:
        x_train: features, shape (n_train, features).
        y_train: class indices in ``0..num_classes-1``, or regression targets.
        x_val: validation features.
        y_val: validation labels or targets.
        num_classes: how many classes the run has; None for regression.
        feature_names: one name per feature column.
        site_number: this site's number, which seeds its local randomness.
        options: the run's options a factory may read (``hidden_units``),
            read-only; a trainer that has no use for them ignores them.

    Raises:
        ValueError: if the arrays disagree in shape or the labels are out of range.
    """

    x_train: NDArray
    y_train: NDArray
    x_val: NDArray
    y_val: NDArray
    num_classes: int | None
    feature_names: tuple[str, ...] = ()
    site_number: int = 1
    options: Mapping[str, Scalar] = field(default_factory=dict)

    def __post_init__(self) -> None:
        object.__setattr__(self, "options", types.MappingProxyType(dict(self.options)))
        width = self.x_train.shape[1] if self.x_train.ndim == 2 else -1
        for x, y, split in (
            (self.x_train, self.y_train, "train"),
            (self.x_val, self.y_val, "validation"),
        ):
            if x.ndim != 2 or x.shape[1] != width or len(y) != len(x):
                raise ValueError(
                    f"{split} split: need x of shape (n, {width}) and one target"
                    f" per row, got {x.shape} and {y.shape}"
                )
            if self.num_classes is not None:
                self._check_labels(y, split)
        if self.feature_names and len(self.feature_names) != width:
            raise ValueError(
                f"{len(self.feature_names)} feature names for {width} columns"
            )

    def _check_labels(self, y: NDArray, split: str) -> None:
        assert self.num_classes is not None
        if self.num_classes < 2 or not np.issubdtype(y.dtype, np.integer):
            raise ValueError(
                f"{split} split: need at least 2 classes and integer labels,"
                f" got {self.num_classes} and {y.dtype}"
            )
        if y.size and (y.min() < 0 or y.max() >= self.num_classes):
            raise ValueError(
                f"{split} split: labels must be in 0..{self.num_classes - 1}"
            )

    @property
    def num_features(self) -> int:
        """Return the number of feature columns."""
        return int(self.x_train.shape[1])

    @property
    def num_examples(self) -> int:
        """Return the number of training examples."""
        return len(self.y_train)


@runtime_checkable
class Trainer(Protocol):
    """A site's model, trained and evaluated on the site's data.

    Parameters in and out are lists of NumPy arrays in the order of
    ``architecture().names``, each of the declared shape and dtype. Inputs
    are never written to (they may be read-only buffers of a frame).
    """

    def architecture(self) -> Architecture:
        """Return the names, shapes and dtypes of the parameters (fixed)."""
        ...

    def get_parameters(self) -> NDArrays:
        """Return the current parameters, in the architecture's order."""
        ...

    def set_parameters(self, parameters: NDArrays) -> None:
        """Replace the current parameters.

        Raises:
            ValueError: if they do not match the architecture.
        """
        ...

    def fit(self, parameters: NDArrays, config: TrainConfig) -> FitResult:
        """Train from ``parameters`` on the local train split.

        Returns:
            ``(new_parameters, num_examples, metrics)``.

        Raises:
            ValueError: on parameters that do not match, or divergence.
        """
        ...

    def evaluate(self, parameters: NDArrays, config: TrainConfig) -> EvaluateResult:
        """Measure ``parameters`` on the local validation split.

        Returns:
            ``(loss, num_examples, metrics)``.

        Raises:
            ValueError: on parameters that do not match.
        """
        ...


@runtime_checkable
class Predictor(Protocol):
    """What a trainer may offer besides the protocol: its predictions.

    A client computes the summable evaluation statistics (confusion matrix,
    score histograms, regression sums: :mod:`fednet.learning.metrics`) from
    them; a trainer without ``predict`` sends only what ``evaluate`` returns.
    """

    def predict(self, parameters: NDArrays, x: NDArray) -> NDArray:
        """Return class probabilities ``(n, classes)``, or values ``(n,)``.

        Raises:
            ValueError: on parameters that do not match.
        """
        ...
