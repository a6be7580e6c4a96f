"""The training code fednet and Flower both run in the benchmarks, on the same data.

``fednet.learning`` and numpy are imported lazily: a synthetic (W2) process
never loads scikit-learn, and this module imports with the standard library
alone.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    import numpy as np
    import numpy.typing as npt

    from fednet.bench.spec import Workload

    NDArray = npt.NDArray[Any]

SYNTHETIC_OFFSET = 1e-3
"""A W2 client returns what it received plus this times its client number."""


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
