"""The error every secure-aggregation check raises."""

from __future__ import annotations

from fednet.exceptions import AggregationError


class SecAggError(AggregationError):
    """A secure-aggregation input is invalid or the round cannot complete."""
