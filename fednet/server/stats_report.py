"""The merged feature statistics of the connected CSV sites (``POST /api/stats``).

The sites counted are those a ``csv`` run would start with: the largest group
of clients announcing the same columns (:func:`fednet.server.setup.run_schema`).
Their summaries, sent in ``hello``, are merged exactly and in order of site
name, as :func:`fednet.server.setup.run_preprocess` merges them; the others
are listed with the reason they are left out. Pure: no I/O, no clock.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from typing import Any

from fednet.config import RunConfig
from fednet.exceptions import SchemaError
from fednet.learning.fedstats import FeatureStats, merge_stats
from fednet.learning.schema import (
    Schema,
    describe_feature_difference,
    describe_kind_difference,
)
from fednet.protocol import Hello
from fednet.server.setup import run_schema

NO_STATS = "sent no statistics (a client of an earlier release, or too many columns)"


def collect_stats(hellos: Sequence[Hello]) -> dict[str, Any]:
    """Merge the summaries of the CSV sites holding the run-to-be's columns.

    Args:
        hellos: the connected clients' hellos; those of built-in data sets
            are ignored.

    Returns:
        ``{"columns": [...], "sites": [...], "excluded": [...]}``: the merged
        figures per column, each counted site's own, and the sites left out
        with the reason. ``columns`` is empty when no site sent usable ones.

    Raises:
        SchemaError: if no CSV client is connected, or none announced a
            valid schema.
    """
    csv_hellos = sorted((h for h in hellos if h.task == "csv"), key=lambda h: h.name)
    if not csv_hellos:
        raise SchemaError("no CSV client is connected: nothing to summarise")
    schema = run_schema(RunConfig(task="csv"), None, csv_hellos)
    assert schema is not None  # a csv run always has a schema
    width = len(schema.feature_names)
    categorical = [schema.feature_names.index(c) for c in schema.categorical]
    sites: list[dict[str, Any]] = []
    parts: list[FeatureStats] = []
    excluded: list[dict[str, str]] = []
    for hello in csv_hellos:
        reason = _mismatch(hello, schema)
        if reason is None:
            try:
                stats = FeatureStats.from_dict(hello.stats, width, categorical)
            except SchemaError as e:
                reason = f"sent invalid statistics: {e}"
            else:
                parts.append(stats)
                sites.append(_site(hello.name, stats, schema))
        if reason is not None:
            excluded.append({"name": hello.name, "reason": reason})
    columns = columns_to_dicts(merge_stats(parts), schema) if parts else []
    return {"columns": columns, "sites": sites, "excluded": excluded}


def _mismatch(hello: Hello, run: Schema) -> str | None:
    """Return why a CSV site's summary does not count, or None if it does."""
    try:
        own = Schema.from_dict(hello.schema)
    except SchemaError as e:
        return f"sent an invalid schema: {e}"
    diff = describe_feature_difference(run.feature_names, own.feature_names)
    if diff is None:
        diff = describe_kind_difference(run, own)
    if diff is not None:
        return f"holds other columns than the run's: {diff}"
    if hello.stats is None:
        return NO_STATS
    return None


def _site(name: str, stats: FeatureStats, schema: Schema) -> dict[str, Any]:
    return {
        "name": name,
        "rows": stats.rows,
        "columns": columns_to_dicts(stats, schema),
    }


def columns_to_dicts(stats: FeatureStats, schema: Schema) -> list[dict[str, Any]]:
    """Return one summary's figures per column, in the schema's column order.

    A numeric column has ``count``, ``missing``, ``mean`` and ``std`` (the
    population standard deviation; both null without values). A categorical
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
            }
        )
    return columns


def _number(value: Any) -> float | None:
    """Return a float for JSON, or None if it is not finite (an overflowed merge)."""
    number = float(value)
    return number if math.isfinite(number) else None
