"""Strategies: which clients train each round and how their results combine."""

from __future__ import annotations

from collections.abc import Callable, Sequence
from functools import partial
from pathlib import Path
from typing import Protocol

import numpy as np

from fednet.aggregation import ClippedFedAvg, StreamingFedAvg
from fednet.config import RunConfig
from fednet.exceptions import ConfigError
from fednet.robust import FedMedian, FedTrimmedAvg, Krum
from fednet.typing import ClientId, NDArrays


class Aggregator(Protocol):
    """Collects one round's updates and produces the next global model."""

    count: int
    total_examples: int

    def add(self, update: NDArrays, num_examples: int) -> None:
        """Validate and take in one client's update."""

    def result(self) -> NDArrays:
        """Return the aggregated parameters."""


class Strategy(Protocol):
    """A federated optimisation strategy."""

    name: str

    def sample_clients(
        self, available: Sequence[ClientId], rng: np.random.Generator
    ) -> list[ClientId]:
        """Choose the clients that train in a round."""

    def aggregator(self, global_params: NDArrays) -> Aggregator:
        """Return a fresh aggregator for one round."""


class FedAvg:
    """Federated averaging, weighted by examples, aggregated as results stream in.

    Args:
        clients_per_round: how many clients train each round; 0 means all.
    """

    name = "fedavg"

    def __init__(self, *, clients_per_round: int = 0) -> None:
        self.clients_per_round = clients_per_round
        self._accumulator: StreamingFedAvg | None = None

    def sample_clients(
        self, available: Sequence[ClientId], rng: np.random.Generator
    ) -> list[ClientId]:
        """Sample ``clients_per_round`` clients uniformly without replacement."""
        ordered = sorted(available)
        if not self.clients_per_round or self.clients_per_round >= len(ordered):
            return ordered
        picks = rng.choice(len(ordered), size=self.clients_per_round, replace=False)
        return sorted(ordered[int(i)] for i in picks)

    def aggregator(self, global_params: NDArrays) -> Aggregator:
        """Return a streaming FedAvg accumulator shaped like the global model.

        The previous round's accumulator is zeroed and reused when the model
        keeps its shapes: a fresh float64 buffer of a 10^7-parameter model
        costs 20,000 page faults every round.
        """
        if self._accumulator is None or not self._accumulator.reset(global_params):
            self._accumulator = StreamingFedAvg(global_params)
        return self._accumulator


class FedProx(FedAvg):
    """FedAvg on the server; clients add FedProx's proximal term.

    The term's weight travels as ``proximal_mu`` in the fit config (Li et al.,
    2020, "Federated Optimization in Heterogeneous Networks").
    """

    name = "fedprox"


class PerRound(FedAvg):
    """Sample like FedAvg; aggregate with a fresh aggregator from ``make``.

    Args:
        name: the strategy's name in RunConfig.
        make: builds a round's aggregator from the global model.
        clients_per_round: how many clients train each round; 0 means all.
    """

    def __init__(
        self,
        name: str,
        make: Callable[[NDArrays], Aggregator],
        *,
        clients_per_round: int = 0,
    ) -> None:
        super().__init__(clients_per_round=clients_per_round)
        self.name = name
        self._make = make

    def aggregator(self, global_params: NDArrays) -> Aggregator:
        """Return a new aggregator for the round."""
        return self._make(global_params)


def strategy_from_config(
    config: RunConfig, *, scratch_dir: Path | None = None
) -> Strategy:
    """Build the strategy a RunConfig names.

    Args:
        config: the run's configuration.
        scratch_dir: where the robust aggregators keep a round's updates
            (None: the system's temporary directory).

    Raises:
        ConfigError: for an unknown strategy name.
    """
    name, per_round = config.strategy, config.clients_per_round
    if name == "fedavg":
        return FedAvg(clients_per_round=per_round)
    if name == "fedprox":
        return FedProx(clients_per_round=per_round)
    makers: dict[str, Callable[[NDArrays], Aggregator]] = {
        "fedmedian": partial(FedMedian, directory=scratch_dir),
        "fedtrimmedavg": partial(
            FedTrimmedAvg, directory=scratch_dir, trim_fraction=config.trim_fraction
        ),
        "krum": partial(
            Krum, directory=scratch_dir, num_malicious=config.num_malicious
        ),
        "multikrum": partial(
            Krum, directory=scratch_dir, num_malicious=config.num_malicious, multi=True
        ),
        "fedavg_clipped": partial(ClippedFedAvg, clip_norm=config.clip_norm),
    }
    if name in makers:
        return PerRound(name, makers[name], clients_per_round=per_round)
    raise ConfigError({"strategy": f"unknown strategy {config.strategy!r}"})
