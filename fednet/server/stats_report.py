"""The merged feature statistics of the connected CSV sites (``POST /api/stats``).

The sites counted are those a ``csv`` run would start with: the largest group
of clients announcing the same columns (:func:`fednet.server.setup.run_schema`).
Their summaries, sent in ``hello``, are counted by the loop a run's setup
uses (:func:`fednet.server.summaries.site_summaries`) and merged exactly, in
order of site name; the others are listed with the reason they are left out.
Pure: no I/O, no clock.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from typing import Any

from fednet.config import RunConfig
from fednet.exceptions import SchemaError
from fednet.learning.fedstats import FeatureStats
from fednet.learning.schema import Schema
from fednet.learning.sketch import quantile
from fednet.protocol import Hello
from fednet.server.setup import run_schema
from fednet.server.summaries import NO_STATS, site_summaries

__all__ = ["NO_STATS", "collect_stats", "columns_to_dicts"]


def collect_stats(hellos: Sequence[Hello], min_count: int = 1) -> dict[str, Any]:
    """Merge the summaries of the CSV sites holding the run-to-be's columns.

    Args:
        hellos: the connected clients' hellos; those of built-in data sets
            are ignored.
        min_count: leave out sites whose suppression threshold is below
            this (the ``min_count`` of a run to be launched; 1 counts all).

    Returns:
        ``{"columns": [...], "sites": [...], "excluded": [...]}``: the merged
        figures per column, each counted site's own (with its suppression
        threshold ``min_count``), and the sites left out with the reason.
        ``columns`` is empty when no site sent usable ones.

    Raises:
        SchemaError: if no CSV client is connected, or none announced a
            valid schema.
    """
    csv_hellos = sorted((h for h in hellos if h.task == "csv"), key=lambda h: h.name)
    if not csv_hellos:
        raise SchemaError("no CSV client is connected: nothing to summarise")
    schema = run_schema(RunConfig(task="csv"), None, csv_hellos)
    assert schema is not None  # a csv run always has a schema
    summaries = site_summaries(schema, csv_hellos, min_count)
    merged = summaries.merged()
    return {
        "columns": columns_to_dicts(merged, schema) if merged is not None else [],
        "sites": [_site(name, stats, schema) for name, stats in summaries.counted],
        "excluded": [
            {"name": name, "reason": reason} for name, reason in summaries.excluded
        ],
    }


def _site(name: str, stats: FeatureStats, schema: Schema) -> dict[str, Any]:
    return {
        "name": name,
        "rows": stats.rows,
        "min_count": stats.min_count,
        "columns": columns_to_dicts(stats, schema),
    }


def columns_to_dicts(stats: FeatureStats, schema: Schema) -> list[dict[str, Any]]:
    """Return one summary's figures per column, in the schema's column order.

    A numeric column has ``count``, ``missing``, ``mean``, ``std`` (the
    population standard deviation) and ``median`` (read from the merged
    histograms, within 1%; null where a site sent none), all null without
    values. A categorical
    column has its ``categories`` (most frequent first) instead, and its
    ``count`` is the sum of the counts reported (suppressed ones are not).
    """
    std = stats.std
    columns = []
    for j, name in enumerate(schema.feature_names):
        missing = int(stats.missing[j])
        if name in schema.categorical:
            counts = stats.categories.get(j, {})
            ordered = sorted(counts.items(), key=lambda item: (-item[1], item[0]))
            columns.append(
                {
                    "name": name,
                    "kind": "categorical",
                    "count": sum(counts.values()),
                    "missing": missing,
                    "mean": None,
                    "std": None,
                    "median": None,
                    "categories": dict(ordered),
                }
            )
            continue
        count = int(stats.count[j])
        columns.append(
            {
                "name": name,
                "kind": "numeric",
                "count": count,
                "missing": missing,
                "mean": _number(stats.mean[j]) if count else None,
                "std": _number(std[j]) if count else None,
                "median": _median(stats, j),
            }
        )
    return columns


def _number(value: Any) -> float | None:
    """Return a float for JSON, or None if it is not finite (an overflowed merge)."""
    number = float(value)
    return number if math.isfinite(number) else None


def _median(stats: FeatureStats, j: int) -> float | None:
    """Return column j's median from its histogram, or None without one."""
    hist = stats.histograms.get(j)
    return quantile(hist, 0.5) if stats.count[j] and hist else None
