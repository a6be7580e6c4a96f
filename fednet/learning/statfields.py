"""Checks of the untrusted fields of a site's summary (:mod:`fednet.learning.fedstats`).

Each raises :class:`~fednet.exceptions.SchemaError` with the reason, and checks
a list's length before converting it.
"""

from __future__ import annotations

import math
from collections.abc import Collection
from typing import Any

import numpy as np
import numpy.typing as npt

from fednet.exceptions import SchemaError
from fednet.learning.columns import MAX_CATEGORIES, MAX_CATEGORY_CHARS
from fednet.learning.sketch import Histogram, histogram_from_list

F64 = npt.NDArray[np.float64]
I64 = npt.NDArray[np.int64]
MAX_MIN_COUNT = 1_000_000


def parse_categories(
    data: Any, categorical: Collection[int], rows: int, min_count: int = 1
) -> dict[int, dict[str, int]]:
    """Validate the category counts of a summary (each at least ``min_count``)."""
    if not isinstance(data, dict):
        raise SchemaError("stats categories must be an object")
    by_name = {str(j): j for j in categorical}
    result = {}
    for key, counts in data.items():
        if key not in by_name:
            raise SchemaError(f"stats categories of {key!r}, not a categorical column")
        if not isinstance(counts, dict) or len(counts) > MAX_CATEGORIES:
            raise SchemaError(
                f"stats categories of column {key} must be an object of at most"
                f" {MAX_CATEGORIES} counts"
            )
        for name, n in counts.items():
            if not 0 < len(name) <= MAX_CATEGORY_CHARS:
                raise SchemaError(f"stats category name of {len(name)} characters")
            if type(n) is not int or not max(min_count, 1) <= n <= rows:
                raise SchemaError(
                    f"stats category count must be in [{min_count}, {rows}]"
                )
        if sum(counts.values()) > rows:
            raise SchemaError(f"stats categories of column {key} exceed {rows} rows")
        result[by_name[key]] = dict(counts)
    return result


def _column(data: dict[str, Any], key: str, width: int, what: str) -> list[Any]:
    values = data.get(key)
    if not isinstance(values, list) or len(values) != width:
        got = len(values) if isinstance(values, list) else type(values).__name__
        raise SchemaError(f"{what} {key} must be a list of {width} numbers, got {got}")
    return values


def int_column(data: dict[str, Any], key: str, width: int, rows: int) -> I64:
    """Return ``data[key]``, checked to be ``width`` integers in [0, rows]."""
    values = _column(data, key, width, "stats")
    if not all(type(v) is int and 0 <= v <= rows for v in values):
        raise SchemaError(f"stats {key} must hold integers in [0, {rows}]")
    return np.array(values, dtype=np.int64).reshape(width)


def float_list(
    data: dict[str, Any], key: str, width: int, what: str = "stats"
) -> F64:
    """Return ``data[key]``, checked to be ``width`` finite numbers, as float64."""
    values = _column(data, key, width, what)
    if not all(type(v) in (int, float) and _finite(v) for v in values):
        raise SchemaError(f"{what} {key} must hold finite numbers")
    return np.array(values, dtype=np.float64).reshape(width)


def _finite(value: float) -> bool:
    try:
        return math.isfinite(value)
    except OverflowError:  # an integer beyond float64
        return False


def parse_min_count(data: dict[str, Any], legacy: int) -> int:
    """Return a summary's suppression threshold (``legacy`` if it names none)."""
    k = data.get("min_count", legacy)
    if type(k) is not int or not 1 <= k <= MAX_MIN_COUNT:
        raise SchemaError(f"stats min_count must be an integer in [1, 1e6]: {k!r}")
    return k


def parse_histograms(
    data: Any, count: I64, categorical: Collection[int], min_count: int
) -> dict[int, Histogram]:
    """Validate a summary's histograms: numeric columns only, counts adding up.

    Args:
        data: ``{"column index": [[key, count], ...]}``.
        count: each column's number of values (what its bins must add up to).
        categorical: the columns that have no histogram.
        min_count: the summary's suppression threshold (no bin holds fewer).
    """
    if not isinstance(data, dict) or len(data) > len(count):
        raise SchemaError("stats histograms must be an object, one list per column")
    result = {}
    for key, bins in data.items():
        digits = isinstance(key, str) and key.isascii() and key.isdigit()
        j = int(key) if digits and len(key) <= 6 else -1
        if not 0 <= j < len(count) or j in categorical:
            raise SchemaError(f"stats histogram of {key!r}, not a numeric column")
        try:
            result[j] = histogram_from_list(bins, int(count[j]), min_count)
        except SchemaError as e:
            raise SchemaError(f"stats histogram of column {j}: {e}") from None
    return result
