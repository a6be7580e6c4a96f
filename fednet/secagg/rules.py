"""What a run with secure aggregation may combine with, and its round threshold."""

from __future__ import annotations

import math
from typing import Any, Protocol

from fednet.secagg.shamir import MAX_SHARES as MAX_SHARES

SECAGG_STRATEGIES = ("fedavg", "fedprox")
"""The strategies whose aggregate is a weighted sum, all the coordinator sees."""
DEFAULT_THRESHOLD = 0.67
DEFAULT_CLIP = 1.0
THRESHOLD_SCHEMA: dict[str, Any] = {
    "anyOf": [
        {"type": "number", "minimum": 0.5, "exclusiveMinimum": True, "maximum": 1},
        {"type": "integer", "minimum": 2, "maximum": MAX_SHARES},
    ],
    "default": DEFAULT_THRESHOLD,
    "description": "a fraction in (0.5, 1] of each round's sites, or a count"
    " of sites >= 2; at least a majority of the round's sites",
}


class SecAggConfig(Protocol):
    """The RunConfig fields the rules read."""

    @property
    def secure_aggregation(self) -> bool: ...
    @property
    def secagg_threshold(self) -> float: ...
    @property
    def mode(self) -> str: ...
    @property
    def strategy(self) -> str: ...
    @property
    def dp(self) -> str: ...
    @property
    def min_clients(self) -> int: ...
    @property
    def clients_per_round(self) -> int: ...
    @property
    def secagg_clip(self) -> float: ...
    @property
    def dp_adaptive_clip(self) -> bool: ...
    @property
    def dp_clip_norm(self) -> float: ...
    @property
    def dp_noise_multiplier(self) -> float: ...


def check_threshold(value: Any) -> str | None:
    """Refuse a threshold that is neither a fraction in (0.5, 1] nor a count >= 2."""
    if isinstance(value, bool) or not isinstance(value, (int, float)):
        return f"must be a number, got {value!r}"
    if 0.5 < value <= 1:
        return None
    if 2 <= value <= MAX_SHARES and float(value).is_integer():
        return None
    return (
        "must be a fraction of the round's sites in (0.5, 1] or a whole count"
        f" of sites from 2 to {MAX_SHARES}, got {value!r}"
    )


def round_threshold(value: float, sites: int) -> int:
    """Return t for a round of ``sites`` parties: the count, or the fraction of them.

    Always more than half the sites (Bonawitz et al. 2017, section 4: no two
    disjoint groups of t parties may exist). May exceed ``sites``: then the
    round cannot complete.
    """
    if value <= 1:
        # The small slack keeps 0.7 * 10 at 7, not 8.
        wanted = math.ceil(value * sites - 1e-9)
    else:
        wanted = int(value)
    return max(wanted, sites // 2 + 1)


def secagg_errors(config: SecAggConfig) -> dict[str, str]:
    """Return why a RunConfig cannot run with secure aggregation (field -> reason)."""
    if not config.secure_aggregation:
        return {}
    if config.mode != "sync":
        return {"mode": f"secure aggregation runs in sync mode only, got {config.mode}"}
    if config.strategy not in SECAGG_STRATEGIES:
        return {
            "strategy": "secure aggregation works with"
            f" {' and '.join(SECAGG_STRATEGIES)} only, got {config.strategy}:"
            " the coordinator sees only the sum of the updates"
        }
    if config.dp == "central":
        return {
            "dp": "dp=central is not available with secure aggregation: it clips"
            " each site's update on the coordinator, which secure aggregation"
            " hides from it; use dp=distributed"
        }
    if config.dp == "distributed" and config.dp_adaptive_clip:
        return {
            "dp_adaptive_clip": "dp=distributed clips with a fixed norm: adaptive"
            " clipping needs each site's clipping on the coordinator"
        }
    if config.dp == "distributed" and config.secagg_clip < _dp_range(config):
        return {
            "secagg_clip": f"must be at least {_dp_range(config):g} with"
            " dp=distributed (dp_clip_norm plus 6 standard deviations of a"
            " site's noise share), so noise is not clipped"
        }
    if config.min_clients < 2:
        return {"min_clients": "secure aggregation needs at least 2 sites a round"}
    count = config.secagg_threshold
    if count > 1 and config.clients_per_round and count > config.clients_per_round:
        return {
            "secagg_threshold": f"a count of {count:g} sites exceeds"
            f" clients_per_round ({config.clients_per_round})"
        }
    return {}


def _dp_range(config: SecAggConfig) -> float:
    """Return the smallest clip range that leaves dp=distributed's noise whole.

    A site's value is its clipped delta (at most dp_clip_norm per coordinate)
    plus its noise share, whose std is at most noise_multiplier * dp_clip_norm
    (a share of t >= 1): 6 of those are exceeded with probability 2e-9.
    """
    return config.dp_clip_norm * (1 + 6 * config.dp_noise_multiplier)
