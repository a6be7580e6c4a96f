"""read_csv_table raises only DataError on any header and rows."""

from __future__ import annotations

import csv
import io
import math
from pathlib import Path

import pytest
from hypothesis import given
from hypothesis import strategies as st

from fednet.exceptions import DataError
from fednet.learning.csvfile import read_csv_table
from tests.fuzz.strategies import FUZZ

TEXT = st.text(st.characters(blacklist_categories=("Cs",)), max_size=8)
CELLS = TEXT | st.sampled_from(
    ["label", "x", "y", "", " ", "\x00", '"', ",", "\n", "\r", "1", "nan", "1e999"]
)
NUMBERS = st.floats(allow_nan=True).map(repr) | st.integers().map(str)


@pytest.fixture(scope="module")
def csv_path(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """One file per module, rewritten by every example."""
    return tmp_path_factory.mktemp("fuzz_csv") / "site.csv"


@st.composite
def csv_texts(draw: st.DrawFn) -> tuple[str, str]:
    """A header of odd cells, a few data rows, and the label column to ask for."""
    header = draw(st.lists(CELLS, max_size=6))
    rows = draw(st.lists(st.lists(NUMBERS | CELLS, max_size=6), max_size=3))
    if draw(st.booleans()):
        buffer = io.StringIO()
        csv.writer(buffer).writerows([header, *rows])
        text = buffer.getvalue()
    else:  # raw cells, unquoted: stray quotes and separators stay as they are
        text = "\n".join(",".join(row) for row in [header, *rows])
    label = draw(st.sampled_from(header) if header else CELLS)
    return draw(st.sampled_from(["", "\ufeff", "\n\n"])) + text, label


def _check(path: Path, label: str) -> None:
    try:
        table = read_csv_table(path, label)
    except DataError:
        return
    assert table.x.shape == (len(table.labels), len(table.feature_names))
    assert not any(math.isinf(v) for v in table.x.flat)  # NaN: a missing cell


@FUZZ
@given(csv_texts())
def test_header_and_rows_load_or_raise_data_error(
    csv_path: Path, sample: tuple[str, str]
) -> None:
    """Odd header cells and rows load as a table or raise DataError."""
    text, label = sample
    csv_path.write_text(text, encoding="utf-8", newline="")
    _check(csv_path, label)


@FUZZ
@given(st.binary(max_size=64), CELLS)
def test_any_bytes_load_or_raise_data_error(
    csv_path: Path, data: bytes, label: str
) -> None:
    """Arbitrary file bytes load as a table or raise DataError."""
    csv_path.write_bytes(data)
    _check(csv_path, label)
