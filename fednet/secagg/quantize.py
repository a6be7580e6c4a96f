"""Fixed-point quantisation of float updates into the ring Z_{2^32}.

Each value x in [-clip, clip] maps to round((x + clip) * scale) in [0, M] with
M = floor((2^32 - 1) / n), so the plain sum of n quantised values is at most
2^32 - 1 and the ring sum never wraps: masks cancel exactly and the sum decodes
without ambiguity.
"""

from __future__ import annotations

import math
from collections.abc import Sequence

import numpy as np
import numpy.typing as npt

from fednet.secagg.errors import SecAggError

U32 = npt.NDArray[np.uint32]
F64 = npt.NDArray[np.float64]
RING = 1 << 32
MAX_SUMMANDS = 1 << 16


def quantize(
    arrays: Sequence[npt.NDArray[np.floating]],
    clip: float,
    n: int,
    *,
    rng: np.random.Generator | None = None,
) -> list[U32]:
    """Clip float arrays to [-clip, clip] and map them to uint32 fixed point.

    Args:
        arrays: one client's (already weighted) update.
        clip: the clip range, the same for every summand of the round.
        n: the largest number of vectors that will be summed.
        rng: if given, round stochastically (unbiased) with it; otherwise round
            to nearest.

    Returns:
        One uint32 array per input array, same shapes.

    Raises:
        SecAggError: on a bad clip, n or rng, a non-float array, or a NaN
            or inf.
    """
    _top(clip, n)
    if rng is not None and not isinstance(rng, np.random.Generator):
        raise SecAggError(f"rng must be a numpy Generator, got {type(rng)}")
    out: list[U32] = []
    for index, arr in enumerate(arrays):
        if not isinstance(arr, np.ndarray) or arr.dtype.kind != "f":
            raise SecAggError(f"array {index}: expected a float array")
        encoded = np.empty(arr.shape, dtype=np.uint32)
        try:
            quantize_into(arr.astype(np.float64), clip, n, encoded, rng=rng)
        except SecAggError as e:
            raise SecAggError(f"array {index}: {e}") from None
        out.append(encoded)
    return out


def quantize_into(
    work: F64,
    clip: float,
    n: int,
    out: U32,
    *,
    rng: np.random.Generator | None = None,
) -> None:
    """Quantise a float64 array as :func:`quantize` does, into ``out``.

    ``work`` is scratch space: it is overwritten. Encoding a large update a
    chunk at a time through one cache-sized ``work`` avoids model-sized
    float64 temporaries.

    Raises:
        SecAggError: on a bad clip or n, or a NaN or infinite value
            (``out`` is then unchanged).
    """
    top = _top(clip, n)
    if not in_range(work, clip):
        np.clip(work, -clip, clip, out=work)
    _encode(work, clip, top, out, rng)


def quantize_clipped_into(work: F64, clip: float, n: int, out: U32) -> None:
    """Quantise, as :func:`quantize_into` does, values already in [-clip, clip].

    The caller has checked the range (with :func:`in_range`), so no pass
    checks it again; a value outside it would be encoded wrongly.

    Raises:
        SecAggError: on a bad clip or n.
    """
    _encode(work, clip, _top(clip, n), out, None)


def in_range(work: F64, clip: float) -> bool:
    """Tell whether every value lies in [-clip, clip], in two passes, no copy.

    Raises:
        SecAggError: on a NaN or infinite value (a NaN makes min and max NaN).
    """
    if not work.size:
        return True
    low, high = float(work.min()), float(work.max())
    if not (math.isfinite(low) and math.isfinite(high)):
        raise SecAggError("NaN or infinite value")
    return -clip <= low and high <= clip


def _encode(
    work: F64, clip: float, top: int, out: U32, rng: np.random.Generator | None
) -> None:
    """Map values in [-clip, clip] to [0, top] and write them into ``out``.

    Rounded to nearest, no value leaves [0, top]: rounding is monotone, so
    x + clip lies in [0, 2 clip] and times the scale at most a float64 ulp
    past ``top`` (below 2^32), which rint brings back. Stochastic rounding
    adds up to 1 and is clipped.
    """
    work += clip
    work *= top / (2.0 * clip)
    if rng is None:
        np.rint(work, out=work)
    else:
        work += rng.random(work.shape)
        np.floor(work, out=work)
        np.clip(work, 0, top, out=work)
    out[...] = work


def dequantize(
    summed: Sequence[U32], clip: float, n: int, *, summands: int | None = None
) -> list[F64]:
    """Decode a ring sum of quantised vectors into the float64 sum of originals.

    Args:
        summed: the uint32 sum (mod 2^32) of ``summands`` quantised vectors.
        clip: the clip range used by :func:`quantize`.
        n: the ``n`` used by :func:`quantize` (fixes the scale).
        summands: how many vectors were actually summed (fewer than ``n``
            after dropouts); defaults to ``n``.

    Returns:
        The sum of the (clipped) original vectors, one float64 array each.

    Raises:
        SecAggError: on a bad clip, n or summands, or a non-uint32 array.
    """
    top = _top(clip, n)
    count = _summands(n, summands)
    scale = top / (2.0 * clip)
    out: list[F64] = []
    for index, arr in enumerate(summed):
        if not isinstance(arr, np.ndarray) or arr.dtype != np.uint32:
            raise SecAggError(f"array {index}: expected a uint32 array")
        total = arr.astype(np.float64)
        total /= scale
        total -= count * clip
        out.append(total)
    return out


def max_error(
    clip: float, n: int, *, stochastic: bool = False, summands: int | None = None
) -> float:
    """State the worst-case absolute error of one element of a dequantised sum.

    The bound holds for inputs inside [-clip, clip] (clipping itself is not
    an error of the encoding): each summand is off by at most half a step
    (a whole step with stochastic rounding), plus float64 rounding slack.

    Args:
        clip: the clip range of :func:`quantize`.
        n: the ``n`` of :func:`quantize` (fixes the step).
        stochastic: whether the summands were rounded stochastically.
        summands: how many vectors were summed (defaults to ``n``).

    Raises:
        SecAggError: on a bad clip, n or summands.
    """
    top = _top(clip, n)
    count = _summands(n, summands)
    step = 2.0 * clip / top
    per_value = step if stochastic else step / 2.0
    return count * per_value + 8.0 * n * clip * 2.0**-52


def choose_clip(updates: Sequence[Sequence[npt.NDArray[np.floating]]]) -> float:
    """Choose a clip range from the data: the largest |value|, up to a power of 2.

    A power of two keeps the choice coarse (it reveals only an exponent) and
    loses at most one bit of resolution.

    Raises:
        SecAggError: on a NaN or infinite value.
    """
    largest = 0.0
    for update in updates:
        for arr in update:
            if arr.size:
                largest = max(largest, float(np.max(np.abs(arr))))
    if not math.isfinite(largest):
        raise SecAggError(f"cannot choose a clip from {largest}")
    if largest == 0.0:
        return 1.0
    return math.ldexp(1.0, math.frexp(largest)[1])


def _summands(n: int, summands: int | None) -> int:
    """Return how many vectors were summed (``n`` if None), checked to be <= n."""
    count = n if summands is None else summands
    if isinstance(count, bool) or not isinstance(count, int) or not 0 <= count <= n:
        raise SecAggError(f"summands must be in [0, {n}], got {count!r}")
    return count


def _top(clip: float, n: int) -> int:
    """Return M, the largest quantised value, after checking clip and n."""
    if not isinstance(clip, (int, float)) or not math.isfinite(clip) or clip <= 0:
        raise SecAggError(f"clip must be positive and finite, got {clip!r}")
    if isinstance(n, bool) or not isinstance(n, int) or not 1 <= n <= MAX_SUMMANDS:
        raise SecAggError(f"n must be in [1, {MAX_SUMMANDS}], got {n!r}")
    return (RING - 1) // n
