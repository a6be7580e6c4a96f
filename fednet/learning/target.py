"""A numeric label's count, mean and spread: what a regression run standardises by.

A site whose labels are all numbers announces them with its feature summary
(``stats["target"]`` of its hello); the coordinator merges the sites' with
Chan et al.'s parallel formula, as for features, and fixes the label's mean
and scale for the whole run (:attr:`fednet.learning.preprocess.Preprocess.target`).
Only these three figures leave a site, never a label.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

import numpy as np
import numpy.typing as npt

from fednet.exceptions import SchemaError

MAX_ROWS = 10**12


@dataclass(frozen=True)
class TargetStats:
    """How many labels, their mean, and their sum of squared deviations."""

    count: int
    mean: float
    m2: float

    @classmethod
    def of(cls, values: npt.ArrayLike) -> TargetStats:
        """Summarise a site's numeric labels."""
        y = np.asarray(values, dtype=np.float64)
        if not len(y):
            return cls(0, 0.0, 0.0)
        mean = float(y.mean())
        return cls(len(y), mean, float(((y - mean) ** 2).sum()))

    @property
    def scale(self) -> float:
        """Return the standard deviation (1 without spread)."""
        std = math.sqrt(self.m2 / self.count) if self.count else 0.0
        return std if std > 0 else 1.0

    def to_dict(self) -> dict[str, Any]:
        """Return the JSON form :meth:`from_dict` reads."""
        return {"count": self.count, "mean": self.mean, "m2": self.m2}

    @classmethod
    def from_dict(cls, data: Any) -> TargetStats:
        """Validate a site's untrusted label summary.

        Raises:
            SchemaError: unless count is an integer in [1, 1e12], mean a
                finite number and m2 a finite number >= 0.
        """
        if not isinstance(data, dict):
            raise SchemaError("target stats must be an object")
        count, mean, m2 = data.get("count"), data.get("mean"), data.get("m2")
        if type(count) is not int or not 1 <= count <= MAX_ROWS:
            raise SchemaError(
                f"target count must be an integer in [1, 1e12]: {count!r:.40}"
            )
        numbers = []
        for name, value in (("mean", mean), ("m2", m2)):
            if not isinstance(value, (int, float)) or not math.isfinite(value):
                raise SchemaError(f"target {name} must be a finite number")
            numbers.append(float(value))
        if numbers[1] < 0:
            raise SchemaError("target m2 must not be negative")
        return cls(count, numbers[0], numbers[1])


def merge_targets(parts: Sequence[TargetStats]) -> TargetStats:
    """Combine sites' summaries into that of all their labels."""
    total = TargetStats(0, 0.0, 0.0)
    for part in parts:
        n = total.count + part.count
        if not n:
            continue
        delta = part.mean - total.mean
        mean = total.mean + delta * part.count / n
        m2 = total.m2 + part.m2 + delta * delta * total.count * part.count / n
        total = TargetStats(n, mean, m2)
    return total
