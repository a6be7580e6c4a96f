"""RunConfig.from_dict refuses invalid fields with ConfigError."""

from __future__ import annotations

import pytest

from fednet.config import RunConfig
from fednet.exceptions import ConfigError


@pytest.mark.parametrize("name", ["learning_rate", "round_timeout_s"])
@pytest.mark.parametrize("value", [10**400, -(10**400), 2**1100])
def test_integer_too_large_for_a_float_is_a_config_error(name: str, value: int) -> None:
    """An integer beyond float's range is refused, not an OverflowError."""
    with pytest.raises(ConfigError, match=name):
        RunConfig.from_dict({name: value})


def test_integer_rate_becomes_a_float() -> None:
    """A whole-number learning rate is accepted and stored as a float."""
    config = RunConfig.from_dict({"learning_rate": 1, "round_timeout_s": 60})
    assert config.learning_rate == 1.0 and isinstance(config.learning_rate, float)
    assert isinstance(config.round_timeout_s, float)


def test_strategy_fields_have_flower_defaults() -> None:
    """FedTrimmedAvg's beta is 0.2 and Krum assumes no attacker, as in Flower."""
    config = RunConfig()
    assert (config.trim_fraction, config.num_malicious) == (0.2, 0)
    assert (config.proximal_mu, config.clip_norm) == (0.0, 1.0)


@pytest.mark.parametrize(
    "strategy",
    ["fedavg", "fedprox", "fedmedian", "fedtrimmedavg", "krum", "multikrum",
     "fedavg_clipped"],
)
def test_every_strategy_name_is_accepted(strategy: str) -> None:
    """Each of issue 13's names (Flower's, lower case) is a valid strategy."""
    config = RunConfig.from_dict({"strategy": strategy, "min_clients": 3})
    assert config.strategy == strategy


@pytest.mark.parametrize(
    ("name", "value"),
    [("proximal_mu", -0.1), ("trim_fraction", 0.5), ("num_malicious", -1),
     ("clip_norm", 0.0), ("clip_norm", "1"), ("num_malicious", 1.5)],
)
def test_invalid_strategy_field_is_named(name: str, value: object) -> None:
    """An out-of-range or mistyped strategy field is a ConfigError naming it."""
    with pytest.raises(ConfigError) as info:
        RunConfig.from_dict({name: value})
    assert set(info.value.errors) == {name}


def test_integer_strategy_floats_become_floats() -> None:
    """Whole-number mu, trim fraction and clip norm are stored as floats."""
    config = RunConfig.from_dict(
        {"strategy": "fedprox", "proximal_mu": 1, "clip_norm": 2, "trim_fraction": 0}
    )
    assert isinstance(config.proximal_mu, float)
    assert isinstance(config.clip_norm, float)
    assert isinstance(config.trim_fraction, float)


def test_field_of_another_strategy_is_accepted_and_ignored() -> None:
    """A field the strategy does not take is kept in the config, used by none."""
    config = RunConfig.from_dict({"strategy": "fedavg", "clip_norm": 5.0})
    assert config.clip_norm == 5.0


@pytest.mark.parametrize("strategy", ["krum", "multikrum"])
def test_krum_needs_more_than_2f_plus_2_clients(strategy: str) -> None:
    """n > 2f + 2: with f = 2, min_clients and clients_per_round must be >= 7."""
    ok = {"strategy": strategy, "num_malicious": 2, "min_clients": 7}
    RunConfig.from_dict({**ok, "clients_per_round": 7})
    RunConfig.from_dict({**ok, "clients_per_round": 0})
    with pytest.raises(ConfigError) as info:
        RunConfig.from_dict({**ok, "min_clients": 6})
    assert set(info.value.errors) == {"min_clients"}
    assert "2 * num_malicious + 3 (7)" in info.value.errors["min_clients"]
    with pytest.raises(ConfigError) as info:
        RunConfig.from_dict({**ok, "min_clients": 5, "clients_per_round": 6})
    assert set(info.value.errors) == {"min_clients", "clients_per_round"}


def test_num_malicious_does_not_bind_other_strategies() -> None:
    """Only Krum counts attackers: fedmedian with num_malicious 3 and 2 clients."""
    config = RunConfig.from_dict({"strategy": "fedmedian", "num_malicious": 3})
    assert config.min_clients == 2


def test_old_run_config_json_still_loads() -> None:
    """A stored config without the strategy fields gets their defaults."""
    old = {k: v for k, v in RunConfig().to_dict().items()
           if k not in ("proximal_mu", "trim_fraction", "num_malicious", "clip_norm")}
    assert RunConfig.from_dict(old) == RunConfig()
