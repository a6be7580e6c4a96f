"""Typed views of runs, rounds and live progress, as the API shows them.

The store builds them from its rows, the server serialises them with
``to_dict()`` (the JSON shapes of ``GET /api/runs`` and ``GET /api/runs/{id}``),
and ``fednet run`` and the benchmark read them back with ``from_dict()``.
"""

from __future__ import annotations

import dataclasses
from dataclasses import dataclass
from typing import Any

from fednet.exceptions import FednetError
from fednet.typing import Metrics

END_STATUSES = frozenset({"finished", "failed", "stopped"})


class ViewError(FednetError):
    """A JSON object does not have the shape of the view it should hold."""


@dataclass(frozen=True)
class RoundView:
    """One completed round of a run."""

    server_round: int
    num_clients: int
    num_examples: int
    loss: float | None
    accuracy: float | None
    federated_loss: float | None
    federated_accuracy: float | None
    test_loss: float | None
    test_accuracy: float | None
    duration_s: float
    finished_at: float
    clients: tuple[str, ...]
    fit_metrics: Metrics
    evaluated_clients: tuple[str, ...]
    dropped: tuple[str, ...]
    rejected: dict[str, str]
    client_metrics: dict[str, Metrics]
    epsilon: float | None = None
    dropouts_recovered: int | None = None  # secure aggregation (None: off)
    quantization_error: float | None = None  # secure aggregation (None: off)
    # The run's metrics (fednet.learning.metrics), federated and on the
    # coordinator's test set; the confusion matrix (rows: true classes) of
    # the test set when there is one, else of the sites' validation rows.
    metrics: Metrics = dataclasses.field(default_factory=dict)
    test_metrics: Metrics = dataclasses.field(default_factory=dict)
    confusion: tuple[tuple[int, ...], ...] | None = None

    def to_dict(self) -> dict[str, Any]:
        """Return the round as the API shows it."""
        data = {f.name: getattr(self, f.name) for f in dataclasses.fields(self)}
        for key in ("clients", "evaluated_clients", "dropped"):
            data[key] = list(data[key])
        if self.confusion is not None:
            data["confusion"] = [list(row) for row in self.confusion]
        return data

    @classmethod
    def from_dict(cls, data: Any) -> RoundView:
        """Read a round back from the API's JSON.

        Raises:
            ViewError: if a field is missing.
        """
        values = _fields_of(cls, data)
        for key in ("clients", "evaluated_clients", "dropped"):
            values[key] = tuple(values[key])
        if values.get("confusion") is not None:
            values["confusion"] = tuple(tuple(row) for row in values["confusion"])
        return cls(**values)


@dataclass(frozen=True)
class PrivacyView:
    """What a run's privacy settings guarantee so far (``privacy`` of a run).

    ``epsilon`` is the client-level epsilon spent by the rounds played (None
    without differential privacy), ``budget`` the target (None: no budget).
    ``threshold`` is ``secagg_threshold`` (a fraction or a count of the
    round's sites), ``dropouts_recovered`` the sites whose masks the run's
    rounds removed without them (docs/privacy.md#secure-aggregation).
    """

    secure_aggregation: bool
    threshold: float | None
    dropouts_recovered: int
    epsilon: float | None
    delta: float | None
    budget: float | None

    @classmethod
    def of_run(
        cls, config: dict[str, Any], spent: float | None, recovered: int = 0
    ) -> PrivacyView:
        """Return the privacy of a run from its stored config, epsilon and dropouts."""
        secure = bool(config.get("secure_aggregation", False))
        threshold = config.get("secagg_threshold") if secure else None
        if config.get("dp", "off") == "off":
            return cls(secure, threshold, recovered, None, None, None)
        budget = config.get("dp_target_epsilon") or None
        delta = config.get("dp_delta")
        return cls(secure, threshold, recovered, spent or 0.0, delta, budget)

    def to_dict(self) -> dict[str, Any]:
        """Return the privacy as the API shows it."""
        return dataclasses.asdict(self)

    @classmethod
    def from_dict(cls, data: Any) -> PrivacyView:
        """Read the privacy back from the API's JSON.

        Raises:
            ViewError: if a field is missing.
        """
        return cls(**_fields_of(cls, data))


@dataclass(frozen=True)
class RunView:
    """A run: its configuration, status and, when asked for, its rounds.

    ``config`` is the RunConfig as stored (a JSON object). ``rounds`` is None
    where a view leaves them out (lists of runs, status events); ``loss`` and
    ``accuracy`` (the latest round's) are shown only in lists of runs.
    """

    id: int
    status: str
    config: dict[str, Any]
    schema: dict[str, Any] | None
    error: str | None
    created_at: float
    started_at: float | None
    finished_at: float | None
    completed_rounds: int
    rounds: tuple[RoundView, ...] | None = None
    latest: tuple[float | None, float | None] | None = None
    privacy: PrivacyView | None = None

    @property
    def ended(self) -> bool:
        """Return whether the run finished, failed or was stopped."""
        return self.status in END_STATUSES

    def to_dict(self) -> dict[str, Any]:
        """Return the run as the API shows it."""
        data: dict[str, Any] = {
            f.name: getattr(self, f.name)
            for f in dataclasses.fields(self)
            if f.name not in ("rounds", "latest", "privacy")
        }
        if self.privacy is not None:
            data["privacy"] = self.privacy.to_dict()
        if self.latest is not None:
            data["loss"], data["accuracy"] = self.latest
        if self.rounds is not None:
            data["rounds"] = [r.to_dict() for r in self.rounds]
        return data

    @classmethod
    def from_dict(cls, data: Any) -> RunView:
        """Read a run back from the API's JSON (``GET /api/runs/{id}``).

        Raises:
            ViewError: if a field is missing.
        """
        skip = ("rounds", "latest", "privacy")
        values = _fields_of(cls, data, skip=skip)
        if data.get("privacy") is not None:
            values["privacy"] = PrivacyView.from_dict(data["privacy"])
        rounds = data.get("rounds")
        if rounds is not None:
            if not isinstance(rounds, list):
                raise ViewError("rounds must be a list")
            values["rounds"] = tuple(RoundView.from_dict(r) for r in rounds)
        if "loss" in data and "accuracy" in data:
            values["latest"] = (data["loss"], data["accuracy"])
        return cls(**values)


@dataclass(frozen=True)
class ProgressView:
    """Where the active run stands right now (the dashboard's live view).

    ``phase`` is ``waiting`` until the run has its clients and model; the
    round fields are None until then. The ``*_count`` fields are the sizes of
    the name lists, filled in from them when not given: the dashboard's feed
    sends the counts alone (``to_dict(names=False)``), so its events keep one
    size however many clients a round selects.
    """

    run_id: int
    rounds: int
    elapsed_s: float
    server_round: int
    phase: str
    selected: tuple[str, ...] | None = None
    reported: tuple[str, ...] | None = None
    pending: tuple[str, ...] | None = None
    round_elapsed_s: float | None = None
    selected_count: int | None = None
    reported_count: int | None = None
    pending_count: int | None = None

    def __post_init__(self) -> None:
        for key in _NAME_LISTS:
            names = getattr(self, key)
            if getattr(self, f"{key}_count") is None and names is not None:
                object.__setattr__(self, f"{key}_count", len(names))

    def to_dict(self, *, names: bool = True) -> dict[str, Any]:
        """Return the progress as the API shows it (no round fields while waiting).

        Args:
            names: whether to include the ``selected``, ``reported`` and
                ``pending`` lists of client ids, or only their counts.
        """
        data = {f.name: getattr(self, f.name) for f in dataclasses.fields(self)}
        if self.selected_count is None:
            for key in (*_NAME_LISTS, *_COUNTS, "round_elapsed_s"):
                del data[key]
            return data
        for key in _NAME_LISTS:
            if names and data[key] is not None:
                data[key] = list(data[key])
            else:
                del data[key]
        return data

    @classmethod
    def from_dict(cls, data: Any) -> ProgressView:
        """Read progress back from the API's JSON (with or without the names).

        Raises:
            ViewError: if a field is missing.
        """
        values = _fields_of(cls, data)
        for key in _NAME_LISTS:
            if values.get(key) is not None:
                values[key] = tuple(values[key])
        return cls(**values)


_NAME_LISTS = ("selected", "reported", "pending")
_COUNTS = tuple(f"{key}_count" for key in _NAME_LISTS)


def _fields_of(
    cls: type[Any], data: Any, *, skip: tuple[str, ...] = ()
) -> dict[str, Any]:
    """Pick a dataclass's fields out of a JSON object; required ones must be there."""
    if not isinstance(data, dict):
        raise ViewError(f"{cls.__name__} must be a JSON object")
    values: dict[str, Any] = {}
    for f in dataclasses.fields(cls):
        if f.name in skip:
            continue
        if f.name in data:
            values[f.name] = data[f.name]
        elif f.default is dataclasses.MISSING:
            raise ViewError(f"{cls.__name__}: missing field {f.name!r}")
    return values
