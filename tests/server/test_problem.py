"""Which problem a CSV run solves, from its sites' schemas; the label's scale."""

from __future__ import annotations

import numpy as np
import pytest

from fednet.config import RunConfig
from fednet.exceptions import ConfigError, SchemaError
from fednet.learning.preprocess import Preprocess
from fednet.learning.schema import Schema, check_schema
from fednet.learning.target import TargetStats, merge_targets
from fednet.protocol import Hello
from fednet.server.problem import check_positive, problem_schema, with_target

FEATURES = ("age", "bp")
TARGET = Schema(FEATURES, (), numeric_label=True)  # numbers of many values
SMALL_INTS = Schema(FEATURES, ("0", "1"), numeric_label=True)
TEXT = Schema(FEATURES, ("no", "yes"))


def test_auto_regresses_when_a_site_holds_a_numeric_target() -> None:
    run = problem_schema("auto", [SMALL_INTS, TARGET])
    assert run.regression and run.classes == ()
    assert not problem_schema("auto", [SMALL_INTS, TEXT]).regression


def test_forced_problems_keep_the_sites_that_can_serve_them() -> None:
    """regression takes numeric labels only; classification sites with classes."""
    assert problem_schema("regression", [SMALL_INTS, TEXT]).regression
    run = problem_schema("classification", [TARGET, SMALL_INTS])
    assert run.classes == ("0", "1")
    with pytest.raises(SchemaError, match="no site's labels are all numbers"):
        problem_schema("regression", [TEXT])
    with pytest.raises(SchemaError, match="set problem to regression"):
        problem_schema("classification", [TARGET])


def test_sites_that_cannot_serve_the_run_are_told_why() -> None:
    with pytest.raises(SchemaError, match="not all numbers"):
        check_schema(TARGET, TEXT)
    with pytest.raises(SchemaError, match="regression target"):
        check_schema(SMALL_INTS, TARGET)
    check_schema(TARGET, SMALL_INTS)  # integer labels can be regressed


def test_the_positive_class_must_be_one_of_the_runs() -> None:
    check_positive(RunConfig(task="csv", positive_class="yes"), TEXT)
    with pytest.raises(SchemaError, match="'maybe' is not one of the run's classes"):
        check_positive(RunConfig(task="csv", positive_class="maybe"), TEXT)
    with pytest.raises(SchemaError, match="regression"):
        check_positive(RunConfig(task="csv", positive_class="yes"), TARGET)
    with pytest.raises(ConfigError, match="positive_class"):
        RunConfig(task="csv", problem="regression", positive_class="yes")


def _hello(name: str, labels: np.ndarray, schema: Schema = TARGET) -> Hello:
    stats = {"rows": len(labels), "target": TargetStats.of(labels).to_dict()}
    return Hello(name, "i", len(labels), "csv", schema.to_dict(), stats=stats)


def test_the_label_scale_is_that_of_all_sites_labels_and_a_liar_is_left_out() -> None:
    """Merged count, mean and spread equal the pooled labels'; bad summaries skip."""
    rng = np.random.default_rng(0)
    parts = [rng.normal(150, 70, n) for n in (50, 80, 20)]
    hellos = [_hello(f"s{i}", y) for i, y in enumerate(parts)]
    bad = Hello("x", "i", 5, "csv", TARGET.to_dict(),
                stats={"rows": 5, "target": {"count": 5, "mean": 1e9, "m2": -1.0}})
    text = _hello("t", np.arange(9.0), TEXT)  # cannot serve a regression
    base = Preprocess(np.zeros(2), np.ones(2))

    out = with_target(base, TARGET, [*hellos, bad, text])

    pooled = np.concatenate(parts)
    assert out is not None and out.target is not None
    assert out.target[0] == pytest.approx(pooled.mean())
    assert out.target[1] == pytest.approx(pooled.std())
    assert out.unscale_target(out.scale_target(pooled)) == pytest.approx(pooled)
    assert merge_targets([TargetStats.of(p) for p in parts]).count == len(pooled)
    assert with_target(base, TEXT, hellos) is base  # classification: unchanged
