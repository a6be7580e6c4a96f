"""Federated feature statistics, and the shared preprocessing the run derives from them.

A site summarises each numeric feature column of its train split as a count,
a mean and a sum of squared deviations (``m2``), plus how many cells are
missing; the coordinator merges the summaries of all sites exactly, with the
pairwise update of Chan, Golub and LeVeque ("Algorithms for computing the
sample variance", 1983), which stays accurate where sums of squares cancel.
From the merged figures it fixes one :class:`Preprocess` for the whole run:
every site standardises with the same mean and scale and fills missing cells
with the same (global) mean, so a raw value means the same at every site.

A column a site holds fewer than ``min_count`` values of is suppressed: the
site reports it as absent, and those values stay out of the merged figures.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

import numpy as np
import numpy.typing as npt

from fednet.exceptions import SchemaError

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
        sites: how many sites the figures come from.
    """

    rows: int
    count: I64
    mean: F64
    m2: F64
    missing: I64
    sites: int = 1

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
    def from_matrix(cls, x: npt.ArrayLike, min_count: int = MIN_COUNT) -> FeatureStats:
        """Summarise a raw feature matrix (NaN marks a missing cell).

        Columns with fewer than ``min_count`` present values are suppressed.
        """
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
        zero_f, zero_i = np.zeros(len(count)), np.zeros(len(count), dtype=np.int64)
        return cls(
            rows=len(data),
            count=np.where(kept, count, zero_i),
            mean=np.where(kept, mean, zero_f),
            m2=np.where(kept, m2, zero_f),
            missing=np.where(kept, missing, zero_i),
        )

    def to_dict(self) -> dict[str, Any]:
        """Return the JSON form accepted by :meth:`from_dict`."""
        return {
            "rows": self.rows,
            "count": self.count.tolist(),
            "mean": self.mean.tolist(),
            "m2": self.m2.tolist(),
            "missing": self.missing.tolist(),
        }

    @classmethod
    def from_dict(cls, data: Any, width: int) -> FeatureStats:
        """Validate a site's untrusted summary of ``width`` columns.

        Raises:
            SchemaError: on a missing key, a wrong type or length, a count or
                missing figure outside ``[0, rows]``, or a non-finite number.
        """
        if not isinstance(data, dict):
            raise SchemaError(f"stats must be an object, got {type(data).__name__}")
        rows = data.get("rows")
        if type(rows) is not int or not 0 <= rows <= MAX_ROWS:
            raise SchemaError(f"stats rows must be an integer in [0, 1e12]: {rows!r}")
        count = _int_column(data, "count", width, rows)
        missing = _int_column(data, "missing", width, rows)
        if np.any(count + missing > rows):
            raise SchemaError("stats count plus missing exceeds rows")
        mean = _float_column(data, "mean", width)
        m2 = _float_column(data, "m2", width)
        if np.any(m2 < 0):
            raise SchemaError("stats m2 must not be negative")
        return cls(rows=rows, count=count, mean=mean, m2=m2, missing=missing)


def _column(data: dict[str, Any], key: str, width: int, what: str) -> list[Any]:
    values = data.get(key)
    if not isinstance(values, list) or len(values) != width:
        got = len(values) if isinstance(values, list) else type(values).__name__
        raise SchemaError(f"{what} {key} must be a list of {width} numbers, got {got}")
    return values


def _int_column(data: dict[str, Any], key: str, width: int, rows: int) -> I64:
    values = _column(data, key, width, "stats")
    if not all(type(v) is int and 0 <= v <= rows for v in values):
        raise SchemaError(f"stats {key} must hold integers in [0, {rows}]")
    return np.array(values, dtype=np.int64).reshape(width)


def _float_column(
    data: dict[str, Any], key: str, width: int, what: str = "stats"
) -> F64:
    values = _column(data, key, width, what)
    if not all(type(v) in (int, float) and _finite(v) for v in values):
        raise SchemaError(f"{what} {key} must hold finite numbers")
    return np.array(values, dtype=np.float64).reshape(width)


def _finite(value: float) -> bool:
    try:
        return math.isfinite(value)
    except OverflowError:  # an integer beyond float64
        return False


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
            sites=total.sites + part.sites,
        )
    return total


@dataclass(frozen=True, eq=False)
class Preprocess:
    """How every site of a run turns raw feature rows into model input.

    Standardise with ``mean`` and ``scale``, fill a missing cell with the
    mean (0 after standardising), and append a 0/1 column saying the cell was
    missing for each column listed in ``indicators``.
    """

    mean: F64
    scale: F64
    indicators: tuple[int, ...] = ()

    def __post_init__(self) -> None:
        if self.mean.shape != self.scale.shape or self.mean.ndim != 1:
            raise SchemaError("preprocess mean and scale must be lists of one length")
        if not (np.all(np.isfinite(self.mean)) and np.all(np.isfinite(self.scale))):
            raise SchemaError("preprocess mean and scale must be finite")
        if np.any(self.scale <= 0):
            raise SchemaError("preprocess scale must be positive")
        if list(self.indicators) != sorted(set(self.indicators)) or any(
            not 0 <= i < len(self.mean) for i in self.indicators
        ):
            raise SchemaError("preprocess indicators must be distinct column indices")

    def __eq__(self, other: object) -> bool:
        if not isinstance(other, Preprocess):
            return NotImplemented
        return self.to_dict() == other.to_dict()

    __hash__ = None  # type: ignore[assignment]

    @property
    def width(self) -> int:
        """Return the number of model input columns."""
        return len(self.mean) + len(self.indicators)

    @classmethod
    def from_stats(cls, stats: FeatureStats, missing_indicator: bool) -> Preprocess:
        """Fix the preprocessing of a run from its merged statistics.

        A column without spread (or without values) is only centred; with
        ``missing_indicator``, each column missing anywhere gets an indicator.
        """
        std = stats.std
        scale = np.where(std > 0, std, 1.0)
        indicators = tuple(np.flatnonzero(stats.missing > 0).tolist())
        return cls(
            mean=stats.mean.copy(),
            scale=scale,
            indicators=indicators if missing_indicator else (),
        )

    def apply(self, x: npt.ArrayLike) -> F32:
        """Return the model input for raw rows (NaN marks a missing cell)."""
        raw = np.asarray(x, dtype=np.float64)
        missing = np.isnan(raw)
        z = np.where(missing, 0.0, (raw - self.mean) / self.scale)
        if self.indicators:
            z = np.hstack([z, missing[:, list(self.indicators)]])
        return z.astype(np.float32)

    def feature_names(self, names: Sequence[str]) -> tuple[str, ...]:
        """Return the model's input column names for the raw column ``names``."""
        return tuple(names) + tuple(f"{names[i]} (missing)" for i in self.indicators)

    def to_dict(self) -> dict[str, Any]:
        """Return the JSON form accepted by :meth:`from_dict` (exact floats)."""
        return {
            "mean": self.mean.tolist(),
            "scale": self.scale.tolist(),
            "indicators": list(self.indicators),
        }

    @classmethod
    def from_dict(cls, data: Any) -> Preprocess:
        """Validate an untrusted preprocessing and build it.

        Raises:
            SchemaError: on a missing key, a wrong type, lists of different
                lengths, a non-finite number or a scale that is not positive.
        """
        if not isinstance(data, dict):
            raise SchemaError(f"preprocess must be an object: {type(data).__name__}")
        mean = data.get("mean")
        if not isinstance(mean, list):
            raise SchemaError("preprocess mean must be a list")
        width = len(mean)
        indicators = data.get("indicators", [])
        if not isinstance(indicators, list) or not all(
            type(i) is int for i in indicators
        ):
            raise SchemaError("preprocess indicators must be a list of integers")
        return cls(
            mean=_float_column(data, "mean", width, "preprocess"),
            scale=_float_column(data, "scale", width, "preprocess"),
            indicators=tuple(indicators),
        )
