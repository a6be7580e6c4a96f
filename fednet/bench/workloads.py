"""Benchmark workloads W1, W2 and Scale, defined once for fednet and Flower.

Both systems run the same local training code on the same data, so only the
system differs. ``fednet.learning`` is imported lazily: a synthetic (W2)
process never loads scikit-learn, and this module imports with the standard
library alone.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    import numpy as np
    import numpy.typing as npt

    NDArray = npt.NDArray[Any]

SYNTHETIC_OFFSET = 1e-3
"""A W2 client returns what it received plus this times its client number."""

FLOAT32_BYTES = 4


@dataclass(frozen=True, kw_only=True)
class Workload:
    """One benchmark workload: what every client does, for how many rounds.

    Attributes:
        name: unique key, e.g. ``w1`` or ``w2-p1e7-n10``.
        kind: ``accuracy`` (W1), ``system`` (W2) or ``scale``.
        task: ``digits`` or ``synthetic``.
        model: ``logreg`` or ``mlp`` (ignored by the synthetic task).
        num_clients: how many clients take part in every round.
        rounds: FedAvg rounds.
        local_epochs: epochs of minibatch SGD per round on each client.
        batch_size: minibatch size.
        learning_rate: SGD step size.
        alpha: Dirichlet label-skew concentration, or None for the synthetic task.
        seed: seed of the partition, the initial model and every local RNG.
        synthetic_params: float32 parameters of the synthetic model (0 otherwise).
        hidden_units: width of the MLP's hidden layer.
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

    @property
    def bytes_per_round(self) -> int:
        """Return the model bytes one round moves: down to and up from every client.

        Only defined by the parameter count for the synthetic task; 0 otherwise.
        """
        return self.synthetic_params * FLOAT32_BYTES * 2 * self.num_clients

    def to_run_config(self) -> dict[str, Any]:
        """Return the fednet RunConfig JSON (``POST /api/runs``) of this workload."""
        return {
            "task": self.task,
            "model": self.model,
            "strategy": "fedavg",
            "rounds": self.rounds,
            "clients_per_round": self.num_clients,
            "min_clients": self.num_clients,
            "local_epochs": self.local_epochs,
            "batch_size": self.batch_size,
            "learning_rate": self.learning_rate,
            "seed": self.seed,
            "hidden_units": self.hidden_units,
            "synthetic_params": self.synthetic_params or 1000,
        }


W1 = Workload(
    name="w1",
    kind="accuracy",
    task="digits",
    model="logreg",
    num_clients=10,
    rounds=20,
    local_epochs=5,
    batch_size=32,
    learning_rate=0.1,
    alpha=0.5,
    seed=0,
)

W2_PARAMS: tuple[int, ...] = (1_000_000, 10_000_000)
W2_CLIENTS: tuple[int, ...] = (10, 20, 50)
W2_ROUNDS = 3


def _p_label(num_params: int) -> str:
    exponent = len(str(num_params)) - 1
    if num_params == 10**exponent:
        return f"1e{exponent}"
    return str(num_params)


def make_w2(num_params: int, num_clients: int, rounds: int = W2_ROUNDS) -> Workload:
    """Return the W2 (system cost) workload for P parameters and N clients."""
    return Workload(
        name=f"w2-p{_p_label(num_params)}-n{num_clients}",
        kind="system",
        task="synthetic",
        num_clients=num_clients,
        rounds=rounds,
        synthetic_params=num_params,
    )


W2: tuple[Workload, ...] = tuple(make_w2(p, n) for p in W2_PARAMS for n in W2_CLIENTS)

SCALE = Workload(
    name="scale",
    kind="scale",
    task="synthetic",
    num_clients=1000,
    rounds=3,
    synthetic_params=10_000,
)

WORKLOADS: dict[str, Workload] = {w.name: w for w in (W1, *W2, SCALE)}


def get_workload(name: str) -> Workload:
    """Return a workload by name; ``w2-p<P>-n<N>`` builds any W2 variant.

    Raises:
        KeyError: if the name is neither known nor a W2 pattern.
    """
    if name in WORKLOADS:
        return WORKLOADS[name]
    if name.startswith("w2-p") and "-n" in name:
        p_text, n_text = name[4:].split("-n", 1)
        return make_w2(int(float(p_text)), int(n_text))
    raise KeyError(f"unknown workload {name!r}; known: {', '.join(WORKLOADS)}")


@dataclass(frozen=True)
class HoldOut:
    """The centralised hold-out of a task, with its dimensions."""

    x: NDArray
    y: NDArray
    num_features: int
    num_classes: int


def load_client_data(workload: Workload, client_number: int) -> Any:
    """Load client ``client_number`` (1-based) of ``workload``'s partition.

    Returns:
        The ``fednet.learning.datasets.ClientData`` of that client.
    """
    from fednet.learning import datasets

    return datasets.load_builtin_partition(
        workload.task,
        (client_number, workload.num_clients),
        alpha=workload.alpha,
        seed=workload.seed,
    )


def load_test_set(workload: Workload) -> HoldOut:
    """Load the centralised test hold-out of ``workload``'s task."""
    from fednet.learning import datasets

    x_test, y_test, schema = datasets.load_builtin_test(workload.task)
    return HoldOut(
        x=x_test,
        y=y_test,
        num_features=len(schema.feature_names),
        num_classes=len(schema.classes),
    )


def initial_params(
    workload: Workload, test_set: HoldOut | None = None
) -> list[NDArray]:
    """Return the seeded initial global model of ``workload``.

    Args:
        workload: the workload.
        test_set: the task's test set, for its dimensions (loaded if omitted;
            unused by the synthetic task).
    """
    if workload.task == "synthetic":
        return synthetic_params(workload.synthetic_params, workload.seed)
    from fednet.learning import models

    dims = test_set if test_set is not None else load_test_set(workload)
    return list(
        models.init_params(
            workload.model,
            dims.num_features,
            dims.num_classes,
            hidden_units=workload.hidden_units,
            seed=workload.seed,
        )
    )


def synthetic_params(num_params: int, seed: int) -> list[NDArray]:
    """Return the synthetic model: one float32 vector of ``num_params`` values."""
    import numpy as np

    rng = np.random.default_rng(seed)
    return [rng.standard_normal(num_params, dtype=np.float32)]


def synthetic_update(params: list[NDArray], client_number: int) -> list[NDArray]:
    """Return what a W2 client sends back: ``params + 1e-3 * client_number``."""
    import numpy as np

    offset = np.float32(SYNTHETIC_OFFSET * client_number)
    return [np.add(p, offset, dtype=p.dtype) for p in params]


def local_rng(
    workload: Workload, client_number: int, server_round: int
) -> np.random.Generator:
    """Return the RNG of one client's local training in one round."""
    import numpy as np

    return np.random.default_rng([workload.seed, client_number, server_round])


def local_fit(
    workload: Workload,
    params: list[NDArray],
    data: Any,
    client_number: int,
    server_round: int,
) -> tuple[list[NDArray], int, dict[str, float]]:
    """Train one client for one round, exactly as both systems do.

    Args:
        workload: the workload (epochs, batch size, learning rate).
        params: the global model received.
        data: the client's ``ClientData``.
        client_number: 1-based client number (seeds the RNG).
        server_round: 1-based round (seeds the RNG).

    Returns:
        The new parameters, the number of training examples, and the metrics.
    """
    from fednet.learning import models

    new_params, metrics = models.fit(
        workload.model,
        params,
        data.x_train,
        data.y_train,
        num_classes=len(data.classes),
        epochs=workload.local_epochs,
        batch_size=workload.batch_size,
        learning_rate=workload.learning_rate,
        rng=local_rng(workload, client_number, server_round),
    )
    return list(new_params), int(data.num_examples), dict(metrics)


def evaluate_global(
    workload: Workload, params: list[NDArray], test_set: HoldOut
) -> tuple[float, float]:
    """Return (loss, accuracy) of the global model on the centralised test set."""
    from fednet.learning import models

    loss, accuracy = models.evaluate(
        workload.model, params, test_set.x, test_set.y, num_classes=test_set.num_classes
    )
    return float(loss), float(accuracy)
