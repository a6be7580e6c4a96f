"""Read a CSV file for a bundle's model, predict, and score when labels are there.

The file must hold the bundle's feature columns, in its order; the label
column is optional and, when named, must hold the model's classes. A column
is read as the kind the model was trained on (numeric or categorical), never
guessed again from a few rows.
"""

from __future__ import annotations

import csv
from collections.abc import Iterator, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
import numpy.typing as npt

from fednet.bundle import Bundle
from fednet.exceptions import DataError
from fednet.learning.columns import CellError, read_column
from fednet.learning.metrics import classification_stats, derive, regression_stats
from fednet.learning.schema import describe_feature_difference, is_int
from fednet.typing import Metrics


@dataclass(frozen=True, eq=False)
class Scored:
    """Predictions for every row and, with labels, how good they are."""

    labels: npt.NDArray[np.int64]
    probabilities: npt.NDArray[np.float32]
    truth: npt.NDArray[Any] | None
    metrics: Metrics = field(default_factory=dict)
    values: npt.NDArray[np.float64] | None = None  # a regression's predictions
    confusion: list[list[int]] | None = None

    @property
    def accuracy(self) -> float | None:
        """Return the share of rows predicted right (None without labels)."""
        return self.metrics.get("accuracy")

    @property
    def log_loss(self) -> float | None:
        """Return the mean negative log probability of the true classes."""
        return self.metrics.get("log_loss")


def predict_file(bundle: Bundle, path: Path, label_column: str | None) -> Scored:
    """Predict every row of a CSV file with a bundle's model.

    Raises:
        DataError: naming the file, line and column: missing or other feature
            columns, a missing label column, a cell the column cannot hold, or
            a label that is not one of the model's classes.
    """
    try:
        with open(path, newline="", encoding="utf-8-sig") as handle:
            header, rows, lines = _read(path, csv.reader(handle))
    except FileNotFoundError:
        raise DataError(f"{path}: no such file") from None
    except (OSError, UnicodeDecodeError, csv.Error) as e:
        raise DataError(f"{path}: cannot read: {e}") from None
    schema = bundle.schema
    label_at = _label_index(path, header, label_column)
    names = [h for i, h in enumerate(header) if i != label_at]
    diff = describe_feature_difference(schema.feature_names, names)
    if diff is not None:
        raise DataError(f"{path}: the columns do not match the model's: {diff}")
    feature_at = [i for i in range(len(header)) if i != label_at]
    x = np.empty((len(rows), len(names)), dtype=np.float64)
    categories = {}
    for j, (name, i) in enumerate(zip(names, feature_at)):
        try:
            column = read_column([r[i] for r in rows], name in schema.categorical)
        except CellError as e:
            raise DataError(
                f"{path}: line {lines[e.row]}, column {name!r}: {e.problem}"
            ) from None
        x[:, j] = column.values
        if column.categories is not None:
            categories[j] = column.categories
    if schema.regression:
        return _regress(bundle, path, x, categories, rows, lines, label_at)
    labels, probabilities = bundle.predict(x, categories)
    if label_at is None:
        return Scored(labels, probabilities, None)
    truth = _truth(path, [r[label_at] for r in rows], lines, schema.classes)
    picked = probabilities[np.arange(len(truth)), truth].astype(np.float64)
    log_loss = float(-np.log(np.maximum(picked, 1e-300)).mean())
    stats = classification_stats(truth, probabilities, len(schema.classes))
    metrics = {**derive(stats, bundle.positive), "log_loss": log_loss}
    return Scored(labels, probabilities, truth, metrics,
                  confusion=stats.confusion.tolist())


def _regress(
    bundle: Bundle,
    path: Path,
    x: npt.NDArray[np.float64],
    categories: dict[int, tuple[str, ...]],
    rows: list[list[str]],
    lines: list[int],
    label_at: int | None,
) -> Scored:
    values = bundle.predict_values(x, categories)
    none = np.empty(0, dtype=np.int64), np.empty((0, 0), dtype=np.float32)
    if label_at is None:
        return Scored(*none, None, values=values)
    truth = np.empty(len(rows), dtype=np.float64)
    for i, (row, line) in enumerate(zip(rows, lines)):
        try:
            truth[i] = float(row[label_at])
        except ValueError:
            truth[i] = np.nan
        if not np.isfinite(truth[i]):
            raise DataError(f"{path}: line {line}: label {row[label_at]!r} is not"
                            " a finite number, as a regression's labels are")
    metrics = derive(regression_stats(truth, values))
    return Scored(*none, truth, metrics, values=values)


def write_predictions(path: Path, scored: Scored, classes: Sequence[str]) -> None:
    """Write one row per input row: the predicted class and its probabilities.

    A regression's rows hold the predicted value only.
    """
    with open(path, "w", newline="", encoding="utf-8") as handle:
        writer = csv.writer(handle)
        if scored.values is not None:
            writer.writerow(["prediction"])
            writer.writerows([f"{v:.9g}"] for v in scored.values)
            return
        writer.writerow(["prediction", *(f"probability_{c}" for c in classes)])
        for label, row in zip(scored.labels, scored.probabilities):
            writer.writerow([classes[label], *(f"{p:.9g}" for p in row)])


def _read(
    path: Path, reader: Iterator[list[str]]
) -> tuple[list[str], list[list[str]], list[int]]:
    header: list[str] | None = None
    rows: list[list[str]] = []
    lines: list[int] = []
    for row in reader:
        if not any(cell.strip() for cell in row):
            continue
        line = getattr(reader, "line_num", 0)
        if header is None:
            header = [cell.strip() for cell in row]
            continue
        if len(row) != len(header):
            raise DataError(
                f"{path}: line {line}: {len(row)} fields, expected {len(header)}"
            )
        rows.append([cell.strip() for cell in row])
        lines.append(line)
    if header is None or not rows:
        raise DataError(f"{path}: no header and data rows to predict")
    return header, rows, lines


def _label_index(path: Path, header: list[str], label_column: str | None) -> int | None:
    if label_column is None:
        return None
    if label_column not in header:
        raise DataError(f"{path}: no label column {label_column!r}")
    return header.index(label_column)


def _truth(
    path: Path, cells: list[str], lines: list[int], classes: Sequence[str]
) -> npt.NDArray[np.int64]:
    index = {c: k for k, c in enumerate(classes)}
    numeric = all(is_int(c) for c in classes)
    truth = []
    for cell, line in zip(cells, lines):
        label = str(int(cell)) if numeric and is_int(cell) else cell
        if label not in index:
            raise DataError(
                f"{path}: line {line}: label {cell!r} is not one of the model's"
                f" classes ({', '.join(classes[:10])})"
            )
        truth.append(index[label])
    return np.array(truth, dtype=np.int64)
