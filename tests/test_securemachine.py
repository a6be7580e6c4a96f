"""Secure rounds of the round machine with real sites, every message on the wire."""

from __future__ import annotations

import random
from collections.abc import Collection
from dataclasses import dataclass, field

import numpy as np
import pytest

from fednet.client.secure import SecureSite
from fednet.config import RunConfig
from fednet.machine import Fold
from fednet.protocol import Error, Fit, FitResult, Message, parse, serialize
from fednet.records import RoundFinished, RunFailed
from fednet.rounds import RoundMachine
from fednet.secagg.wire import (
    SecaggAdvertise,
    SecaggSetup,
    SecaggShares,
    SecaggUnmask,
)
from fednet.securemachine import SecureRoundMachine
from fednet.strategies import strategy_from_config
from fednet.typing import ClientId, NDArrays

SITES = [ClientId(f"site-{i:02d}") for i in range(10)]


@dataclass
class Harness:
    """A machine and its sites; ``received`` keeps each masked frame it got."""

    machine: RoundMachine
    updates: dict[ClientId, tuple[NDArrays, int]]
    sites: dict[ClientId, SecureSite] = field(default_factory=dict)
    received: dict[ClientId, NDArrays] = field(default_factory=dict)
    gone_after_masked: Collection[ClientId] = ()
    gone_before_masked: Collection[ClientId] = ()
    silent_at: dict[str, Collection[ClientId]] = field(default_factory=dict)

    def run(self) -> None:
        """Deliver messages both ways until nothing is left to send."""
        while outgoing := self.machine.messages_to_send():
            for out in outgoing:
                for client_id in out.recipients:
                    self._deliver(client_id, out.message)

    def _deliver(self, client_id: ClientId, message: Message) -> None:
        message = _wire(message)
        site = self.sites.setdefault(client_id, SecureSite(client_id, _rng(client_id)))
        if isinstance(message, SecaggSetup):
            site.setup(message)
            return
        if isinstance(message, SecaggUnmask) and client_id in self.gone_after_masked:
            self.machine.client_left(client_id)
            return
        if client_id in self.silent_at.get(message.type, ()):
            return  # never answers: the stage's deadline closes it
        if isinstance(message, Fit):
            params, n = self.updates[client_id]
            reply = site.after_fit(message, FitResult(1, message.server_round, n,
                                                      {}, params))
        else:
            reply = site.step(message)  # type: ignore[arg-type]
        self._answer(client_id, _wire(reply))

    def _answer(self, client_id: ClientId, reply: Message) -> None:
        machine = self.machine
        if isinstance(reply, FitResult):
            if client_id in self.gone_before_masked:
                machine.client_left(client_id)
                return
            self.received[client_id] = reply.parameters
            machine.update_received(client_id, reply)
        elif isinstance(machine, SecureRoundMachine):
            machine.secagg_received(client_id, reply, 100)  # type: ignore[arg-type]


def _wire(message: Message) -> Message:
    """Return a message as the peer parses it."""
    return parse(serialize(message))


def _rng(name: str) -> random.Random:
    return random.Random(name).randbytes  # type: ignore[return-value]


def _machine(secure: bool, params: NDArrays, **config: object) -> RoundMachine:
    options: dict[str, object] = {
        "rounds": 1, "min_clients": 2, "secure_aggregation": secure,
        "secagg_threshold": 0.7, **config,
    }
    run_config = RunConfig.from_dict(options)
    cls = SecureRoundMachine if secure else RoundMachine
    return cls(
        run_id=1, config=run_config, strategy=strategy_from_config(run_config),
        parameters=params, classes=None, federated_evaluate=False,
    )


def _updates(
    params: NDArrays, sites: Collection[ClientId], scale: float = 0.05
) -> dict[ClientId, tuple[NDArrays, int]]:
    rng = np.random.default_rng(0)
    return {
        s: ([(p + rng.standard_normal(p.shape) * scale).astype(np.float32)
             for p in params], int(rng.integers(1, 100)))
        for s in sites
    }


def _play(
    secure: bool, updates: dict[ClientId, tuple[NDArrays, int]], params: NDArrays,
    config: dict[str, object] | None = None, **kwargs: object,
) -> tuple[Harness, RoundFinished | RunFailed]:
    machine = _machine(secure, params, **(config or {}))
    harness = Harness(machine, updates, **kwargs)  # type: ignore
    harness.machine.start_round(list(updates))
    harness.run()
    events = harness.machine.events()
    ends = [e for e in events if isinstance(e, (RoundFinished, RunFailed))]
    return harness, ends[0] if ends else None  # type: ignore[return-value]


def _params() -> NDArrays:
    rng = np.random.default_rng(1)
    return [rng.standard_normal((64, 10)).astype(np.float32),
            rng.standard_normal(10).astype(np.float32)]


def _relative(got: NDArrays, want: NDArrays) -> float:
    num = sum(float(np.sum((g.astype(np.float64) - w) ** 2)) for g, w in zip(got, want))
    den = sum(float(np.sum(w.astype(np.float64) ** 2)) for w in want)
    return float(np.sqrt(num / den))


def test_secure_round_equals_plain_fedavg_within_quantisation_error() -> None:
    """10 sites, default clip: the secure model is plain FedAvg's within 1e-6."""
    params = _params()
    updates = _updates(params, SITES)
    _, plain = _play(False, updates, params)
    harness, secure = _play(True, updates, params)

    assert isinstance(plain, RoundFinished) and isinstance(secure, RoundFinished)
    assert secure.record.num_clients == 10
    assert secure.record.num_examples == plain.record.num_examples
    assert secure.record.dropouts_recovered == 0
    assert plain.record.quantization_error is None
    # The stated bound: about n^2 c / 2^32 for equal weights (docs/privacy.md).
    bound = secure.record.quantization_error
    assert bound is not None and 0 < bound < 1e-7
    for got, want in zip(secure.parameters, plain.parameters):
        # Within the bound, plus each model's own float32 rounding.
        slack = bound + np.spacing(np.abs(want))
        assert np.all(np.abs(got.astype(np.float64) - want) <= slack)
    assert _relative(secure.parameters, plain.parameters) <= 1e-6
    # Element-wise: quantisation error far below one float32 step of the model.
    for got, want in zip(secure.parameters, plain.parameters):
        np.testing.assert_allclose(got, want, rtol=0, atol=5e-7)
    assert set(harness.received) == set(SITES)


def test_masked_frames_are_uncorrelated_with_the_true_update() -> None:
    """Over 10^5 parameters each received frame's correlation with its update < 0.01."""
    params: NDArrays = [np.zeros(100_000, np.float32)]
    updates = _updates(params, SITES[:5], scale=0.2)
    harness, secure = _play(True, updates, params)

    assert isinstance(secure, RoundFinished)
    for site, frame in harness.received.items():
        truth = updates[site][0][0].astype(np.float64)
        ring = frame[0].view(np.uint32).astype(np.float64)
        assert abs(np.corrcoef(ring, truth)[0, 1]) < 0.01
        signed = frame[0].astype(np.float64)
        assert abs(np.corrcoef(signed, truth)[0, 1]) < 0.01


def test_three_sites_gone_after_masked_input_are_recovered() -> None:
    """3 of 10 never answer the unmask request: the sum of all 10 still comes out."""
    params = _params()
    updates = _updates(params, SITES)
    _, plain = _play(False, updates, params)
    _, secure = _play(True, updates, params, gone_after_masked=SITES[:3])

    assert isinstance(secure, RoundFinished) and isinstance(plain, RoundFinished)
    assert secure.record.num_clients == 10
    assert secure.record.dropouts_recovered == 3
    assert _relative(secure.parameters, plain.parameters) <= 1e-6


def test_three_sites_gone_before_masked_input_leave_the_sum_of_seven() -> None:
    """3 of 10 vanish after sharing keys: their masks are removed, 7 summed."""
    params = _params()
    updates = _updates(params, SITES)
    kept = {s: u for s, u in updates.items() if s not in SITES[:3]}
    _, plain = _play(False, kept, params)
    _, secure = _play(True, updates, params, gone_before_masked=SITES[:3])

    assert isinstance(secure, RoundFinished) and isinstance(plain, RoundFinished)
    assert secure.record.clients == tuple(sorted(kept))
    assert secure.record.dropouts_recovered == 3
    assert _relative(secure.parameters, plain.parameters) <= 1e-6


def test_four_sites_gone_fail_the_play_with_the_reason(
    caplog: pytest.LogCaptureFixture,
) -> None:
    """4 of 10 gone after masking: 6 unmask responses < 7, the round is replayed."""
    params = _params()
    harness, end = _play(True, _updates(params, SITES), params,
                         gone_after_masked=SITES[:4])
    assert end is None and harness.machine.server_round == 0  # played again
    assert "only 6 unmask responses, threshold 7; playing the round again" in (
        caplog.text
    )


def test_a_site_sends_nothing_in_the_clear() -> None:
    """A secure round's fit is answered with keys; the update leaves masked only."""
    params = _params()
    site = SecureSite("site-00", _rng("site-00"))
    site.setup(SecaggSetup(1, 1, ("site-00", "site-01"), 2, 1.0))
    fit = Fit(1, 1, None, params)  # type: ignore[arg-type]
    reply = site.after_fit(fit, FitResult(1, 1, 5, {}, params))
    assert reply.type == "secagg_advertise"


def test_a_masked_input_outside_its_stage_is_ignored() -> None:
    """A fit_result during the advertise stage gets no Fold."""
    params = _params()
    machine = _machine(True, params)
    machine.start_round(SITES[:3])
    result = FitResult(1, 1, 0, {}, [np.zeros((64, 10), np.int32)])
    assert machine.accept_update(SITES[0], result) is None
    assert not isinstance(machine.accept_update(SITES[0], result), Fold)


def test_each_stage_is_a_wait_of_its_own_closed_by_its_deadline() -> None:
    """3 sites never answer the roster: the share-keys deadline leaves 7."""
    params = _params()
    updates = _updates(params, SITES)
    kept = {s: u for s, u in updates.items() if s not in SITES[-3:]}
    _, plain = _play(False, kept, params)
    harness = Harness(_machine(True, params), updates,
                      silent_at={"secagg_roster": SITES[-3:]})
    machine = harness.machine
    machine.start_round(list(updates))
    first = machine.wait
    harness.run()
    second = machine.wait
    assert first is not None and second is not None
    assert first.key == "fit: round 1, secagg advertise"
    assert second.key == "fit: round 1, secagg share_keys"
    machine.timed_out()
    harness.run()
    (finished,) = [e for e in machine.events() if isinstance(e, RoundFinished)]
    assert isinstance(plain, RoundFinished)
    assert finished.record.clients == tuple(sorted(kept))
    assert finished.record.dropped == tuple(SITES[-3:])
    assert _relative(finished.parameters, plain.parameters) <= 1e-6


def test_a_message_of_another_stage_is_refused_and_its_site_left_out() -> None:
    """Shares at the advertise stage: invalid_update; the stage waits for the rest."""
    params = _params()
    machine = _machine(True, params)
    assert isinstance(machine, SecureRoundMachine)
    machine.start_round(SITES[:3])
    machine.messages_to_send()
    advert = SecaggAdvertise(1, 1, "ab" * 32, "cd" * 32)
    machine.secagg_received(SITES[0], advert, 10)
    machine.secagg_received(SITES[1], SecaggShares(1, 1, ()), 10)
    (out,) = machine.messages_to_send()
    assert isinstance(out.message, Error) and out.recipients == (SITES[1],)
    assert out.message.message == (
        "secure aggregation: secagg_shares at stage advertise"
    )
    assert machine.pending == {SITES[2]}


DISTRIBUTED = {"dp": "distributed", "dp_clip_norm": 100.0, "secagg_clip": 50.0}


def test_distributed_dp_averages_unweighted_deltas_over_the_expected_sites() -> None:
    """Tiny noise, no clipping: the model moves by the plain mean of the deltas."""
    params = _params()
    updates = _updates(params, SITES, scale=0.01)
    config = {**DISTRIBUTED, "dp_noise_multiplier": 1e-9, "dp_clip_norm": 0.5,
              "secagg_clip": 1.0}
    _, secure = _play(True, updates, params, config)

    assert isinstance(secure, RoundFinished) and secure.record.epsilon is not None
    for index, param in enumerate(params):
        mean = np.mean([u[index].astype(np.float64) - param
                        for u, _ in updates.values()], axis=0)
        np.testing.assert_allclose(secure.parameters[index], param + mean, atol=1e-6)


def test_distributed_dp_noise_is_at_least_the_central_noise() -> None:
    """z = 1, C = 5, 10 of t = 7 shares: the sum's noise std is z C sqrt(10 / 7)."""
    params: NDArrays = [np.zeros(100_000, np.float32)]
    updates = {s: ([np.zeros(100_000, np.float32)], 1) for s in SITES}
    config = {**DISTRIBUTED, "dp_noise_multiplier": 1.0, "dp_clip_norm": 5.0,
              "secagg_clip": 35.0}
    _, secure = _play(True, updates, params, config)

    assert isinstance(secure, RoundFinished)
    summed_noise = secure.parameters[0].astype(np.float64) * 10  # n = 10 sites
    assert np.std(summed_noise) == pytest.approx(5.0 * np.sqrt(10 / 7), rel=0.02)


def test_distributed_dp_clips_each_site_to_the_clip_norm() -> None:
    """A site far beyond the L2 clip norm moves the sum by at most C."""
    params: NDArrays = [np.zeros(1000, np.float32)]
    updates = {s: ([np.full(1000, 0.5, np.float32)], 1) for s in SITES}
    config = {**DISTRIBUTED, "dp_noise_multiplier": 1e-9, "dp_clip_norm": 1.0,
              "secagg_clip": 2.0}
    _, secure = _play(True, updates, params, config)

    assert isinstance(secure, RoundFinished)
    summed = secure.parameters[0].astype(np.float64) * 10
    assert np.linalg.norm(summed) == pytest.approx(10.0, rel=1e-5)
