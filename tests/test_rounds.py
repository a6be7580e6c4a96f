"""The round state machine, driven by events with no network or clock."""

from __future__ import annotations

import numpy as np
import pytest

from fednet.config import RunConfig
from fednet.exceptions import RoundStateError
from fednet.protocol import Error, Evaluate, EvaluateResult, Fit, FitResult
from fednet.records import RoundFinished, RunFailed, RunFinished
from fednet.rounds import ROUND_ATTEMPTS, Phase, RoundMachine
from fednet.strategies import FedAvg
from fednet.typing import ClientId, NDArrays

A, B, C = ClientId("a"), ClientId("b"), ClientId("c")


def _machine(**overrides: object) -> RoundMachine:
    options: dict[str, object] = {"rounds": 2, "min_clients": 2}
    central = overrides.pop("central_evaluate", None)
    federated = overrides.pop("federated_evaluate", True)
    next_round = overrides.pop("next_round", 1)
    options.update(overrides)
    config = RunConfig.from_dict(options)
    return RoundMachine(
        run_id=7,
        config=config,
        strategy=FedAvg(clients_per_round=config.clients_per_round),
        parameters=[np.zeros(2, np.float32)],
        classes=("0", "1"),
        rng=np.random.default_rng(0),
        next_round=next_round,  # type: ignore[arg-type]
        central_evaluate=central,  # type: ignore[arg-type]
        federated_evaluate=federated,  # type: ignore[arg-type]
    )


def _fit(
    m: RoundMachine, value: float, n: int = 1, server_round: int | None = None
) -> FitResult:
    params: NDArrays = [np.full(2, value, np.float32)]
    return FitResult(
        7, server_round or m.server_round, n, {"train_loss": value}, params
    )


def _eval(m: RoundMachine, loss: float, acc: float, n: int = 10) -> EvaluateResult:
    return EvaluateResult(7, m.server_round, n, loss, {"accuracy": acc})


def test_start_round_sends_one_fit_to_every_available_client() -> None:
    """One Fit message is addressed to all selected clients, with the run config."""
    m = _machine()
    m.start_round([B, A, C])
    (out,) = m.messages_to_send()
    assert isinstance(out.message, Fit)
    assert out.recipients == (A, B, C)
    assert out.message.server_round == 1
    assert out.message.config["classes"] == ["0", "1"]
    assert out.message.config["learning_rate"] == 0.1
    assert m.phase is Phase.FIT and m.pending == {A, B, C}


def test_full_round_aggregates_by_examples_then_evaluates() -> None:
    """After every fit the reporters evaluate; the round records weighted metrics."""
    m = _machine()
    m.start_round([A, B])
    m.messages_to_send()
    m.update_received(A, _fit(m, 1.0, n=1))
    assert m.events() == [] and m.phase is Phase.FIT
    m.update_received(B, _fit(m, 5.0, n=3))
    (out,) = m.messages_to_send()
    assert isinstance(out.message, Evaluate) and out.recipients == (A, B)
    np.testing.assert_allclose(out.message.parameters[0], [4.0, 4.0])
    m.evaluate_received(A, _eval(m, 1.0, 0.5, n=10))
    m.evaluate_received(B, _eval(m, 3.0, 1.0, n=30))
    (event,) = m.events()
    assert isinstance(event, RoundFinished)
    record = event.record
    assert record.clients == (A, B) and record.num_examples == 4
    assert record.federated_loss == pytest.approx(2.5)
    assert record.accuracy == pytest.approx(0.875)
    assert record.fit_metrics["train_loss"] == pytest.approx(4.0)
    assert record.client_metrics[B]["val_accuracy"] == 1.0
    np.testing.assert_allclose(m.parameters[0], [4.0, 4.0])
    assert m.phase is Phase.IDLE


def test_last_round_finishes_the_run() -> None:
    """The final round emits RoundFinished then RunFinished."""
    m = _machine(rounds=1, federated_evaluate=False)
    m.start_round([A, B])
    m.update_received(A, _fit(m, 1.0))
    m.update_received(B, _fit(m, 1.0))
    events = m.events()
    assert [type(e) for e in events] == [RoundFinished, RunFinished]
    assert m.phase is Phase.DONE


def test_timeout_with_quorum_closes_the_round_and_lists_the_dropped() -> None:
    """At the timeout, min_clients results suffice; the silent client is dropped."""
    m = _machine(federated_evaluate=False)
    m.start_round([A, B, C])
    m.update_received(A, _fit(m, 2.0))
    m.update_received(C, _fit(m, 4.0))
    assert m.events() == []
    m.timed_out()
    (event,) = m.events()
    assert isinstance(event, RoundFinished)
    assert event.record.clients == (A, C) and event.record.dropped == (B,)
    np.testing.assert_allclose(event.parameters[0], [3.0, 3.0])


def test_a_round_short_of_quorum_is_played_again_from_the_same_model() -> None:
    """Fewer than min_clients results: no event, the same round again, same model."""
    m = _machine(federated_evaluate=False)
    m.start_round([A, B, C])
    before = [p.copy() for p in m.parameters]
    m.update_received(A, _fit(m, 2.0))
    m.messages_to_send()
    m.timed_out()
    assert m.events() == []
    assert (m.phase, m.server_round, m.clients_wanted) == (Phase.IDLE, 0, 2)
    m.clients_available([A, B])
    assert m.wait is not None and m.wait.key == "fit: round 1 (play 2)"  # new clock
    (out,) = m.messages_to_send()
    assert isinstance(out.message, Fit) and out.message.server_round == 1
    np.testing.assert_array_equal(out.message.parameters[0], before[0])
    m.update_received(A, _fit(m, 2.0))
    m.update_received(B, _fit(m, 4.0))
    (event,) = m.events()
    assert isinstance(event, RoundFinished) and event.record.server_round == 1
    assert event.record.clients == (A, B)


def test_a_round_short_of_quorum_every_time_fails_the_run() -> None:
    """After ROUND_ATTEMPTS plays short of min_clients, the run fails with a reason."""
    m = _machine()
    for attempt in range(ROUND_ATTEMPTS):
        assert m.phase is Phase.IDLE and m.events() == []
        m.start_round([A, B, C])
        m.update_received(A, _fit(m, 2.0))
        m.client_left(B)
        m.timed_out()
    (event,) = m.events()
    assert isinstance(event, RunFailed)
    assert "round 1: 1 of 3 selected clients" in event.reason
    assert f"min_clients is 2 ({ROUND_ATTEMPTS} attempts)" in event.reason
    assert m.phase is Phase.DONE


def test_a_replayed_round_takes_a_late_update_of_the_same_model() -> None:
    """An update from the short play arriving in the replay counts once."""
    m = _machine(federated_evaluate=False)
    m.start_round([A, B])
    m.update_received(A, _fit(m, 2.0))
    m.timed_out()
    m.start_round([A, B])
    late = _fit(m, 6.0)  # B's answer to the first play: same run, round, model
    m.update_received(B, late)
    m.update_received(B, _fit(m, 8.0))  # its answer to the replay: a duplicate
    m.update_received(A, _fit(m, 2.0))
    (event,) = m.events()
    assert isinstance(event, RoundFinished)
    np.testing.assert_allclose(event.parameters[0], [4.0, 4.0])


def test_client_leaving_mid_round_does_not_block_the_others() -> None:
    """A disconnected client is dropped; the round closes when the rest answered."""
    m = _machine(federated_evaluate=False)
    m.start_round([A, B, C])
    m.update_received(A, _fit(m, 1.0))
    m.client_left(B)
    m.update_received(C, _fit(m, 3.0))
    (event,) = m.events()
    assert isinstance(event, RoundFinished) and event.record.dropped == (B,)


def test_client_leaving_during_evaluation_closes_evaluation() -> None:
    """Evaluation does not wait for a client that is gone."""
    m = _machine()
    m.start_round([A, B])
    m.update_received(A, _fit(m, 1.0))
    m.update_received(B, _fit(m, 1.0))
    m.evaluate_received(A, _eval(m, 0.5, 0.5))
    m.client_left(B)
    (event,) = m.events()
    assert isinstance(event, RoundFinished)
    assert event.record.evaluated_clients == (A,)


def test_late_and_duplicate_results_are_ignored(
    caplog: pytest.LogCaptureFixture,
) -> None:
    """A result for a past round, or sent twice, changes nothing and is logged."""
    m = _machine(federated_evaluate=False, rounds=3)
    m.start_round([A, B])
    m.update_received(A, _fit(m, 1.0))
    m.update_received(A, _fit(m, 100.0))
    m.update_received(B, _fit(m, 1.0))
    m.events()
    m.start_round([A, B])
    m.update_received(A, _fit(m, 50.0, server_round=1))
    assert m.pending == {A, B}
    np.testing.assert_array_equal(m.parameters[0], [1.0, 1.0])
    assert "late or duplicate" in caplog.text


def test_invalid_update_gets_an_error_and_never_touches_the_model() -> None:
    """A NaN or wrong-shaped update is answered with error; others still count."""
    m = _machine(federated_evaluate=False)
    m.start_round([A, B, C])
    m.messages_to_send()
    m.update_received(A, FitResult(7, 1, 5, {}, [np.array([np.nan, 0], np.float32)]))
    m.update_received(B, FitResult(7, 1, 5, {}, [np.zeros(3, np.float32)]))
    replies = m.messages_to_send()
    assert all(isinstance(o.message, Error) for o in replies)
    codes = [(o.recipients, getattr(o.message, "code")) for o in replies]
    assert codes == [((A,), "invalid_update"), ((B,), "invalid_update")]
    m.update_received(C, _fit(m, 2.0))
    assert m.events() == [] and m.phase is Phase.IDLE  # 1 valid of 2: played again
    np.testing.assert_array_equal(m.parameters[0], [0.0, 0.0])


def test_central_evaluation_sets_test_accuracy() -> None:
    """A held-out evaluator's accuracy is the round's accuracy."""
    m = _machine(
        central_evaluate=lambda p: (0.1, {"accuracy": 0.99}, None),
        federated_evaluate=False,
    )
    m.start_round([A, B])
    m.update_received(A, _fit(m, 1.0))
    m.update_received(B, _fit(m, 1.0))
    (event,) = m.events()
    assert isinstance(event, RoundFinished)
    assert (event.record.loss, event.record.accuracy) == (0.1, 0.99)


def test_clients_per_round_samples_deterministically() -> None:
    """With a seed, the same subset of the requested size is drawn."""
    picks = []
    for _ in range(2):
        m = _machine(clients_per_round=2)
        m.start_round([A, B, C])
        picks.append(m.progress().selected)
    assert len(picks[0]) == 2 and picks[0] == picks[1]


def test_start_round_guards_its_preconditions() -> None:
    """Too few clients, or a round already running, raise RoundStateError."""
    m = _machine()
    with pytest.raises(RoundStateError, match="min_clients"):
        m.start_round([A])
    m.start_round([A, B])
    with pytest.raises(RoundStateError, match="phase fit"):
        m.start_round([A, B])


def test_resumed_machine_continues_from_the_next_round() -> None:
    """A run resumed after round 1 plays round 2 and then finishes."""
    m = _machine(next_round=2, federated_evaluate=False)
    m.start_round([A, B])
    assert m.server_round == 2
    m.update_received(A, _fit(m, 1.0))
    m.update_received(B, _fit(m, 1.0))
    assert [type(e) for e in m.events()] == [RoundFinished, RunFinished]


def test_timeout_waits_for_an_update_still_being_folded() -> None:
    """An accepted update still folding at the timeout counts; silent ones drop."""
    m = _machine(min_clients=1, federated_evaluate=False)
    m.start_round([A, B, C])
    fold = m.accept_update(A, _fit(m, 2.0))
    assert fold is not None
    m.timed_out()
    assert m.events() == [] and m.pending == {A}
    assert m.progress().pending == (A,)
    fold.run()
    m.update_folded(fold)
    (event,) = m.events()
    assert isinstance(event, RoundFinished)
    assert event.record.clients == (A,) and event.record.dropped == (B, C)
    np.testing.assert_allclose(event.parameters[0], [2.0, 2.0])


def test_a_fold_is_accepted_once_and_handed_back_once() -> None:
    """A duplicate result while folding is ignored; a second hand-back is an error."""
    m = _machine()
    m.start_round([A, B])
    fold = m.accept_update(A, _fit(m, 1.0))
    assert fold is not None and m.accept_update(A, _fit(m, 9.0)) is None
    fold.run()
    m.update_folded(fold)
    with pytest.raises(RoundStateError, match="no update of a"):
        m.update_folded(fold)


def test_machine_interface_names_the_wait_and_the_clients_wanted() -> None:
    """Idle wants min_clients; a phase in progress waits with the round timeout."""
    m = _machine(round_timeout_s=7)
    assert m.clients_wanted == 2 and m.wait is None and not m.done
    m.clients_available([A, B])
    assert m.clients_wanted == 0
    assert m.wait is not None and (m.wait.key, m.wait.timeout_s) == ("fit: round 1", 7)
    m.timed_out()
    assert m.clients_wanted == 2 and m.wait is None and not m.done  # played again
