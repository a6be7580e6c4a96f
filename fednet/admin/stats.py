"""``fednet stats``: print the merged feature statistics of a coordinator's sites."""

from __future__ import annotations

import argparse
import json
import sys
from collections.abc import Sequence
from typing import Any

from fednet.admin.http import CommandError, request_json

TOP_CATEGORIES = 3
_HEADER = (
    "COLUMN", "KIND", "COUNT", "MISSING", "MEAN", "STD", "MEDIAN", "TOP CATEGORIES"
)


def stats_command(args: argparse.Namespace) -> int:
    """Print the merged table (``--sites``: each site's too, ``--json``: raw)."""
    try:
        answer = _fetch(args)
    except CommandError as e:
        print(f"fednet stats: {e}", file=sys.stderr)
        return 2
    if args.json:
        print(json.dumps(answer, indent=2))
        return 0
    print(format_report(answer, per_site=args.sites))
    return 0


def format_report(answer: dict[str, Any], *, per_site: bool = False) -> str:
    """Return the answer of ``POST /api/stats`` as text tables.

    Args:
        answer: ``{"columns", "sites", "excluded"}`` as the server sent it.
        per_site: also give each counted site's own table.
    """
    sites = answer["sites"]
    rows = sum(site["rows"] for site in sites)
    lines = [f"merged: {len(sites)} sites, {rows} training rows"]
    if answer["columns"]:
        lines += format_columns(answer["columns"])
    else:
        lines.append("no connected site sent usable statistics")
    if per_site:
        for site in sites:
            k = site.get("min_count", "?")
            lines += [
                "",
                f"site {site['name']}: {site['rows']} training rows,"
                f" counts below {k} suppressed",
            ]
            lines += format_columns(site["columns"])
    for excluded in answer["excluded"]:
        lines.append(f"not counted: {excluded['name']}: {excluded['reason']}")
    return "\n".join(lines)


def format_columns(columns: Sequence[dict[str, Any]]) -> list[str]:
    """Return one line per column (name, kind, counts, mean, std, median, top)."""
    cells = [_HEADER] + [
        (
            c["name"],
            c["kind"],
            str(c["count"]),
            str(c["missing"]),
            _figure(c["mean"]),
            _figure(c["std"]),
            _figure(c.get("median")),
            _top(c.get("categories") or {}),
        )
        for c in columns
    ]
    widths = [max(len(row[i]) for row in cells) for i in range(len(_HEADER) - 1)]
    lines = []
    for row in cells:
        left = [row[0].ljust(widths[0]), row[1].ljust(widths[1])]
        right = [row[i].rjust(widths[i]) for i in range(2, len(widths))]
        lines.append("  ".join([*left, *right, row[-1]]).rstrip())
    return lines


def _figure(value: float | None) -> str:
    return "-" if value is None else f"{value:.6g}"


def _top(categories: dict[str, int]) -> str:
    ranked = sorted(categories.items(), key=lambda item: (-item[1], item[0]))
    shown = ", ".join(f"{name} {n}" for name, n in ranked[:TOP_CATEGORIES])
    more = len(ranked) - TOP_CATEGORIES
    return f"{shown}, +{more} more" if more > 0 else shown


def _fetch(args: argparse.Namespace) -> dict[str, Any]:
    """Ask ``--server`` for the statistics; CommandError on a refusal or no answer."""
    answer = request_json(args, "POST", "/api/stats", {})
    if not isinstance(answer, dict):
        raise CommandError(f"{args.server} answered {answer!r}")
    return answer
