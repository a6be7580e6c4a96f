"""Pure NumPy gossip: peers chosen per step, the relay a client averages, consensus.

In gossip mode (decentralised averaging, e.g. Lian et al., 2017, "Can
Decentralized Algorithms Outperform Centralized Algorithms?") every client
averages its own model with those of ``k`` peers and trains on the result.
Clients only dial out, so the coordinator relays the peers' models: a gossip
``fit`` carries ``k + 1`` models, the client's own first, then its peers' in
order (:func:`relay_arrays`, read back by :func:`average_relay`). The
coordinator never averages the clients' models except to evaluate their mean
and to measure how far apart they are (:func:`consensus_distance`).
"""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np

from fednet.exceptions import AggregationError, ProtocolError
from fednet.typing import ClientId, NDArray, NDArrays

MAX_GOSSIP_PEERS = 16
"""Most peers' models one gossip ``fit`` relays (RunConfig's ``gossip_peers``)."""
CLIENT_CAPABILITIES = ("gossip", "secagg", "secagg-aes128-ctr")
"""What this release's clients announce in ``hello``: ``gossip``, they can
average a relay of peers' models; ``secagg``, they take part in secure
aggregation (a client of an earlier release can neither: it would answer a
secure round's ``fit`` with its update in the clear); :data:`AES_CTR`, they
can draw secure aggregation's masks from AES-128-CTR."""
AES_CTR = "secagg-aes128-ctr"
"""Announced by a client that can mask with AES-128-CTR keystreams; a
coordinator uses them in a round only when every selected site announced it
(docs/privacy.md#cost), and ChaCha20 otherwise."""
SIGNED = "secagg-signed"
"""Announced by a client that holds a certificate (``--tls-cert``): it signs its
secure-aggregation advertisements and takes part in the consistency check
(docs/privacy.md#secure-aggregation). A coordinator runs a round signed only
when every selected site announced it."""
CAPABILITY_NEEDS = {
    "gossip": "an earlier release cannot average peers' models",
    "secagg": "an earlier release would send its update in the clear",
}
"""Why a run needs each capability, for the reason an ineligible client gets."""


def choose_peers(
    participants: Sequence[ClientId], k: int, seed: int, step: int
) -> dict[ClientId, tuple[ClientId, ...]]:
    """Return each participant's ``k`` distinct peers, never itself.

    The choice is seeded by ``[seed, step]`` and made over the participants in
    sorted order, so a resumed run picks what the uninterrupted one picked.

    Raises:
        AggregationError: if there are not ``k + 1`` distinct participants.
    """
    clients = sorted(set(participants))
    if k < 1 or len(clients) < k + 1:
        raise AggregationError(
            f"gossip with {k} peers needs at least {k + 1} clients, got {len(clients)}"
        )
    rng = np.random.default_rng([seed, step])
    peers = {}
    for index, client in enumerate(clients):
        others = clients[:index] + clients[index + 1:]
        picks = rng.choice(len(others), size=k, replace=False)
        peers[client] = tuple(others[int(i)] for i in picks)
    return peers


def relay_arrays(own: NDArrays, peers: Sequence[NDArrays]) -> NDArrays:
    """Return the arrays of a gossip ``fit``: ``own``, then each peer's model."""
    return [*own, *(a for model in peers for a in model)]


def average_relay(arrays: Sequence[NDArray], k: int) -> NDArrays:
    """Return the uniform mean of the ``k + 1`` models of a gossip ``fit``.

    Uniform, not weighted by examples: the models' plain mean is what
    consensus converges to and what the coordinator evaluates, and a peer
    cannot pull the others by claiming many examples.

    Raises:
        ProtocolError: if the arrays are not ``k + 1`` models of the same
            shapes and float dtypes, or hold a NaN or infinite value.
    """
    if k < 1 or not arrays or len(arrays) % (k + 1):
        raise ProtocolError(
            f"fit: a gossip relay of {k} peers needs a multiple of {k + 1} arrays,"
            f" got {len(arrays)}"
        )
    width = len(arrays) // (k + 1)
    models = [list(arrays[i * width:(i + 1) * width]) for i in range(k + 1)]
    own = models[0]
    for number, model in enumerate(models[1:], start=1):
        for a, b in zip(own, model):
            if a.shape != b.shape or a.dtype != b.dtype:
                raise ProtocolError(
                    f"fit: peer model {number} does not match the client's own"
                    f" ({b.dtype}{list(b.shape)} against {a.dtype}{list(a.shape)})"
                )
    for a in own:
        if a.dtype.kind != "f":
            raise ProtocolError(f"fit: a gossip relay holds {a.dtype} arrays")
    mean = mean_model(models)
    if not all(np.isfinite(a).all() for a in mean):
        raise ProtocolError("fit: a gossip relay holds a NaN or infinite value")
    return mean


def mean_model(models: Sequence[Sequence[NDArray]]) -> NDArrays:
    """Return the uniform mean of models of equal shapes, in the first's dtypes.

    Raises:
        AggregationError: if there are no models.
    """
    if not models:
        raise AggregationError("no models to average")
    out = []
    for index, first in enumerate(models[0]):
        total = np.zeros(first.shape, dtype=np.float64)
        for model in models:
            total += np.asarray(model[index], dtype=np.float64)
        total /= len(models)
        out.append(total.astype(first.dtype))
    return out


def consensus_distance(models: Sequence[Sequence[NDArray]]) -> float:
    """Return the mean L2 distance of the models to their mean (0 for one model).

    Each model counts as one vector of all its parameters; the arithmetic is
    float64 whatever the models' dtypes.

    Raises:
        AggregationError: if there are no models.
    """
    if not models:
        raise AggregationError("no models to measure")
    squares = np.zeros(len(models), dtype=np.float64)
    for index in range(len(models[0])):
        stack = np.stack([np.asarray(m[index], dtype=np.float64).reshape(-1)
                          for m in models])
        squares += ((stack - stack.mean(axis=0)) ** 2).sum(axis=1)
    return float(np.sqrt(squares).mean())
