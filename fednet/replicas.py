"""The clients' latest models a gossip run keeps, bounded, and their checkpoint form."""

from __future__ import annotations

from collections.abc import Mapping, Sequence

import numpy as np

from fednet.aggregation import check_update
from fednet.exceptions import AggregationError
from fednet.gossip import relay_arrays
from fednet.typing import ClientId, NDArray, NDArrays

MAX_REPLICA_BYTES = 1 << 29
"""Most bytes of clients' models a gossip run keeps (N x 4P for float32
models: 512 MiB). A step holds up to twice as much (the kept models and the
step's new ones); clients beyond ``MAX_REPLICA_BYTES // model bytes`` do not
take part."""

_CLIENTS_KEY = "clients"


class ReplicaUpdate:
    """One client's model on its way into the replicas (the Aggregator a Fold runs).

    It validates the model against the run's reference and keeps a copy: the
    received arrays live in buffers that are reused once the fold is done.

    Args:
        reference: a model of the run (shapes and dtypes).
    """

    def __init__(self, reference: NDArrays) -> None:
        self._reference = reference
        self.model: NDArrays | None = None
        self.count = 0
        self.total_examples = 0

    def add(self, update: NDArrays, num_examples: int) -> None:
        """Validate the model and keep a copy of it.

        Raises:
            AggregationError: for a model that does not match or is not finite.
        """
        check_update(self._reference, update, num_examples)
        self.model = [np.array(a, copy=True) for a in update]
        self.count += 1
        self.total_examples += num_examples

    def result(self) -> NDArrays:
        """Return the copied model.

        Raises:
            AggregationError: if none was added.
        """
        if self.model is None:
            raise AggregationError("no model was received")
        return self.model


class Replicas:
    """Each client's latest valid model, at most ``capacity`` of them.

    Models are replaced, never written to, so a ``fit`` still being sent
    keeps the arrays it relays. Clients absent from a step keep their model
    (they may come back) until room is needed, least recently updated first.

    Args:
        reference: the run's start model (shapes, dtypes, size).
        max_bytes: the bound on the models kept.
    """

    def __init__(self, reference: NDArrays, max_bytes: int = MAX_REPLICA_BYTES) -> None:
        self.reference = reference
        self.models: dict[ClientId, NDArrays] = {}
        self.capacity = max(1, max_bytes // max(1, sum(p.nbytes for p in reference)))

    def participants(self, available: Sequence[ClientId]) -> list[ClientId]:
        """Return a step's clients, sorted: those with a model first, to capacity."""
        clients = sorted(set(available))
        known = [c for c in clients if c in self.models]
        ordered = known + [c for c in clients if c not in self.models]
        return sorted(ordered[: self.capacity])

    def relay(self, client: ClientId, peers: Sequence[ClientId]) -> NDArrays:
        """Return the arrays a gossip ``fit`` carries: the client's model, its peers'.

        A peer without a model stands for the start model; a client without
        one starts from its first peer's model.
        """
        peer_models = [self.models.get(p, self.reference) for p in peers]
        return relay_arrays(self.models.get(client, peer_models[0]), peer_models)

    def keep(self, incoming: Mapping[ClientId, NDArrays]) -> None:
        """Replace the senders' models; forget absent ones beyond capacity."""
        for client, model in incoming.items():
            self.models.pop(client, None)
            self.models[client] = model  # dicts keep order: most recent last
        excess = len(self.models) - self.capacity
        absent = [c for c in self.models if c not in incoming][: max(0, excess)]
        for client in absent:
            del self.models[client]

    def to_state(self) -> dict[str, NDArray]:
        """Return the models as named arrays for a checkpoint."""
        ids = sorted(self.models)
        state: dict[str, NDArray] = {_CLIENTS_KEY: np.array(ids, dtype=np.str_)}
        for number, client in enumerate(ids):
            for index, array in enumerate(self.models[client]):
                state[f"m{number}_{index}"] = array
        return state

    def load_state(self, state: Mapping[str, NDArray]) -> None:
        """Take the models of :meth:`to_state`'s arrays (a resumed run).

        Raises:
            AggregationError: if a model is missing or does not fit the run's.
        """
        names = state.get(_CLIENTS_KEY)
        if names is None:
            raise AggregationError("the gossip state names no clients")
        models: dict[ClientId, NDArrays] = {}
        for number, client in enumerate(names.tolist()):
            try:
                model = [state[f"m{number}_{i}"] for i in range(len(self.reference))]
            except KeyError as e:
                raise AggregationError(f"the gossip state lacks {e}") from None
            check_update(self.reference, model, 1)
            models[ClientId(str(client))] = model
        self.models = models
