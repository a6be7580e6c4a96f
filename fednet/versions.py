"""What one model version of an asynchronous run gathers, until it is a RoundRecord."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field, replace

from fednet.config import RunConfig
from fednet.protocol import FitResult
from fednet.records import RoundRecord
from fednet.tally import RoundTally, stats_reading
from fednet.typing import ClientId, Metrics, NDArrays


@dataclass
class VersionTally:
    """The updates a version folded, with the staleness of each, and who failed.

    A fast client may send several updates into one version: ``clients`` of
    the record lists it once, its ``client_metrics`` count its ``updates``
    with their mean ``staleness`` and ``max_staleness``.
    """

    tally: RoundTally = field(default_factory=RoundTally)
    staleness: dict[ClientId, list[int]] = field(default_factory=dict)
    examples: dict[ClientId, int] = field(default_factory=dict)
    stale_refused: int = 0

    @classmethod
    def for_run(cls, config: RunConfig, classes: Sequence[str] | None) -> VersionTally:
        """Return a version's tally, reading evaluations' statistics for the run."""
        return cls(RoundTally(**stats_reading(config, classes)))

    def add_fit(self, client_id: ClientId, result: FitResult, staleness: int) -> None:
        """Count a folded update and how many versions old it was."""
        self.tally.add_fit(client_id, result)
        self.tally.num_examples += result.num_examples
        self.staleness.setdefault(client_id, []).append(staleness)
        self.examples[client_id] = (
            self.examples.get(client_id, 0) + result.num_examples
        )

    def refuse(self, client_id: ClientId, reason: str, *, stale: bool) -> None:
        """Count a refused update (invalid, or staler than allowed)."""
        self.tally.rejected[client_id] = reason
        self.stale_refused += stale

    def drop(self, client_id: ClientId) -> None:
        """Count a client that left or timed out while training."""
        self.tally.dropped.append(client_id)

    def summary(self) -> str:
        """Return how many updates of how many clients, and how stale (for logs)."""
        every = [s for values in self.staleness.values() for s in values]
        mean = sum(every) / len(every) if every else 0.0
        return (f"{len(every)} updates of {len(self.staleness)} clients, staleness"
                f" mean {mean:.2f} max {max(every, default=0)}")

    def record(self, version: int) -> RoundRecord:
        """Return the version's record (``server_round`` is the version)."""
        base = self.tally.record(version)
        every = [s for values in self.staleness.values() for s in values]
        fit_metrics: Metrics = {
            **base.fit_metrics,
            "updates": float(len(every)),
            "mean_staleness": sum(every) / len(every) if every else 0.0,
            "max_staleness": float(max(every, default=0)),
            "stale_refused": float(self.stale_refused),
        }
        client_metrics = dict(base.client_metrics)
        for cid, values in self.staleness.items():
            client_metrics[cid] = {
                **client_metrics.get(cid, {}),
                "num_examples": float(self.examples[cid]),
                "updates": float(len(values)),
                "staleness": sum(values) / len(values),
                "max_staleness": float(max(values)),
            }
        return replace(
            base,
            clients=tuple(sorted(self.staleness)),
            fit_metrics=fit_metrics,
            client_metrics=client_metrics,
        )


@dataclass
class VersionMade:
    """A new model version whose record waits for its federated evaluation."""

    version: int
    tally: VersionTally
    parameters: NDArrays
