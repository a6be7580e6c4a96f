"""Tests of the built-in data sets: the fixed recipe, partitions and test split."""

from __future__ import annotations

import numpy as np
import pytest

from fednet.learning.datasets import (
    ClientData,
    load_builtin_partition,
    load_builtin_test,
)


def _rows(data: ClientData) -> set[bytes]:
    """Identify rows by their bytes (the digits features are distinct enough)."""
    x = np.concatenate([data.x_train, data.x_val])
    return {row.tobytes() for row in x}


def test_digits_test_split_is_fixed_scaled_and_read_only() -> None:
    x, y, schema = load_builtin_test("digits")

    assert x.shape == (360, 64) and x.dtype == np.float32
    assert y.dtype == np.int64
    assert schema.classes == tuple(str(d) for d in range(10))
    assert len(schema.feature_names) == 64
    assert set(np.bincount(y)) <= {35, 36, 37}  # stratified: 20% of each digit
    assert not x.flags.writeable
    assert load_builtin_test("digits")[0] is x


def test_breast_cancer_classes_are_named_and_sorted() -> None:
    x, y, schema = load_builtin_test("breast_cancer")

    assert schema.classes == ("benign", "malignant")
    assert x.shape == (114, 30)
    # 212 of the 569 tumours are malignant; the hold-out keeps that share.
    assert int(y.sum()) == 42


@pytest.mark.parametrize("alpha", [None, 0.5])
def test_partitions_of_all_clients_are_disjoint_and_cover_the_train_part(
    alpha: float | None,
) -> None:
    parts = [
        load_builtin_partition("digits", (i, 3), alpha=alpha, seed=0)
        for i in range(1, 4)
    ]

    row_sets = [_rows(p) for p in parts]
    sizes = [p.num_examples + len(p.y_val) for p in parts]
    assert sum(sizes) == 1797 - 360
    assert len(set().union(*row_sets)) == sum(len(r) for r in row_sets)
    x_test, _, _ = load_builtin_test("digits")
    assert not set().union(*row_sets) & {row.tobytes() for row in x_test}


def test_partition_is_deterministic_and_depends_on_the_seed() -> None:
    first = load_builtin_partition("digits", (2, 4), alpha=0.5, seed=1)
    again = load_builtin_partition("digits", (2, 4), alpha=0.5, seed=1)
    other = load_builtin_partition("digits", (2, 4), alpha=0.5, seed=2)

    np.testing.assert_array_equal(first.x_train, again.x_train)
    np.testing.assert_array_equal(first.y_val, again.y_val)
    assert _rows(first) != _rows(other)


def test_dirichlet_partition_of_digits_is_label_skewed() -> None:
    data = load_builtin_partition("digits", (1, 5), alpha=0.1, seed=0)

    counts = np.bincount(np.concatenate([data.y_train, data.y_val]), minlength=10)
    assert counts.max() / counts.sum() > 0.3


def test_partition_split_respects_val_fraction() -> None:
    data = load_builtin_partition(
        "breast_cancer", (1, 2), alpha=None, seed=0, val_fraction=0.25
    )

    total = data.num_examples + len(data.y_val)
    assert total == 228
    assert len(data.y_val) == 57
    assert data.task == "breast_cancer"
    assert data.schema.classes == ("benign", "malignant")


@pytest.mark.parametrize("partition", [(0, 3), (4, 3), (1, 0)])
def test_partition_rejects_bad_indices(partition: tuple[int, int]) -> None:
    with pytest.raises(ValueError, match="partition must be i/n"):
        load_builtin_partition("digits", partition, alpha=None, seed=0)


def test_unknown_dataset_is_rejected() -> None:
    with pytest.raises(ValueError, match="unknown dataset 'mnist'"):
        load_builtin_test("mnist")


def test_client_data_rejects_inconsistent_arrays() -> None:
    x = np.zeros((3, 2), dtype=np.float32)
    y = np.zeros(3, dtype=np.int64)

    with pytest.raises(ValueError, match="x_val must be float32"):
        ClientData(x, y, x.astype(np.float64), y, ("a", "b"), ("0",), "d")
    with pytest.raises(ValueError, match="y_train must index"):
        ClientData(x, y + 1, x, y, ("a", "b"), ("0",), "d")
