"""The OpenAPI operation of ``POST /api/stats`` and the schemas of its answer."""

from __future__ import annotations

from fednet.server.components import INTEGER, METRIC, STRING, Schema, ref
from fednet.server.openapi_ops import error_body, json_body, write_op

_COUNT: Schema = {"type": "integer", "minimum": 0}


def _object(properties: Schema, *optional: str) -> Schema:
    """Return an object schema whose properties are all required but ``optional``."""
    return {
        "type": "object",
        "properties": properties,
        "required": [name for name in properties if name not in optional],
    }


def stats_schemas() -> Schema:
    """Return the component schemas of the statistics' answer."""
    column = _object(
        {
            "name": STRING,
            "kind": {"type": "string", "enum": ["numeric", "categorical"]},
            "count": _COUNT,
            "missing": _COUNT,
            "mean": {**METRIC, "description": "null without values, or categorical"},
            "std": {**METRIC, "description": "population standard deviation"},
            "median": {
                **METRIC,
                "description": "from the merged histograms (within 1%); null"
                " without values, where a site sent no histogram, or categorical",
            },
            "categories": {
                "type": "object",
                "description": "categorical columns only: each category's count",
                "additionalProperties": _COUNT,
            },
        },
        "categories",
    )
    site = _object(
        {
            "name": STRING,
            "rows": INTEGER,
            "min_count": {
                "type": "integer",
                "minimum": 1,
                "description": "the site suppresses counts below this",
            },
            "columns": {"type": "array", "items": ref("StatsColumn")},
        }
    )
    excluded = _object({"name": STRING, "reason": STRING})
    report = _object(
        {
            "columns": {"type": "array", "items": ref("StatsColumn")},
            "sites": {"type": "array", "items": ref("StatsSite")},
            "excluded": {"type": "array", "items": ref("StatsExcluded")},
        }
    )
    return {
        "StatsColumn": column,
        "StatsSite": site,
        "StatsExcluded": excluded,
        "Stats": report,
    }


def stats_paths(admin: bool) -> Schema:
    """Return the admin's collection of the sites' merged statistics."""
    collect = write_op(
        "Merge the feature statistics of the connected CSV sites",
        admin,
        {
            "200": json_body(ref("Stats"), "merged, per site, and the sites left out"),
            "409": error_body("no CSV client is connected, or none has a valid schema"),
        },
    )
    return {"/api/stats": {"post": collect}}
