"""Split a data set: into client partitions (IID or Dirichlet), and train/val."""

from __future__ import annotations

import logging
from typing import Any

import numpy as np
import numpy.typing as npt

logger = logging.getLogger(__name__)

IndexArray = npt.NDArray[np.int64]

MAX_DIRICHLET_TRIES = 1000


def iid_partition(num_samples: int, num_partitions: int, seed: int) -> list[IndexArray]:
    """Shuffle the sample indices and cut them into near-equal parts.

    Args:
        num_samples: size of the data set.
        num_partitions: how many parts; sizes differ by at most one.
        seed: seed of the shuffle.

    Returns:
        One sorted int64 index array per part; the parts are disjoint and
        cover ``range(num_samples)``.

    Raises:
        ValueError: if ``num_partitions`` is not in ``1..num_samples``.
    """
    if not 1 <= num_partitions <= num_samples:
        raise ValueError(
            f"cannot split {num_samples} samples into {num_partitions} partitions"
        )
    order = np.random.default_rng(seed).permutation(num_samples).astype(np.int64)
    return [np.sort(part) for part in np.array_split(order, num_partitions)]


def dirichlet_partition(
    labels: npt.NDArray[np.generic],
    num_partitions: int,
    alpha: float,
    seed: int,
    min_size: int = 10,
) -> list[IndexArray]:
    """Split samples with label skew: each class spread by Dirichlet(alpha).

    For every class, the shares of the partitions are drawn from a symmetric
    Dirichlet(alpha); small alpha gives each partition few labels, large alpha
    approaches IID. A partition that already holds its fair share (N / n)
    receives no more samples (the balancing of Yurochkin et al. 2019, as in
    NIID-Bench, Li et al. 2021). The draw is repeated until every partition has
    at least ``min_size`` samples.

    Args:
        labels: 1-D array of class labels (any dtype), one per sample.
        num_partitions: how many parts.
        alpha: Dirichlet concentration, > 0.
        seed: seed of every draw; equal seeds give equal partitions.
        min_size: smallest acceptable partition.

    Returns:
        One sorted int64 index array per part; disjoint and covering all samples.

    Raises:
        ValueError: on bad arguments, or if no draw within
            ``MAX_DIRICHLET_TRIES`` gives every partition ``min_size`` samples.
    """
    labels = np.asarray(labels)
    num_samples = labels.shape[0] if labels.ndim == 1 else -1
    if num_samples < 0:
        raise ValueError(f"labels must be 1-D, got shape {labels.shape}")
    if not alpha > 0 or not np.isfinite(alpha):
        raise ValueError(f"alpha must be a positive number, got {alpha!r}")
    if num_partitions < 1 or min_size < 0:
        raise ValueError(
            f"need num_partitions >= 1 and min_size >= 0,"
            f" got {num_partitions} and {min_size}"
        )
    if num_partitions * max(min_size, 1) > num_samples:
        raise ValueError(
            f"cannot split {num_samples} samples into {num_partitions} partitions"
            f" of at least {max(min_size, 1)}"
        )
    rng = np.random.default_rng(seed)
    by_class = [np.flatnonzero(labels == c) for c in np.unique(labels)]
    for attempt in range(1, MAX_DIRICHLET_TRIES + 1):
        parts = _draw(by_class, num_samples, num_partitions, alpha, rng)
        smallest = min(len(p) for p in parts)
        if smallest >= min_size:
            logger.debug(
                "dirichlet partition: alpha=%g, %d parts, attempt %d, smallest %d",
                alpha,
                num_partitions,
                attempt,
                smallest,
            )
            return [np.sort(np.asarray(p, dtype=np.int64)) for p in parts]
    raise ValueError(
        f"no Dirichlet({alpha:g}) split of {num_samples} samples into"
        f" {num_partitions} partitions gave each at least {min_size} samples in"
        f" {MAX_DIRICHLET_TRIES} tries; use fewer partitions or a larger alpha"
    )


def _draw(
    by_class: list[IndexArray],
    num_samples: int,
    num_partitions: int,
    alpha: float,
    rng: np.random.Generator,
) -> list[list[int]]:
    parts: list[list[int]] = [[] for _ in range(num_partitions)]
    fair_share = num_samples / num_partitions
    for members in by_class:
        members = rng.permutation(members)
        shares = rng.dirichlet(np.full(num_partitions, alpha))
        open_parts = np.array([len(p) < fair_share for p in parts], dtype=np.float64)
        shares = shares * open_parts
        total = shares.sum()
        # All shares can underflow to zero for tiny alpha; fall back to the open parts.
        shares = shares / total if total > 0 else open_parts / open_parts.sum()
        cuts = (np.cumsum(shares) * len(members)).astype(np.int64)[:-1]
        for part, chunk in zip(parts, np.split(members, cuts)):
            part.extend(chunk.tolist())
    return parts


def split_train_val(
    y: npt.NDArray[np.integer[Any]], val_fraction: float, rng: np.random.Generator
) -> tuple[IndexArray, IndexArray]:
    """Split example indices into train and validation, both non-empty.

    The split is stratified when every class has at least two examples and
    both sides can hold every class; otherwise it is a plain shuffle (so a
    class with one example does not fail).

    Raises:
        ValueError: with fewer than two examples or ``val_fraction`` not in (0, 1).
    """
    from sklearn.model_selection import train_test_split  # ~85 MB: only when used

    n = len(y)
    if n < 2 or not 0.0 < val_fraction < 1.0:
        raise ValueError(
            f"cannot split {n} example(s) with val_fraction={val_fraction!r};"
            " need at least 2 examples and 0 < val_fraction < 1"
        )
    n_val = min(n - 1, max(1, round(n * val_fraction)))
    counts = np.unique(y, return_counts=True)[1]
    if counts.min() >= 2 and len(counts) <= min(n_val, n - n_val):
        train, val = train_test_split(
            np.arange(n),
            test_size=n_val,
            stratify=y,
            random_state=int(rng.integers(2**31)),
        )
    else:
        order = rng.permutation(n)
        train, val = order[n_val:], order[:n_val]
    return np.sort(train).astype(np.int64), np.sort(val).astype(np.int64)
