"""A site's update as ring elements: its clipped, weighted delta, encoded.

Chunk by chunk, so no model-sized float64 temporary is allocated
(docs/privacy.md#what-is-summed-quantisation-and-fedavg-weights).
"""

from __future__ import annotations

import math
from collections.abc import Sequence

import numpy as np

from fednet.secagg.quantize import (
    F64,
    U32,
    in_range,
    quantize_clipped_into,
    quantize_into,
)
from fednet.typing import NDArray

Noise = tuple[np.random.Generator, float]
"""Distributed DP's (generator, std) of the Gaussian noise a site adds."""
CHUNK = 1 << 16
"""Elements encoded at a time: the float64 temporaries stay in cache."""


def dp_terms(
    pairs: Sequence[tuple[NDArray, NDArray]],
    clip_norm: float,
    multiplier: float,
    threshold: int,
) -> tuple[float, Noise]:
    """Return distributed DP's clip factor and this site's share of the noise.

    The delta is clipped to L2 norm C over all arrays, unweighted (McMahan et
    al. 2018); the share has std ``z * C / sqrt(t)``, so any t or more
    surviving shares sum to at least the central noise N(0, (z C)^2)
    (:func:`fednet.privacy.dp.noise_share` with n = t). The noise comes from
    the operating system's entropy.

    Args:
        pairs: the (trained, global) flat arrays of the update.
        clip_norm: C, the L2 bound of the delta.
        multiplier: z, the noise multiplier.
        threshold: t, the fewest sites a round's sum can have.
    """
    squares = 0.0
    for new, old in pairs:
        for start in range(0, new.size, CHUNK):
            part = np.subtract(new[start:start + CHUNK], old[start:start + CHUNK],
                               dtype=np.float64)
            squares += float(np.dot(part, part))
    norm = math.sqrt(squares)
    factor = min(1.0, clip_norm / norm) if norm > 0 else 1.0
    std = multiplier * clip_norm / math.sqrt(threshold)
    return factor, (np.random.default_rng(), std)


def encode_delta(
    new: NDArray,
    old: NDArray,
    clip: float,
    weight: float,
    parties: int,
    noise: Noise | None = None,
    *,
    out: U32 | None = None,
) -> tuple[U32, int]:
    """Quantise ``clip(new - old, -clip, clip) * weight (+ noise)`` chunk by chunk.

    Args:
        new: the trained array, flat.
        old: the global model's array, flat.
        clip: the round's clip range.
        weight: the site's FedAvg weight, or distributed DP's clip factor.
        parties: the round's parties (fixes the fixed-point scale).
        noise: distributed DP's (generator, std) of Gaussian noise to add.
        out: a flat uint32 array of ``new.size`` to write into (else a new one).

    Returns:
        The flat uint32 encoding, as :func:`quantize` of the whole would give,
        and how many coordinates the clip range cut.

    Raises:
        SecAggError: on a NaN or infinite value (or one the noise made so).
    """
    if out is None:
        out = np.empty(new.size, dtype=np.uint32)
    block = np.empty(min(new.size, CHUNK), dtype=np.float64)
    # Clipped values times a weight of at most 1 stay in range: encode them
    # without a second check (noise or a larger weight can leave the range).
    known_in_range = noise is None and abs(weight) <= 1.0
    clipped = 0
    for start in range(0, new.size, CHUNK):
        stop = min(new.size, start + CHUNK)
        work: F64 = block[: stop - start]
        np.subtract(new[start:stop], old[start:stop], out=work, dtype=np.float64)
        if not in_range(work, clip):
            clipped += int(np.count_nonzero(np.abs(work) > clip))
            np.clip(work, -clip, clip, out=work)
        work *= weight
        if known_in_range:
            quantize_clipped_into(work, clip, parties, out[start:stop])
            continue
        if noise is not None:
            work += noise[0].standard_normal(stop - start) * noise[1]
        quantize_into(work, clip, parties, out[start:stop])
    return out, clipped
