"""Federated feature statistics: what a site tells of its columns, and their merge.

A site summarises each numeric feature column of its train split as a count,
a mean and a sum of squared deviations (``m2``), plus how many cells are
missing, and each categorical column as the count of each category. The
coordinator merges the summaries of all sites exactly, with the pairwise
update of Chan, Golub and LeVeque ("Algorithms for computing the sample
variance", 1983), which stays accurate where sums of squares cancel; the run's
:class:`~fednet.learning.preprocess.Preprocess` is fixed from the result.

Each numeric column also gets a histogram over bins every site shares
(:mod:`fednet.learning.sketch`), from which the merged median is read.

Small counts are suppressed: a column a site holds fewer than ``min_count``
values of, and a category it holds fewer than ``min_count`` times, are left
out of its summary (figures and counts alike), and histogram bins holding
fewer are pooled with their neighbours. The summary says its ``min_count``.
"""

from __future__ import annotations

from collections.abc import Collection, Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

import numpy as np
import numpy.typing as npt

from fednet.exceptions import SchemaError
from fednet.learning.sketch import Histogram, histogram_of, histogram_to_list
from fednet.learning.sketch import merge_histograms
from fednet.learning.statfields import (
    float_list,
    int_column,
    parse_categories,
    parse_histograms,
    parse_min_count,
)

MIN_COUNT = 10
"""Fewest values of a column a site reports (small-count suppression)."""
MAX_ROWS = 10**12

F32 = npt.NDArray[np.float32]
F64 = npt.NDArray[np.float64]
I64 = npt.NDArray[np.int64]


@dataclass(frozen=True, eq=False)
class FeatureStats:
    """Per-column summaries of one site's train split, or of several sites merged.

    Attributes:
        rows: rows summarised.
        count: values present per column (0 where suppressed or all missing).
        mean: mean of the present values (0 where count is 0).
        m2: sum of squared deviations from ``mean`` (0 where count is 0).
        missing: missing cells per column (0 where suppressed).
        categories: per categorical column (by index), each category's count;
            the numeric figures of such a column are 0 but ``missing``.
        sites: how many sites the figures come from.
        histograms: per numeric column (by index) with values, the sketch of
            its values; merged, only columns every contributing site sketched.
        min_count: the suppression threshold (merged: the smallest of the
            sites'; a summary that names none is from a release that used 10).
    """

    rows: int
    count: I64
    mean: F64
    m2: F64
    missing: I64
    categories: dict[int, dict[str, int]] = field(default_factory=dict)
    sites: int = 1
    histograms: dict[int, Histogram] = field(default_factory=dict)
    min_count: int = MIN_COUNT

    @property
    def width(self) -> int:
        """Return the number of columns."""
        return len(self.count)

    @property
    def std(self) -> F64:
        """Return the population standard deviation per column (0 without values)."""
        safe = np.maximum(self.count, 1)
        return np.sqrt(np.where(self.count > 0, self.m2 / safe, 0.0))

    @classmethod
    def from_matrix(
        cls,
        x: npt.ArrayLike,
        min_count: int = MIN_COUNT,
        categories: Mapping[int, Sequence[str]] | None = None,
    ) -> FeatureStats:
        """Summarise a raw feature matrix (NaN marks a missing cell).

        Args:
            x: rows of raw features; a categorical column holds category codes.
            min_count: columns with fewer present values, and categories seen
                fewer times, are suppressed.
            categories: each categorical column's categories in code order.
        """
        categories = categories or {}
        data = np.asarray(x, dtype=np.float64)
        if data.ndim != 2:
            raise ValueError(f"features must be a matrix, got shape {data.shape}")
        present = ~np.isnan(data)
        count = present.sum(axis=0).astype(np.int64)
        kept = count >= min_count
        safe = np.maximum(count, 1)
        mean = np.where(present, data, 0.0).sum(axis=0) / safe
        dev = np.where(present, data - mean, 0.0)
        m2 = (dev * dev).sum(axis=0)
        missing = (len(data) - count).astype(np.int64)
        numeric = kept.copy()
        numeric[list(categories)] = False
        zero_f, zero_i = np.zeros(len(count)), np.zeros(len(count), dtype=np.int64)
        return cls(
            rows=len(data),
            count=np.where(numeric, count, zero_i),
            mean=np.where(numeric, mean, zero_f),
            m2=np.where(numeric, m2, zero_f),
            missing=np.where(kept, missing, zero_i),
            categories={
                j: _category_counts(data[:, j], names, min_count)
                for j, names in categories.items()
            },
            histograms={
                j: histogram_of(data[present[:, j], j], min_count)
                for j in np.flatnonzero(numeric).tolist()
            },
            min_count=min_count,
        )

    def to_dict(self) -> dict[str, Any]:
        """Return the JSON form accepted by :meth:`from_dict`."""
        data: dict[str, Any] = {
            "rows": self.rows,
            "count": self.count.tolist(),
            "mean": self.mean.tolist(),
            "m2": self.m2.tolist(),
            "missing": self.missing.tolist(),
            "min_count": self.min_count,
        }
        if self.categories:
            data["categories"] = {str(j): c for j, c in self.categories.items()}
        if self.histograms:
            data["histograms"] = {
                str(j): histogram_to_list(h) for j, h in self.histograms.items()
            }
        return data

    @classmethod
    def from_dict(
        cls, data: Any, width: int, categorical: Collection[int] = ()
    ) -> FeatureStats:
        """Validate a site's untrusted summary of ``width`` columns.

        Args:
            data: the summary's JSON form.
            width: the run's number of feature columns.
            categorical: the indices of the run's categorical columns; counts
                of others are refused, a missing one counts as all suppressed.

        Raises:
            SchemaError: on a missing key, a wrong type or length, a count or
                missing figure outside ``[0, rows]``, a non-finite number,
                categories of a column that is not categorical, too many or
                too long, a count under the summary's ``min_count``, or a
                histogram that is too long, of a column that is not numeric,
                or whose counts do not add up to the column's.
        """
        if not isinstance(data, dict):
            raise SchemaError(f"stats must be an object, got {type(data).__name__}")
        rows = data.get("rows")
        if type(rows) is not int or not 0 <= rows <= MAX_ROWS:
            raise SchemaError(f"stats rows must be an integer in [0, 1e12]: {rows!r}")
        min_count = parse_min_count(data, MIN_COUNT)
        count = int_column(data, "count", width, rows)
        missing = int_column(data, "missing", width, rows)
        if np.any(count + missing > rows):
            raise SchemaError("stats count plus missing exceeds rows")
        mean = float_list(data, "mean", width)
        m2 = float_list(data, "m2", width)
        if np.any(m2 < 0):
            raise SchemaError("stats m2 must not be negative")
        categories = parse_categories(
            data.get("categories", {}), categorical, rows, min_count
        )
        histograms = parse_histograms(
            data.get("histograms", {}), count, categorical, min_count
        )
        return cls(
            rows, count, mean, m2, missing, categories, 1, histograms, min_count
        )


def _category_counts(
    codes: F64, names: Sequence[str], min_count: int
) -> dict[str, int]:
    present = codes[~np.isnan(codes)].astype(np.int64)
    counts = np.bincount(present, minlength=len(names))
    return {name: int(n) for name, n in zip(names, counts) if n and n >= min_count}


def merge_stats(parts: Sequence[FeatureStats]) -> FeatureStats:
    """Combine sites' summaries into the summary of their pooled rows.

    Raises:
        SchemaError: if no summary is given or their widths differ.
    """
    if not parts:
        raise SchemaError("no statistics to merge")
    total = parts[0]
    for part in parts[1:]:
        if part.width != total.width:
            raise SchemaError(
                f"stats of {part.width} columns cannot merge with {total.width}"
            )
        count = total.count + part.count
        safe = np.maximum(count, 1)
        delta = part.mean - total.mean
        total = FeatureStats(
            rows=total.rows + part.rows,
            count=count,
            mean=np.where(count > 0, total.mean + delta * part.count / safe, 0.0),
            m2=total.m2 + part.m2 + delta * delta * total.count * part.count / safe,
            missing=total.missing + part.missing,
            categories=_merge_counts(total.categories, part.categories),
            sites=total.sites + part.sites,
            histograms=_merge_sketches(total, part),
            min_count=min(total.min_count, part.min_count),
        )
    return total


def _merge_sketches(a: FeatureStats, b: FeatureStats) -> dict[int, Histogram]:
    """Merge the histograms of the columns both sketched or only one holds."""
    merged = {}
    for j in set(a.histograms) | set(b.histograms):
        complete = all(j in s.histograms or not s.count[j] for s in (a, b))
        if complete:
            merged[j] = merge_histograms(
                a.histograms.get(j, {}), b.histograms.get(j, {})
            )
    return merged


def _merge_counts(
    a: dict[int, dict[str, int]], b: dict[int, dict[str, int]]
) -> dict[int, dict[str, int]]:
    merged = {j: dict(counts) for j, counts in a.items()}
    for j, counts in b.items():
        column = merged.setdefault(j, {})
        for name, n in counts.items():
            column[name] = column.get(name, 0) + n
    return merged
