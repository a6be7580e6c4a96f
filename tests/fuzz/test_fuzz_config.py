"""RunConfig, FitConfig and Schema from_dict raise only their documented errors."""

from __future__ import annotations

import dataclasses
from typing import Any

from hypothesis import given
from hypothesis import strategies as st

from fednet.config import RunConfig
from fednet.exceptions import ConfigError, ProtocolError, SchemaError
from fednet.fitconfig import FitConfig
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
@given(objects_with(["feature_names", "classes"]) | ODD)
def test_schema_from_dict_raises_only_schema_error(data: Any) -> None:
    """Schema.from_dict builds a schema or raises SchemaError."""
    try:
        Schema.from_dict(data)
    except SchemaError:
        pass
