"""The one preprocessing every site of a run applies, fixed from the merged statistics.

Numeric columns are standardised with the pooled mean and standard deviation
and a missing cell takes the pooled mean (0 once standardised) or, with
median imputation, the median read from the merged histograms. A
categorical column becomes one 0/1 column per category of the run's
vocabulary (the most frequent categories over all sites) plus one for every
other category; a missing cell is all zeros. Optional indicator columns say
which cells were missing. So a raw value means the same at every site.
"""

from __future__ import annotations

from collections.abc import Collection, Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

import numpy as np
import numpy.typing as npt

from fednet.exceptions import SchemaError
from fednet.learning.columns import MAX_CATEGORIES, MAX_CATEGORY_CHARS
from fednet.learning.fedstats import FeatureStats
from fednet.learning.sketch import quantile
from fednet.learning.statfields import float_list

MAX_LEVELS = 50
"""Most categories of a column that get a column of their own; the rest pool."""
OTHER = "(other)"

F32 = npt.NDArray[np.float32]
F64 = npt.NDArray[np.float64]


@dataclass(frozen=True, eq=False)
class Preprocess:
    """How every site of a run turns raw feature rows into model input.

    Attributes:
        mean: per column, what is subtracted (ignored for categorical ones).
        scale: per column, what divides (positive; ignored for categorical).
        indicators: the columns that get a missing-indicator column.
        vocab: per categorical column (by index), the run's categories.
        target: a regression run's label mean and scale: models learn the
            standardised label (:meth:`scale_target`), predictions are mapped
            back (:meth:`unscale_target`); None: labels as they are.
        fill: per column, the raw value a missing cell takes (None: the mean).
    """

    mean: F64
    scale: F64
    indicators: tuple[int, ...] = ()
    vocab: dict[int, tuple[str, ...]] = field(default_factory=dict)
    target: tuple[float, float] | None = None
    fill: F64 | None = None

    def __post_init__(self) -> None:
        width = len(self.mean)
        if self.mean.shape != self.scale.shape or self.mean.ndim != 1:
            raise SchemaError("preprocess mean and scale must be lists of one length")
        if not (np.all(np.isfinite(self.mean)) and np.all(np.isfinite(self.scale))):
            raise SchemaError("preprocess mean and scale must be finite")
        if np.any(self.scale <= 0):
            raise SchemaError("preprocess scale must be positive")
        if self.fill is not None and (
            self.fill.shape != self.mean.shape or not np.all(np.isfinite(self.fill))
        ):
            raise SchemaError("preprocess fill must be finite, one per column")
        if list(self.indicators) != sorted(set(self.indicators)) or any(
            not 0 <= i < width for i in self.indicators
        ):
            raise SchemaError("preprocess indicators must be distinct column indices")
        for j, names in self.vocab.items():
            if not 0 <= j < width or len(names) > MAX_CATEGORIES:
                raise SchemaError(f"preprocess categories of column {j}: out of range")
            if not all(
                isinstance(n, str) and 0 < len(n) <= MAX_CATEGORY_CHARS for n in names
            ) or len(set(names)) != len(names):
                raise SchemaError(f"preprocess categories of column {j}: bad names")
        if self.target is not None and not (
            len(self.target) == 2 and all(np.isfinite(self.target))
            and self.target[1] > 0
        ):
            raise SchemaError("preprocess target must be a finite mean and a"
                              " positive scale")

    def scale_target(self, y: npt.ArrayLike) -> F64:
        """Return labels as the model learns them (standardised if set)."""
        values = np.asarray(y, dtype=np.float64)
        if self.target is None:
            return values
        return (values - self.target[0]) / self.target[1]

    def unscale_target(self, z: npt.ArrayLike) -> F64:
        """Return a model's outputs in the label's own units."""
        values = np.asarray(z, dtype=np.float64)
        if self.target is None:
            return values
        return values * self.target[1] + self.target[0]

    def __eq__(self, other: object) -> bool:
        if not isinstance(other, Preprocess):
            return NotImplemented
        return self.to_dict() == other.to_dict()

    __hash__ = None  # type: ignore[assignment]

    @property
    def width(self) -> int:
        """Return the number of model input columns."""
        onehot = sum(len(names) + 1 for names in self.vocab.values())
        return len(self.mean) - len(self.vocab) + onehot + len(self.indicators)

    @classmethod
    def from_stats(
        cls,
        stats: FeatureStats,
        missing_indicator: bool,
        categorical: Collection[int] = (),
        impute: str = "mean",
    ) -> Preprocess:
        """Fix the preprocessing of a run from its merged statistics.

        A column without spread (or without values) is only centred; with
        ``missing_indicator``, each column missing anywhere gets an indicator.
        A categorical column keeps its :data:`MAX_LEVELS` most frequent
        categories (ties by name); the others pool into one column. With
        ``impute="median"``, a missing cell takes the median of the merged
        histogram, or the mean where a column has none (see
        :func:`unsketched_columns`).
        """
        std = stats.std
        indicators = tuple(np.flatnonzero(stats.missing > 0).tolist())
        vocab = {}
        for j in sorted(categorical):
            counts = stats.categories.get(j, {})
            ranked = sorted(counts, key=lambda name: (-counts[name], name))
            vocab[j] = tuple(sorted(ranked[:MAX_LEVELS]))
        return cls(
            mean=stats.mean.copy(),
            scale=np.where(std > 0, std, 1.0),
            indicators=indicators if missing_indicator else (),
            vocab=vocab,
            fill=_medians(stats) if impute == "median" else None,
        )

    def apply(
        self, x: npt.ArrayLike, categories: Mapping[int, Sequence[str]] | None = None
    ) -> F32:
        """Return the model input for raw rows (NaN marks a missing cell).

        Args:
            x: raw rows; a categorical column holds codes into ``categories``.
            categories: this site's categories of each categorical column, in
                code order (a category the run does not know is "other").
        """
        raw = np.asarray(x, dtype=np.float64)
        missing = np.isnan(raw)
        fill = 0.0 if self.fill is None else (self.fill - self.mean) / self.scale
        z = np.where(missing, fill, (raw - self.mean) / self.scale)
        blocks: list[F64] = []
        start = 0
        for j in sorted(self.vocab):
            local = (categories or {}).get(j)
            blocks += [z[:, start:j], self._onehot(j, raw[:, j], local)]
            start = j + 1
        blocks.append(z[:, start:])
        if self.indicators:
            blocks.append(missing[:, list(self.indicators)].astype(np.float64))
        return np.hstack(blocks).astype(np.float32)

    def _onehot(self, j: int, codes: F64, local: Sequence[str] | None) -> F64:
        """Return column j's one-hot block: the run's categories, then "other"."""
        vocab = self.vocab[j]
        position = {name: k for k, name in enumerate(vocab)}
        other = len(vocab)
        lookup = np.array([position.get(n, other) for n in local or ()], dtype=np.int64)
        present = np.flatnonzero(~np.isnan(codes))
        code = codes[present].astype(np.int64)
        known = (code >= 0) & (code < len(lookup))
        column = np.full(len(code), other)
        column[known] = lookup[code[known]]
        block = np.zeros((len(codes), other + 1))
        block[present, column] = 1.0
        return block

    def feature_names(self, names: Sequence[str]) -> tuple[str, ...]:
        """Return the model's input column names for the raw column ``names``."""
        out: list[str] = []
        for j, name in enumerate(names):
            if j in self.vocab:
                out += [f"{name}={v}" for v in (*self.vocab[j], OTHER)]
            else:
                out.append(name)
        return tuple(out) + tuple(f"{names[i]} (missing)" for i in self.indicators)

    def to_dict(self) -> dict[str, Any]:
        """Return the JSON form accepted by :meth:`from_dict` (exact floats)."""
        data: dict[str, Any] = {
            "mean": self.mean.tolist(),
            "scale": self.scale.tolist(),
            "indicators": list(self.indicators),
        }
        if self.vocab:  # absent otherwise, as before categories existed
            data["categories"] = {str(j): list(v) for j, v in self.vocab.items()}
        if self.target is not None:
            data["target"] = list(self.target)
        if self.fill is not None:
            data["fill"] = self.fill.tolist()
        return data

    @classmethod
    def from_dict(cls, data: Any) -> Preprocess:
        """Validate an untrusted preprocessing and build it.

        Raises:
            SchemaError: on a missing key, a wrong type, lists of different
                lengths, a non-finite number, a scale that is not positive, or
                categories of a column out of range, repeated or too long.
        """
        if not isinstance(data, dict):
            raise SchemaError(f"preprocess must be an object: {type(data).__name__}")
        mean = data.get("mean")
        if not isinstance(mean, list):
            raise SchemaError("preprocess mean must be a list")
        indicators = data.get("indicators", [])
        if not isinstance(indicators, list) or not all(
            type(i) is int for i in indicators
        ):
            raise SchemaError("preprocess indicators must be a list of integers")
        return cls(
            mean=float_list(data, "mean", len(mean), "preprocess"),
            scale=float_list(data, "scale", len(mean), "preprocess"),
            indicators=tuple(indicators),
            vocab=_vocab(data.get("categories", {})),
            target=_target(data.get("target")),
            fill=(
                None
                if data.get("fill") is None
                else float_list(data, "fill", len(mean), "preprocess")
            ),
        )


def _target(data: Any) -> tuple[float, float] | None:
    if data is None:
        return None
    if not isinstance(data, list) or len(data) != 2 or not all(
        type(v) in (int, float) for v in data
    ):
        raise SchemaError("preprocess target must be [mean, scale]")
    return float(data[0]), float(data[1])


def _vocab(data: Any) -> dict[int, tuple[str, ...]]:
    if not isinstance(data, dict):
        raise SchemaError("preprocess categories must be an object")
    vocab = {}
    for key, names in data.items():
        digits = isinstance(key, str) and key.isascii() and key.isdigit()
        if not digits or len(key) > 6 or not isinstance(names, list):
            raise SchemaError(f"preprocess categories of {key!r}: not a column's list")
        vocab[int(key)] = tuple(names)
    return vocab


def unsketched_columns(stats: FeatureStats, categorical: Collection[int]) -> list[int]:
    """Return the numeric columns with values but no merged histogram.

    Median imputation falls back to the mean there: some site sent no
    histogram of the column (a client of an earlier release).
    """
    return [
        j
        for j in range(stats.width)
        if stats.count[j] and j not in stats.histograms and j not in categorical
    ]


def _medians(stats: FeatureStats) -> F64:
    """Return each column's merged median (its mean where there is no histogram)."""
    fill = stats.mean.copy()
    for j, hist in stats.histograms.items():
        if stats.count[j] and hist:
            fill[j] = quantile(hist, 0.5)
    return fill
