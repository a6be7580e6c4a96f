"""Federated feature statistics and the shared preprocessing fixed from them."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from fednet.exceptions import SchemaError
from fednet.learning.datasets import load_csv
from fednet.learning.fedstats import FeatureStats, merge_stats
from fednet.learning.preprocess import Preprocess


def _with_blanks(rng: np.random.Generator, rows: int, cols: int) -> np.ndarray:
    x = rng.normal(loc=rng.uniform(-1e3, 1e3, cols), scale=rng.uniform(0.1, 50, cols),
                   size=(rows, cols))
    x[rng.random((rows, cols)) < 0.1] = np.nan
    return x


@settings(max_examples=50, deadline=None)
@given(
    seed=st.integers(0, 2**32 - 1),
    sizes=st.lists(st.integers(10, 60), min_size=1, max_size=6),
)
def test_merged_statistics_equal_those_of_the_pooled_rows(
    seed: int, sizes: list[int]
) -> None:
    """Merging sites' summaries gives the pooled mean and std, missing cells aside."""
    rng = np.random.default_rng(seed)
    sites = [_with_blanks(rng, n, 4) for n in sizes]
    pooled = np.vstack(sites)

    merged = merge_stats([FeatureStats.from_matrix(x, min_count=0) for x in sites])

    assert merged.rows == len(pooled) and merged.sites == len(sites)
    np.testing.assert_array_equal(merged.missing, np.isnan(pooled).sum(axis=0))
    np.testing.assert_allclose(merged.mean, np.nanmean(pooled, axis=0), rtol=1e-12)
    np.testing.assert_allclose(merged.std, np.nanstd(pooled, axis=0), rtol=1e-9)


def test_a_column_with_fewer_than_min_count_values_is_suppressed() -> None:
    """A site holding 3 values of a column reports none of them, nor their count."""
    x = np.column_stack([np.arange(20.0), np.full(20, np.nan)])
    x[:3, 1] = [5.0, 6.0, 7.0]

    stats = FeatureStats.from_matrix(x, min_count=10)

    assert stats.to_dict()["count"] == [20, 0]
    assert stats.to_dict()["mean"][1] == 0.0 and stats.to_dict()["m2"][1] == 0.0
    assert stats.to_dict()["missing"] == [0, 0]


def test_statistics_survive_their_json_form_exactly() -> None:
    stats = FeatureStats.from_matrix(_with_blanks(np.random.default_rng(1), 40, 3))

    again = FeatureStats.from_dict(stats.to_dict(), 3)

    assert again.to_dict() == stats.to_dict()


@pytest.mark.parametrize(
    ("change", "fragment"),
    [
        ({"rows": -1}, "rows must be an integer"),
        ({"rows": True}, "rows must be an integer"),
        ({"count": [1, 2]}, "count must be a list of 3 numbers, got 2"),
        ({"count": [1, 2, 99]}, r"count must hold integers in \[0, 10\]"),
        ({"count": [1, 2, 3.0]}, "count must hold integers"),
        ({"count": [10, 10, 10], "missing": [1, 0, 0]}, "count plus missing"),
        ({"mean": [0.0, float("nan"), 0.0]}, "mean must hold finite numbers"),
        ({"mean": [0.0, "1", 0.0]}, "mean must hold finite numbers"),
        ({"m2": [0.0, -1.0, 0.0]}, "m2 must not be negative"),
        ({"m2": None}, "m2 must be a list"),
    ],
)
def test_a_sites_malformed_statistics_are_refused_with_the_reason(
    change: dict[str, Any], fragment: str
) -> None:
    good = {"rows": 10, "count": [10, 9, 0], "mean": [1.0, 2.0, 0.0],
            "m2": [3.0, 4.0, 0.0], "missing": [0, 1, 0]}
    FeatureStats.from_dict(good, 3)

    with pytest.raises(SchemaError, match=fragment):
        FeatureStats.from_dict({**good, **change}, 3)


def test_statistics_of_other_widths_do_not_merge() -> None:
    a = FeatureStats.from_matrix(np.ones((12, 2)))
    b = FeatureStats.from_matrix(np.ones((12, 3)))

    with pytest.raises(SchemaError, match="3 columns cannot merge with 2"):
        merge_stats([a, b])


def test_preprocess_standardises_fills_missing_with_the_mean_and_flags_it() -> None:
    x = np.array([[1.0, 10.0], [3.0, np.nan], [np.nan, 30.0], [5.0, 20.0]])
    stats = FeatureStats.from_matrix(x, min_count=0)

    plain = Preprocess.from_stats(stats, missing_indicator=False)
    flagged = Preprocess.from_stats(stats, missing_indicator=True)

    np.testing.assert_allclose(plain.mean, [3.0, 20.0])
    z = plain.apply(x)
    assert z.dtype == np.float32 and z.shape == (4, 2)
    assert z[2, 0] == 0.0 and z[1, 1] == 0.0  # the mean, standardised
    np.testing.assert_allclose(z[[0, 1, 3], 0].std(), 1.0, rtol=1e-6)
    assert flagged.width == 4 and flagged.indicators == (0, 1)
    flags = flagged.apply(x)[:, 2:]
    np.testing.assert_array_equal(flags, [[0, 0], [0, 1], [1, 0], [0, 0]])
    assert flagged.feature_names(["a", "b"]) == ("a", "b", "a (missing)", "b (missing)")


def test_a_constant_or_empty_column_is_only_centred() -> None:
    x = np.column_stack([np.full(12, 4.0), np.full(12, np.nan)])

    pre = Preprocess.from_stats(FeatureStats.from_matrix(x), missing_indicator=False)

    np.testing.assert_array_equal(pre.scale, [1.0, 1.0])
    np.testing.assert_array_equal(pre.apply(x), np.zeros((12, 2)))


def test_preprocess_round_trips_exactly_and_refuses_bad_values() -> None:
    pre = Preprocess(np.array([0.1, 1 / 3]), np.array([2.0, 7.0]), (1,))

    assert Preprocess.from_dict(pre.to_dict()) == pre
    for bad, fragment in [
        ({**pre.to_dict(), "scale": [1.0, 0.0]}, "scale must be positive"),
        ({**pre.to_dict(), "scale": [1.0]}, "scale must be a list of 2"),
        ({**pre.to_dict(), "indicators": [1, 1]}, "distinct column indices"),
        ({**pre.to_dict(), "indicators": [2]}, "distinct column indices"),
        ({**pre.to_dict(), "indicators": ["0"]}, "list of integers"),
        ({**pre.to_dict(), "mean": [1e400, 0.0]}, "finite"),
        ({**pre.to_dict(), "categories": {"0": [{"a": 1}]}}, "bad names"),
        ({**pre.to_dict(), "categories": {"0": ["a", "a"]}}, "bad names"),
        ({**pre.to_dict(), "categories": {"2": ["a"]}}, "out of range"),
        ({**pre.to_dict(), "categories": {"x": ["a"]}}, "not a column's list"),
        ({**pre.to_dict(), "categories": []}, "categories must be an object"),
        ([], "must be an object"),
    ]:
        with pytest.raises(SchemaError, match=fragment):
            Preprocess.from_dict(bad)


def test_a_csv_with_missing_cells_loads_them_as_missing(tmp_path: Path) -> None:
    """Blank, NA and NaN cells are missing values, filled locally until a run says."""
    rows = [f"{i},{'' if i % 3 == 0 else i * 2},{'NA' if i == 4 else 1}," + "ab"[i % 2]
            for i in range(1, 31)]
    path = tmp_path / "site.csv"
    path.write_text("f1,f2,f3,label\n" + "\n".join(rows) + "\n")

    data = load_csv(path, "label")

    assert data.raw_train is not None and data.raw_val is not None and data.stats
    raw = np.vstack([data.raw_train, data.raw_val])
    assert np.isnan(raw[:, 1]).sum() == 10 and np.isnan(raw[:, 2]).sum() == 1
    assert np.isfinite(data.x_train).all() and np.isfinite(data.x_val).all()
    assert data.stats.rows == data.num_examples
    np.testing.assert_array_equal(
        data.stats.missing + data.stats.count, [data.num_examples] * 3
    )


def test_category_counts_merge_and_rare_ones_never_leave_the_site() -> None:
    """A category seen 3 times at a site is absent from its summary, count and all."""
    codes_a = np.array([0.0] * 12 + [1.0] * 3 + [np.nan] * 2)  # F x12, M x3
    codes_b = np.array([1.0] * 10 + [0.0] * 11)
    a = FeatureStats.from_matrix(codes_a[:, None], categories={0: ("F", "M")})
    b = FeatureStats.from_matrix(codes_b[:, None], categories={0: ("F", "M")})

    assert a.to_dict()["categories"] == {"0": {"F": 12}}
    assert a.to_dict()["count"] == [0] and a.to_dict()["missing"] == [2]
    assert merge_stats([a, b]).categories == {0: {"F": 23, "M": 10}}
    assert FeatureStats.from_dict(a.to_dict(), 1, [0]).categories == {0: {"F": 12}}


@pytest.mark.parametrize(
    ("categories", "fragment"),
    [
        ({"1": {"F": 3}}, "not a categorical column"),
        ({"0": {"F": 0}}, r"count must be in \[1, 10\]"),
        ({"0": {"F": 11}}, r"count must be in \[1, 10\]"),
        ({"0": {"F": 6, "M": 6}}, "exceed 10 rows"),
        ({"0": {"x" * 101: 3}}, "name of 101 characters"),
        ({"0": [1, 2]}, "must be an object of at most"),
        ([], "categories must be an object"),
    ],
)
def test_malformed_category_counts_are_refused(categories: Any, fragment: str) -> None:
    good = {"rows": 10, "count": [0, 10], "mean": [0.0, 1.0], "m2": [0.0, 1.0],
            "missing": [0, 0], "min_count": 1}

    with pytest.raises(SchemaError, match=fragment):
        FeatureStats.from_dict({**good, "categories": categories}, 2, [0])


def test_one_hot_uses_the_runs_vocabulary_whatever_the_sites_codes() -> None:
    """Two sites coding categories differently get the same input columns."""
    stats = merge_stats([
        FeatureStats.from_matrix(np.column_stack([np.arange(12.0), [0.0] * 12]), 0,
                                 categories={1: ("M",)}),
        FeatureStats.from_matrix(np.column_stack([np.arange(12.0), [0.0] * 12]), 0,
                                 categories={1: ("F",)}),
    ])
    pre = Preprocess.from_stats(stats, missing_indicator=False, categorical=[1])
    x = np.array([[1.0, 0.0], [2.0, 1.0], [3.0, np.nan], [4.0, 2.0]])

    z = pre.apply(x, {1: ("F", "M", "X")})  # this site also holds an unknown X

    assert pre.vocab == {1: ("F", "M")} and pre.width == 4
    names = ("age", "sex=F", "sex=M", "sex=(other)")
    assert pre.feature_names(["age", "sex"]) == names
    onehot = [[1, 0, 0], [0, 1, 0], [0, 0, 0], [0, 0, 1]]  # F, M, missing, X
    np.testing.assert_array_equal(z[:, 1:], onehot)
    assert Preprocess.from_dict(pre.to_dict()) == pre


def test_only_the_most_frequent_categories_get_a_column() -> None:
    names = tuple(f"c{i:02d}" for i in range(60))
    codes = np.repeat(np.arange(60.0), np.arange(60) + 10)[:, None]
    stats = FeatureStats.from_matrix(codes, categories={0: names})

    pre = Preprocess.from_stats(stats, missing_indicator=False, categorical=[0])

    assert pre.vocab[0] == names[10:] and pre.width == 51
