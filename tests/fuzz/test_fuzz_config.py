"""RunConfig, FitConfig and Schema from_dict raise only their documented errors."""

from __future__ import annotations

import dataclasses
from typing import Any

from hypothesis import given
from hypothesis import strategies as st

from fednet.config import RunConfig
from fednet.exceptions import ConfigError, ProtocolError, SchemaError
from fednet.fitconfig import FitConfig
from fednet.learning.fedstats import FeatureStats
from fednet.learning.preprocess import Preprocess
from fednet.learning.schema import Schema
from tests.fuzz.strategies import FUZZ, SCALARS, objects_with

ODD = SCALARS | st.lists(SCALARS, max_size=3)
RUN_FIELDS = [f.name for f in dataclasses.fields(RunConfig)]


@FUZZ
@given(objects_with(RUN_FIELDS) | ODD)
def test_run_config_from_dict_raises_only_config_error(data: Any) -> None:
    """RunConfig.from_dict builds a config or raises ConfigError."""
    try:
        RunConfig.from_dict(data)
    except ConfigError:
        pass


@FUZZ
@given(objects_with(sorted(FitConfig.FIELDS)) | ODD)
def test_fit_config_from_dict_raises_only_protocol_error(data: Any) -> None:
    """FitConfig.from_dict builds a config or raises ProtocolError."""
    try:
        FitConfig.from_dict(data)
    except ProtocolError:
        pass


@FUZZ
@given(objects_with(["feature_names", "classes", "categorical"]) | ODD)
def test_schema_from_dict_raises_only_schema_error(data: Any) -> None:
    """Schema.from_dict builds a schema or raises SchemaError."""
    try:
        Schema.from_dict(data)
    except SchemaError:
        pass


NUMBER_PAIRS = st.lists(st.integers() | st.floats(), min_size=2, max_size=2)
STATS_KEYS = ["rows", "count", "mean", "m2", "missing"]
BINS = st.lists(st.lists(st.integers(-80_000, 80_000) | ODD, max_size=3), max_size=4)
STATS = objects_with(STATS_KEYS) | st.fixed_dictionaries(
    {k: NUMBER_PAIRS for k in STATS_KEYS[1:]},
    optional={
        "rows": st.integers(),
        "min_count": st.integers() | ODD,
        "histograms": st.dictionaries(st.text(max_size=3), BINS | ODD) | ODD,
    },
)


@FUZZ
@given(STATS | ODD)
def test_feature_stats_from_dict_raises_only_schema_error(data: Any) -> None:
    """A site's statistics are built or refused with SchemaError, never more."""
    try:
        FeatureStats.from_dict(data, 2)
    except SchemaError:
        pass


@FUZZ
@given(
    st.dictionaries(st.sampled_from(["0", "1", "2", "x", "²"]), BINS | ODD) | ODD,
    st.integers(-3, 12) | ODD,
)
def test_histograms_raise_only_schema_error(histograms: Any, min_count: Any) -> None:
    """Histograms on an otherwise valid summary: built or SchemaError, never more."""
    summary = {"rows": 10, "count": [10, 4], "mean": [0.0, 1.0], "m2": [1.0, 1.0],
               "missing": [0, 0], "min_count": min_count, "histograms": histograms}
    try:
        FeatureStats.from_dict(summary, 2)
    except SchemaError:
        pass


@FUZZ
@given(
    objects_with(["mean", "scale", "indicators"])
    | st.fixed_dictionaries(
        {"mean": NUMBER_PAIRS, "scale": NUMBER_PAIRS},
        optional={
            "indicators": st.lists(st.integers()),
            "fill": NUMBER_PAIRS | ODD,
            "categories": st.dictionaries(st.text(max_size=3), ODD | st.lists(ODD)),
        },
    )
    | ODD
)
def test_preprocess_from_dict_raises_only_schema_error(data: Any) -> None:
    """A run's preprocessing is built or refused with SchemaError, never more."""
    try:
        Preprocess.from_dict(data)
    except SchemaError:
        pass
