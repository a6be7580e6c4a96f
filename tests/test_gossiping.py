"""The gossip machine, driven by events with no network or clock."""

from __future__ import annotations

import numpy as np
import pytest

from fednet.config import RunConfig
from fednet.exceptions import ConfigError, RoundStateError
from fednet.gossip import average_relay, choose_peers, consensus_distance
from fednet.gossiping import GossipMachine
from fednet.machine import Phase, RoundCheckpoint
from fednet.protocol import Error, Evaluate, EvaluateResult, Fit, FitResult
from fednet.records import RunFailed, RunFinished
from fednet.typing import ClientId, NDArrays

A, B, C, D = (ClientId(c) for c in "abcd")
START: NDArrays = [np.zeros(2, np.float32)]


def _machine(**overrides: object) -> GossipMachine:
    options: dict[str, object] = {
        "mode": "gossip", "rounds": 3, "min_clients": 3, "gossip_peers": 2,
        "seed": 4,
    }
    extra = {k: overrides.pop(k) for k in ("state", "next_step", "max_replica_bytes",
                                           "central_evaluate") if k in overrides}
    federated = bool(overrides.pop("federated_evaluate", False))
    options.update(overrides)
    return GossipMachine(
        run_id=7, config=RunConfig.from_dict(options), parameters=START,
        classes=("0", "1"), federated_evaluate=federated, **extra,  # type: ignore
    )


def _fits(m: GossipMachine) -> dict[ClientId, Fit]:
    """Drain the messages; return the Fit each client was sent."""
    sent: dict[ClientId, Fit] = {}
    for out in m.messages_to_send():
        if isinstance(out.message, Fit):
            (client,) = out.recipients
            sent[client] = out.message
    return sent


def _report(m: GossipMachine, client: ClientId, step: int, value: float) -> bool:
    """Send a client's trained model (all ``value``); return whether it was taken."""
    params: NDArrays = [np.full(2, value, np.float32)]
    fold = m.accept_update(client, FitResult(7, step, 10, {"train_loss": 1.0}, params))
    if fold is None:
        return False
    fold.run()
    m.update_folded(fold)
    return True


def _checkpoints(m: GossipMachine) -> list[RoundCheckpoint]:
    return [e for e in m.events() if isinstance(e, RoundCheckpoint)]


def test_each_client_gets_its_model_and_k_peers_models() -> None:
    """Step 1: one fit per client with k + 1 models and gossip_peers in its config."""
    m = _machine()
    assert m.clients_wanted == 3
    m.clients_available([C, A, B, D])
    sent = _fits(m)
    assert sorted(sent) == [A, B, C, D]
    for fit in sent.values():
        assert fit.server_round == 1 and fit.config.peer_models == 2
        assert len(fit.parameters) == 3  # own + 2 peers, one array each
    assert m.wait is not None and m.wait.key == "fit: step 1"


def test_peers_relayed_are_the_seeded_choice_of_the_latest_models() -> None:
    """Step 2 relays each client's own model, then its seeded peers' models."""
    m = _machine()
    m.clients_available([A, B, C, D])
    _fits(m)
    values = {A: 1.0, B: 2.0, C: 3.0, D: 4.0}
    for client, value in values.items():
        assert _report(m, client, 1, value)
    (checkpoint,) = _checkpoints(m)
    m.clients_available([A, B, C, D])
    sent = _fits(m)
    peers = choose_peers([A, B, C, D], 2, seed=4, step=2)
    for client, fit in sent.items():
        relayed = [float(a[0]) for a in fit.parameters]
        assert relayed == [values[client], *(values[p] for p in peers[client])]
        mean = average_relay(fit.parameters, 2)[0]
        np.testing.assert_allclose(mean, np.mean(relayed), rtol=1e-6)


def test_step_record_carries_consensus_distance_and_the_mean() -> None:
    """The record's consensus distance is NumPy's; the checkpoint model is the mean."""
    m = _machine(central_evaluate=lambda p: (0.5, {"accuracy": float(p[0][0])}, None))
    m.clients_available([A, B, C])
    _fits(m)
    for client, value in ((A, 1.0), (B, 2.0), (C, 6.0)):
        _report(m, client, 1, value)
    (checkpoint,) = _checkpoints(m)
    models = np.array([[1.0, 1.0], [2.0, 2.0], [6.0, 6.0]])
    expected = np.linalg.norm(models - models.mean(axis=0), axis=1).mean()
    record = checkpoint.record
    assert record.fit_metrics["consensus_distance"] == pytest.approx(expected)
    np.testing.assert_allclose(checkpoint.parameters[0], [3.0, 3.0])
    assert record.test_accuracy == pytest.approx(3.0)
    assert record.clients == (A, B, C) and record.num_examples == 30
    assert checkpoint.server_state is not None
    assert sorted(checkpoint.server_state["clients"].tolist()) == [A, B, C]
    assert m.phase is Phase.IDLE


def test_federated_evaluation_of_the_mean_goes_to_the_reporters() -> None:
    """With federated evaluation, the reporters evaluate the mean (no relay)."""
    m = _machine(federated_evaluate=True)
    m.clients_available([A, B, C])
    _fits(m)
    for client, value in ((A, 1.0), (B, 2.0), (C, 3.0)):
        _report(m, client, 1, value)
    (out,) = m.messages_to_send()
    assert isinstance(out.message, Evaluate) and out.recipients == (A, B, C)
    assert out.message.config.peer_models == 0
    np.testing.assert_allclose(out.message.parameters[0], [2.0, 2.0])
    for client in (A, B, C):
        m.evaluate_received(client, EvaluateResult(7, 1, 5, 0.3, {"accuracy": 0.9}))
    (checkpoint,) = _checkpoints(m)
    assert checkpoint.record.federated_accuracy == pytest.approx(0.9)


def test_a_client_leaving_mid_step_is_dropped_and_keeps_its_old_model() -> None:
    """The step closes without the leaver; its replica from step 1 is kept."""
    m = _machine()
    m.clients_available([A, B, C, D])
    _fits(m)
    for client, value in ((A, 1.0), (B, 2.0), (C, 3.0), (D, 4.0)):
        _report(m, client, 1, value)
    _checkpoints(m)
    m.clients_available([A, B, C, D])
    _fits(m)
    for client in (A, B, C):
        _report(m, client, 2, 5.0)
    m.client_left(D)
    (checkpoint,) = _checkpoints(m)
    assert checkpoint.record.dropped == (D,) and checkpoint.record.clients == (A, B, C)
    assert checkpoint.record.fit_metrics["consensus_distance"] == 0.0
    assert float(m.replicas.models[D][0][0]) == 4.0


def test_timeout_closes_the_step_with_those_that_answered() -> None:
    """A client that does not answer in time is dropped; late results are ignored."""
    m = _machine(min_clients=3, gossip_peers=2)
    m.clients_available([A, B, C, D])
    _fits(m)
    for client in (A, B, C):
        _report(m, client, 1, 1.0)
    m.timed_out()
    (checkpoint,) = _checkpoints(m)
    assert checkpoint.record.dropped == (D,)
    assert not _report(m, D, 1, 9.0)


def test_too_few_models_replay_the_step_then_fail() -> None:
    """Below min_clients the step is played again; after 3 plays the run fails."""
    m = _machine()
    for play in range(3):
        m.clients_available([A, B, C])
        assert _fits(m) and m.progress().server_round == 1
        _report(m, A, 1, 1.0)
        m.timed_out()
    assert m.done
    (failed,) = [e for e in m.events() if isinstance(e, RunFailed)]
    assert "1 of 3 clients sent a valid model" in failed.reason


def test_an_invalid_model_is_rejected_with_an_error() -> None:
    """A model of the wrong shape gets invalid_update and counts for nothing."""
    m = _machine()
    m.clients_available([A, B, C, D])
    _fits(m)
    bad = FitResult(7, 1, 10, {}, [np.zeros(3, np.float32)])
    fold = m.accept_update(A, bad)
    assert fold is not None
    fold.run()
    m.update_folded(fold)
    (out,) = m.messages_to_send()
    assert isinstance(out.message, Error) and out.message.code == "invalid_update"
    assert "a" not in m.replicas.models


def test_the_run_finishes_after_rounds_steps() -> None:
    """rounds counts steps."""
    m = _machine(rounds=2)
    for step in (1, 2):
        m.clients_available([A, B, C])
        _fits(m)
        for client in (A, B, C):
            _report(m, client, step, float(step))
    assert m.done and any(isinstance(e, RunFinished) for e in m.events())


def test_resume_restores_the_replicas_and_the_next_step() -> None:
    """A machine built from a checkpoint's state relays the saved models."""
    m = _machine()
    m.clients_available([A, B, C])
    _fits(m)
    for client, value in ((A, 1.0), (B, 2.0), (C, 3.0)):
        _report(m, client, 1, value)
    (checkpoint,) = _checkpoints(m)
    again = _machine(state=checkpoint.server_state, next_step=2)
    again.clients_available([A, B, C])
    sent = _fits(again)
    assert all(f.server_round == 2 for f in sent.values())
    assert float(sent[B].parameters[0][0]) == 2.0


def test_a_step_waits_for_k_plus_1_clients_whatever_min_clients() -> None:
    """k peers need k + 1 clients: the machine asks for that many."""
    m = _machine(min_clients=2, gossip_peers=3)
    assert m.clients_wanted == 4
    with pytest.raises(RoundStateError):
        m.start_step([A, B, C])
    m.clients_available([A, B, C, D])
    assert len(_fits(m)) == 4


def test_memory_bound_below_min_clients_fails_the_run() -> None:
    """N x P beyond MAX_REPLICA_BYTES: a run that cannot hold min_clients fails."""
    m = _machine(max_replica_bytes=2 * 8)
    m.clients_available([A, B, C])
    (failed,) = [e for e in m.events() if isinstance(e, RunFailed)]
    assert "at most 2 models" in failed.reason


def test_consensus_distance_helper_agrees_with_the_record() -> None:
    """The machine measures the step's models, not the kept ones of absent clients."""
    models = [[np.full(2, v, np.float32)] for v in (1.0, 2.0, 3.0)]
    assert consensus_distance(models) == pytest.approx(np.sqrt(2) * 2 / 3)


@pytest.mark.parametrize(
    "fields, name",
    [({"strategy": "krum"}, "strategy"), ({"dp": "central"}, "dp"),
     ({"gossip_peers": 0}, "gossip_peers"), ({"gossip_peers": 17}, "gossip_peers")],
)
def test_gossip_config_refusals_name_the_field(fields: dict[str, object],
                                               name: str) -> None:
    """fedavg/fedprox only, no dp, k in 1..16."""
    with pytest.raises(ConfigError) as caught:
        RunConfig.from_dict({"mode": "gossip", "min_clients": 4, **fields})
    assert name in caught.value.errors
