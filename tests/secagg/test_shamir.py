"""t-of-n Shamir sharing over GF(2^521 - 1): round trips and refusals."""

from __future__ import annotations

import itertools
import random

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from fednet.secagg.errors import SecAggError
from fednet.secagg.shamir import (
    PRIME,
    Share,
    combine,
    split,
    y_from_bytes,
    y_to_bytes,
)

SECRET = bytes(range(100, 132))


def test_every_t_subset_of_five_recovers_the_secret() -> None:
    """For each t in 1..5, every subset of t of the 5 shares gives the secret."""
    rng = random.Random(1)
    for t in range(1, 6):
        shares = split(SECRET, t, 5, rng.randbytes)
        assert [s.x for s in shares] == [1, 2, 3, 4, 5]
        for subset in itertools.combinations(shares, t):
            assert combine(list(subset), t) == SECRET


@settings(max_examples=50, deadline=None)
@given(
    secret=st.binary(min_size=32, max_size=32),
    n=st.integers(1, 12),
    data=st.data(),
)
def test_random_secrets_round_trip(secret: bytes, n: int, data: st.DataObject) -> None:
    """Any t shares, in any order, recover any secret (the top bytes included)."""
    t = data.draw(st.integers(1, n))
    shares = split(secret, t, n, random.Random(n).randbytes)
    chosen = data.draw(st.permutations(shares))[:t]
    assert combine(chosen, t) == secret


def test_fewer_than_t_shares_raise() -> None:
    """t - 1 shares are refused with the count in the message."""
    shares = split(SECRET, 3, 5, random.Random(2).randbytes)
    with pytest.raises(SecAggError, match="need 3 shares, got 2"):
        combine(shares[:2], 3)


def test_a_random_forged_share_is_detected() -> None:
    """A random t-th share decodes out of the 32-byte range (w.p. 1 - 2^-265)."""
    shares = split(SECRET, 3, 5, random.Random(3).randbytes)
    forged = [shares[0], shares[1], Share(3, random.Random(4).randrange(PRIME))]
    with pytest.raises(SecAggError, match="inconsistent"):
        combine(forged, 3)


@pytest.mark.parametrize(
    ("shares", "message"),
    [
        ([Share(1, 5), Share(1, 6)], "duplicate share x 1"),
        ([Share(0, 5), Share(1, 6)], "share x out of range"),
        ([Share(1, PRIME), Share(2, 6)], "share y out of range"),
        ([Share(1, -1), Share(2, 6)], "share y out of range"),
        ([(1, 5), Share(2, 6)], "expected a Share"),
    ],
)
def test_bad_shares_raise(shares: list[Share], message: str) -> None:
    """Duplicate or out-of-range x, out-of-range y and other types are refused."""
    with pytest.raises(SecAggError, match=message):
        combine(shares, 2)


@pytest.mark.parametrize(
    ("secret", "t", "n", "message"),
    [
        (b"short", 2, 3, "secret must be 32 bytes"),
        (SECRET, 0, 3, "t must be in"),
        (SECRET, 4, 3, "t must be in"),
        (SECRET, 1, 0, "n must be in"),
        (SECRET, 1, 1 << 17, "n must be in"),
    ],
)
def test_bad_split_arguments_raise(secret: bytes, t: int, n: int, message: str) -> None:
    """A wrong-sized secret or t outside [1, n] is refused."""
    with pytest.raises(SecAggError, match=message):
        split(secret, t, n, random.Random(0).randbytes)


def test_rng_returning_wrong_length_is_refused() -> None:
    """An rng that returns too few bytes raises instead of weakening shares."""
    with pytest.raises(SecAggError, match="rng_bytes must return 66 bytes"):
        split(SECRET, 2, 3, lambda k: bytes(k - 1))


def test_share_values_round_trip_through_66_bytes() -> None:
    """y_from_bytes(y_to_bytes(y)) == y; values at or above the prime fail."""
    for y in (0, 1, PRIME - 1):
        assert y_from_bytes(y_to_bytes(y)) == y
    with pytest.raises(SecAggError, match="out of range"):
        y_from_bytes(PRIME.to_bytes(66, "big"))
    with pytest.raises(SecAggError, match="66 bytes"):
        y_from_bytes(bytes(65))
