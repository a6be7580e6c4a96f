"""Central DP as a strategy: Poisson sampling, DP-FedAvg, state and budget, no I/O."""

from __future__ import annotations

import math

import numpy as np
import pytest

from fednet.central_dp import CentralDP, budget_stop, round_epsilon
from fednet.config import RunConfig
from fednet.exceptions import AggregationError, ConfigError
from fednet.privacy import accountant
from fednet.strategies import FedAvg, strategy_from_config
from fednet.typing import ClientId

SITES = [ClientId(f"site-{i:02d}") for i in range(40)]


def _dp(**overrides: object) -> CentralDP:
    options: dict[str, object] = {
        "noise_multiplier": 1.0,
        "clip_norm": 1.0,
        "noise_rng": np.random.default_rng(0),
    }
    options.update(overrides)
    return CentralDP("fedavg", **options)  # type: ignore[arg-type]


def test_dp_central_wraps_fedavg_and_fedprox() -> None:
    """strategy_from_config returns CentralDP with the config's privacy fields."""
    config = RunConfig.from_dict(
        {"dp": "central", "strategy": "fedprox", "dp_noise_multiplier": 1.5,
         "dp_clip_norm": 0.5, "dp_target_epsilon": 8, "dp_delta": 1e-6}
    )
    strategy = strategy_from_config(config)
    assert isinstance(strategy, CentralDP) and strategy.name == "fedprox"
    assert (strategy.noise_multiplier, strategy.clip_norm) == (1.5, 0.5)
    assert (strategy.target_epsilon, strategy.delta) == (8.0, 1e-6)
    assert isinstance(strategy_from_config(RunConfig()), FedAvg)


@pytest.mark.parametrize(
    ("fields", "name", "message"),
    [
        ({"dp": "distributed"}, "dp", "distributed DP needs secure aggregation"),
        ({"dp": "central", "strategy": "krum"}, "strategy", "not covered by the DP"),
        ({"dp": "central", "strategy": "fedadam"}, "strategy", "fedavg and fedprox"),
        ({"dp_adaptive_clip": "yes"}, "dp_adaptive_clip", "true or false"),
        ({"dp_delta": 0.2}, "dp_delta", "between 0 and 0.1"),
        ({"dp_noise_multiplier": 0}, "dp_noise_multiplier", "greater than 0"),
        ({"dp_target_epsilon": -1}, "dp_target_epsilon", "between 0 and"),
        ({"dp": "local"}, "dp", "must be one of off, central, distributed"),
    ],
)
def test_run_config_refuses_what_central_dp_does_not_cover(
    fields: dict[str, object], name: str, message: str
) -> None:
    """Each privacy field says what is wrong with it, by name."""
    with pytest.raises(ConfigError) as info:
        RunConfig.from_dict(fields)
    assert message in info.value.errors[name]


def test_sampling_rate_is_fixed_at_the_first_round() -> None:
    """q = clients_per_round / available then, kept when sites come and go."""
    dp = _dp(clients_per_round=10)
    dp.sample_clients(SITES, np.random.default_rng(1))
    assert dp.sampling_rate == pytest.approx(0.25)
    dp.sample_clients(SITES[:20], np.random.default_rng(2))
    assert dp.sampling_rate == pytest.approx(0.25)
    assert dp.expected_clients == pytest.approx(5.0)  # q * the sites available now


def test_all_sites_take_part_when_clients_per_round_is_zero() -> None:
    """clients_per_round 0 means q = 1: every available site, sorted."""
    dp = _dp()
    assert dp.sample_clients(list(reversed(SITES)), np.random.default_rng(0)) == SITES
    assert dp.sampling_rate == 1.0 and dp.expected_clients == len(SITES)


def test_poisson_sampling_selects_each_site_with_probability_q() -> None:
    """Over many seeded rounds each site is in about q of them, draws vary in size."""
    dp = _dp(clients_per_round=10)
    counts = {c: 0 for c in SITES}
    sizes = set()
    for server_round in range(400):
        picks = dp.sample_clients(SITES, np.random.default_rng([0, server_round]))
        sizes.add(len(picks))
        for c in picks:
            counts[c] += 1
    rates = np.array(list(counts.values())) / 400
    assert abs(rates.mean() - 0.25) < 0.01 and rates.min() > 0.15
    assert len(sizes) > 5  # not a fixed-size sample


def test_poisson_sampling_is_deterministic_for_a_round_seed() -> None:
    """The same round-seeded generator draws the same sites (resumable)."""
    first = _dp(clients_per_round=10).sample_clients(
        SITES, np.random.default_rng([3, 4])
    )
    again = _dp(clients_per_round=10).sample_clients(
        SITES, np.random.default_rng([3, 4])
    )
    assert first == again


def test_a_draw_below_min_clients_is_drawn_again() -> None:
    """With q * N = 1 most draws hold fewer than 3 sites; the result has 3 or more."""
    dp = _dp(clients_per_round=1, min_clients=3)
    for seed in range(20):
        picks = dp.sample_clients(SITES[:10], np.random.default_rng(seed))
        assert len(picks) >= 3


def test_aggregator_clips_and_divides_by_the_expected_number_of_sites() -> None:
    """Noise off: the new model is global + sum of clipped deltas / (q * N)."""
    dp = _dp(noise_multiplier=1.0, clip_norm=1.0, clients_per_round=2)
    dp.sample_clients(SITES[:4], np.random.default_rng(0))
    aggregate = dp.aggregator([np.zeros(2, np.float32)])
    assert aggregate.expected_clients == pytest.approx(2.0)
    aggregate.stddev = 0.0  # look at the clipped average alone
    aggregate.add([np.array([3.0, 4.0], np.float32)], 10)  # norm 5: clipped to 1
    aggregate.add([np.array([0.3, 0.4], np.float32)], 1)
    np.testing.assert_allclose(aggregate.result()[0], [0.45, 0.6], rtol=1e-6)


def test_adaptive_clip_moves_the_clip_norm_and_survives_a_resume() -> None:
    """The clip norm adapts after a release; a strategy loading the state has it."""
    dp = _dp(adaptive_clip=True, clients_per_round=4)
    dp.sample_clients(SITES[:8], np.random.default_rng(0))
    aggregate = dp.aggregator([np.zeros(3, np.float32)])
    for _ in range(4):  # every delta far beyond the clip norm: it grows
        aggregate.add([np.full(3, 50.0, np.float32)], 1)
    aggregate.result()
    aggregate.result()  # a second call releases nothing new, adapts nothing
    assert dp.clip_norm > 1.0
    state = dp.server_state()
    resumed = _dp(adaptive_clip=True, clients_per_round=4)
    resumed.load_server_state(state, [np.zeros(3, np.float32)])
    assert resumed.clip_norm == dp.clip_norm
    assert resumed.sampling_rate == dp.sampling_rate == 0.5


def test_fixed_clip_norm_does_not_move() -> None:
    """Without adaptive clipping the clip norm stays the configured one."""
    dp = _dp(clients_per_round=2)
    dp.sample_clients(SITES[:2], np.random.default_rng(0))
    aggregate = dp.aggregator([np.zeros(1, np.float32)])
    aggregate.add([np.full(1, 9.0, np.float32)], 1)
    aggregate.result()
    assert dp.clip_norm == 1.0


def test_state_before_the_first_round_has_no_sampling_rate() -> None:
    """A fresh strategy's state holds NaN for q; loading it leaves q unset."""
    state = _dp().server_state()
    assert math.isnan(float(state["dp_sampling_rate"][0]))
    dp = _dp()
    dp.load_server_state(state, [])
    assert dp.sampling_rate is None


@pytest.mark.parametrize(
    "state",
    [
        {"m_0": np.zeros(1)},
        {"dp_clip_norm": np.array([-1.0]), "dp_sampling_rate": np.array([0.5])},
        {"dp_clip_norm": np.array([1.0]), "dp_sampling_rate": np.array([2.0])},
        {"dp_clip_norm": np.ones(2), "dp_sampling_rate": np.array([0.5])},
    ],
)
def test_a_foreign_or_broken_state_is_refused(state: dict[str, np.ndarray]) -> None:
    """Another strategy's moments or out-of-range figures raise AggregationError."""
    with pytest.raises(AggregationError):
        _dp().load_server_state(state, [])


def test_epsilon_per_round_is_the_accountants() -> None:
    """round_epsilon equals accountant.epsilon for the fixed q, None elsewhere."""
    dp = _dp(clients_per_round=10, delta=1e-5)
    assert round_epsilon(dp, 1) is None  # q not fixed yet
    dp.sample_clients(SITES, np.random.default_rng(0))
    for server_round in (1, 2, 5):
        expected = accountant.epsilon(1.0, 0.25, server_round, 1e-5)
        assert round_epsilon(dp, server_round) == pytest.approx(expected, rel=1e-12)
    assert round_epsilon(FedAvg(), 1) is None


def test_budget_stop_names_the_round_and_the_epsilon() -> None:
    """The first round over the target is refused with epsilon and target."""
    rounds_ok = accountant.rounds_within_budget(1.0, 1.0, 6.0, 1e-5, 50)
    dp = _dp(target_epsilon=6.0)
    assert budget_stop(dp, rounds_ok, 3) is None
    reason = budget_stop(dp, rounds_ok + 1, None)
    spent = accountant.epsilon(1.0, 1.0, rounds_ok + 1, 1e-5)
    assert reason == (
        f"privacy budget: round {rounds_ok + 1} would spend epsilon {spent:.4f}"
        " > target 6"
    )
    assert budget_stop(_dp(), 1000, 3) is None  # no target, no stop
    assert budget_stop(FedAvg(), 1000, 3) is None
