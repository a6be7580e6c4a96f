"""The round machine with central DP: per-round epsilon and the budget stop, no I/O."""

from __future__ import annotations

import numpy as np
import pytest

from fednet.central_dp import CentralDP
from fednet.config import RunConfig
from fednet.privacy import accountant
from fednet.machine import RoundCheckpoint
from fednet.protocol import EvaluateResult, Fit, FitResult
from fednet.records import RoundFinished, RunFinished
from fednet.rounds import Phase, RoundMachine
from fednet.strategies import strategy_from_config
from fednet.typing import ClientId

A, B, C = ClientId("a"), ClientId("b"), ClientId("c")
DELTA = 1e-5


def _machine(
    target: float, rounds: int = 6, next_round: int = 1, **overrides: object
) -> RoundMachine:
    fields: dict[str, object] = {
        "rounds": rounds,
        "min_clients": 2,
        "dp": "central",
        "dp_target_epsilon": target,
        "dp_delta": DELTA,
    }
    fields.update(overrides)
    config = RunConfig.from_dict(fields)
    return RoundMachine(
        run_id=3,
        config=config,
        strategy=strategy_from_config(config),
        parameters=[np.zeros(2, np.float32)],
        classes=("0", "1"),
        next_round=next_round,
    )


def _play_round(m: RoundMachine, clients: tuple[ClientId, ...]) -> list[object]:
    """Play one round with every client reporting; return the events."""
    m.start_round(list(clients))
    (fit,) = m.messages_to_send()
    assert isinstance(fit.message, Fit)
    for cid in fit.recipients:
        params = [np.full(2, 0.5, np.float32)]
        m.update_received(cid, FitResult(3, m.server_round, 5, {}, params))
    m.messages_to_send()
    for cid in fit.recipients:
        m.evaluate_received(
            cid, EvaluateResult(3, m.server_round, 5, 1.0, {"accuracy": 0.5})
        )
    return list(m.events())


def test_run_stops_before_the_round_that_would_exceed_the_budget() -> None:
    """A target allowing k rounds of 6: k rounds, then a finish with the reason."""
    k = 2
    target = (accountant.epsilon(1.0, 1.0, k, DELTA)
              + accountant.epsilon(1.0, 1.0, k + 1, DELTA)) / 2
    m = _machine(target)
    played = []
    for _ in range(k):
        events = _play_round(m, (A, B, C))
        assert isinstance(events[0], RoundFinished)
        played.append(events[0].record)
    assert isinstance(events[0], RoundCheckpoint)  # q and clip norm saved with it
    assert [type(e) for e in events[1:]] == [RunFinished]
    finish = events[-1]
    assert isinstance(finish, RunFinished) and finish.reason is not None
    spent = accountant.epsilon(1.0, 1.0, k + 1, DELTA)
    assert finish.reason == (
        f"privacy budget: round {k + 1} would spend epsilon {spent:.4f}"
        f" > target {target:g}"
    )
    assert m.done and m.phase is Phase.DONE
    for record in played:
        expected = accountant.epsilon(1.0, 1.0, record.server_round, DELTA)
        assert record.epsilon == pytest.approx(expected, rel=1e-12)


def test_a_budget_below_one_round_finishes_before_any_fit() -> None:
    """Round 1 alone would exceed the target: no fit is sent, the run finishes."""
    m = _machine(0.01)
    m.start_round([A, B, C])
    assert m.messages_to_send() == []
    (event,) = m.events()
    assert isinstance(event, RunFinished)
    assert event.reason is not None
    assert event.reason.startswith("privacy budget: round 1 would spend epsilon")
    assert m.done and m.server_round == 0


def test_the_last_configured_round_finishes_without_a_reason() -> None:
    """A budget the configured rounds stay within ends the run as usual."""
    m = _machine(1000.0, rounds=2)
    _play_round(m, (A, B))
    events = _play_round(m, (A, B))
    assert isinstance(events[0], RoundFinished) and events[1:] == [RunFinished(None)]


def test_without_a_target_every_round_still_records_its_epsilon() -> None:
    """dp_target_epsilon 0 is no budget: epsilon is recorded, nothing stops."""
    m = _machine(0.0, rounds=3)
    epsilons = []
    for _ in range(3):
        events = _play_round(m, (A, B))
        assert isinstance(events[0], RoundFinished)
        epsilons.append(events[0].record.epsilon)
    assert isinstance(events[-1], RunFinished) and events[-1].reason is None
    assert epsilons == sorted(epsilons) and epsilons[0] is not None


def test_a_resumed_run_accounts_with_the_saved_sampling_rate() -> None:
    """Round 3 after a resume spends what round 3 of the straight run spends.

    The resumed machine sees more sites than at the start: q comes from the
    checkpointed state, not from them.
    """
    straight = _machine(0.0, clients_per_round=2)
    _play_round(straight, (A, B, C))
    straight_events = _play_round(straight, (A, B, C))
    assert isinstance(straight_events[0], RoundFinished)
    state = straight.strategy.server_state()
    assert state is not None
    resumed = _machine(0.0, clients_per_round=2, next_round=3)
    resumed.strategy.load_server_state(state, resumed.parameters)
    assert isinstance(resumed.strategy, CentralDP)
    sites = (A, B, C, ClientId("d"), ClientId("e"), ClientId("f"))
    events = _play_round(resumed, sites)
    record = events[0]
    assert isinstance(record, RoundFinished)
    q = 2 / 3
    assert resumed.strategy.sampling_rate == pytest.approx(q)
    expected = accountant.epsilon(1.0, q, 3, DELTA)
    assert record.record.epsilon == pytest.approx(expected, rel=1e-12)
