"""Exceptions raised by fednet.

* FednetError
    * ProtocolError: a wire message or frame is malformed or too large.
    * AggregationError: updates cannot be combined (shape, dtype, NaN, weights).
    * RoundStateError: an event does not fit the round state machine.
    * ConfigError: a setting or RunConfig field is invalid (``errors`` per field).
    * DataError: a client's data cannot be loaded (file, line, column).
    * SchemaError: a client's features or labels do not match the run.
    * ArchitectureMismatch: a run's parameters do not fit a site's trainer.
"""

from __future__ import annotations


class FednetError(Exception):
    """Base class of every error fednet raises on purpose."""


class ProtocolError(FednetError):
    """A message or frame violates the wire protocol."""


class AggregationError(FednetError):
    """Client updates cannot be aggregated."""


class RoundStateError(FednetError):
    """An event arrived that the round state machine cannot accept."""


class DataError(FednetError):
    """A client's data set cannot be loaded."""


class SchemaError(FednetError):
    """A client's features or labels do not match the run."""


class ArchitectureMismatch(FednetError, ValueError):
    """A run's parameters (names, shapes, dtypes) do not fit a site's trainer."""


class ConfigError(FednetError):
    """One or more configuration fields are invalid.

    Args:
        errors: one message per offending field name.
    """

    def __init__(self, errors: dict[str, str]) -> None:
        self.errors = dict(errors)
        super().__init__(
            "; ".join(f"{name}: {msg}" for name, msg in sorted(self.errors.items()))
        )
