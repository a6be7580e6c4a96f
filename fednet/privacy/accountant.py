"""Client-level privacy accounting for DP-FedAvg with dp-accounting's RDP accountant.

Each round samples every site independently with probability ``q`` (Poisson
sampling) and releases the clipped sum with Gaussian noise of ``noise_multiplier``
times the clip norm, so one site's participation in ``rounds`` rounds is
``rounds`` compositions of the sampled Gaussian mechanism (McMahan et al.,
2018, section 3; Mironov et al., 2019, "Renyi Differential Privacy of the
Sampled Gaussian Mechanism"). Neighbouring data sets add or remove one site.
"""

from __future__ import annotations

import math
from dataclasses import dataclass


from fednet.privacy.errors import PrivacyError


def check_privacy_params(
    noise_multiplier: float, sampling_rate: float, delta: float
) -> None:
    """Check the parameters every privacy computation shares.

    Raises:
        PrivacyError: unless noise_multiplier > 0, 0 < sampling_rate <= 1 and
            0 < delta < 1, all finite.
    """
    if not (math.isfinite(noise_multiplier) and noise_multiplier > 0):
        raise PrivacyError(f"noise_multiplier must be positive, got {noise_multiplier}")
    if not 0 < sampling_rate <= 1:
        raise PrivacyError(f"sampling_rate must be in (0, 1], got {sampling_rate}")
    if not 0 < delta < 1:
        raise PrivacyError(f"delta must be in (0, 1), got {delta}")


def _check_count(name: str, value: int) -> None:
    if isinstance(value, bool) or not isinstance(value, int) or value < 0:
        raise PrivacyError(f"{name} must be a non-negative integer, got {value!r}")


def epsilon(
    noise_multiplier: float, sampling_rate: float, rounds: int, delta: float
) -> float:
    """Return the client-level epsilon spent after ``rounds`` rounds of DP-FedAvg.

    Args:
        noise_multiplier: noise standard deviation over the clip norm.
        sampling_rate: the probability that a site takes part in a round.
        rounds: the number of rounds run; 0 spends nothing.
        delta: the target delta.

    Returns:
        The smallest epsilon the RDP accountant proves for ``delta``.

    Raises:
        PrivacyError: on an invalid parameter.
    """
    check_privacy_params(noise_multiplier, sampling_rate, delta)
    _check_count("rounds", rounds)
    if rounds == 0:
        return 0.0
    # Imported on use: with scipy and mpmath it costs a process about 80 MB,
    # which a coordinator that runs no DP run should not carry.
    import dp_accounting  # type: ignore[import-untyped]

    event = dp_accounting.PoissonSampledDpEvent(
        sampling_rate, dp_accounting.GaussianDpEvent(noise_multiplier)
    )
    accountant = dp_accounting.rdp.RdpAccountant()
    accountant.compose(event, rounds)
    return float(accountant.get_epsilon(delta))


def rounds_within_budget(
    noise_multiplier: float,
    sampling_rate: float,
    target_epsilon: float,
    delta: float,
    max_rounds: int,
) -> int:
    """Return the most rounds, up to ``max_rounds``, whose epsilon stays in budget.

    Epsilon grows with rounds (RDP composes additively), so a binary search
    finds the boundary in O(log max_rounds) accountant calls.

    Args:
        noise_multiplier: noise standard deviation over the clip norm.
        sampling_rate: the probability that a site takes part in a round.
        target_epsilon: the budget; epsilon may equal it.
        delta: the target delta.
        max_rounds: the largest answer wanted.

    Returns:
        r such that ``epsilon(r) <= target_epsilon`` and, unless r is
        ``max_rounds``, ``epsilon(r + 1) > target_epsilon``; 0 if even one
        round exceeds the budget.

    Raises:
        PrivacyError: on an invalid parameter.
    """
    check_privacy_params(noise_multiplier, sampling_rate, delta)
    _check_count("max_rounds", max_rounds)
    if not (math.isfinite(target_epsilon) and target_epsilon > 0):
        raise PrivacyError(f"target_epsilon must be positive, got {target_epsilon}")

    def within(rounds: int) -> bool:
        spent = epsilon(noise_multiplier, sampling_rate, rounds, delta)
        return spent <= target_epsilon

    if within(max_rounds):
        return max_rounds
    low, high = 0, max_rounds  # within(low) holds, within(high) does not
    while high - low > 1:
        middle = (low + high) // 2
        if within(middle):
            low = middle
        else:
            high = middle
    return low


@dataclass(frozen=True, kw_only=True)
class PrivacyBudget:
    """A run's privacy parameters and, optionally, the epsilon it may spend.

    Args:
        noise_multiplier: noise standard deviation over the clip norm.
        sampling_rate: the probability that a site takes part in a round.
        delta: the target delta.
        target_epsilon: the budget, or None to account without a limit.

    Raises:
        PrivacyError: on an invalid parameter.
    """

    noise_multiplier: float
    sampling_rate: float
    delta: float
    target_epsilon: float | None = None

    def __post_init__(self) -> None:
        check_privacy_params(self.noise_multiplier, self.sampling_rate, self.delta)
        target = self.target_epsilon
        if target is not None and not (math.isfinite(target) and target > 0):
            raise PrivacyError(f"target_epsilon must be positive, got {target}")

    def spent(self, rounds: int) -> float:
        """Return the epsilon spent after ``rounds`` rounds.

        Raises:
            PrivacyError: if rounds is negative.
        """
        return epsilon(self.noise_multiplier, self.sampling_rate, rounds, self.delta)

    def allows(self, rounds: int) -> bool:
        """Return whether ``rounds`` rounds stay within the budget (always without one).

        Raises:
            PrivacyError: if rounds is negative.
        """
        if self.target_epsilon is None:
            _check_count("rounds", rounds)
            return True
        return self.spent(rounds) <= self.target_epsilon

    def max_rounds(self, limit: int) -> int:
        """Return how many rounds, up to ``limit``, the budget allows.

        Raises:
            PrivacyError: if limit is negative.
        """
        if self.target_epsilon is None:
            _check_count("max_rounds", limit)
            return limit
        return rounds_within_budget(
            self.noise_multiplier,
            self.sampling_rate,
            self.target_epsilon,
            self.delta,
            limit,
        )
