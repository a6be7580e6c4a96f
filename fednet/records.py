"""What the round machine produces: outgoing messages, round records, run events."""

from __future__ import annotations

import math
import sys
from dataclasses import dataclass, field
from typing import Protocol, Union

from fednet.learning.metrics import score
from fednet.protocol import Message
from fednet.typing import ClientId, Metrics, NDArrays


@dataclass(frozen=True)
class Outgoing:
    """One message for one or more clients (serialised once, sent to each)."""

    recipients: tuple[ClientId, ...]
    message: Message


@dataclass(frozen=True)
class RoundRecord:
    """What one completed round produced, ready for the store and the API."""

    server_round: int
    clients: tuple[ClientId, ...]
    num_examples: int
    fit_metrics: Metrics
    federated_loss: float | None
    federated_accuracy: float | None
    evaluated_clients: tuple[ClientId, ...]
    test_loss: float | None
    test_accuracy: float | None
    dropped: tuple[ClientId, ...]
    rejected: dict[ClientId, str]
    client_metrics: dict[ClientId, Metrics]
    epsilon: float | None = None  # spent once this round is played (dp runs)
    dropouts_recovered: int | None = None  # secure aggregation's (None: off)
    # secure aggregation: the most encoding moved a coordinate (None: off)
    quantization_error: float | None = None
    # Derived from summable statistics (fednet.learning.metrics): federated,
    # on the coordinator's test set, and the confusion matrix of the latter
    # when there is one, else of the former.
    metrics: Metrics = field(default_factory=dict)
    test_metrics: Metrics = field(default_factory=dict)
    confusion: tuple[tuple[int, ...], ...] | None = None

    @property
    def num_clients(self) -> int:
        """Return how many clients' updates went into the new global model."""
        return len(self.clients)

    @property
    def loss(self) -> float | None:
        """Return the held-out test loss when there is one, else the federated loss."""
        return self.test_loss if self.test_loss is not None else self.federated_loss

    @property
    def accuracy(self) -> float | None:
        """Return the held-out test accuracy when there is one, else federated."""
        if self.test_accuracy is not None:
            return self.test_accuracy
        return self.federated_accuracy

    def score(self, metric: str) -> float | None:
        """Return how well the round did by ``metric`` (see :func:`round_score`)."""
        return round_score(self, metric)


class ScoredRound(Protocol):
    """What :func:`round_score` reads of a round (a record or a stored view)."""

    @property
    def accuracy(self) -> float | None: ...
    @property
    def loss(self) -> float | None: ...
    @property
    def metrics(self) -> Metrics: ...
    @property
    def test_metrics(self) -> Metrics: ...


def round_score(round_: ScoredRound, metric: str) -> float | None:
    """Return a round's ``metric`` oriented so that higher is better, or None.

    The test set's figure when there is one, else the federated one;
    ``accuracy`` and ``loss`` read as the round's own.
    """
    if metric in ("accuracy", "loss"):
        value = round_.accuracy if metric == "accuracy" else round_.loss
        return None if value is None else score({metric: value}, metric)
    return score(round_.test_metrics or round_.metrics, metric)


@dataclass(frozen=True)
class RoundFinished:
    """A round completed; ``parameters`` is the new global model."""

    record: RoundRecord
    parameters: NDArrays = field(repr=False)


@dataclass(frozen=True)
class RunFinished:
    """The run is over: its last round completed, or ``reason`` says why it ended early.

    An early end (the privacy budget) is a finish, not a failure.
    """

    reason: str | None = None


@dataclass(frozen=True)
class RunFailed:
    """The run cannot go on; ``reason`` says why."""

    reason: str


Event = Union[RoundFinished, RunFinished, RunFailed]

_FLOAT_MAX = sys.float_info.max


class WeightedMean:
    """Example-weighted means of metrics reported by several clients.

    Each mean is kept as a running mean, a convex combination of the values
    seen, never as a sum of ``value * weight``: it stays between the smallest
    and the largest value, so finite values give a finite mean even where
    their sum would overflow (e.g. ``1e308`` twice). It is clamped to the
    finite range against the last rounding at the very edge of it. A value
    that is not a finite float, and a weight that is not positive, are
    skipped: they say nothing a mean could use.
    """

    def __init__(self) -> None:
        self.means: dict[str, float] = {}
        self.weights: dict[str, int] = {}

    def add(self, metrics: Metrics, weight: int) -> None:
        """Add one client's metrics with its weight."""
        if weight <= 0:
            return
        for key, raw in metrics.items():
            try:
                value = float(raw)
            except OverflowError:  # an int beyond the float range
                continue
            if not math.isfinite(value):
                continue
            total = self.weights.get(key, 0) + weight
            kept = self.means.get(key, 0.0) * ((total - weight) / total)
            mean = kept + value * (weight / total)
            self.means[key] = max(-_FLOAT_MAX, min(_FLOAT_MAX, mean))
            self.weights[key] = total

    def result(self) -> Metrics:
        """Return the weighted mean of every metric seen (always finite)."""
        return dict(self.means)
