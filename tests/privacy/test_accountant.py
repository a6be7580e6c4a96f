"""Client-level accounting: the library's own epsilon, monotonicity, the budget edge."""

from __future__ import annotations

import re

import dp_accounting  # type: ignore[import-untyped]
import pytest

from fednet.privacy.accountant import PrivacyBudget, epsilon, rounds_within_budget
from fednet.privacy.errors import PrivacyError

SETTINGS = [
    (1.0, 0.1, 100, 1e-5),
    (0.8, 0.01, 1000, 1e-6),
    (2.0, 1.0, 10, 1e-5),
    (1.3, 0.05, 1, 1e-3),
]


def _library_epsilon(noise: float, q: float, rounds: int, delta: float) -> float:
    accountant = dp_accounting.rdp.RdpAccountant()
    sampled = dp_accounting.PoissonSampledDpEvent(
        q, dp_accounting.GaussianDpEvent(noise)
    )
    accountant.compose(dp_accounting.SelfComposedDpEvent(sampled, rounds))
    return float(accountant.get_epsilon(delta))


@pytest.mark.parametrize(("noise", "q", "rounds", "delta"), SETTINGS)
def test_epsilon_equals_the_library_rdp_accountant(
    noise: float, q: float, rounds: int, delta: float
) -> None:
    """epsilon() is the RDP accountant's answer for the composed sampled Gaussian."""
    expected = _library_epsilon(noise, q, rounds, delta)

    assert epsilon(noise, q, rounds, delta) == pytest.approx(expected, rel=1e-12)


def test_epsilon_of_noise_one_q_tenth_hundred_rounds_is_about_eight() -> None:
    """The reference setting (z=1, q=0.1, 100 rounds, delta=1e-5) gives about 7.9."""
    assert epsilon(1.0, 0.1, 100, 1e-5) == pytest.approx(7.904, abs=1e-3)


def test_zero_rounds_spend_nothing() -> None:
    """No round run means no epsilon spent."""
    assert epsilon(1.0, 0.1, 0, 1e-5) == 0.0


def test_epsilon_grows_with_rounds() -> None:
    """More rounds never spend less."""
    spent = [epsilon(1.0, 0.1, r, 1e-5) for r in (1, 2, 5, 10, 50, 200, 1000)]

    assert spent == sorted(spent)
    assert spent[0] < spent[-1]


def test_epsilon_shrinks_with_noise() -> None:
    """More noise never spends more."""
    spent = [epsilon(z, 0.1, 100, 1e-5) for z in (0.6, 0.8, 1.0, 1.5, 3.0)]

    assert spent == sorted(spent, reverse=True)
    assert spent[0] > spent[-1]


@pytest.mark.parametrize("target", [3.0, 5.0, 7.9])
def test_rounds_within_budget_is_the_boundary(target: float) -> None:
    """r rounds stay within the budget and r + 1 exceed it."""
    r = rounds_within_budget(1.0, 0.1, target, 1e-5, 10_000)

    assert 0 < r < 10_000
    assert epsilon(1.0, 0.1, r, 1e-5) <= target
    assert epsilon(1.0, 0.1, r + 1, 1e-5) > target


def test_rounds_within_budget_is_zero_when_one_round_exceeds() -> None:
    """A budget below one round's cost allows no round."""
    one = epsilon(0.7, 1.0, 1, 1e-5)

    assert rounds_within_budget(0.7, 1.0, one / 2, 1e-5, 100) == 0


def test_rounds_within_budget_stops_at_max_rounds() -> None:
    """A budget that lasts longer than max_rounds returns max_rounds."""
    assert rounds_within_budget(5.0, 0.01, 8.0, 1e-5, 50) == 50


def test_budget_spent_and_allows_follow_the_accountant() -> None:
    """PrivacyBudget spends like epsilon() and allows up to its max_rounds."""
    budget = PrivacyBudget(
        noise_multiplier=1.0, sampling_rate=0.1, delta=1e-5, target_epsilon=4.0
    )
    r = budget.max_rounds(10_000)

    assert budget.spent(100) == epsilon(1.0, 0.1, 100, 1e-5)
    assert budget.allows(r)
    assert not budget.allows(r + 1)


def test_budget_without_target_allows_everything() -> None:
    """Without a target, the budget only accounts."""
    budget = PrivacyBudget(noise_multiplier=1.0, sampling_rate=0.1, delta=1e-5)

    assert budget.allows(10**6)
    assert budget.max_rounds(123) == 123


@pytest.mark.parametrize(
    ("kwargs", "message"),
    [
        ({"noise_multiplier": 0.0}, "noise_multiplier must be positive, got 0.0"),
        ({"noise_multiplier": float("nan")}, "noise_multiplier"),
        ({"sampling_rate": 0.0}, "sampling_rate must be in (0, 1], got 0.0"),
        ({"sampling_rate": 1.5}, "got 1.5"),
        ({"delta": 0.0}, "delta must be in (0, 1), got 0.0"),
        ({"delta": 1.0}, "got 1.0"),
        ({"rounds": -1}, "rounds must be a non-negative integer, got -1"),
        ({"rounds": 2.5}, "got 2.5"),
    ],
)
def test_epsilon_rejects_invalid_parameters(
    kwargs: dict[str, float], message: str
) -> None:
    """Each invalid parameter raises PrivacyError naming the value."""
    args: dict[str, float] = {
        "noise_multiplier": 1.0,
        "sampling_rate": 0.1,
        "rounds": 10,
        "delta": 1e-5,
    }
    args.update(kwargs)

    with pytest.raises(PrivacyError, match=re.escape(message)):
        epsilon(**args)  # type: ignore[arg-type]


@pytest.mark.parametrize(
    ("target", "max_rounds", "message"),
    [
        (0.0, 10, "target_epsilon must be positive, got 0.0"),
        (float("inf"), 10, "target_epsilon"),
        (1.0, -1, "max_rounds must be a non-negative integer, got -1"),
    ],
)
def test_rounds_within_budget_rejects_invalid_parameters(
    target: float, max_rounds: int, message: str
) -> None:
    """A non-positive budget or negative max_rounds raises PrivacyError."""
    with pytest.raises(PrivacyError, match=message):
        rounds_within_budget(1.0, 0.1, target, 1e-5, max_rounds)


def test_budget_rejects_invalid_target() -> None:
    """A negative target epsilon is refused at construction."""
    with pytest.raises(PrivacyError, match="got -1.0"):
        PrivacyBudget(
            noise_multiplier=1.0, sampling_rate=0.1, delta=1e-5, target_epsilon=-1.0
        )
