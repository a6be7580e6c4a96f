"""What a benchmark workload is: the one definition fednet and Flower both run."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

FLOAT32_BYTES = 4


@dataclass(frozen=True, kw_only=True)
class Workload:
    """One benchmark workload: what every client does, for how many rounds.

    Attributes:
        name: unique key, e.g. ``w1``, ``w2-p1e7-n10`` or ``load-n10000``.
        kind: ``accuracy`` (W1), ``system`` (W2), ``scale``, ``load`` (many
            idle clients, a few per round), ``soak`` (runs back to back) or
            ``stragglers`` (FedAvg then FedBuff with slow clients).
        task: ``digits`` or ``synthetic``.
        model: ``logreg`` or ``mlp`` (ignored by the synthetic task).
        num_clients: how many clients connect (all take part in every round
            unless ``clients_per_round`` says otherwise).
        rounds: FedAvg rounds (of each run).
        local_epochs: epochs of minibatch SGD per round on each client.
        batch_size: minibatch size.
        learning_rate: SGD step size.
        alpha: Dirichlet label-skew concentration, or None for the synthetic task.
        seed: seed of the partition, the initial model and every local RNG.
        synthetic_params: float32 parameters of the synthetic model (0 otherwise).
        hidden_units: width of the MLP's hidden layer.
        clients_per_round: clients sampled per round; 0 means all of them.
        runs: runs launched back to back on one coordinator (the soak).
        strategy: the RunConfig strategy, with its fields' defaults
            (docs/strategies.md); fednet only, Flower runs FedAvg.
    """

    name: str
    kind: str
    task: str
    model: str = "logreg"
    num_clients: int
    rounds: int
    local_epochs: int = 1
    batch_size: int = 32
    learning_rate: float = 0.1
    alpha: float | None = None
    seed: int = 0
    synthetic_params: int = 0
    hidden_units: int = 64
    clients_per_round: int = 0
    runs: int = 1
    strategy: str = "fedavg"

    @property
    def bytes_per_round(self) -> int:
        """Return the model bytes one round moves: down to and up from every client.

        Only defined by the parameter count for the synthetic task; 0 otherwise.
        """
        return self.synthetic_params * FLOAT32_BYTES * 2 * self.round_clients

    @property
    def round_clients(self) -> int:
        """Return how many clients each round selects."""
        return self.clients_per_round or self.num_clients

    def to_run_config(self) -> dict[str, Any]:
        """Return the fednet RunConfig JSON (``POST /api/runs``) of this workload."""
        return {
            "task": self.task,
            "model": self.model,
            "strategy": self.strategy,
            "rounds": self.rounds,
            "clients_per_round": self.round_clients,
            "min_clients": self.round_clients,
            "local_epochs": self.local_epochs,
            "batch_size": self.batch_size,
            "learning_rate": self.learning_rate,
            "seed": self.seed,
            "hidden_units": self.hidden_units,
            "synthetic_params": self.synthetic_params or 1000,
        }
