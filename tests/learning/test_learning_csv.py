"""Tests of CSV loading: fednet.learning.csvfile and datasets.load_csv."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest

from fednet.exceptions import DataError
from fednet.learning.datasets import load_csv


def _write(tmp_path: Path, text: str, name: str = "site.csv") -> Path:
    path = tmp_path / name
    path.write_text(text, encoding="utf-8")
    return path


GOOD = "age,bp,diagnosis\n50,120,sick\n30,110,well\n61,140,sick\n45,115,well\n"


def test_load_csv_reads_string_labels_in_sorted_order(tmp_path: Path) -> None:
    data = load_csv(_write(tmp_path, GOOD), "diagnosis", val_fraction=0.5)

    assert data.feature_names == ("age", "bp")
    assert data.classes == ("sick", "well")
    assert data.task == "csv"
    assert data.x_train.dtype == np.float32 and data.y_train.dtype == np.int64
    assert data.x_train.shape == (2, 2) and data.x_val.shape == (2, 2)
    assert data.num_examples == 2
    assert "site.csv" in data.description


def test_load_csv_keeps_each_row_with_its_label(tmp_path: Path) -> None:
    data = load_csv(_write(tmp_path, GOOD), "diagnosis", val_fraction=0.5, seed=3)

    # "sick" rows have age >= 50, "well" rows age < 50; scaling keeps the order.
    x = np.concatenate([data.x_train, data.x_val])
    y = np.concatenate([data.y_train, data.y_val])
    raw_age = x[:, 0] * data.feature_scale[0] + data.feature_mean[0]  # type: ignore
    np.testing.assert_allclose(sorted(raw_age), [30, 45, 50, 61], rtol=1e-5)
    assert all((age > 47) == (label == 0) for age, label in zip(raw_age, y))


def test_load_csv_standardises_with_the_train_split(tmp_path: Path) -> None:
    rows = "".join(f"{i},{i % 2 * 1000},{i % 3}\n" for i in range(60))
    data = load_csv(_write(tmp_path, "a,b,label\n" + rows), "label", seed=1)

    np.testing.assert_allclose(data.x_train.mean(axis=0), 0.0, atol=1e-5)
    np.testing.assert_allclose(data.x_train.std(axis=0), 1.0, atol=1e-5)


def test_load_csv_normalises_integer_labels_and_sorts_them_numerically(
    tmp_path: Path,
) -> None:
    text = "x,y\n1,10\n2,2\n3,02\n4,10\n5,9\n"

    data = load_csv(_write(tmp_path, text), "y", val_fraction=0.4)

    assert data.classes == ("2", "9", "10")


def test_load_csv_label_column_may_be_anywhere(tmp_path: Path) -> None:
    text = "label,f1,f2\na,1,2\nb,3,4\na,5,6\n"

    data = load_csv(_write(tmp_path, text), "label")

    assert data.feature_names == ("f1", "f2")


def test_load_csv_does_not_crash_with_one_example_per_class(tmp_path: Path) -> None:
    text = "f,label\n1,a\n2,b\n3,c\n4,d\n"

    data = load_csv(_write(tmp_path, text), "label")

    assert data.num_examples + len(data.y_val) == 4


def test_load_csv_skips_blank_lines_and_strips_spaces(tmp_path: Path) -> None:
    text = "\ufefff1 , label\n\n 1.5 , yes \n2,no\n\n"

    data = load_csv(_write(tmp_path, text), "label")

    assert data.feature_names == ("f1",)
    assert data.classes == ("no", "yes")


def test_load_csv_constant_column_is_not_divided_by_zero(tmp_path: Path) -> None:
    text = "f,c,label\n1,7,a\n2,7,b\n3,7,a\n4,7,b\n5,7,a\n"

    data = load_csv(_write(tmp_path, text), "label")

    assert np.isfinite(data.x_train).all()
    np.testing.assert_array_equal(data.x_train[:, 1], 0.0)


@pytest.mark.parametrize(
    ("text", "fragment"),
    [
        ("a,label\n1,x\n2,\n", r"line 3, column 'label': missing label"),
        (  # one text cell among numbers: a typo, not a categorical column
            "a,b,label\n" + "".join(f"{i},{i},x\n" for i in range(10)) + "3,abc,y\n",
            r"line 12, column 'b': non-numeric value 'abc'",
        ),
        ("a,b,label\n1,inf,x\n3,4,y\n", r"line 2, column 'b': non-finite value 'inf'"),
        ("a,b,label\n1,2,x\n3,-Inf,y\n", r"line 3, column 'b': non-finite value"),
        ("a,b,label\n\n1,2,x\n3,4\n", r"line 4: 2 fields, expected 3"),
        ("a,b,label\n1,2,x\n", r"1 data row\(s\); need at least 2"),
        ("a,b,label\n", r"0 data row\(s\)"),
        ("", r"file is empty"),
        ("\n  \n", r"file is empty"),
        ("1,2,3\n4,5,6\n", r"line 1 holds numbers, not column names"),
        ("a,,label\n1,2,x\n", r"column 2 of the header has no name"),
        ("a,b,a,label\n1,2,3,x\n4,5,6,y\n", r"column 'a' appears more than once"),
        ("label\nx\ny\n", r"no feature columns besides 'label'"),
    ],
)
def test_load_csv_errors_name_file_line_and_column(
    tmp_path: Path, text: str, fragment: str
) -> None:
    path = _write(tmp_path, text)

    with pytest.raises(DataError, match=fragment) as info:
        load_csv(path, "label")

    assert str(info.value).startswith(str(path))


def test_load_csv_lists_the_columns_when_the_label_column_is_missing(
    tmp_path: Path,
) -> None:
    path = _write(tmp_path, "age,bp,outcome\n1,2,x\n3,4,y\n")

    with pytest.raises(DataError, match=r"no label column 'label'.*'age', 'bp'"):
        load_csv(path, "label")


def test_load_csv_reports_a_missing_file(tmp_path: Path) -> None:
    with pytest.raises(DataError, match="no such file"):
        load_csv(tmp_path / "absent.csv", "label")


def test_load_csv_reports_a_directory(tmp_path: Path) -> None:
    with pytest.raises(DataError, match="is a directory"):
        load_csv(tmp_path, "label")


def test_load_csv_reports_binary_content(tmp_path: Path) -> None:
    path = tmp_path / "blob.csv"
    path.write_bytes(b"a,label\n\xff\xfe\x00\x01,x\n")

    with pytest.raises(DataError, match="not UTF-8"):
        load_csv(path, "label")


def test_load_csv_line_numbers_count_quoted_multiline_fields(tmp_path: Path) -> None:
    text = 'a,label\n1,"two\nlines"\n' + "2,y\n" * 10 + "zz,z\n"

    with pytest.raises(DataError, match=r"line 14, column 'a'"):
        load_csv(_write(tmp_path, text), "label")
