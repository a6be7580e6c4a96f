"""Numeric or categorical: how a CSV feature column is read."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest

from fednet.exceptions import DataError, SchemaError
from fednet.learning.columns import MAX_CATEGORIES, CellError, read_column
from fednet.learning.datasets import load_csv
from fednet.learning.schema import Schema, check_schema, merge_schemas


def test_a_column_of_numbers_and_missing_cells_is_numeric() -> None:
    column = read_column(["1.5", "", "NA", "-2", "1e3", "?"])

    assert column.categories is None
    np.testing.assert_array_equal(column.values, [1.5, np.nan, np.nan, -2, 1e3, np.nan])


def test_a_column_of_text_is_categorical_with_sorted_codes() -> None:
    column = read_column(["yes", "no", "", "yes", "3", "inf"])

    assert column.categories == ("3", "inf", "no", "yes")
    np.testing.assert_array_equal(column.values, [3, 2, np.nan, 3, 0, 1])


def test_one_text_cell_among_numbers_is_a_typo_not_a_category() -> None:
    with pytest.raises(CellError, match="non-numeric value '1,2'") as info:
        read_column([str(i) for i in range(12)] + ["1,2"])
    assert info.value.row == 12


def test_an_infinite_number_is_an_error_in_a_numeric_column() -> None:
    with pytest.raises(CellError, match="non-finite value '-inf'"):
        read_column(["1", "2", "-inf"])


def test_a_categorical_column_is_bounded() -> None:
    with pytest.raises(CellError, match=f"more than {MAX_CATEGORIES} distinct"):
        read_column([f"c{i}" for i in range(MAX_CATEGORIES + 1)])
    with pytest.raises(CellError, match="category of 101 characters, at most 100"):
        read_column(["a", "x" * 101])


def test_a_csv_with_a_text_column_announces_it_in_its_schema(tmp_path: Path) -> None:
    path = tmp_path / "site.csv"
    rows = [f"{i},{'MF'[i % 2]},{'ab'[i // 2 % 2]}" for i in range(20)]
    path.write_text("age,sex,label\n" + "\n".join(rows) + "\n")

    data = load_csv(path, "label")

    assert data.schema.categorical == ("sex",)
    assert data.categories == {1: ("F", "M")}
    assert data.stats is not None and data.stats.categories[1].keys() <= {"F", "M"}


def test_the_csv_error_names_line_and_column_of_a_typo(tmp_path: Path) -> None:
    path = tmp_path / "site.csv"
    path.write_text("a,label\n" + "1,x\n" * 10 + "1.2.3,y\n")

    with pytest.raises(DataError, match=r"line 12, column 'a': non-numeric value"):
        load_csv(path, "label")


def test_schemas_that_disagree_on_a_columns_kind_do_not_merge() -> None:
    numeric = Schema(("age", "sex"), ("a", "b"))
    text = Schema(("age", "sex"), ("a", "b"), categorical=("sex",))

    with pytest.raises(SchemaError, match="'sex' is numeric, expected categorical"):
        merge_schemas([text, numeric])
    with pytest.raises(SchemaError, match="'sex' is categorical, expected numeric"):
        check_schema(numeric, text)
    assert Schema.from_dict(text.to_dict()) == text
    assert "categorical" not in numeric.to_dict()  # as sent before categories
    with pytest.raises(SchemaError, match="among the feature names"):
        Schema(("age",), ("a",), categorical=("sex",))
