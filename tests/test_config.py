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
