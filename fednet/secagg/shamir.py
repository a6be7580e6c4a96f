"""t-of-n Shamir secret sharing of 32-byte secrets over the field GF(2^521 - 1).

The modulus is the Mersenne prime M521 = 2^521 - 1 (Robinson, 1952; also the
field prime of NIST P-521, FIPS 186-4 D.1.2.5), comfortably above 2^256.
Shamir, "How to Share a Secret", CACM 22(11), 1979.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass

from fednet.secagg.errors import SecAggError

PRIME = (1 << 521) - 1
SECRET_BYTES = 32
Y_BYTES = 66
MAX_SHARES = 1 << 16
RandomBytes = Callable[[int], bytes]


@dataclass(frozen=True)
class Share:
    """One point (x, y) of the sharing polynomial; x is the 1-based party index."""

    x: int
    y: int


def split(secret: bytes, t: int, n: int, rng_bytes: RandomBytes) -> list[Share]:
    """Split a 32-byte secret into n shares, any t of which recover it.

    Args:
        secret: 32 bytes.
        t: the threshold, 1 <= t <= n.
        n: the number of shares, at most 2^16.
        rng_bytes: a CSPRNG like ``os.urandom``, called with a byte count.

    Returns:
        Shares for x = 1..n, in that order.

    Raises:
        SecAggError: on a bad secret, t or n, or an rng that returns the
            wrong number of bytes.
    """
    if not isinstance(secret, bytes) or len(secret) != SECRET_BYTES:
        raise SecAggError(f"secret must be {SECRET_BYTES} bytes")
    _check_counts(t, n)
    # Reducing 521 random bits mod 2^521 - 1 has bias below 2^-520.
    coefficients = [int.from_bytes(secret, "big")]
    coefficients += [
        int.from_bytes(draw_bytes(rng_bytes, Y_BYTES), "big") % PRIME
        for _ in range(t - 1)
    ]
    return [Share(x, _evaluate(coefficients, x)) for x in range(1, n + 1)]


def combine(shares: Sequence[Share], t: int) -> bytes:
    """Recover the secret from at least t shares (the first t are used).

    Raises:
        SecAggError: on fewer than t shares, a duplicate or out-of-range x,
            an out-of-range y, or shares that do not decode to a 32-byte secret.
    """
    _check_counts(t, MAX_SHARES)
    if len(shares) < t:
        raise SecAggError(f"need {t} shares, got {len(shares)}")
    used = list(shares[:t])
    seen: set[int] = set()
    for share in used:
        _check_share(share)
        if share.x in seen:
            raise SecAggError(f"duplicate share x {share.x}")
        seen.add(share.x)
    secret = 0
    for share in used:
        num, den = 1, 1
        for other in used:
            if other.x != share.x:
                num = num * other.x % PRIME
                den = den * (other.x - share.x) % PRIME
        secret = (secret + share.y * num * pow(den, -1, PRIME)) % PRIME
    if secret >= 1 << (8 * SECRET_BYTES):
        raise SecAggError("shares are inconsistent: secret out of range")
    return secret.to_bytes(SECRET_BYTES, "big")


def y_to_bytes(y: int) -> bytes:
    """Encode a share's y value as 66 big-endian bytes."""
    if isinstance(y, bool) or not isinstance(y, int) or not 0 <= y < PRIME:
        raise SecAggError("share y out of range")
    return y.to_bytes(Y_BYTES, "big")


def y_from_bytes(data: bytes) -> int:
    """Decode a share's y value from 66 big-endian bytes.

    Raises:
        SecAggError: on a wrong length or a value not below the prime.
    """
    if not isinstance(data, bytes) or len(data) != Y_BYTES:
        raise SecAggError(f"share y must be {Y_BYTES} bytes")
    y = int.from_bytes(data, "big")
    if y >= PRIME:
        raise SecAggError("share y out of range")
    return y


def draw_bytes(rng_bytes: RandomBytes, count: int) -> bytes:
    """Call the injected randomness source and check what it returns.

    Raises:
        SecAggError: if it does not return exactly ``count`` bytes.
    """
    data = rng_bytes(count)
    if not isinstance(data, bytes) or len(data) != count:
        raise SecAggError(f"rng_bytes must return {count} bytes")
    return data


def _evaluate(coefficients: list[int], x: int) -> int:
    """Evaluate the polynomial at x by Horner's rule, mod PRIME."""
    value = 0
    for coefficient in reversed(coefficients):
        value = (value * x + coefficient) % PRIME
    return value


def _check_counts(t: int, n: int) -> None:
    """Check 1 <= t <= n <= MAX_SHARES, all ints."""
    for name, value in (("t", t), ("n", n)):
        if isinstance(value, bool) or not isinstance(value, int):
            raise SecAggError(f"{name} must be an int, got {value!r}")
    if not 1 <= n <= MAX_SHARES:
        raise SecAggError(f"n must be in [1, {MAX_SHARES}], got {n}")
    if not 1 <= t <= n:
        raise SecAggError(f"t must be in [1, {n}], got {t}")


def _check_share(share: Share) -> None:
    """Check a share's type and ranges."""
    if not isinstance(share, Share):
        raise SecAggError(f"expected a Share, got {type(share).__name__}")
    x, y = share.x, share.y
    if isinstance(x, bool) or not isinstance(x, int) or not 1 <= x <= MAX_SHARES:
        raise SecAggError(f"share x out of range: {x!r}")
    if isinstance(y, bool) or not isinstance(y, int) or not 0 <= y < PRIME:
        raise SecAggError(f"share y out of range for x {x}")
