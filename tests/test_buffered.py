"""The FedBuff machine, driven by events with no network or clock."""

from __future__ import annotations

import numpy as np
import pytest

from fednet.buffered import TICKS, BufferedMachine
from fednet.config import RunConfig
from fednet.machine import Phase
from fednet.protocol import Error, Evaluate, EvaluateResult, Fit, FitResult
from fednet.records import Outgoing, RoundFinished, RunFinished
from fednet.typing import ClientId, NDArrays

A, B, C = ClientId("a"), ClientId("b"), ClientId("c")


def _machine(**overrides: object) -> BufferedMachine:
    options: dict[str, object] = {
        "mode": "async", "rounds": 3, "min_clients": 2, "buffer_size": 2,
    }
    central = overrides.pop("central_evaluate", None)
    federated = overrides.pop("federated_evaluate", False)
    next_version = overrides.pop("next_version", 1)
    options.update(overrides)
    return BufferedMachine(
        run_id=7,
        config=RunConfig.from_dict(options),
        parameters=[np.zeros(2, np.float32)],
        classes=("0", "1"),
        next_version=next_version,  # type: ignore[arg-type]
        central_evaluate=central,  # type: ignore[arg-type]
        federated_evaluate=federated,  # type: ignore[arg-type]
    )


def _fits(m: BufferedMachine) -> dict[ClientId, Fit]:
    """Drain the messages; return the Fit each client was sent."""
    sent: dict[ClientId, Fit] = {}
    for out in m.messages_to_send():
        if isinstance(out.message, Fit):
            sent.update(dict.fromkeys(out.recipients, out.message))
    return sent


def _report(
    m: BufferedMachine, client: ClientId, fit: Fit, value: float, n: int = 1
) -> bool:
    """Send a client's update trained from ``fit``; return whether it was taken."""
    params: NDArrays = [np.full(2, value, np.float32)]
    result = FitResult(7, fit.server_round, n, {"train_loss": value}, params)
    fold = m.accept_update(client, result)
    if fold is None:
        return False
    fold.run()
    m.update_folded(fold)
    return True


def _versions(m: BufferedMachine) -> list[RoundFinished]:
    return [e for e in m.events() if isinstance(e, RoundFinished)]


def test_every_idle_client_gets_the_current_version() -> None:
    """One fit of version 0 goes to every available client."""
    m = _machine()
    assert m.clients_wanted == 2  # min_clients to start
    m.clients_available([B, A, C])
    (out,) = m.messages_to_send()
    assert isinstance(out.message, Fit) and out.recipients == (A, B, C)
    assert out.message.server_round == 0
    assert m.clients_wanted == 4  # one more than it knows: a newcomer
    assert m.wait is not None and m.progress().pending == (A, B, C)


def test_k_updates_make_a_version_with_their_mean_delta() -> None:
    """buffer_size updates make version 1 and its record; the reporters go on."""
    m = _machine()
    m.clients_available([A, B, C])
    sent = _fits(m)
    assert _report(m, A, sent[A], 1.0, n=1)
    assert _versions(m) == [] and m.version == 0
    assert _report(m, B, sent[B], 5.0, n=3)
    (version,) = _versions(m)
    assert version.record.server_round == 1 and m.version == 1
    np.testing.assert_allclose(version.parameters[0], [4.0, 4.0])
    assert version.record.clients == (A, B)
    assert version.record.fit_metrics["updates"] == 2
    assert version.record.fit_metrics["max_staleness"] == 0
    assert version.record.client_metrics[A]["staleness"] == 0
    again = _fits(m)
    assert set(again) == {A, B} and again[B].server_round == 1


def test_stale_updates_are_weighted_as_numpy_computes() -> None:
    """An update 1 version old counts n / sqrt(2) of its delta from its version."""
    m = _machine()
    m.clients_available([A, B, C])
    first = _fits(m)
    _report(m, A, first[A], 2.0, n=2)
    _report(m, B, first[B], 4.0, n=2)
    (v1,) = _versions(m)
    second = _fits(m)
    assert second[B].server_round == 1
    assert _report(m, C, first[C], -1.0, n=3)  # trained on version 0
    assert _report(m, B, second[B], 6.0, n=1)  # trained on version 1
    (v2,) = _versions(m)
    w_c, w_b = 3 / np.sqrt(2), 1.0
    delta = (w_c * (-1.0 - 0.0) + w_b * (6.0 - v1.parameters[0])) / (w_c + w_b)
    np.testing.assert_allclose(v2.parameters[0], v1.parameters[0] + delta, rtol=1e-6)
    assert v2.record.client_metrics[C]["staleness"] == 1
    assert v2.record.fit_metrics["mean_staleness"] == 0.5


def test_update_staler_than_max_staleness_is_refused_and_gets_fresh_work() -> None:
    """max_staleness 0: a version-0 update after version 1 is refused, counted."""
    m = _machine(max_staleness=0)
    m.clients_available([A, B, C])
    first = _fits(m)
    _report(m, A, first[A], 1.0)
    _report(m, B, first[B], 1.0)
    second = _fits(m)
    (v1,) = _versions(m)
    assert not _report(m, C, first[C], 100.0)
    out = m.messages_to_send()
    errors = [o for o in out if isinstance(o.message, Error)]
    (error,) = errors
    assert error.recipients == (C,) and error.message.code == "stale_update"
    fresh = [o for o in out if isinstance(o.message, Fit)]
    assert fresh[0].recipients == (C,) and fresh[0].message.server_round == 1
    _report(m, C, fresh[0].message, 1.0)
    _report(m, B, second[B], 1.0)
    (v2,) = _versions(m)
    assert v2.record.fit_metrics["stale_refused"] == 1
    assert v2.record.rejected[C].startswith("stale update")
    assert v2.record.clients == (B, C)


def test_invalid_update_is_refused_and_the_client_goes_on() -> None:
    """A NaN update folds nothing: invalid_update, recorded, fresh work."""
    m = _machine()
    m.clients_available([A, B, C])
    sent = _fits(m)
    assert _report(m, C, sent[C], float("nan"))
    out = m.messages_to_send()
    (error,) = [o for o in out if isinstance(o.message, Error)]
    assert error.recipients == (C,) and error.message.code == "invalid_update"
    assert any(isinstance(o.message, Fit) and C in o.recipients for o in out)
    _report(m, A, sent[A], 1.0)
    _report(m, B, sent[B], 1.0)
    (v1,) = _versions(m)
    assert "NaN" in v1.record.rejected[C] and v1.record.clients == (A, B)
    np.testing.assert_allclose(v1.parameters[0], [1.0, 1.0])


def test_no_update_older_than_max_staleness_is_folded() -> None:
    """Every recorded staleness stays within max_staleness (1 here)."""
    m = _machine(max_staleness=1, rounds=6)
    m.clients_available([A, B, C])
    sent = _fits(m)
    slow = sent[C]
    records = []
    for _ in range(4):  # A and B make versions while C is slow
        _report(m, A, sent[A], 1.0)
        _report(m, B, sent[B], 1.0)
        sent.update(_fits(m))
        records += _versions(m)
    assert not _report(m, C, slow, 9.0)
    assert all(r.record.fit_metrics["max_staleness"] <= 1 for r in records)


def test_a_slow_client_does_not_block_versions() -> None:
    """A and B make every version while C never answers."""
    m = _machine(rounds=3)
    m.clients_available([A, B, C])
    sent = _fits(m)
    made = []
    for _ in range(3):
        _report(m, A, sent[A], 1.0)
        _report(m, B, sent[B], 1.0)
        sent.update(_fits(m))
        made += _versions(m)
    assert [v.record.server_round for v in made] == [1, 2, 3]
    assert all(C not in v.record.clients for v in made)
    assert m.done


def test_concurrency_limit_is_respected() -> None:
    """max_concurrency 2 of 3 clients: the idle one takes the next free slot."""
    m = _machine(max_concurrency=2, buffer_size=2)
    m.clients_available([A, B, C])
    sent = _fits(m)
    assert set(sent) == {A, B}
    assert m.clients_wanted == 0  # no room: it wants nobody new
    _report(m, A, sent[A], 1.0)
    assert set(_fits(m)) == {C}  # the longest idle
    assert len(m.progress().selected) == 2


def test_client_leaving_mid_task_is_dropped_and_versions_go_on() -> None:
    """A client that leaves is recorded as dropped; K shrinks to the clients known."""
    m = _machine(buffer_size=3)
    m.clients_available([A, B, C])
    sent = _fits(m)
    _report(m, A, sent[A], 1.0)
    m.client_left(C)
    assert C not in m.progress().pending
    _report(m, B, sent[B], 1.0)  # K is now min(3, 2 clients) = 2
    (v1,) = _versions(m)
    assert v1.record.dropped == (C,) and v1.record.clients == (A, B)


def test_new_versions_do_not_push_the_timeout_check_back() -> None:
    """The wait's key (its deadline) changes with timeout checks, not versions."""
    m = _machine()
    m.clients_available([A, B, C])
    sent = _fits(m)
    before = m.wait
    _report(m, A, sent[A], 1.0)
    _report(m, B, sent[B], 1.0)
    assert len(_versions(m)) == 1 and m.wait == before
    m.timed_out()
    assert m.wait is not None and before is not None and m.wait.key != before.key


def test_a_client_leaving_can_complete_the_buffer() -> None:
    """K = min(buffer_size, clients known): a departure may make the version."""
    m = _machine(buffer_size=3)
    m.clients_available([A, B, C])
    sent = _fits(m)
    _report(m, A, sent[A], 1.0)
    _report(m, A, _fits(m)[A], 3.0)  # A again, on version 0: two updates
    assert _versions(m) == []
    m.client_left(C)  # K becomes 2: the buffer is full
    (v1,) = _versions(m)
    np.testing.assert_allclose(v1.parameters[0], [2.0, 2.0])
    assert v1.record.client_metrics[A]["updates"] == 2


def test_a_task_times_out_after_the_round_timeout() -> None:
    """TICKS + 1 checks after it was sent, a silent client is dropped and re-sent."""
    m = _machine(round_timeout_s=8.0)
    m.clients_available([A, B])
    sent = _fits(m)
    wait = m.wait
    assert wait is not None and wait.timeout_s == 2.0
    _report(m, A, sent[A], 1.0)
    assert set(_fits(m)) == {A}
    for _ in range(TICKS):
        m.timed_out()
    assert B in m.progress().pending and _fits(m) == {}
    m.timed_out()
    resent = _fits(m)
    assert B in resent and resent[B].server_round == 0
    _report(m, B, resent[B], 1.0)
    (v1,) = _versions(m)
    assert B in v1.record.dropped


def test_federated_evaluation_of_idle_clients_precedes_the_record() -> None:
    """The client idle when a version is made evaluates it; then the record."""
    m = _machine(federated_evaluate=True, max_concurrency=2, buffer_size=2)
    m.clients_available([A, B, C])
    sent = _fits(m)
    _report(m, A, sent[A], 1.0)
    _fits(m)  # C takes A's slot
    _report(m, B, sent[B], 1.0)
    out: list[Outgoing] = m.messages_to_send()
    evals = [o for o in out if isinstance(o.message, Evaluate)]
    assert evals and set(evals[0].recipients) == {A, B}
    assert _versions(m) == []
    m.evaluate_received(A, EvaluateResult(7, 1, 10, 0.5, {"accuracy": 0.8}))
    m.evaluate_received(B, EvaluateResult(7, 1, 10, 0.3, {"accuracy": 0.6}))
    (v1,) = _versions(m)
    assert v1.record.federated_accuracy == pytest.approx(0.7)
    assert v1.record.evaluated_clients == (A, B)


def test_run_ends_after_rounds_versions_and_resumes_from_a_version() -> None:
    """A resumed machine sends its checkpointed version and ends at ``rounds``."""
    m = _machine(rounds=3, next_version=3)
    assert m.version == 2
    m.clients_available([A, B])
    sent = _fits(m)
    assert {f.server_round for f in sent.values()} == {2}
    _report(m, A, sent[A], 1.0)
    _report(m, B, sent[B], 1.0)
    events = m.events()
    assert isinstance(events[0], RoundFinished) and events[0].record.server_round == 3
    assert isinstance(events[-1], RunFinished) and m.phase is Phase.DONE
    assert _machine(rounds=3, next_version=4).done


def test_results_not_asked_for_are_ignored() -> None:
    """A duplicate, another run's, or a wrong version's result folds nothing."""
    m = _machine()
    m.clients_available([A, B])
    sent = _fits(m)
    assert m.accept_update(C, FitResult(7, 0, 1, {}, sent[A].parameters)) is None
    assert m.accept_update(B, FitResult(7, 3, 1, {}, sent[B].parameters)) is None
    assert m.accept_update(B, FitResult(8, 0, 1, {}, sent[B].parameters)) is None
    assert _report(m, B, sent[B], 1.0)
