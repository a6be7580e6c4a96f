"""RunConfig's secure-aggregation fields: what they accept, refuse, and mean."""

from __future__ import annotations

import pytest

from fednet.config import RunConfig
from fednet.exceptions import ConfigError
from fednet.secagg.rules import round_threshold


def _errors(**fields: object) -> dict[str, str]:
    with pytest.raises(ConfigError) as info:
        RunConfig.from_dict({"secure_aggregation": True, **fields})
    return info.value.errors


def test_defaults_are_off_two_thirds_and_clip_one() -> None:
    """Secure aggregation is off by default; threshold 0.67, clip 1."""
    config = RunConfig()
    assert config.secure_aggregation is False
    assert (config.secagg_threshold, config.secagg_clip) == (0.67, 1.0)


@pytest.mark.parametrize("threshold", [0.51, 0.7, 1, 1.0, 2, 7, 65536])
def test_threshold_takes_a_fraction_or_a_count(threshold: float) -> None:
    """A fraction in (0.5, 1] or a whole count from 2 is accepted."""
    config = RunConfig.from_dict(
        {"secure_aggregation": True, "secagg_threshold": threshold}
    )
    assert config.secagg_threshold == threshold


@pytest.mark.parametrize("threshold", [0.5, 0, -1, 1.5, 7.5, 65537, True, "7"])
def test_threshold_refuses_anything_else(threshold: object) -> None:
    """A half, a fraction above 1 that is not a count, a string: refused."""
    assert "secagg_threshold" in _errors(secagg_threshold=threshold)


def test_threshold_of_a_round_is_a_majority_at_least() -> None:
    """0.7 of 10 is 7, of 6 is 5; a count stays; never half or less."""
    assert round_threshold(0.7, 10) == 7
    assert round_threshold(0.7, 6) == 5
    assert round_threshold(0.51, 4) == 3
    assert round_threshold(7, 10) == 7
    assert round_threshold(2, 10) == 6
    assert round_threshold(7, 6) == 7  # the round cannot complete


@pytest.mark.parametrize(
    ("fields", "name", "reason"),
    [
        ({"mode": "async"}, "mode", "sync mode only"),
        ({"strategy": "fedmedian"}, "strategy", "fedavg and fedprox only"),
        ({"strategy": "fedadam"}, "strategy", "only the sum"),
        ({"dp": "central"}, "dp", "hides from it; use dp=distributed"),
        ({"dp": "distributed"}, "secagg_clip", "must be at least 7 with"),
        ({"dp": "distributed", "secagg_clip": 8, "dp_adaptive_clip": True},
         "dp_adaptive_clip", "fixed norm"),
        ({"min_clients": 1}, "min_clients", "at least 2 sites"),
        ({"secagg_threshold": 8, "clients_per_round": 5, "min_clients": 2},
         "secagg_threshold", "exceeds clients_per_round"),
        ({"secagg_clip": 0}, "secagg_clip", "greater than 0"),
    ],
)
def test_combinations_secure_aggregation_cannot_serve_are_refused(
    fields: dict[str, object], name: str, reason: str
) -> None:
    """Each refusal names the field and says why."""
    errors = _errors(**fields)
    assert reason in errors[name], errors


def test_fedprox_in_sync_mode_is_allowed() -> None:
    """fedprox's aggregate is a weighted mean too."""
    config = RunConfig.from_dict({"secure_aggregation": True, "strategy": "fedprox"})
    assert config.secure_aggregation


def test_fednet_run_has_the_secure_aggregation_flags() -> None:
    """`fednet run --secure-aggregation --secagg-threshold 7 --secagg-clip 2`."""
    from fednet import cli

    args = cli.build_parser().parse_args(
        ["run", "--secure-aggregation", "--secagg-threshold", "7",
         "--secagg-clip", "2"]
    )
    assert (args.secure_aggregation, args.secagg_threshold) == (True, 7.0)
    assert args.secagg_clip == 2.0
    config = RunConfig(secure_aggregation=True, secagg_threshold=7.0, secagg_clip=2.0)
    assert config.secagg_threshold == 7.0


def test_distributed_dp_needs_secure_aggregation_and_room_for_its_noise() -> None:
    """dp=distributed alone is refused; with secure aggregation and c >= 7 it runs."""
    with pytest.raises(ConfigError) as info:
        RunConfig.from_dict({"dp": "distributed"})
    assert "needs secure aggregation" in info.value.errors["dp"]
    config = RunConfig.from_dict(
        {"dp": "distributed", "secure_aggregation": True, "secagg_clip": 7}
    )
    assert config.dp == "distributed"
