"""Adaptive clipping: move the clip norm towards a quantile of the update norms.

After Andrew et al., 2021, "Differentially Private Learning with Adaptive
Clipping", Algorithm 1 with the geometric update. Each round the coordinator
learns, with its own Gaussian noise, the fraction of sites whose delta was not
clipped, and moves the clip norm so that this fraction approaches
``target_quantile``.
"""

from __future__ import annotations

import math

import numpy as np

from fednet.privacy.errors import PrivacyError


def _check_adapt(
    clip_norm: float,
    unclipped_count: int,
    clients: int,
    expected_clients: float,
    count_stddev: float,
) -> None:
    if not (math.isfinite(clip_norm) and clip_norm > 0):
        raise PrivacyError(f"clip_norm must be positive, got {clip_norm}")
    if clients < 0:
        raise PrivacyError(f"clients must be non-negative, got {clients}")
    if not 0 <= unclipped_count <= clients:
        raise PrivacyError(
            f"unclipped_count must be in [0, {clients}], got {unclipped_count}"
        )
    if not (math.isfinite(expected_clients) and expected_clients > 0):
        raise PrivacyError(
            f"expected_clients must be positive, got {expected_clients}"
        )
    if not (math.isfinite(count_stddev) and count_stddev >= 0):
        raise PrivacyError(f"count_stddev must be non-negative, got {count_stddev}")


def adapt_clip_norm(
    clip_norm: float,
    *,
    unclipped_count: int,
    clients: int,
    expected_clients: float,
    count_stddev: float,
    rng: np.random.Generator,
    target_quantile: float = 0.5,
    learning_rate: float = 0.2,
) -> float:
    """Return the next round's clip norm, ``C * exp(-lr * (b - target_quantile))``.

    ``b`` is the noisy fraction of unclipped sites. Each site contributes
    ``1/2`` if unclipped and ``-1/2`` otherwise (sensitivity 1/2, section
    3.2), the sum gets N(0, count_stddev^2) and is divided by the expected
    number of sites, then 1/2 is added back.

    Args:
        clip_norm: this round's clip norm.
        unclipped_count: sites whose delta norm was at most ``clip_norm``.
        clients: sites whose update was folded in this round.
        expected_clients: the expected number of sites per round, ``q * N``.
        count_stddev: std of the noise on the count; the paper suggests
            ``expected_clients / 20``. 0 adds none (no privacy for the count).
        rng: the coordinator's generator.
        target_quantile: the fraction of sites that should go unclipped.
        learning_rate: the step of the geometric update (0.2 in the paper).

    Returns:
        The new clip norm, always positive.

    Raises:
        PrivacyError: on an invalid parameter.
    """
    _check_adapt(clip_norm, unclipped_count, clients, expected_clients, count_stddev)
    if not 0 <= target_quantile <= 1:
        raise PrivacyError(f"target_quantile must be in [0, 1], got {target_quantile}")
    if not (math.isfinite(learning_rate) and learning_rate > 0):
        raise PrivacyError(f"learning_rate must be positive, got {learning_rate}")
    centred = unclipped_count - clients / 2
    if count_stddev:
        centred += float(rng.normal(0.0, count_stddev))
    fraction = centred / expected_clients + 0.5
    return clip_norm * math.exp(-learning_rate * (fraction - target_quantile))


def update_noise_multiplier(noise_multiplier: float, count_stddev: float) -> float:
    """Return the noise multiplier left for the updates once the count is noised.

    Releasing the noisy count and the noisy average together costs as much as
    one Gaussian mechanism with ``noise_multiplier`` when the updates get
    ``(z^-2 - (2 * count_stddev)^-2)^(-1/2)`` (Andrew et al., 2021, section
    3.2); the accountant then keeps using ``noise_multiplier``.

    Args:
        noise_multiplier: the overall noise multiplier z the accountant uses.
        count_stddev: std of the noise on the unclipped count.

    Raises:
        PrivacyError: unless ``count_stddev > noise_multiplier / 2 > 0``.
    """
    if not (math.isfinite(noise_multiplier) and noise_multiplier > 0):
        raise PrivacyError(f"noise_multiplier must be positive, got {noise_multiplier}")
    if not 2 * count_stddev > noise_multiplier:
        raise PrivacyError(
            f"count_stddev must exceed noise_multiplier / 2, got {count_stddev}"
        )
    return float((noise_multiplier**-2 - (2 * count_stddev) ** -2) ** -0.5)
