"""Central DP-FedAvg: clip each site's update, average, add Gaussian noise once.

After McMahan et al., 2018, "Learning Differentially Private Recurrent Language
Models", Algorithm 1 with equal weights (w_k = 1). Each site's delta
``update - global`` is clipped to L2 norm ``clip_norm`` over all its arrays
together, the clipped deltas are summed and divided by the *expected* number
of sites per round ``n = q * N`` (the paper's fixed-denominator estimator), and
noise N(0, (noise_multiplier * clip_norm / n)^2) is added to each coordinate.
One site then moves the average by at most ``clip_norm / n`` whether it takes
part or not, which is the sensitivity the accountant assumes.

Updates are not weighted by ``num_examples``: the count is the site's own
claim, so a weight from it would let one site buy unbounded influence, and the
sensitivity, hence the guarantee, would be lost. Client-level DP protects a
whole site, so every site counts once.
"""

from __future__ import annotations

import math
from collections.abc import Iterator

import numpy as np
import numpy.typing as npt

from fednet.aggregation import BLOCK, check_update
from fednet.exceptions import AggregationError
from fednet.privacy.errors import PrivacyError
from fednet.typing import NDArrays

F32 = npt.NDArray[np.float32]
F64 = npt.NDArray[np.float64]


def _check_noise(noise_multiplier: float, clip_norm: float, n: float) -> None:
    if not (math.isfinite(noise_multiplier) and noise_multiplier >= 0):
        raise PrivacyError(
            f"noise_multiplier must be non-negative, got {noise_multiplier}"
        )
    if not (math.isfinite(clip_norm) and clip_norm > 0):
        raise PrivacyError(f"clip_norm must be positive, got {clip_norm}")
    if not (math.isfinite(n) and n > 0):
        raise PrivacyError(f"expected sites per round must be positive, got {n}")


def noise_stddev(noise_multiplier: float, clip_norm: float, n: float) -> float:
    """Return the std of the Gaussian noise added to each averaged coordinate.

    Args:
        noise_multiplier: noise standard deviation over the sensitivity.
        clip_norm: the L2 bound of one site's delta.
        n: the expected number of sites per round (the fixed denominator).

    Raises:
        PrivacyError: on a negative noise multiplier or a clip norm or n that
            is not positive.
    """
    _check_noise(noise_multiplier, clip_norm, n)
    return noise_multiplier * clip_norm / n


def noise_share(
    shape: tuple[int, ...],
    noise_multiplier: float,
    clip_norm: float,
    n: int,
    rng: np.random.Generator,
) -> F32:
    """Draw one site's share of the noise for distributed DP with secure aggregation.

    Each of ``n`` sites adds its share to its clipped delta before masking.
    The n shares sum to N(0, (noise_multiplier * clip_norm)^2): after the
    division by n this is exactly the central noise of :class:`DPFedAvg`, and
    no party sees an un-noised sum. If fewer than n sites survive the round,
    the noise falls short by the missing shares.

    Args:
        shape: the shape of the array the share is added to.
        noise_multiplier: noise standard deviation over the sensitivity.
        clip_norm: the L2 bound of one site's delta.
        n: the number of sites whose shares are summed.
        rng: the site's generator.

    Returns:
        A float32 array of ``shape``, std ``noise_multiplier * clip_norm / sqrt(n)``.

    Raises:
        PrivacyError: on an invalid parameter.
    """
    if isinstance(n, bool) or not isinstance(n, int) or n < 1:
        raise PrivacyError(f"n must be a positive integer, got {n!r}")
    _check_noise(noise_multiplier, clip_norm, n)
    std = noise_multiplier * clip_norm / math.sqrt(n)
    return (rng.standard_normal(shape) * std).astype(np.float32)


class DPFedAvg:
    """Aggregator for central DP-FedAvg, folding one clipped delta at a time.

    Memory is O(model): one float64 accumulator and a small scratch block.

    Args:
        reference: the round's global model (float arrays).
        clip_norm: the L2 bound of one site's delta over all arrays together.
        noise_multiplier: noise std over the sensitivity; 0 adds no noise.
        expected_clients: the expected number of sites per round, ``q * N``,
            the fixed denominator of the average.
        rng: the coordinator's generator for the noise.

    Raises:
        PrivacyError: on an invalid privacy parameter.
        AggregationError: if a model array is not floating point.
    """

    def __init__(
        self,
        reference: NDArrays,
        *,
        clip_norm: float,
        noise_multiplier: float,
        expected_clients: float,
        rng: np.random.Generator,
    ) -> None:
        self.stddev = noise_stddev(noise_multiplier, clip_norm, expected_clients)
        for index, ref in enumerate(reference):
            if ref.dtype.kind != "f":
                raise AggregationError(
                    f"array {index}: dp needs float arrays, got {ref.dtype}"
                )
        self.clip_norm = clip_norm
        self.expected_clients = expected_clients
        self._reference = reference
        self._rng = rng
        self._sums = [np.zeros(r.size, dtype=np.float64) for r in reference]
        self._result: NDArrays | None = None
        self.count = 0
        self.total_examples = 0
        self.unclipped_count = 0

    def _deltas(self, update: NDArrays) -> Iterator[tuple[int, int, F64]]:
        """Yield ``(array index, start, update - model)`` block by block, float64."""
        for index, (ref, arr) in enumerate(zip(self._reference, update)):
            flat, base = arr.reshape(-1), ref.reshape(-1)
            for start in range(0, flat.size, BLOCK):
                chunk = np.asarray(flat[start : start + BLOCK], dtype=np.float64)
                model = np.asarray(base[start : start + BLOCK], dtype=np.float64)
                yield index, start, chunk - model

    def add(self, update: NDArrays, num_examples: int) -> None:
        """Validate an update, clip its delta and fold it in with weight one.

        Args:
            update: a site's parameters after local training.
            num_examples: validated and counted, never used as a weight.

        Raises:
            AggregationError: if the update is invalid or the round's result
                was taken; nothing is folded in.
        """
        if self._result is not None:
            raise AggregationError("result already released; start a new round")
        check_update(self._reference, update, num_examples)
        norm = math.sqrt(sum(float(d @ d) for _, _, d in self._deltas(update)))
        scale = min(1.0, self.clip_norm / norm) if norm > 0 else 1.0
        for index, start, delta in self._deltas(update):
            delta *= scale
            self._sums[index][start : start + delta.size] += delta
        self.count += 1
        self.total_examples += num_examples
        # Andrew et al. (2021) count the sites whose delta needed no clipping.
        self.unclipped_count += int(norm <= self.clip_norm)

    def result(self) -> NDArrays:
        """Return ``global + (sum of clipped deltas) / n + noise`` as float32.

        The noise is drawn once; later calls return the same release, since
        averaging fresh draws of the same sum would weaken the guarantee.

        Raises:
            AggregationError: if no update was added.
        """
        if self._result is not None:
            return [arr.copy() for arr in self._result]
        if not self.count:
            raise AggregationError("no updates to aggregate")
        self._result = [
            self._release(total, ref) for total, ref in zip(self._sums, self._reference)
        ]
        return [arr.copy() for arr in self._result]

    def _release(self, total: F64, ref: npt.NDArray[np.generic]) -> F32:
        """Turn one array's sum of clipped deltas into the noisy next model."""
        out = np.empty(ref.size, dtype=np.float32)
        base = ref.reshape(-1)
        for start in range(0, ref.size, BLOCK):
            block = total[start : start + BLOCK] / self.expected_clients
            if self.stddev:
                block += self._rng.standard_normal(block.size) * self.stddev
            block += np.asarray(base[start : start + BLOCK], dtype=np.float64)
            out[start : start + block.size] = block
        return out.reshape(ref.shape)
