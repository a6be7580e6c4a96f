"""What one round gathers from its clients, until it becomes a RoundRecord."""

from __future__ import annotations

from dataclasses import dataclass, field

from fednet.protocol import EvaluateResult, FitResult
from fednet.records import RoundRecord, WeightedMean
from fednet.typing import ClientId, Metrics


@dataclass
class RoundTally:
    """Who a round waits for, who reported, dropped out or was rejected, and how.

    ``pending`` clients are awaited; ``folding`` ones sent an update that is
    being validated and folded (the phase cannot close until they are done).
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

    def add_evaluation(self, client_id: ClientId, result: EvaluateResult) -> None:
        """Count a client's evaluation of the new model (none if it had no data)."""
        if result.num_examples <= 0:
            return
        self.evaluated.append(client_id)
        self._eval_loss.add({"loss": result.loss}, result.num_examples)
        self._eval_metrics.add(result.metrics, result.num_examples)
        entry = self._client_metrics.setdefault(client_id, {})
        entry["val_loss"] = result.loss
        entry.update({f"val_{k}": v for k, v in result.metrics.items()})

    def record(self, server_round: int) -> RoundRecord:
        """Return the round's record."""
        return RoundRecord(
            server_round=server_round,
            clients=tuple(sorted(self.reported)),
            num_examples=self.num_examples,
            fit_metrics=self._fit_metrics.result(),
            federated_loss=self._eval_loss.result().get("loss"),
            federated_accuracy=self._eval_metrics.result().get("accuracy"),
            evaluated_clients=tuple(self.evaluated),
            test_loss=self.test[0],
            test_accuracy=self.test[1],
            dropped=tuple(self.dropped),
            rejected=dict(self.rejected),
            client_metrics=dict(self._client_metrics),
            epsilon=self.epsilon,
        )
