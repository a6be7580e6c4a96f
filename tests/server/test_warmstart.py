"""Warm start: which earlier runs a run may start from, and what it takes from them."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import numpy as np
import pytest

from fednet.config import RunConfig
from fednet.exceptions import ConfigError, SchemaError
from fednet.learning import models
from fednet.learning.preprocess import Preprocess
from fednet.server.setup import prepare_run
from fednet.server.store import Store
from fednet.server.warmstart import load_warm_start

PRE = Preprocess(np.array([1.0, 2.0]), np.array([3.0, 4.0]), indicators=(1,),
                 fill=np.array([0.5, 1.5]))
SCHEMA = {"feature_names": ["a", "b"], "classes": ["no", "yes"],
          "preprocess": PRE.to_dict()}
CSV = {"task": "csv", "model": "logreg", "impute": "median", "missing_indicator": True}


@pytest.fixture
def store(tmp_path: Path) -> Store:
    return Store(tmp_path / "state")


def _earlier_run(store: Store, config: dict[str, Any], rounds: int = 2,
                 schema: dict[str, Any] | None = None) -> int:
    """Store a run that completed ``rounds`` rounds, its model saved."""
    run_id = store.create_run(RunConfig.from_dict(config).to_dict(), 0.0)
    store.mark_running(run_id, schema or SCHEMA, 0.0)
    store.write("UPDATE runs SET completed_rounds=? WHERE id=?", (rounds, run_id))
    params = models.init_params("logreg", PRE.width, 2, seed=9)
    store.save_model(run_id, rounds, params)
    return run_id


def _refusal(store: Store, **config: Any) -> str:
    with pytest.raises(ConfigError) as e:
        load_warm_start(store, RunConfig.from_dict(config))
    return e.value.errors["warm_start"]


def test_a_run_that_does_not_exist_is_refused(store: Store) -> None:
    assert _refusal(store, **CSV, warm_start=7) == "there is no run 7"


def test_a_run_without_a_model_is_refused(store: Store) -> None:
    """No completed round, or its checkpoint gone: no model to start from."""
    idle = _earlier_run(store, CSV, rounds=0)
    gone = _earlier_run(store, CSV, rounds=3)
    (store.models_dir / f"run-{gone}-round-3.npz").unlink()

    assert "has no model: it completed no round" in _refusal(
        store, **CSV, warm_start=idle
    )
    assert "checkpoint of its round 3 is missing" in _refusal(
        store, **CSV, warm_start=gone
    )


@pytest.mark.parametrize(
    ("change", "fragment"),
    [
        ({"impute": "mean"}, "impute='median', this run has impute='mean'"),
        ({"missing_indicator": False}, "missing_indicator=True"),
        ({"model": "mlp"}, "model='logreg'"),
        ({"task": "digits"}, "task='csv'"),
    ],
)
def test_a_run_of_another_kind_is_refused(
    store: Store, change: dict[str, Any], fragment: str
) -> None:
    earlier = _earlier_run(store, CSV)

    assert fragment in _refusal(store, **{**CSV, **change}, warm_start=earlier)


def test_a_model_whose_shapes_do_not_fit_the_schema_is_refused(store: Store) -> None:
    """Four input columns stored for a schema whose preprocessing gives three."""
    earlier = _earlier_run(store, CSV)
    store.save_model(earlier, 2, models.init_params("logreg", 4, 2))

    reason = _refusal(store, **CSV, warm_start=earlier)

    assert "has shapes [(4, 2), (2,)], this run needs [(3, 2), (2,)]" in reason


def test_a_warm_csv_run_takes_the_earlier_model_schema_and_preprocessing(
    store: Store,
) -> None:
    """No site's statistics are asked for: the earlier preprocessing is kept."""
    earlier = _earlier_run(store, CSV)
    config = RunConfig.from_dict({**CSV, "warm_start": earlier})
    run_id = store.create_run(config.to_dict(), 0.0)

    setup = prepare_run(store, run_id, config, 0, [], None)

    assert setup.preprocess == PRE
    assert setup.schema_dict == {**SCHEMA, "problem": "classification"}
    expected = store.load_model(earlier, 2)
    assert expected is not None
    for got, want in zip(setup.parameters, expected):
        np.testing.assert_array_equal(got, want)
    saved = store.load_model(run_id, 0)
    assert saved is not None and np.array_equal(saved[0], expected[0])


def test_a_warm_start_gone_by_setup_fails_the_run_with_the_reason(
    store: Store,
) -> None:
    """The earlier model deleted between launch and setup: a SchemaError saying so."""
    earlier = _earlier_run(store, CSV)
    config = RunConfig.from_dict({**CSV, "warm_start": earlier})
    (store.models_dir / f"run-{earlier}-round-2.npz").unlink()

    with pytest.raises(SchemaError, match="warm start: run 1 has no model"):
        prepare_run(store, 2, config, 0, [], None)
