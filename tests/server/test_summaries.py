"""The summaries a run counts (the run's min_count is a floor) and its preprocessing."""

from __future__ import annotations

import logging
from typing import Any

import numpy as np
import pytest

from fednet.config import RunConfig
from fednet.learning.fedstats import FeatureStats, merge_stats
from fednet.learning.schema import Schema
from fednet.learning.sketch import quantile
from fednet.protocol import Hello
from fednet.server.summaries import run_preprocess, site_summaries

SCHEMA = Schema(feature_names=("age", "dose"), classes=("no", "yes"))


def _stats(seed: int, min_count: int = 10) -> FeatureStats:
    rng = np.random.default_rng(seed)
    x = np.column_stack([rng.normal(50, 10, 120), rng.lognormal(1.0, 1.0, 120)])
    x[rng.random(120) < 0.2, 1] = np.nan
    return FeatureStats.from_matrix(x, min_count)


def _hello(name: str, stats: dict[str, Any] | None) -> Hello:
    return Hello(name, "i", 120, "csv", SCHEMA.to_dict(), stats=stats)


def test_a_site_suppressing_less_than_the_runs_min_count_is_left_out() -> None:
    """k = 5 at a site, min_count 10 in the run: not counted, with the reason."""
    hellos = [_hello("b", _stats(1).to_dict()), _hello("a", _stats(2, 5).to_dict())]

    strict = site_summaries(SCHEMA, hellos, min_count=10)
    loose = site_summaries(SCHEMA, hellos, min_count=5)

    assert [name for name, _ in strict.counted] == ["b"]
    assert strict.excluded == (
        ("a", "suppresses counts below 5 only, the run's min_count is 10"),
    )
    assert [name for name, _ in loose.counted] == ["a", "b"] and not loose.excluded


def test_median_imputation_and_indicators_follow_the_run_config(
    caplog: pytest.LogCaptureFixture,
) -> None:
    """The fill is the merged histograms' median; dose, missing, gets an indicator."""
    parts = [_stats(1), _stats(2)]
    hellos = [_hello(f"s{i}", s.to_dict()) for i, s in enumerate(parts)]
    config = RunConfig(task="csv", impute="median", missing_indicator=True)

    pre = run_preprocess(SCHEMA, None, hellos, config)

    assert pre is not None and pre.fill is not None
    merged = merge_stats(parts)
    assert pre.fill[1] == quantile(merged.histograms[1], 0.5) < merged.mean[1]
    assert pre.indicators == (1,) and pre.width == 3
    assert pre.feature_names(SCHEMA.feature_names)[-1] == "dose (missing)"
    with caplog.at_level(logging.WARNING):
        mean = run_preprocess(SCHEMA, None, hellos, RunConfig(task="csv"))
    assert mean is not None and mean.fill is None and mean.indicators == ()
    assert caplog.text == ""


def test_median_imputation_with_an_old_site_takes_the_mean_and_warns(
    caplog: pytest.LogCaptureFixture,
) -> None:
    """A summary of an earlier release has no histograms: a warning, the mean."""
    old = _stats(2).to_dict()
    del old["histograms"], old["min_count"]
    hellos = [_hello("new", _stats(1).to_dict()), _hello("old", old)]

    with caplog.at_level(logging.WARNING):
        pre = run_preprocess(SCHEMA, None, hellos, RunConfig(impute="median"))

    assert pre is not None and pre.fill is not None
    np.testing.assert_array_equal(pre.fill, pre.mean)
    assert "2 columns (age, dose...) lack a histogram from some site" in caplog.text
