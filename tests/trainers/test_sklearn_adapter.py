"""scikit-learn estimators as trainers: layouts, rounds and two federations."""

from __future__ import annotations

from typing import Any

import numpy as np
import pytest
from sklearn.linear_model import LogisticRegression, SGDClassifier, SGDRegressor
from sklearn.neural_network import MLPClassifier, MLPRegressor
from sklearn.svm import LinearSVC

from fednet.learning.trainers.base import Predictor, TrainConfig, TrainerContext
from fednet.learning.trainers.sklearn_adapter import SklearnTrainer
from tests.trainers.federation import (
    diabetes_sites,
    digits_sites,
    digits_test,
    federate,
    pooled,
)


def _context(num_classes: int | None, missing: tuple[int, ...] = ()) -> TrainerContext:
    """Return a read-only 6-feature context; ``missing`` classes are left out."""
    rng = np.random.default_rng(0)
    x = rng.standard_normal((60, 6)).astype(np.float32)
    if num_classes is None:
        y: Any = x @ np.arange(6.0) + 0.1 * rng.standard_normal(60)
    else:
        present = [c for c in range(num_classes) if c not in missing]
        y = np.array([present[i % len(present)] for i in range(60)], dtype=np.int64)
    x.flags.writeable = False
    y.flags.writeable = False
    return TrainerContext(x, y, x[:20], y[:20], num_classes)


LAYOUTS = [
    (SGDClassifier(), 2, [(1, 6), (1,)]),
    (SGDClassifier(loss="log_loss"), 4, [(4, 6), (4,)]),
    (LogisticRegression(), 2, [(1, 6), (1,)]),
    (LogisticRegression(), 3, [(3, 6), (3,)]),
    (SGDRegressor(), None, [(6,), (1,)]),
    (MLPClassifier(hidden_layer_sizes=(5,)), 2, [(6, 5), (5,), (5, 1), (1,)]),
    (
        MLPClassifier(hidden_layer_sizes=(5, 4)),
        3,
        [(6, 5), (5,), (5, 4), (4,), (4, 3), (3,)],
    ),
    (MLPRegressor(hidden_layer_sizes=(5,)), None, [(6, 5), (5,), (5, 1), (1,)]),
]


@pytest.mark.parametrize(
    ("estimator", "num_classes", "shapes"),
    LAYOUTS,
    ids=[f"{type(e).__name__}-{k}" for e, k, _ in LAYOUTS],
)
def test_architecture_is_laid_out_before_any_fit_and_kept_after(
    estimator: Any, num_classes: int | None, shapes: list[tuple[int, ...]]
) -> None:
    """Shapes come from the declared classes and features; a round keeps them."""
    context = _context(num_classes)
    trainer = SklearnTrainer(estimator, context)
    arch = trainer.architecture()

    new, num_examples, metrics = trainer.fit(
        trainer.get_parameters(), TrainConfig(epochs=2)
    )

    assert list(arch.shapes) == shapes
    assert set(arch.dtypes) == {"float64"}
    assert [p.shape for p in new] == list(arch.shapes)
    assert num_examples == 60
    assert ("train_accuracy" in metrics) == (num_classes is not None)
    assert SklearnTrainer(estimator, context).architecture() == arch


def test_binary_and_multiclass_layouts_have_different_fingerprints() -> None:
    """Two classes lay out one coefficient row, three classes three."""
    binary = SklearnTrainer(SGDClassifier(), _context(2)).architecture()
    multi = SklearnTrainer(SGDClassifier(), _context(3)).architecture()

    assert binary.fingerprint != multi.fingerprint


def test_kind_names_the_loss_and_activation() -> None:
    """Another SGD loss or MLP activation is another architecture."""
    ctx = _context(3)

    hinge = SklearnTrainer(SGDClassifier(), ctx).architecture()
    log = SklearnTrainer(SGDClassifier(loss="log_loss"), ctx).architecture()
    tanh = SklearnTrainer(MLPClassifier(activation="tanh"), ctx).architecture()

    assert (hinge.kind, log.kind) == (
        "sklearn.SGDClassifier.hinge",
        "sklearn.SGDClassifier.log_loss",
    )
    assert tanh.kind == "sklearn.MLPClassifier.tanh"
    assert hinge.fingerprint != log.fingerprint


@pytest.mark.parametrize(
    "estimator",
    [SGDClassifier(loss="log_loss"), LogisticRegression(), MLPClassifier()],
    ids=["SGDClassifier", "LogisticRegression", "MLPClassifier"],
)
def test_a_site_missing_classes_keeps_every_class_row(estimator: Any) -> None:
    """Label skew: a site without classes 1 and 3 still returns all four rows."""
    trainer = SklearnTrainer(estimator, _context(4, missing=(1, 3)))

    new, _, _ = trainer.fit(trainer.get_parameters(), TrainConfig(epochs=3))

    assert [p.shape for p in new] == list(trainer.architecture().shapes)
    assert all(np.isfinite(p).all() for p in new)


def test_fit_is_deterministic_and_depends_on_the_round() -> None:
    """Equal seeds and rounds give equal parameters; another round reshuffles."""
    ctx = _context(3)
    start = SklearnTrainer(SGDClassifier(), ctx).get_parameters()

    def run(server_round: int) -> list[np.ndarray]:
        trainer = SklearnTrainer(SGDClassifier(), ctx)
        config = TrainConfig(epochs=2, seed=1, server_round=server_round)
        return trainer.fit(start, config)[0]

    first, again, other = run(1), run(1), run(2)

    for a, b in zip(first, again):
        np.testing.assert_array_equal(a, b)
    assert any(not np.array_equal(a, c) for a, c in zip(first, other))


def test_get_parameters_returns_copies() -> None:
    """Training after get_parameters does not change the arrays handed out."""
    trainer = SklearnTrainer(SGDClassifier(), _context(3))
    before = trainer.get_parameters()
    snapshot = [p.copy() for p in before]

    trainer.fit(before, TrainConfig(epochs=2))

    for p, s in zip(before, snapshot):
        np.testing.assert_array_equal(p, s)


def test_evaluate_reports_log_loss_or_mse() -> None:
    """Classifiers with probabilities report log loss; regressors mse and r2."""
    clf = SklearnTrainer(LogisticRegression(), _context(3))
    reg = SklearnTrainer(SGDRegressor(), _context(None))
    config = TrainConfig(epochs=5)

    loss, n, metrics = clf.evaluate(clf.fit(clf.get_parameters(), config)[0], config)
    rloss, rn, rmetrics = reg.evaluate(reg.fit(reg.get_parameters(), config)[0], config)

    assert n == rn == 20
    assert loss == metrics["loss"] and 0 <= metrics["accuracy"] <= 1
    assert rloss == rmetrics["mse"] and rmetrics["r2"] > 0.5


@pytest.mark.parametrize(
    ("estimator", "num_classes", "reason"),
    [
        (LinearSVC(), 3, "cannot federate a LinearSVC"),
        (SGDRegressor(), 3, "does not fit a classification context"),
        (SGDClassifier(), None, "does not fit a regression context"),
        (MLPClassifier(solver="lbfgs"), 3, "solver sgd or adam"),
        (SGDClassifier(average=True), 3, "averaged SGD"),
        (LogisticRegression(solver="liblinear"), 2, "liblinear"),
    ],
)
def test_unsupported_estimators_are_refused(
    estimator: Any, num_classes: int | None, reason: str
) -> None:
    """Estimators or settings the adapter cannot federate are refused up front."""
    with pytest.raises(ValueError, match=reason):
        SklearnTrainer(estimator, _context(num_classes))


def test_proximal_mu_is_refused() -> None:
    """scikit-learn has no proximal term: a FedProx round fails loudly."""
    trainer = SklearnTrainer(SGDClassifier(), _context(3))

    with pytest.raises(ValueError, match="proximal_mu"):
        trainer.fit(trainer.get_parameters(), TrainConfig(proximal_mu=0.1))


def test_sgd_classifier_federation_is_within_two_points_of_pooled() -> None:
    """FedAvg of SGDClassifier on label-skewed digits vs the pooled estimator."""
    sites, test = digits_sites(alpha=0.5), digits_test()
    assert min(np.bincount(s.y_train, minlength=10).min() for s in sites) == 0

    def make() -> SGDClassifier:
        return SGDClassifier(loss="log_loss", alpha=1e-4, random_state=0)

    config = TrainConfig(epochs=1)
    fed = [SklearnTrainer(make(), s) for s in sites]
    fed_params = federate(fed, fed[0].get_parameters(), 20, config)
    central = SklearnTrainer(make(), pooled(sites, test))
    pooled_params = federate([central], central.get_parameters(), 20, config)
    judge = SklearnTrainer(make(), test)

    fed_accuracy = judge.evaluate(fed_params, config)[2]["accuracy"]
    pooled_accuracy = judge.evaluate(pooled_params, config)[2]["accuracy"]

    assert pooled_accuracy >= 0.9
    assert fed_accuracy >= pooled_accuracy - 0.02


def test_mlp_regressor_federation_is_within_r2_003_of_pooled() -> None:
    """FedAvg of MLPRegressor on target-skewed diabetes vs the pooled estimator."""
    sites, test = diabetes_sites(alpha=0.5)

    def make() -> MLPRegressor:
        return MLPRegressor(
            hidden_layer_sizes=(16,),
            solver="sgd",
            learning_rate_init=0.003,
            momentum=0.9,
            batch_size=32,
            alpha=1.0,
        )

    config = TrainConfig(epochs=1)
    fed = [SklearnTrainer(make(), s) for s in sites]
    fed_params = federate(fed, fed[0].get_parameters(), 80, config)
    central = SklearnTrainer(make(), pooled(sites, test))
    pooled_params = federate([central], central.get_parameters(), 80, config)
    judge = SklearnTrainer(make(), test)

    fed_r2 = judge.evaluate(fed_params, config)[2]["r2"]
    pooled_r2 = judge.evaluate(pooled_params, config)[2]["r2"]

    assert pooled_r2 >= 0.3
    assert fed_r2 >= pooled_r2 - 0.03


def test_predictions_feed_the_runs_metrics() -> None:
    """predict: probabilities of every class (rows sum to 1), or values.

    A hinge-loss SGDClassifier has no probabilities: its decisions come as
    one-hot rows, so its confusion matrix is still exact.
    """
    config = TrainConfig(epochs=5)
    for estimator in (LogisticRegression(), SGDClassifier(loss="hinge")):
        clf = SklearnTrainer(estimator, _context(3))
        params = clf.fit(clf.get_parameters(), config)[0]
        proba = clf.predict(params, _context(3).x_val)
        assert isinstance(clf, Predictor)
        assert proba.shape == (20, 3)
        np.testing.assert_allclose(proba.sum(axis=1), 1.0)
        _, _, metrics = clf.evaluate(params, config)
        assert (proba.argmax(axis=1) == _context(3).y_val).mean() == metrics["accuracy"]
    reg = SklearnTrainer(SGDRegressor(), _context(None))
    params = reg.fit(reg.get_parameters(), config)[0]
    values = reg.predict(params, _context(None).x_val)
    _, _, rmetrics = reg.evaluate(params, config)
    assert values.shape == (20,)
    assert float(((values - _context(None).y_val) ** 2).mean()) == pytest.approx(
        rmetrics["mse"])
