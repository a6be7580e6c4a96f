"""Gossip arithmetic: peers, the relay a client averages, consensus, the replicas."""

from __future__ import annotations

import numpy as np
import pytest

from fednet.exceptions import AggregationError, ProtocolError
from fednet.gossip import average_relay, choose_peers, consensus_distance
from fednet.gossip import mean_model, relay_arrays
from fednet.replicas import Replicas, ReplicaUpdate
from fednet.typing import ClientId, NDArrays

CLIENTS = [ClientId(f"c{i}") for i in range(6)]


def _model(value: float, dtype: type = np.float32) -> NDArrays:
    return [np.full((2, 3), value, dtype), np.arange(1, 4, dtype=dtype) * value]


def test_peers_are_k_distinct_others_never_self() -> None:
    """Each client gets k distinct peers among the others."""
    peers = choose_peers(CLIENTS, 3, seed=5, step=2)
    assert sorted(peers) == CLIENTS
    for client, chosen in peers.items():
        assert len(chosen) == 3 and len(set(chosen)) == 3
        assert client not in chosen and set(chosen) <= set(CLIENTS)


def test_peers_are_seeded_by_seed_and_step_not_by_order() -> None:
    """The same seed and step choose the same peers whatever the input order."""
    first = choose_peers(CLIENTS, 2, seed=1, step=4)
    assert choose_peers(list(reversed(CLIENTS)), 2, seed=1, step=4) == first
    others = [choose_peers(CLIENTS, 2, seed=1, step=s) for s in range(5, 10)]
    assert any(o != first for o in others)
    assert choose_peers(CLIENTS, 2, seed=2, step=4) != first


def test_peers_spread_over_every_client_across_steps() -> None:
    """Over many steps every other client is some client's peer."""
    seen = {c: set() for c in CLIENTS}  # type: dict[ClientId, set[ClientId]]
    for step in range(1, 40):
        for client, chosen in choose_peers(CLIENTS, 2, 0, step).items():
            seen[client].update(chosen)
    assert all(seen[c] == set(CLIENTS) - {c} for c in CLIENTS)


def test_too_few_clients_for_k_peers_is_refused() -> None:
    """k peers need k + 1 clients."""
    with pytest.raises(AggregationError, match="at least 3 clients"):
        choose_peers(CLIENTS[:2], 2, 0, 1)


def test_relay_average_is_the_uniform_mean_of_the_k_plus_1_models() -> None:
    """average_relay(relay_arrays(own, peers)) == (own + sum(peers)) / (k + 1)."""
    own, peers = _model(1.0), [_model(2.0), _model(6.0)]
    mean = average_relay(relay_arrays(own, peers), 2)
    expected = [(a + b + c) / 3 for a, b, c in zip(own, *peers)]
    for got, want in zip(mean, expected):
        np.testing.assert_allclose(got, want, rtol=1e-6)
        assert got.dtype == np.float32


@pytest.mark.parametrize(
    "arrays, k, match",
    [
        (relay_arrays(_model(1.0), [_model(2.0)]), 2, "multiple of 3"),
        ([], 1, "multiple of 2"),
        (relay_arrays(_model(1.0), [[np.zeros((3, 2), np.float32),
                                     np.zeros(3, np.float32)]]), 1, "does not match"),
        (relay_arrays(_model(1.0), [_model(2.0, np.float64)]), 1, "does not match"),
        (relay_arrays(_model(1, np.int32), [_model(2, np.int32)]), 1, "int32"),
        (relay_arrays(_model(1.0), [_model(np.inf)]), 1, "NaN or infinite"),
    ],
)
def test_malformed_relays_raise_protocol_error(
    arrays: NDArrays, k: int, match: str
) -> None:
    """A relay of the wrong count, shapes, dtypes or values is refused."""
    with pytest.raises(ProtocolError, match=match):
        average_relay(arrays, k)


def test_consensus_distance_matches_numpy() -> None:
    """Mean over clients of the L2 norm of (model - mean), all arrays as one vector."""
    rng = np.random.default_rng(0)
    models = [[rng.normal(size=(4, 3)).astype(np.float32),
               rng.normal(size=5).astype(np.float32)] for _ in range(5)]
    flat = np.stack([np.concatenate([a.ravel() for a in m]) for m in models])
    flat = flat.astype(np.float64)
    expected = np.linalg.norm(flat - flat.mean(axis=0), axis=1).mean()
    assert consensus_distance(models) == pytest.approx(expected, rel=1e-12)
    mean = mean_model(models)
    np.testing.assert_allclose(np.concatenate([a.ravel() for a in mean]),
                               flat.mean(axis=0), rtol=1e-6)


def test_identical_models_are_at_consensus() -> None:
    """Equal models (or one model) have distance 0."""
    assert consensus_distance([_model(3.0)] * 4) == 0.0
    assert consensus_distance([_model(3.0)]) == 0.0


def test_replica_update_copies_the_model_it_validates() -> None:
    """The received arrays may be reused: the replica is a copy."""
    update = ReplicaUpdate(_model(0.0))
    received = _model(1.0)
    update.add(received, 10)
    received[0][:] = 9.0
    assert update.result()[0][0, 0] == 1.0 and update.total_examples == 10
    with pytest.raises(AggregationError):
        ReplicaUpdate(_model(0.0)).add([np.full((2, 3), np.nan, np.float32),
                                        np.zeros(3, np.float32)], 1)


def test_replicas_are_bounded_and_evict_absent_clients_first() -> None:
    """At most capacity models; an absent client's is forgotten before a sender's."""
    reference = _model(0.0)
    replicas = Replicas(reference, max_bytes=3 * sum(a.nbytes for a in reference))
    assert replicas.capacity == 3
    a, b, c, d = CLIENTS[:4]
    replicas.keep({a: _model(1.0), b: _model(2.0), c: _model(3.0)})
    assert replicas.participants([d, c, b, a]) == [a, b, c]  # known first
    replicas.keep({b: _model(4.0), c: _model(5.0), d: _model(6.0)})
    assert sorted(replicas.models) == [b, c, d]


def test_relay_of_a_newcomer_starts_from_its_first_peer() -> None:
    """Own model first; a client without one gets its first peer's."""
    replicas = Replicas(_model(0.0))
    a, b, c = CLIENTS[:3]
    replicas.keep({b: _model(2.0)})
    arrays = replicas.relay(a, [b, c])
    assert [float(x.flat[-1]) for x in arrays[1::2]] == [6.0, 6.0, 0.0]


def test_replicas_round_trip_through_their_checkpoint_state() -> None:
    """to_state then load_state restores every client's model."""
    replicas = Replicas(_model(0.0))
    replicas.keep({CLIENTS[1]: _model(1.0), CLIENTS[0]: _model(2.0)})
    again = Replicas(_model(0.0))
    again.load_state(replicas.to_state())
    assert sorted(again.models) == sorted(replicas.models)
    for client, model in replicas.models.items():
        for got, want in zip(again.models[client], model):
            np.testing.assert_array_equal(got, want)
    with pytest.raises(AggregationError):
        Replicas(_model(0.0)).load_state({"clients": np.array(["x"])})
