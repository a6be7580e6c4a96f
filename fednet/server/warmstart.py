"""Warm start: a run that begins from an earlier run's last global model.

The earlier run must have completed a round, and its model must fit the new
run: same task and model (and hidden units, or synthetic size), and for data
tasks the same schema and preprocessing, which the new run takes from it
rather than fixing its own (so every site scales its rows as the model was
trained to expect). Both the launch (``POST /api/runs``, 400 on the
``warm_start`` field) and the run's setup check it.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from fednet.config import RunConfig
from fednet.exceptions import ConfigError, SchemaError
from fednet.learning.models import param_shapes
from fednet.learning.preprocess import Preprocess
from fednet.learning.schema import Schema
from fednet.server.store import Store
from fednet.typing import NDArrays

# Fields that fix the model's shapes or the meaning of its inputs.
_SAME = ("task", "model", "impute", "missing_indicator")


@dataclass(frozen=True)
class WarmStart:
    """The model a run starts from and the schema it was trained on.

    Attributes:
        run_id: the earlier run.
        server_round: the round whose global model it is.
        schema: the earlier run's stored schema, with its preprocessing
            (None for the synthetic task).
        parameters: the model's arrays.
    """

    run_id: int
    server_round: int
    schema: dict[str, Any] | None
    parameters: NDArrays


def load_warm_start(store: Store, config: RunConfig) -> WarmStart:
    """Load the model ``config.warm_start`` names and check that it fits.

    Blocking (reads the database and a model file).

    Raises:
        ConfigError: on ``warm_start``, saying why: no such run, no model,
            or a model of another task, kind, size, schema or preprocessing.
    """
    run_id = config.warm_start
    source = store.get_run(run_id, with_rounds=False)
    if source is None:
        raise _error(f"there is no run {run_id}")
    if source.completed_rounds < 1:
        raise _error(f"run {run_id} has no model: it completed no round")
    params = store.load_model(run_id, source.completed_rounds)
    if params is None:
        raise _error(
            f"run {run_id} has no model: the checkpoint of its round"
            f" {source.completed_rounds} is missing"
        )
    try:
        earlier = RunConfig.from_dict(source.config)
    except ConfigError as e:
        raise _error(
            f"run {run_id} has a config that no longer validates: {e}"
        ) from None
    _check_config(run_id, earlier, config)
    _check_shapes(run_id, config, source.schema, params)
    return WarmStart(run_id, source.completed_rounds, source.schema, params)


def _check_config(run_id: int, earlier: RunConfig, config: RunConfig) -> None:
    names = list(_SAME)
    if config.model == "mlp":
        names.append("hidden_units")
    if config.task == "synthetic":
        names.append("synthetic_params")
    for name in names:
        before, now = getattr(earlier, name), getattr(config, name)
        if before != now:
            raise _error(
                f"run {run_id} trained with {name}={before!r}, this run has"
                f" {name}={now!r}: they must match"
            )


def _check_shapes(
    run_id: int, config: RunConfig, schema: dict[str, Any] | None, params: NDArrays
) -> None:
    """Refuse a model whose arrays do not fit the schema and preprocessing."""
    expected: list[tuple[int, ...]]
    if config.task == "synthetic":
        expected = [(config.synthetic_params,)]
    else:
        if schema is None:
            raise _error(f"run {run_id} stored no schema")
        try:
            parsed = Schema.from_dict(schema)
            saved = schema.get("preprocess")
            width = (
                len(parsed.feature_names)
                if saved is None
                else Preprocess.from_dict(saved).width
            )
        except SchemaError as e:
            raise _error(f"run {run_id} stored an invalid schema: {e}") from None
        expected = [
            tuple(s)
            for s in param_shapes(
                config.model, width, len(parsed.classes), config.hidden_units
            )
        ]
    got = [tuple(p.shape) for p in params]
    if got != expected:
        raise _error(
            f"the model of run {run_id} has shapes {got}, this run needs {expected}"
        )


def _error(reason: str) -> ConfigError:
    return ConfigError({"warm_start": reason})
