"""The sites' feature summaries a run counts, and the preprocessing fixed from them.

One loop serves a run's setup (:func:`run_preprocess`) and the statistics
report (:mod:`fednet.server.stats_report`), so both count the same sites:
those holding the run's columns, in order of name (the same sites give the
same figures to the last bit), whose summary is valid and suppresses at
least as much as the run asks (``min_count``). The others are left out with
the reason. Pure: no I/O, no clock.
"""

from __future__ import annotations

import logging
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

from fednet.config import RunConfig
from fednet.exceptions import SchemaError
from fednet.learning.fedstats import FeatureStats, merge_stats
from fednet.learning.preprocess import Preprocess, unsketched_columns
from fednet.learning.schema import (
    Schema,
    describe_feature_difference,
    describe_kind_difference,
)
from fednet.protocol import Hello

logger = logging.getLogger(__name__)

NO_STATS = "sent no statistics (a client of an earlier release, or too many columns)"


@dataclass(frozen=True)
class SiteSummaries:
    """The summaries a run counts, by site name, and the sites left out.

    Attributes:
        counted: ``(name, summary)`` in order of name.
        excluded: ``(name, reason)`` in order of name.
    """

    counted: tuple[tuple[str, FeatureStats], ...]
    excluded: tuple[tuple[str, str], ...]

    def merged(self) -> FeatureStats | None:
        """Return the counted summaries merged, or None when there are none."""
        return merge_stats([s for _, s in self.counted]) if self.counted else None


def site_summaries(
    schema: Schema, hellos: Sequence[Hello], min_count: int = 1
) -> SiteSummaries:
    """Validate the sites' summaries of the run's columns.

    Args:
        schema: the run's (or the run-to-be's) schema.
        hellos: the sites' hellos, in any order.
        min_count: the least suppression threshold a summary may have
            (a site suppressing fewer counts is left out).
    """
    width = len(schema.feature_names)
    categorical = [schema.feature_names.index(c) for c in schema.categorical]
    counted, excluded = [], []
    for hello in sorted(hellos, key=lambda h: h.name):
        reason = _mismatch(hello, schema)
        if reason is None:
            try:
                stats = FeatureStats.from_dict(hello.stats, width, categorical)
            except SchemaError as e:
                reason = f"sent invalid statistics: {e}"
            else:
                if stats.min_count >= min_count:
                    counted.append((hello.name, stats))
                    continue
                reason = (
                    f"suppresses counts below {stats.min_count} only, the run's"
                    f" min_count is {min_count}"
                )
        excluded.append((hello.name, reason))
    return SiteSummaries(tuple(counted), tuple(excluded))


def _mismatch(hello: Hello, run: Schema) -> str | None:
    """Return why a CSV site's summary does not count, or None if it may."""
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


def run_preprocess(
    schema: Schema | None,
    stored: dict[str, Any] | None,
    hellos: Sequence[Hello],
    config: RunConfig | None = None,
) -> Preprocess | None:
    """Fix a CSV run's shared preprocessing from its sites' merged statistics.

    A resumed (or warm-started) run keeps the preprocessing stored with it.
    ``config`` gives ``impute``, ``missing_indicator`` and ``min_count``
    (None: their defaults). None when no site's summary counts (clients of an
    earlier release, too many columns, or too little suppression): each site
    then scales with its own statistics.

    Raises:
        SchemaError: if the run has categorical columns and no summary counts.
    """
    if schema is None:
        return None
    if stored is not None:
        saved = stored.get("preprocess")
        return Preprocess.from_dict(saved) if saved is not None else None
    config = config or RunConfig()
    summaries = site_summaries(schema, hellos, config.min_count)
    for name, reason in summaries.excluded:
        logger.warning("preprocess: client %s %s", name, reason)
    merged = summaries.merged()
    if merged is None and schema.categorical:
        raise SchemaError(
            "no site sent feature statistics that count, which categorical"
            f" columns need ({', '.join(schema.categorical[:3])}...)"
        )
    if merged is None:
        logger.warning(
            "no site sent feature statistics that count: each scales with its own,"
            " which costs accuracy when sites differ"
        )
        return None
    categorical = [schema.feature_names.index(c) for c in schema.categorical]
    logger.info(
        "preprocess: standardising %d columns with the statistics of %d sites"
        " (%d rows), imputing the %s",
        len(schema.feature_names), merged.sites, merged.rows, config.impute,
    )
    unsketched = unsketched_columns(merged, categorical)
    if config.impute == "median" and unsketched:
        logger.warning(
            "preprocess: %d columns (%s...) lack a histogram from some site"
            " (a client of an earlier release): they are imputed with the mean",
            len(unsketched),
            ", ".join(schema.feature_names[j] for j in unsketched[:3]),
        )
    return Preprocess.from_stats(
        merged, config.missing_indicator, categorical, config.impute
    )
