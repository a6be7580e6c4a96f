"""Histograms over shared bins: merging, quantiles, suppression, hostile input."""

from __future__ import annotations

from typing import Any

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from fednet.exceptions import SchemaError
from fednet.learning.fedstats import FeatureStats, merge_stats
from fednet.learning.preprocess import Preprocess, unsketched_columns
from fednet.learning.sketch import (
    ALPHA,
    MAX_BINS,
    MAX_KEY,
    histogram_from_list,
    histogram_of,
    histogram_to_list,
    keys_of,
    merge_histograms,
    quantile,
    value_of,
)

finite = st.floats(-1e12, 1e12, allow_nan=False, allow_infinity=False)


@settings(max_examples=60, deadline=None)
@given(
    a=st.lists(finite, max_size=60),
    b=st.lists(finite, max_size=60),
)
def test_merged_sketches_are_the_sketch_of_the_union(
    a: list[float], b: list[float]
) -> None:
    """Without suppression, merging two sites' histograms equals sketching both."""
    union = np.array(a + b, dtype=np.float64)

    merged = merge_histograms(histogram_of(np.array(a)), histogram_of(np.array(b)))

    assert merged == histogram_of(union)


@settings(max_examples=100, deadline=None)
@given(values=st.lists(finite, min_size=1, max_size=200).filter(lambda v: len(v) % 2))
def test_the_median_of_a_sketch_is_within_alpha_of_numpys(values: list[float]) -> None:
    """An odd number of values: the sketch's median is within 1% of np.median."""
    x = np.array(values)

    median = quantile(histogram_of(x), 0.5)

    exact = float(np.median(x))
    assert abs(median - exact) <= ALPHA * abs(exact) + 1e-300


def test_every_value_is_within_alpha_of_its_bins_value() -> None:
    """Bins ordered as values; each bin's value within 1% of what it holds."""
    spread = np.logspace(-300, 300, 500)
    x = np.concatenate([-spread, [0.0], spread, [5e-324, 1.7e308, -1.7e308]])
    keys = keys_of(x)

    back = np.array([value_of(int(k)) for k in keys])

    np.testing.assert_allclose(back, x, rtol=ALPHA, atol=0)
    assert np.all(np.diff(keys[np.argsort(x)]) >= 0)
    assert np.abs(keys).max() <= MAX_KEY


@pytest.mark.parametrize("seed", range(5))
def test_a_skewed_merged_median_is_off_by_at_most_k_values_a_site(seed: int) -> None:
    """Three log-normal sites suppressed at 10: the median's rank within 60 of 531.

    Without suppression, the same sites give the median within 1%.
    """
    rng = np.random.default_rng(seed)
    sites = [rng.lognormal(mean=m, sigma=1.0, size=(n, 1)) for m, n in
             [(0.0, 301), (1.0, 150), (2.0, 80)]]
    pooled = np.vstack(sites)

    merged = merge_stats([FeatureStats.from_matrix(x, 10) for x in sites])

    median = quantile(merged.histograms[0], 0.5)
    slack = 2 * 3 * 10 / len(pooled)
    low, high = np.quantile(pooled, [0.5 - slack, 0.5 + slack])
    assert low * (1 - ALPHA) <= median <= high * (1 + ALPHA)
    assert sum(merged.histograms[0].values()) == 531
    exact = merge_stats([FeatureStats.from_matrix(x, 1) for x in sites])
    median = quantile(exact.histograms[0], 0.5)
    assert abs(median - np.median(pooled)) <= ALPHA * np.median(pooled)


def test_a_bin_seen_3_times_never_leaves_the_site() -> None:
    """The wire form holds no bin, and no category, of fewer than min_count values."""
    x = np.column_stack([
        np.concatenate([np.full(40, 1.0), np.full(3, 1000.0)]),
        np.concatenate([np.zeros(40), np.ones(3)]),  # category "rare" seen 3 times
    ])

    wire = FeatureStats.from_matrix(x, 10, {1: ("common", "rare")}).to_dict()

    bins = wire["histograms"]["0"]
    assert bins == [[int(keys_of(np.array([1.0]))[0]), 43]]  # 1000.0 pooled in
    assert all(n >= 10 for _, n in bins)
    assert wire["categories"] == {"1": {"common": 40}}
    assert wire["min_count"] == 10 and "1" not in wire["histograms"]


def test_suppression_pools_neighbours_and_keeps_every_value() -> None:
    """Sparse tails pool into bins of at least k; the total count is unchanged."""
    x = np.random.default_rng(1).standard_cauchy(500)

    hist = histogram_of(x, min_count=10)

    assert sum(hist.values()) == 500 and min(hist.values()) >= 10
    assert abs(quantile(hist, 0.5) - np.median(x)) < 0.05


@settings(max_examples=200, deadline=None)
@given(
    values=st.lists(finite | st.sampled_from([0.0, 1.0, -3.0]), min_size=1,
                    max_size=300),
    k=st.integers(1, 30),
)
def test_suppression_moves_fewer_than_2k_values_past_any_bin(
    values: list[float], k: int
) -> None:
    """Counts up to any bin differ from the unsuppressed ones by under 2 k."""
    x = np.array(values)
    exact, pooled = histogram_of(x), histogram_of(x, k)
    if len(x) < k:
        assert pooled == {}
        return
    seen_exact = seen_pooled = 0
    for key in sorted(set(exact) | set(pooled)):
        seen_exact += exact.get(key, 0)
        seen_pooled += pooled.get(key, 0)
        assert abs(seen_exact - seen_pooled) < 2 * k
    assert seen_exact == seen_pooled == len(x)


def test_a_histogram_survives_its_json_form() -> None:
    hist = histogram_of(np.random.default_rng(2).normal(size=300), 5)

    assert histogram_from_list(histogram_to_list(hist), 300, 5) == hist


@pytest.mark.parametrize(
    ("bins", "fragment"),
    [
        ([[k, 1] for k in range(MAX_BINS + 1)], "at most 4096 bins"),
        ({"1": 3}, "at most 4096 bins"),
        ([[1, 2, 3]], r"\[key, count\]"),
        ([[1, 2.0]], r"\[key, count\]"),
        ([[True, 2]], r"\[key, count\]"),
        ([[5, 5], [5, 5]], "keys must increase"),
        ([[MAX_KEY + 1, 10]], "keys must increase"),
        ([[1, 3], [2, 7]], r"count must be in \[5, 10\], got 3"),
        ([[1, 11]], r"count must be in \[5, 10\], got 11"),
        ([[1, 5]], "add up to 5, not 10"),
    ],
)
def test_hostile_histograms_are_refused(bins: Any, fragment: str) -> None:
    with pytest.raises(SchemaError, match=fragment):
        histogram_from_list(bins, 10, 5)


def _summary(**change: Any) -> dict[str, Any]:
    good = {"rows": 20, "count": [20, 20], "mean": [1.0, 0.0], "m2": [1.0, 0.0],
            "missing": [0, 0], "min_count": 10, "histograms": {"0": [[37601, 20]]}}
    return {**good, **change}


@pytest.mark.parametrize(
    ("summary", "fragment"),
    [
        (_summary(histograms={"1": [[1, 20]]}), "not a numeric column"),
        (_summary(histograms={"2": [[1, 20]]}), "not a numeric column"),
        (_summary(histograms={"x": [[1, 20]]}), "not a numeric column"),
        (_summary(histograms={"0": [[1, 19]]}), "column 0: .*add up to 19"),
        (_summary(histograms={"0": [[1, 4], [2, 16]]}), r"in \[10, 20\], got 4"),
        (_summary(histograms=[]), "histograms must be an object"),
        (_summary(min_count=0), "min_count must be an integer"),
        (_summary(min_count=True), "min_count must be an integer"),
        (_summary(categories={"1": {"a": 3}}), r"category count must be in \[10"),
    ],
)
def test_hostile_summaries_are_refused_with_the_reason(
    summary: dict[str, Any], fragment: str
) -> None:
    with pytest.raises(SchemaError, match=fragment):
        FeatureStats.from_dict(summary, 2, [1])


def test_a_summary_without_min_count_is_one_of_a_release_that_used_10() -> None:
    legacy = {k: v for k, v in _summary().items() if k not in ("min_count",)}

    assert FeatureStats.from_dict(legacy, 2, [1]).min_count == 10


def test_median_imputation_fills_with_the_merged_median() -> None:
    """Missing cells take the merged median; the preprocessing keeps it on the wire."""
    rng = np.random.default_rng(3)
    x = rng.lognormal(size=(201, 1))
    x[::10] = np.nan
    stats = FeatureStats.from_matrix(x, 10)

    pre = Preprocess.from_stats(stats, True, impute="median")

    assert pre.fill is not None
    median = quantile(stats.histograms[0], 0.5)
    assert pre.fill[0] == median != stats.mean[0]
    z = pre.apply(np.array([[np.nan], [median]]))
    np.testing.assert_allclose(z[0], z[1] + [0.0, 1.0])  # same value, indicator 1
    assert Preprocess.from_dict(pre.to_dict()) == pre
    assert "fill" not in Preprocess.from_stats(stats, False).to_dict()


def test_a_site_without_histograms_makes_median_imputation_take_the_mean() -> None:
    """A client of an earlier release sends no histogram: that column takes the mean."""
    rng = np.random.default_rng(4)
    new = FeatureStats.from_matrix(rng.lognormal(size=(50, 2)), 10)
    old_wire = FeatureStats.from_matrix(rng.lognormal(size=(50, 2)), 10).to_dict()
    del old_wire["histograms"], old_wire["min_count"]

    merged = merge_stats([new, FeatureStats.from_dict(old_wire, 2)])

    assert merged.histograms == {} and unsketched_columns(merged, []) == [0, 1]
    pre = Preprocess.from_stats(merged, False, impute="median")
    assert pre.fill is not None
    np.testing.assert_array_equal(pre.fill, merged.mean)
