"""Tests of fednet.learning.schema: validation, merging and checking schemas."""

from __future__ import annotations

from typing import Any

import pytest

from fednet.exceptions import SchemaError
from fednet.learning.schema import (
    MAX_CLASSES,
    MAX_FEATURES,
    Schema,
    check_schema,
    merge_schemas,
    sort_labels,
)

FEATURES = ("age", "height", "weight")


def test_schema_round_trips_through_dict() -> None:
    schema = Schema(feature_names=FEATURES, classes=("no", "yes"))

    assert Schema.from_dict(schema.to_dict()) == schema


def test_from_dict_ignores_unknown_keys() -> None:
    data = {"feature_names": ["a"], "classes": ["0"], "version": 2}

    assert Schema.from_dict(data) == Schema(feature_names=("a",), classes=("0",))


@pytest.mark.parametrize(
    ("data", "fragment"),
    [
        ([], "must be an object"),
        ({"classes": ["0"]}, "missing 'feature_names'"),
        ({"feature_names": ["a"]}, "missing 'classes'"),
        ({"feature_names": "a,b", "classes": ["0"]}, "must be a list"),
        ({"feature_names": ["a", 3], "classes": ["0"]}, "non-empty strings"),
        ({"feature_names": ["a", ""], "classes": ["0"]}, "non-empty strings"),
        ({"feature_names": [], "classes": ["0"]}, "feature_names is empty"),
        ({"feature_names": ["a"], "classes": []}, "classes is empty"),
        ({"feature_names": ["a", "b", "a"], "classes": ["0"]}, "duplicates: 'a'"),
        ({"feature_names": ["a"], "classes": ["x", "x"]}, "duplicates: 'x'"),
    ],
)
def test_from_dict_rejects_bad_input(data: Any, fragment: str) -> None:
    with pytest.raises(SchemaError, match=fragment):
        Schema.from_dict(data)


def test_from_dict_caps_the_number_of_features_and_classes() -> None:
    too_many_features = [f"f{i}" for i in range(MAX_FEATURES + 1)]
    too_many_classes = [str(i) for i in range(MAX_CLASSES + 1)]

    with pytest.raises(SchemaError, match="at most 100000"):
        Schema.from_dict({"feature_names": too_many_features, "classes": ["0"]})
    with pytest.raises(SchemaError, match="at most 10000"):
        Schema.from_dict({"feature_names": ["a"], "classes": too_many_classes})


def test_sort_labels_is_numeric_for_integer_labels() -> None:
    assert sort_labels(["10", "2", "1", "2"]) == ("1", "2", "10")
    assert sort_labels(["-1", "1", "0"]) == ("-1", "0", "1")


def test_sort_labels_is_lexicographic_for_string_labels() -> None:
    assert sort_labels(["malignant", "benign", "10", "2"]) == (
        "10",
        "2",
        "benign",
        "malignant",
    )


def test_merge_schemas_takes_the_sorted_union_of_classes() -> None:
    schemas = [
        Schema(feature_names=FEATURES, classes=("2", "10")),
        Schema(feature_names=FEATURES, classes=("1",)),
        Schema(feature_names=FEATURES, classes=("10", "3")),
    ]

    merged = merge_schemas(schemas)

    assert merged == Schema(feature_names=FEATURES, classes=("1", "2", "3", "10"))


def test_merge_schemas_names_missing_and_extra_columns() -> None:
    schemas = [
        Schema(feature_names=FEATURES, classes=("a",)),
        Schema(feature_names=("age", "height", "bmi"), classes=("a",)),
    ]

    with pytest.raises(SchemaError) as info:
        merge_schemas(schemas)

    message = str(info.value)
    assert "client 2" in message
    assert "'weight'" in message and "'bmi'" in message


def test_merge_schemas_rejects_reordered_columns() -> None:
    schemas = [
        Schema(feature_names=FEATURES, classes=("a",)),
        Schema(feature_names=("age", "weight", "height"), classes=("a",)),
    ]

    with pytest.raises(SchemaError, match="different order.*column 2 is 'weight'"):
        merge_schemas(schemas)


def test_merge_schemas_of_nothing_fails() -> None:
    with pytest.raises(SchemaError, match="no client schemas"):
        merge_schemas([])


def test_check_schema_accepts_a_client_with_a_subset_of_labels() -> None:
    run = Schema(feature_names=FEATURES, classes=("a", "b", "c"))

    check_schema(run, Schema(feature_names=FEATURES, classes=("c",)))


def test_check_schema_rejects_an_unknown_label() -> None:
    run = Schema(feature_names=FEATURES, classes=("a", "b"))
    client = Schema(feature_names=FEATURES, classes=("a", "z"))

    with pytest.raises(SchemaError, match="labels 'z' are not among"):
        check_schema(run, client)


def test_check_schema_rejects_different_features() -> None:
    run = Schema(feature_names=FEATURES, classes=("a",))
    client = Schema(feature_names=("age", "height"), classes=("a",))

    with pytest.raises(SchemaError, match="missing columns 'weight'"):
        check_schema(run, client)
