"""The RunConfig fields of what a run predicts and how it is scored.

``problem`` is ``classification``, ``regression`` or ``auto`` (decided from
the label column when the run starts); ``metrics`` names the metrics a run
records (empty: every one its problem has); ``selection_metric`` chooses the
"best" model (empty: accuracy, or R² for regression); ``positive_class`` is
the label sensitivity and specificity are for (empty: the second class of a
binary problem). The metrics themselves are in :mod:`fednet.learning.metrics`.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any, Protocol

from fednet.learning.metrics import CLASSIFICATION, REGRESSION

PROBLEMS = ("auto", "classification", "regression")


class Scoring(Protocol):
    """The RunConfig fields read here (RunConfig itself imports this module)."""

    @property
    def task(self) -> str: ...
    @property
    def problem(self) -> str: ...
    @property
    def metrics(self) -> tuple[str, ...]: ...
    @property
    def selection_metric(self) -> str: ...
    @property
    def positive_class(self) -> str: ...


BUILTIN_CLASSIFICATION = ("digits", "breast_cancer")


def metric_list(value: Any) -> str | None:
    """Check a list of distinct metric names."""
    known = (*CLASSIFICATION, *REGRESSION)
    if not isinstance(value, tuple) or not all(isinstance(v, str) for v in value):
        return f"must be a list of metric names, got {value!r:.80}"
    if unknown := [v for v in value if v not in known]:
        return f"unknown metric {unknown[0]!r:.80}; expected some of {', '.join(known)}"
    if len(set(value)) != len(value):
        return "names a metric twice"
    return None


def metric_errors(config: Scoring) -> dict[str, str]:
    """Refuse metrics of the other problem, and regression of a built-in task."""
    problem = config.problem
    if config.task in BUILTIN_CLASSIFICATION and problem == "regression":
        return {"problem": f"task {config.task} is a classification task"}
    if problem == "regression" and config.positive_class:
        return {"positive_class": "a regression has no positive class"}
    if problem == "auto":
        mixed = set(config.metrics) & set(CLASSIFICATION) and set(
            config.metrics
        ) & set(REGRESSION)
        if mixed:
            return {"metrics": "mixes classification and regression metrics"}
        return {}
    other = REGRESSION if problem == "classification" else CLASSIFICATION
    if wrong := [m for m in config.metrics if m in other]:
        return {"metrics": f"{wrong[0]} is not a metric of {problem}"}
    if config.selection_metric in other:
        return {"selection_metric": f"{config.selection_metric} is not a metric"
                f" of {problem}"}
    return {}


def recorded(config: Scoring, regression: bool) -> frozenset[str]:
    """Return the names of the metrics a run records (and may select by)."""
    every = REGRESSION if regression else CLASSIFICATION
    return frozenset(m for m in config.metrics or every if m in every)


def stored_selection(
    config: Mapping[str, Any], schema: Mapping[str, Any] | None
) -> str:
    """Return the metric that picks a stored run's best model.

    ``selection_metric`` of its config, else accuracy, or R² for a
    regression run (its stored schema says ``problem``).
    """
    regression = (schema or {}).get("problem") == "regression"
    return str(config.get("selection_metric") or ("r2" if regression else "accuracy"))
