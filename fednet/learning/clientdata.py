"""One client's data as loaded: train and validation arrays, schema, raw CSV parts."""

from __future__ import annotations

from dataclasses import dataclass, field

import numpy as np
import numpy.typing as npt

from fednet.learning.fedstats import FeatureStats
from fednet.learning.schema import Schema
from fednet.typing import NDArray

F32 = npt.NDArray[np.float32]
I64 = npt.NDArray[np.int64]
F64 = npt.NDArray[np.float64]


@dataclass(frozen=True, eq=False)
class ClientData:
    """Train and validation arrays of one client, with their schema.

    Attributes:
        x_train: float32 features, shape (n_train, features), standardised.
        y_train: int64 indices into ``classes``.
        x_val: float32 validation features.
        y_val: int64 validation labels.
        feature_names: one name per feature column.
        classes: the labels this client holds, in canonical order
            (:func:`~fednet.learning.schema.sort_labels`).
        description: one line for logs and status pages.
        task: ``digits``, ``breast_cancer`` or ``csv``.
        feature_mean: mean the raw features were shifted by (stays local).
        feature_scale: scale the raw features were divided by (stays local).
        raw_train: a CSV client's raw train features (NaN where missing), for
            the run's shared preprocessing; None for built-in data sets.
        raw_val: the raw validation features, likewise.
        stats: the summary of ``raw_train`` the client announces (CSV only).
        categories: the categories of each categorical column (by index), in
            the order of the codes its raw values hold.
        targets_train: the train labels as numbers, when every label of the
            file is one (None otherwise): what a regression run trains on.
        targets_val: the validation labels as numbers, likewise.
    """

    x_train: F32
    y_train: I64
    x_val: F32
    y_val: I64
    feature_names: tuple[str, ...]
    classes: tuple[str, ...]
    description: str
    task: str = "csv"
    feature_mean: npt.NDArray[np.float64] | None = None
    feature_scale: npt.NDArray[np.float64] | None = None
    raw_train: npt.NDArray[np.float64] | None = None
    raw_val: npt.NDArray[np.float64] | None = None
    stats: FeatureStats | None = None
    categories: dict[int, tuple[str, ...]] = field(default_factory=dict)
    targets_train: F64 | None = None
    targets_val: F64 | None = None

    def __post_init__(self) -> None:
        width = len(self.feature_names)
        for name in ("x_train", "x_val"):
            x = getattr(self, name)
            if x.dtype != np.float32 or x.ndim != 2 or x.shape[1] != width:
                raise ValueError(
                    f"{name} must be float32 of shape (n, {width}),"
                    f" got {x.dtype} {x.shape}"
                )
        for x_name, y_name in (("x_train", "y_train"), ("x_val", "y_val")):
            y = getattr(self, y_name)
            if y.dtype != np.int64 or y.shape != (len(getattr(self, x_name)),):
                raise ValueError(
                    f"{y_name} must be int64, one label per row of {x_name}"
                )
            k = len(self.classes)
            if k and y.size and (y.min() < 0 or y.max() >= k):
                raise ValueError(
                    f"{y_name} must index into the {len(self.classes)} classes"
                )

        if not self.classes and self.targets_train is None:
            raise ValueError("data without classes must have numeric targets")

    @property
    def schema(self) -> Schema:
        """Return the feature names and classes of this data."""
        categorical = tuple(self.feature_names[j] for j in sorted(self.categories))
        return Schema(self.feature_names, self.classes, categorical=categorical,
                      numeric_label=self.targets_train is not None)

    @property
    def num_examples(self) -> int:
        """Return the number of training examples."""
        return len(self.y_train)

    def transform(self, x_raw: NDArray) -> F32:
        """Scale raw feature rows the way this client's data was scaled."""
        x = np.asarray(x_raw, dtype=np.float64)
        if self.feature_mean is not None and self.feature_scale is not None:
            x = (x - self.feature_mean) / self.feature_scale
        return x.astype(np.float32)
