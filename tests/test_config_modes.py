"""RunConfig's run modes: sync by default, async (FedBuff) with its checks."""

from __future__ import annotations

import pytest

from fednet.config import RunConfig
from fednet.exceptions import ConfigError


def _errors(**fields: object) -> dict[str, str]:
    with pytest.raises(ConfigError) as caught:
        RunConfig.from_dict(fields)
    return caught.value.errors


def test_defaults_are_sync_with_fedbuff_paper_buffer() -> None:
    """mode sync; K = 10 as in the FedBuff paper; max_staleness 10; all clients."""
    config = RunConfig()
    assert (config.mode, config.buffer_size, config.max_staleness) == ("sync", 10, 10)
    assert config.max_concurrency == 0


def test_async_fedavg_and_fedprox_are_accepted() -> None:
    """The two strategies FedBuff's mean replaces are valid in async mode."""
    for strategy in ("fedavg", "fedprox"):
        config = RunConfig.from_dict(
            {"mode": "async", "strategy": strategy, "buffer_size": 3,
             "max_concurrency": 4, "max_staleness": 2}
        )
        assert config.to_dict()["mode"] == "async"


def test_gossip_is_available_with_two_peers_by_default() -> None:
    """gossip is a mode like the others; k = 2 peers unless told otherwise."""
    config = RunConfig.from_dict({"mode": "gossip"})
    assert (config.mode, config.gossip_peers) == ("gossip", 2)
    assert "must be one of" in _errors(mode="rounds")["mode"]


@pytest.mark.parametrize("strategy", ["fedmedian", "krum", "fedadam"])
def test_async_refuses_other_strategies_with_the_reason(strategy: str) -> None:
    """Robust and FedOpt aggregators do not combine with the buffered mean."""
    message = _errors(mode="async", strategy=strategy)["strategy"]
    assert strategy in message and "fedavg and fedprox" in message


def test_async_buffer_larger_than_concurrency_is_refused() -> None:
    """K cannot exceed the clients that may train at once."""
    errors = _errors(mode="async", buffer_size=5, max_concurrency=4)
    assert errors == {"buffer_size": "must be at most max_concurrency (4), got 5"}


def test_async_refuses_dp() -> None:
    """Central DP's accounting assumes rounds: refused in async mode."""
    assert "dp" in _errors(mode="async", dp="central")


@pytest.mark.parametrize(
    "field, value",
    [("buffer_size", 0), ("max_staleness", -1), ("max_concurrency", -1),
     ("buffer_size", True)],
)
def test_out_of_range_mode_fields_are_refused(field: str, value: object) -> None:
    """Each mode field is range-checked like the others."""
    assert field in _errors(**{field: value})
