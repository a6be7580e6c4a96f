"""Read a client's CSV file into raw features and labels, with precise errors.

Every problem raises :class:`~fednet.exceptions.DataError` naming the file
and, where there is one, the line (1-based, as an editor shows it; the header
is line 1 unless blank lines precede it) and the column.
"""

from __future__ import annotations

import csv
import logging
from collections import Counter
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Protocol

import numpy as np
import numpy.typing as npt

from fednet.exceptions import DataError
from fednet.learning.columns import CellError, Column, read_column
from fednet.learning.schema import MAX_CLASSES, MAX_FEATURES

logger = logging.getLogger(__name__)

_MAX_LISTED_COLUMNS = 20


@dataclass(frozen=True, eq=False)
class CsvTable:
    """The contents of a CSV file: raw float64 features (NaN where missing), labels.

    A categorical column holds codes into its entry of ``categories`` (keyed
    by column index); the others hold numbers.
    """

    path: Path
    feature_names: tuple[str, ...]
    x: npt.NDArray[np.float64]
    labels: tuple[str, ...]
    categories: dict[int, tuple[str, ...]] = field(default_factory=dict)
    targets: npt.NDArray[np.float64] | None = None  # the labels, if all numbers


def read_csv_table(path: Path, label_column: str) -> CsvTable:
    """Parse a comma-separated file with a header row.

    Every column except ``label_column`` is a feature, numeric or categorical
    (:mod:`fednet.learning.columns`); a blank cell or one of
    :data:`~fednet.learning.columns.MISSING_TOKENS` is a missing value (NaN).
    Blank lines are skipped; cells are stripped of surrounding spaces. Labels
    are kept as strings; when every label is an integer they are normalised
    (``"01"`` becomes ``"1"``).

    Args:
        path: the CSV file (UTF-8, an optional byte-order mark is ignored).
        label_column: name of the column holding the class labels.

    Raises:
        DataError: if the file is missing or unreadable, empty, has no header,
            lacks the label column, has a duplicated column, a ragged row, a
            text cell in a column of numbers, an infinite number, a categorical
            column of too many or too long categories, a missing label,
            or fewer than 2 data rows.
    """
    try:
        with open(path, newline="", encoding="utf-8-sig") as handle:
            reader = csv.reader(handle)
            try:
                return _parse(path, reader, label_column)
            except csv.Error as e:
                raise DataError(f"{path}: line {reader.line_num}: {e}") from None
    except FileNotFoundError:
        raise DataError(f"{path}: no such file") from None
    except IsADirectoryError:
        raise DataError(f"{path}: is a directory, not a CSV file") from None
    except UnicodeDecodeError as e:
        raise DataError(f"{path}: not UTF-8 text ({e.reason})") from None
    except OSError as e:
        raise DataError(f"{path}: cannot read: {e.strerror or e}") from None


def _rows(reader: Iterator[list[str]]) -> Iterator[list[str]]:
    """Yield the non-blank rows."""
    for row in reader:
        if any(cell.strip() for cell in row):
            yield row


def _is_number(text: str) -> bool:
    try:
        float(text)
    except ValueError:
        return False
    return True


class _Reader(Protocol):
    line_num: int

    def __iter__(self) -> Iterator[list[str]]: ...

    def __next__(self) -> list[str]: ...


def _parse(path: Path, reader: _Reader, label_column: str) -> CsvTable:
    rows = _rows(reader)
    header = [cell.strip() for cell in next(rows, [])]
    if not header:
        raise DataError(f"{path}: file is empty (expected a header row)")
    _check_header(path, reader.line_num, header, label_column)
    label_at = header.index(label_column)
    feature_at = [i for i in range(len(header)) if i != label_at]
    cells: list[list[str]] = []
    labels: list[str] = []
    lines: list[int] = []
    for row in rows:
        line = reader.line_num
        if len(row) != len(header):
            raise DataError(
                f"{path}: line {line}: {len(row)} fields, expected {len(header)}"
                " as in the header"
            )
        label = row[label_at].strip()
        if not label:
            raise DataError(
                f"{path}: line {line}, column {label_column!r}: missing label"
            )
        cells.append([row[i].strip() for i in feature_at])
        labels.append(label)
        lines.append(line)
    if len(labels) < 2:
        raise DataError(
            f"{path}: {len(labels)} data row(s); need at least 2"
            " (one to train on, one to validate on)"
        )
    targets = _numbers(labels)
    labels = _normalise_labels(path, labels, numeric=targets is not None)
    names = tuple(header[i] for i in feature_at)
    columns = [_column(path, name, cells, j, lines) for j, name in enumerate(names)]
    logger.debug("read %s: %d rows, %d features", path, len(labels), len(names))
    x = np.empty((len(labels), len(names)), dtype=np.float64)
    for j, column in enumerate(columns):
        x[:, j] = column.values
    return CsvTable(
        path=path,
        feature_names=names,
        x=x,
        labels=tuple(labels),
        categories={
            j: c.categories for j, c in enumerate(columns) if c.categories is not None
        },
        targets=targets,
    )


def _column(
    path: Path, name: str, cells: list[list[str]], j: int, lines: list[int]
) -> Column:
    try:
        return read_column([row[j] for row in cells])
    except CellError as e:
        raise DataError(f"{path}: line {lines[e.row]}, column {name!r}: {e.problem}")


def _check_header(path: Path, line: int, header: list[str], label_column: str) -> None:
    unnamed = [i + 1 for i, name in enumerate(header) if not name]
    if unnamed:
        raise DataError(
            f"{path}: line {line}: column {unnamed[0]} of the header has no name"
        )
    if all(_is_number(name) for name in header):
        raise DataError(
            f"{path}: line {line} holds numbers, not column names;"
            " the first row must be a header naming each column"
        )
    if label_column not in header:
        listed = ", ".join(repr(n) for n in header[:_MAX_LISTED_COLUMNS])
        if len(header) > _MAX_LISTED_COLUMNS:
            listed += f", ... ({len(header) - _MAX_LISTED_COLUMNS} more)"
        raise DataError(
            f"{path}: no label column {label_column!r}; the columns are: {listed}"
        )
    duplicated = sorted(name for name, count in Counter(header).items() if count > 1)
    if duplicated:
        raise DataError(
            f"{path}: line {line}: column {duplicated[0]!r} appears more than once"
        )
    if len(header) == 1:
        raise DataError(f"{path}: no feature columns besides {label_column!r}")
    if len(header) - 1 > MAX_FEATURES:
        raise DataError(
            f"{path}: {len(header) - 1} feature columns, at most {MAX_FEATURES}"
        )


def _numbers(labels: list[str]) -> npt.NDArray[np.float64] | None:
    """Return the labels as numbers if every one is a finite number, else None."""
    try:
        values = np.array([float(label) for label in labels], dtype=np.float64)
    except ValueError:
        return None
    return values if np.isfinite(values).all() else None


def _normalise_labels(path: Path, labels: list[str], numeric: bool) -> list[str]:
    """Write integer labels canonically; refuse too many classes (not numbers)."""
    try:
        labels = [str(int(label)) for label in labels]
    except ValueError:
        pass
    distinct = len(set(labels))
    if distinct > MAX_CLASSES and not numeric:
        raise DataError(f"{path}: {distinct} distinct labels, at most {MAX_CLASSES}")
    return labels
