"""What one round gathers from its clients, until it becomes a RoundRecord."""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from typing import Any

from fednet.config import RunConfig
from fednet.learning import metrics as evaluation
from fednet.protocol import EvaluateResult, FitResult
from fednet.records import RoundRecord, WeightedMean
from fednet.runmetrics import recorded
from fednet.typing import ClientId, Metrics, NDArrays

CentralEvaluate = Callable[
    [NDArrays], tuple[float, Metrics, "evaluation.EvalStats | None"]
]
"""Evaluate a model on the coordinator's held-out test set: loss, metrics, stats."""


def stats_reading(config: RunConfig, classes: Sequence[str] | None) -> dict[str, Any]:
    """Return how a run's tallies read statistics: classes and the positive one.

    ``classes`` is () for a regression run, None without a schema.
    """
    if not classes:
        return {"wanted": recorded(config, True)}
    positive = config.positive_class
    return {
        "num_classes": len(classes),
        "positive": list(classes).index(positive) if positive in classes else None,
        "wanted": recorded(config, False),
    }


@dataclass
class RoundTally:
    """Who a round waits for, who reported, dropped out or was rejected, and how.

    ``pending`` clients are awaited; ``folding`` ones sent an update that is
    being validated and folded (the phase cannot close until they are done).
    ``num_classes`` (None for regression) reads evaluations' summable
    statistics (:mod:`fednet.learning.metrics`); the federated metrics come
    from their sum when every evaluation sent them, ``positive`` is the class
    of sensitivity and specificity.
    """

    selected: tuple[ClientId, ...] = ()
    pending: set[ClientId] = field(default_factory=set)
    folding: set[ClientId] = field(default_factory=set)
    reported: list[ClientId] = field(default_factory=list)
    dropped: list[ClientId] = field(default_factory=list)
    rejected: dict[ClientId, str] = field(default_factory=dict)
    evaluated: list[ClientId] = field(default_factory=list)
    num_examples: int = 0
    test: tuple[float | None, float | None] = (None, None)
    epsilon: float | None = None
    dropouts_recovered: int | None = None  # secure aggregation only
    quantization_error: float | None = None  # secure aggregation only
    num_classes: int | None = None
    positive: int | None = None
    wanted: frozenset[str] = frozenset()
    _test_metrics: Metrics = field(default_factory=dict)
    _stats: evaluation.EvalStats | None = None
    _test_stats: evaluation.EvalStats | None = None
    _without_stats: int = 0
    _fit_metrics: WeightedMean = field(default_factory=WeightedMean)
    _eval_metrics: WeightedMean = field(default_factory=WeightedMean)
    _eval_loss: WeightedMean = field(default_factory=WeightedMean)
    _client_metrics: dict[ClientId, Metrics] = field(default_factory=dict)

    @property
    def waiting(self) -> bool:
        """Return whether results are still awaited or being folded."""
        return bool(self.pending or self.folding)

    def drop_pending(self) -> list[ClientId]:
        """Stop waiting for every pending client; return them, sorted."""
        gone = sorted(self.pending)
        self.pending.clear()
        return gone

    def add_fit(self, client_id: ClientId, result: FitResult) -> None:
        """Count an accepted update's metrics, weighted by its examples."""
        self.reported.append(client_id)
        self._fit_metrics.add(result.metrics, result.num_examples)
        self._client_metrics[client_id] = {
            **result.metrics,
            "num_examples": result.num_examples,
        }

    def add_evaluation(self, client_id: ClientId, result: EvaluateResult) -> str | None:
        """Count a client's evaluation of the new model (none if it had no data).

        Returns:
            Why the evaluation was refused (statistics that do not add up to
            its rows), or None.
        """
        if result.num_examples <= 0:
            return None
        named, stats = self._split(result.metrics, result.num_examples)
        if isinstance(stats, str):
            return f"evaluate_result: {stats}"
        self.evaluated.append(client_id)
        self._eval_loss.add({"loss": result.loss}, result.num_examples)
        self._eval_metrics.add(named, result.num_examples)
        entry = self._client_metrics.setdefault(client_id, {})
        entry["val_loss"] = result.loss
        if stats is not None:
            named = {**named, **self._pick(self._derive(stats))}
            if self._stats is None:
                self._stats = stats
            else:
                self._stats.add(stats)  # type: ignore[arg-type]
        else:
            self._without_stats += 1
        entry.update({f"val_{k}": v for k, v in named.items()})
        return None

    def set_test(
        self, loss: float, metrics: Metrics, stats: evaluation.EvalStats | None
    ) -> None:
        """Keep the coordinator's own evaluation on its held-out test set."""
        named = dict(metrics)
        if stats is not None:
            named.update(self._derive(stats))
            self._test_stats = stats
        self.test = (loss, named.get("accuracy"))
        self._test_metrics = self._pick({**named, "log_loss": loss})

    def _split(
        self, metrics: Metrics, rows: int
    ) -> tuple[Metrics, evaluation.EvalStats | str | None]:
        """Part an evaluation's metrics into named ones and its statistics."""
        named = {k: v for k, v in metrics.items()
                 if not k.startswith(evaluation.STAT_PREFIX)}
        if len(named) == len(metrics):
            return named, None
        try:
            return named, evaluation.from_wire(metrics, rows, self.num_classes)
        except ValueError as e:
            return named, str(e)

    def _federated(self) -> tuple[Metrics, evaluation.EvalStats | None]:
        """Return every federated metric, exact when every site sent statistics.

        Accuracy is always among them (the round's ``federated_accuracy``),
        whichever metrics the run records.
        """
        loss = self._eval_loss.result().get("loss")
        out = {} if loss is None else {"log_loss": loss}
        accuracy = self._eval_metrics.result().get("accuracy")
        if accuracy is not None:
            out["accuracy"] = accuracy
        if self._stats is None or self._without_stats:
            return out, None
        return {**out, **self._derive(self._stats)}, self._stats

    def _derive(self, stats: evaluation.EvalStats) -> Metrics:
        return evaluation.derive(stats, self.positive)

    def _pick(self, metrics: Metrics) -> Metrics:
        """Keep the metrics the run records."""
        return {k: v for k, v in metrics.items() if k in self.wanted}

    def record(self, server_round: int) -> RoundRecord:
        """Return the round's record."""
        federated, stats = self._federated()
        if self._test_stats is not None:
            stats = self._test_stats
        return RoundRecord(
            server_round=server_round,
            clients=tuple(sorted(self.reported)),
            num_examples=self.num_examples,
            fit_metrics=self._fit_metrics.result(),
            federated_loss=self._eval_loss.result().get("loss"),
            federated_accuracy=federated.get("accuracy"),
            evaluated_clients=tuple(self.evaluated),
            test_loss=self.test[0],
            test_accuracy=self.test[1],
            dropped=tuple(self.dropped),
            rejected=dict(self.rejected),
            client_metrics=dict(self._client_metrics),
            epsilon=self.epsilon,
            dropouts_recovered=self.dropouts_recovered,
            quantization_error=self.quantization_error,
            metrics=self._pick(federated),
            test_metrics=dict(self._test_metrics),
            confusion=_confusion(stats),
        )


def _confusion(
    stats: evaluation.EvalStats | None,
) -> tuple[tuple[int, ...], ...] | None:
    """Return a classifier's confusion matrix as rows of counts (None otherwise)."""
    if not isinstance(stats, evaluation.ClassStats):
        return None
    return tuple(tuple(int(v) for v in row) for row in stats.confusion)
