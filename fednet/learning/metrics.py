"""Evaluation metrics a federation can compute exactly from what sites send.

A site does not send its metrics' values, which could not be combined (the
mean of the sites' AUROCs is not the AUROC of their union): it sends
*summable statistics* of its validation split, counts that add up across
sites. From their sum the coordinator derives the metrics of the pooled
validation data, and from each site's own the per-site figures, with the
same function; ``fednet predict`` derives its figures with it too, so they
agree to the last bit on the same rows.

Classification (at most :data:`MAX_STATS_CLASSES` classes): the confusion
matrix (``_cm:i:j``, rows true class, columns predicted) and, per class c,
how many examples of c and of other classes gave ``p_c`` in each of
:data:`AUROC_BINS` equal bins of [0, 1] (``_rp:c:b`` and ``_rn:c:b``; binary
problems send class 1 only). AUROC is thus that of the scores rounded down
to 1/100, ties counted half. Regression: sums of squared and absolute errors
and of the labels and their squares (``_sse``, ``_sae``, ``_sy``, ``_syy``).
Counts are sent only when non-zero. The key prefix ``_`` marks statistics;
they are never stored or shown as they are.
"""

from __future__ import annotations

import math
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field

import numpy as np
import numpy.typing as npt

from fednet.typing import Metrics

STAT_PREFIX = "_"
AUROC_BINS = 100
MAX_STATS_CLASSES = 20
MAX_STAT_KEYS = MAX_STATS_CLASSES**2 + 2 * MAX_STATS_CLASSES * AUROC_BINS
"""Most statistics one evaluation can carry (4,400)."""
CLASSIFICATION = (
    "accuracy",
    "balanced_accuracy",
    "macro_f1",
    "auroc",
    "sensitivity",
    "specificity",
    "log_loss",
)
REGRESSION = ("mse", "mae", "r2")
LOWER_IS_BETTER = frozenset({"log_loss", "mse", "mae", "loss"})
_REGRESSION_KEYS = ("_sse", "_sae", "_sy", "_syy")

I64 = npt.NDArray[np.int64]


@dataclass
class ClassStats:
    """Summable statistics of a classifier on some labelled rows.

    Attributes:
        confusion: counts, shape (k, k); rows are true classes.
        positives: per class c, counts of ``p_c`` bins over rows of class c.
        negatives: the same over rows of the other classes.
    """

    confusion: I64
    positives: I64
    negatives: I64

    @classmethod
    def empty(cls, num_classes: int) -> ClassStats:
        """Return statistics of no rows."""
        k = num_classes
        zeros = np.zeros((k, AUROC_BINS), dtype=np.int64)
        return cls(np.zeros((k, k), dtype=np.int64), zeros, zeros.copy())

    @property
    def rows(self) -> int:
        """Return how many rows these statistics count."""
        return int(self.confusion.sum())

    def add(self, other: ClassStats) -> None:
        """Add another part's counts to these."""
        self.confusion += other.confusion
        self.positives += other.positives
        self.negatives += other.negatives


@dataclass
class RegressionStats:
    """Summable statistics of a regressor: error sums and label moments."""

    rows: int = 0
    sums: list[float] = field(default_factory=lambda: [0.0] * 4)

    def add(self, other: RegressionStats) -> None:
        """Add another part's sums to these."""
        self.rows += other.rows
        self.sums = [a + b for a, b in zip(self.sums, other.sums)]


EvalStats = ClassStats | RegressionStats


def classification_stats(
    y: Sequence[int] | I64, proba: npt.NDArray[np.floating], num_classes: int
) -> ClassStats:
    """Count a classifier's predictions on rows with labels ``y``.

    ``proba`` holds each row's class probabilities, shape (n, num_classes);
    the prediction is its argmax, as ``fednet predict`` makes it.
    """
    labels = np.asarray(y, dtype=np.int64)
    k = num_classes
    stats = ClassStats.empty(k)
    predicted = np.asarray(proba).argmax(axis=1)
    np.add.at(stats.confusion, (labels, predicted), 1)
    bins = np.clip(
        (np.asarray(proba, dtype=np.float64) * AUROC_BINS).astype(np.int64),
        0, AUROC_BINS - 1,
    )
    for c in _scored_classes(k):
        mine = labels == c
        stats.positives[c] = np.bincount(bins[mine, c], minlength=AUROC_BINS)
        stats.negatives[c] = np.bincount(bins[~mine, c], minlength=AUROC_BINS)
    return stats


def regression_stats(y: npt.ArrayLike, predicted: npt.ArrayLike) -> RegressionStats:
    """Sum a regressor's errors and the labels' moments over some rows."""
    truth = np.asarray(y, dtype=np.float64)
    error = np.asarray(predicted, dtype=np.float64) - truth
    sums = [float((error**2).sum()), float(np.abs(error).sum()),
            float(truth.sum()), float((truth**2).sum())]
    return RegressionStats(len(truth), sums)


def _scored_classes(num_classes: int) -> range:
    return range(1, 2) if num_classes == 2 else range(num_classes)


def to_wire(stats: EvalStats) -> dict[str, float]:
    """Return statistics as the ``_``-prefixed metrics an evaluation carries."""
    if isinstance(stats, RegressionStats):
        return dict(zip(_REGRESSION_KEYS, stats.sums))
    out: dict[str, float] = {}
    for (i, j), count in np.ndenumerate(stats.confusion):
        if count:
            out[f"_cm:{i}:{j}"] = float(count)
    for kind, table in (("rp", stats.positives), ("rn", stats.negatives)):
        for (c, b), count in np.ndenumerate(table):
            if count:
                out[f"_{kind}:{c}:{b}"] = float(count)
    return out


def from_wire(
    metrics: Mapping[str, float], rows: int, num_classes: int | None
) -> EvalStats:
    """Read the statistics among an evaluation's metrics, checked against ``rows``.

    ``num_classes`` is None for regression.

    Raises:
        ValueError: naming the first key or count that is malformed, out of
            range, or inconsistent with ``rows`` (a site's counts must add
            up to the rows it evaluated).
    """
    keys = [k for k in metrics if k.startswith(STAT_PREFIX)]
    if len(keys) > MAX_STAT_KEYS:
        raise ValueError(f"{len(keys)} statistics, at most {MAX_STAT_KEYS}")
    if num_classes is None:
        return _regression_from_wire(metrics, keys, rows)
    if not 2 <= num_classes <= MAX_STATS_CLASSES:
        raise ValueError(f"no statistics for {num_classes} classes")
    stats = ClassStats.empty(num_classes)
    tables = {"cm": stats.confusion, "rp": stats.positives, "rn": stats.negatives}
    for key in keys:
        kind, _, rest = key[1:].partition(":")
        table = tables.get(kind)
        index = _indices(rest, table.shape if table is not None else None)
        count = metrics[key]
        if table is None or index is None:
            raise ValueError(f"unknown statistic {key!r}")
        if not (count == int(count) and 0 < count <= rows):
            raise ValueError(f"{key}: count {count!r} not an integer in 1..{rows}")
        table[index] = int(count)
    _check_totals(stats, rows, num_classes)
    return stats


def _indices(text: str, shape: tuple[int, ...] | None) -> tuple[int, int] | None:
    parts = text.split(":")
    if shape is None or len(parts) != 2 or not all(p.isdigit() and len(p) < 4
                                                   for p in parts):
        return None
    i, j = int(parts[0]), int(parts[1])
    return (i, j) if i < shape[0] and j < shape[1] else None


def _check_totals(stats: ClassStats, rows: int, num_classes: int) -> None:
    if stats.rows != rows:
        raise ValueError(f"confusion matrix counts {stats.rows} rows, not {rows}")
    truth = stats.confusion.sum(axis=1)
    for c in _scored_classes(num_classes):
        pos, neg = int(stats.positives[c].sum()), int(stats.negatives[c].sum())
        if pos != truth[c] or neg != rows - truth[c]:
            raise ValueError(
                f"class {c}: score counts {pos} + {neg} do not match the"
                f" confusion matrix ({truth[c]} of {rows} rows)"
            )


def _regression_from_wire(
    metrics: Mapping[str, float], keys: Sequence[str], rows: int
) -> RegressionStats:
    if sorted(keys) != sorted(_REGRESSION_KEYS):
        raise ValueError(f"regression statistics must be {', '.join(_REGRESSION_KEYS)}")
    sums = [float(metrics[k]) for k in _REGRESSION_KEYS]
    sse, sae, sy, syy = sums
    if min(sse, sae, syy) < 0 or sy * sy > syy * rows * (1 + 1e-9) + 1e-9:
        raise ValueError("regression statistics are not sums of squares and errors")
    return RegressionStats(rows, sums)


def derive(stats: EvalStats, positive: int | None = None) -> Metrics:
    """Return the metrics of rows from their statistics (log loss comes apart).

    ``positive`` is the class sensitivity and specificity are for (by
    default class 1 of a binary problem; a multiclass problem has none).
    A metric undefined on these rows (AUROC without both outcomes) is left out.
    """
    if isinstance(stats, RegressionStats):
        return _regression_metrics(stats)
    cm = stats.confusion.astype(np.float64)
    n = cm.sum()
    if n == 0:
        return {}
    truth, said, hits = cm.sum(axis=1), cm.sum(axis=0), np.diag(cm)
    present = truth > 0
    out: Metrics = {
        "accuracy": float(hits.sum() / n),
        "balanced_accuracy": float((hits[present] / truth[present]).mean()),
    }
    named = present | (said > 0)
    f1 = 2 * hits[named] / (truth[named] + said[named])
    out["macro_f1"] = float(f1.mean())
    k = len(cm)
    if positive is None and k == 2:
        positive = 1
    if positive is not None and 0 <= positive < k:
        if truth[positive]:
            out["sensitivity"] = float(hits[positive] / truth[positive])
        negatives = n - truth[positive]
        if negatives:
            out["specificity"] = float((negatives - said[positive] + hits[positive])
                                       / negatives)
    aucs = [a for c in _scored_classes(k)
            if (a := _auroc(stats.positives[c], stats.negatives[c])) is not None]
    if aucs and (k == 2 or len(aucs) == int(present.sum())):
        out["auroc"] = float(np.mean(aucs))
    return out


def _auroc(positives: I64, negatives: I64) -> float | None:
    """Return P(score of a positive > score of a negative), ties counted half."""
    pos, neg = positives.astype(np.float64), negatives.astype(np.float64)
    if not pos.sum() or not neg.sum():
        return None
    below = np.concatenate(([0.0], np.cumsum(neg)[:-1]))
    wins = float((pos * (below + neg / 2)).sum())
    return wins / float(pos.sum() * neg.sum())


def _regression_metrics(stats: RegressionStats) -> Metrics:
    n = stats.rows
    if n == 0:
        return {}
    sse, sae, sy, syy = stats.sums
    out = {"mse": sse / n, "mae": sae / n}
    total = syy - sy * sy / n
    if total > 0:
        out["r2"] = 1.0 - sse / total
    return out


def score(metrics: Mapping[str, float], name: str) -> float | None:
    """Return ``name``'s value oriented so that higher is better, or None."""
    value = metrics.get(name)
    if value is None or not math.isfinite(value):
        return None
    return -value if name in LOWER_IS_BETTER else value
