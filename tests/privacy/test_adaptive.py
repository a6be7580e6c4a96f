"""Adaptive clipping: the geometric update, its noise, and the noise split."""

from __future__ import annotations

import re

import math

import numpy as np
import pytest

from fednet.privacy.adaptive import adapt_clip_norm, update_noise_multiplier
from fednet.privacy.errors import PrivacyError


def _adapt(
    unclipped: int, clients: int = 10, stddev: float = 0.0, seed: int = 0
) -> float:
    return adapt_clip_norm(
        1.0,
        unclipped_count=unclipped,
        clients=clients,
        expected_clients=10,
        count_stddev=stddev,
        rng=np.random.default_rng(seed),
    )


def test_clip_norm_stays_when_the_target_quantile_goes_unclipped() -> None:
    """Half the sites unclipped with target 0.5: the clip norm does not move."""
    assert _adapt(5) == pytest.approx(1.0)


def test_clip_norm_grows_when_too_many_sites_are_clipped() -> None:
    """No site unclipped: C * exp(0.2 * 0.5)."""
    assert _adapt(0) == pytest.approx(math.exp(0.1))


def test_clip_norm_shrinks_when_no_site_is_clipped() -> None:
    """Every site unclipped: C * exp(-0.2 * 0.5)."""
    assert _adapt(10) == pytest.approx(math.exp(-0.1))


def test_count_noise_has_the_stated_std() -> None:
    """log(C'/C) = -lr * noise / n, so its std is lr * count_stddev / n."""
    logs = [math.log(_adapt(5, stddev=2.0, seed=s)) for s in range(4000)]

    assert np.std(logs) == pytest.approx(0.2 * 2.0 / 10, rel=0.05)


def test_update_noise_multiplier_keeps_the_total_privacy() -> None:
    """z_update^-2 + (2 sigma_b)^-2 = z^-2."""
    z_update = update_noise_multiplier(1.0, 0.5 * 10 / 2)

    assert z_update**-2 + (2 * 2.5) ** -2 == pytest.approx(1.0)
    assert z_update > 1.0


@pytest.mark.parametrize(
    ("kwargs", "message"),
    [
        ({"unclipped_count": 11}, "unclipped_count must be in [0, 10], got 11"),
        ({"expected_clients": 0.0}, "expected_clients must be positive, got 0.0"),
        ({"count_stddev": -1.0}, "count_stddev must be non-negative, got -1.0"),
        ({"target_quantile": 1.5}, "target_quantile must be in [0, 1], got 1.5"),
        ({"learning_rate": 0.0}, "learning_rate must be positive, got 0.0"),
    ],
)
def test_adapt_clip_norm_rejects_invalid_parameters(
    kwargs: dict[str, float], message: str
) -> None:
    """Each invalid parameter raises PrivacyError naming the value."""
    args: dict[str, float] = {
        "unclipped_count": 5,
        "clients": 10,
        "expected_clients": 10.0,
        "count_stddev": 0.0,
    }
    args.update(kwargs)

    with pytest.raises(PrivacyError, match=re.escape(message)):
        rng = np.random.default_rng(0)
        adapt_clip_norm(1.0, rng=rng, **args)  # type: ignore[arg-type]


def test_update_noise_multiplier_needs_enough_count_noise() -> None:
    """The count noise must be larger than z / 2, or nothing is left for updates."""
    with pytest.raises(PrivacyError, match="got 0.5"):
        update_noise_multiplier(1.0, 0.5)
