"""Tests of fednet.learning.partition: IID, Dirichlet and train/val splits."""

from __future__ import annotations

import numpy as np
import numpy.typing as npt
import pytest

from fednet.learning.partition import (
    dirichlet_partition,
    iid_partition,
    split_train_val,
)


def _assert_disjoint_cover(parts: list[npt.NDArray[np.int64]], n: int) -> None:
    joined = np.concatenate(parts)
    assert joined.dtype == np.int64
    assert len(joined) == n
    np.testing.assert_array_equal(np.sort(joined), np.arange(n))


def _skew(labels: npt.NDArray[np.int64], parts: list[npt.NDArray[np.int64]]) -> float:
    """Mean total-variation distance of each part's label mix from the global one."""
    classes = np.unique(labels)
    overall = np.array([np.mean(labels == c) for c in classes])
    mixes = [np.array([np.mean(labels[p] == c) for c in classes]) for p in parts]
    distances = [0.5 * np.abs(mix - overall).sum() for mix in mixes]
    return float(np.mean(distances))


LABELS = np.repeat(np.arange(10), 100)


def test_iid_partition_is_disjoint_covering_and_balanced() -> None:
    parts = iid_partition(103, 4, seed=1)

    _assert_disjoint_cover(parts, 103)
    assert sorted(len(p) for p in parts) == [25, 26, 26, 26]


def test_iid_partition_is_deterministic_for_a_seed() -> None:
    first = iid_partition(50, 3, seed=7)
    again = iid_partition(50, 3, seed=7)
    other = iid_partition(50, 3, seed=8)

    for a, b in zip(first, again):
        np.testing.assert_array_equal(a, b)
    assert any(not np.array_equal(a, b) for a, b in zip(first, other))


@pytest.mark.parametrize(("n", "k"), [(5, 0), (5, 6), (0, 1)])
def test_iid_partition_rejects_impossible_splits(n: int, k: int) -> None:
    with pytest.raises(ValueError, match="cannot split"):
        iid_partition(n, k, seed=0)


def test_dirichlet_partition_is_disjoint_covering_with_min_size() -> None:
    parts = dirichlet_partition(LABELS, 5, alpha=0.3, seed=0, min_size=20)

    _assert_disjoint_cover(parts, len(LABELS))
    assert min(len(p) for p in parts) >= 20


def test_dirichlet_partition_is_deterministic_for_a_seed() -> None:
    first = dirichlet_partition(LABELS, 4, alpha=0.5, seed=3)
    again = dirichlet_partition(LABELS, 4, alpha=0.5, seed=3)
    other = dirichlet_partition(LABELS, 4, alpha=0.5, seed=4)

    for a, b in zip(first, again):
        np.testing.assert_array_equal(a, b)
    assert any(not np.array_equal(a, b) for a, b in zip(first, other))


def test_small_alpha_skews_labels_and_large_alpha_does_not() -> None:
    skewed = dirichlet_partition(LABELS, 5, alpha=0.1, seed=0)
    near_iid = dirichlet_partition(LABELS, 5, alpha=1000.0, seed=0)
    iid = iid_partition(len(LABELS), 5, seed=0)

    assert _skew(LABELS, skewed) > 0.4
    assert _skew(LABELS, near_iid) < 0.1
    assert _skew(LABELS, iid) < 0.1


def test_dirichlet_partition_accepts_string_labels() -> None:
    labels = np.array(["cat", "dog", "eel"] * 20)

    parts = dirichlet_partition(labels, 3, alpha=1.0, seed=0, min_size=5)

    _assert_disjoint_cover(parts, 60)


def test_dirichlet_partition_gives_up_when_min_size_is_unreachable() -> None:
    labels = np.repeat(np.arange(2), 50)

    with pytest.raises(ValueError, match="in 1000 tries"):
        dirichlet_partition(labels, 10, alpha=0.01, seed=0, min_size=10)


@pytest.mark.parametrize(
    ("num_partitions", "alpha", "min_size", "fragment"),
    [
        (3, 0.0, 1, "alpha must be a positive"),
        (3, float("nan"), 1, "alpha must be a positive"),
        (0, 1.0, 1, "num_partitions >= 1"),
        (11, 1.0, 10, "cannot split 100 samples"),
    ],
)
def test_dirichlet_partition_rejects_bad_arguments(
    num_partitions: int, alpha: float, min_size: int, fragment: str
) -> None:
    labels = np.repeat(np.arange(2), 50)

    with pytest.raises(ValueError, match=fragment):
        dirichlet_partition(labels, num_partitions, alpha, seed=0, min_size=min_size)


def test_split_train_val_is_stratified_when_possible() -> None:
    y = np.repeat(np.arange(4), 25)

    train, val = split_train_val(y, 0.2, np.random.default_rng(0))

    _assert_disjoint_cover([train, val], 100)
    assert len(val) == 20
    np.testing.assert_array_equal(np.bincount(y[val]), [5, 5, 5, 5])


def test_split_train_val_handles_one_example_per_class() -> None:
    y = np.arange(5)

    train, val = split_train_val(y, 0.2, np.random.default_rng(0))

    _assert_disjoint_cover([train, val], 5)
    assert len(val) == 1


def test_split_train_val_keeps_both_sides_non_empty() -> None:
    train, val = split_train_val(np.array([0, 1]), 0.05, np.random.default_rng(0))

    assert len(train) == 1 and len(val) == 1


def test_split_train_val_rejects_a_single_example() -> None:
    with pytest.raises(ValueError, match="at least 2 examples"):
        split_train_val(np.array([0]), 0.2, np.random.default_rng(0))
