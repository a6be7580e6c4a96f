"""Strategies: which clients train each round and how their results combine."""

from __future__ import annotations

from collections.abc import Callable, Sequence
from functools import partial
from pathlib import Path
from typing import Protocol

import numpy as np

from fednet.aggregation import ClippedFedAvg, StreamingFedAvg
from fednet.central_dp import CentralDP
from fednet.config import RunConfig
from fednet.exceptions import AggregationError, ConfigError
from fednet.fedopt import ServerOptimizer, ServerState, optimizer_from_config
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

    def server_state(self) -> ServerState | None:
        """Return the state to checkpoint with the model, or None if there is none."""

    def load_server_state(self, state: ServerState, global_params: NDArrays) -> None:
        """Restore the state of a checkpoint (a resumed run)."""


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

    def server_state(self) -> ServerState | None:
        """Return None: FedAvg keeps nothing across rounds but the model."""
        return None

    def load_server_state(self, state: ServerState, global_params: NDArrays) -> None:
        """Refuse a state: FedAvg has none.

        Raises:
            AggregationError: always.
        """
        raise AggregationError(f"{self.name} keeps no server state")


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


class OptimizedFedAvg(StreamingFedAvg):
    """Streaming FedAvg whose mean a server optimiser turns into the next model.

    The mean is taken in place in the float64 accumulator, so the optimiser
    adds only its state to FedAvg's memory.

    Args:
        reference: the global model the round started from.
        optimizer: the strategy's optimiser (its state lives across rounds).
    """

    def __init__(self, reference: NDArrays, optimizer: ServerOptimizer) -> None:
        super().__init__(reference)
        self._optimizer = optimizer
        self._result: NDArrays | None = None

    def reset(self, reference: NDArrays) -> bool:
        """Start over for a new global model; False if its shapes differ."""
        self._result = None
        return super().reset(reference)

    def result(self) -> NDArrays:
        """Step the optimiser once (later calls return the same model).

        Raises:
            AggregationError: if no update was added.
        """
        if self._result is None:
            if not self.count:
                raise AggregationError("no updates to aggregate")
            for total in self._sums:
                total /= self.total_examples
            self._result = self._optimizer.step(self._reference, self._sums)
        return self._result


class FedOpt(FedAvg):
    """FedAvg's mean followed by a server optimiser (FedAdam, FedYogi, ...).

    The optimiser's state is checkpointed with each round's model
    (:meth:`server_state`) and restored when a run resumes.

    Args:
        optimizer: the server optimiser; its ``name`` is the strategy's.
        clients_per_round: how many clients train each round; 0 means all.
    """

    def __init__(
        self, optimizer: ServerOptimizer, *, clients_per_round: int = 0
    ) -> None:
        super().__init__(clients_per_round=clients_per_round)
        self.name = optimizer.name
        self.optimizer = optimizer
        self._fedopt: OptimizedFedAvg | None = None

    def aggregator(self, global_params: NDArrays) -> Aggregator:
        """Return the round's accumulator (reused while the shapes stay)."""
        if self._fedopt is None or not self._fedopt.reset(global_params):
            self._fedopt = OptimizedFedAvg(global_params, self.optimizer)
        return self._fedopt

    def server_state(self) -> ServerState | None:
        """Return the optimiser's state arrays (shared; they change next round)."""
        return self.optimizer.state()

    def load_server_state(self, state: ServerState, global_params: NDArrays) -> None:
        """Restore the optimiser's state from a checkpoint.

        Raises:
            AggregationError: if the state does not fit the model.
        """
        self.optimizer.load_state(state, global_params)


def strategy_from_config(
    config: RunConfig, *, scratch_dir: Path | None = None
) -> Strategy:
    """Build the strategy a RunConfig names (wrapped in central DP with ``dp=central``).

    Args:
        config: the run's configuration.
        scratch_dir: where the robust aggregators keep a round's updates
            (None: the system's temporary directory).

    Raises:
        ConfigError: for an unknown strategy name.
    """
    name, per_round = config.strategy, config.clients_per_round
    if config.dp != "off":  # fedavg and fedprox only; distributed: sampling, budget
        return CentralDP.from_config(config)
    if name == "fedavg":
        return FedAvg(clients_per_round=per_round)
    if name == "fedprox":
        return FedProx(clients_per_round=per_round)
    optimizer = optimizer_from_config(config)
    if optimizer is not None:
        return FedOpt(optimizer, clients_per_round=per_round)
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
