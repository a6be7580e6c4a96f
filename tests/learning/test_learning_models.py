"""Tests of fednet.learning.models: shapes, SGD, evaluation, read-only inputs."""

from __future__ import annotations

import numpy as np
import pytest

from fednet.learning import models
from fednet.learning.datasets import load_builtin_partition, load_builtin_test
from fednet.typing import NDArray


def _blobs(n: int = 200, seed: int = 0) -> tuple[NDArray, NDArray]:
    """Three well separated Gaussian blobs in 4-D."""
    rng = np.random.default_rng(seed)
    y = rng.integers(0, 3, n)
    centres = np.array([[3, 0, 0, 0], [0, 3, 0, 0], [0, 0, 3, 0]], dtype=np.float32)
    x = centres[y] + rng.normal(0, 0.5, (n, 4)).astype(np.float32)
    return x.astype(np.float32), y.astype(np.int64)


def _read_only(arrays: list[NDArray]) -> list[NDArray]:
    frozen = [np.frombuffer(a.tobytes(), a.dtype).reshape(a.shape) for a in arrays]
    assert not any(a.flags.writeable for a in frozen)
    return frozen


@pytest.mark.parametrize(
    ("model", "shapes"),
    [
        ("logreg", [(5, 3), (3,)]),
        ("mlp", [(5, 8), (8,), (8, 3), (3,)]),
    ],
)
def test_init_params_are_float32_with_the_documented_shapes(
    model: str, shapes: list[tuple[int, ...]]
) -> None:
    params = models.init_params(model, 5, 3, hidden_units=8, seed=0)

    assert [p.shape for p in params] == shapes
    assert models.param_shapes(model, 5, 3, 8) == shapes
    assert all(p.dtype == np.float32 for p in params)
    assert np.abs(params[0]).sum() > 0  # weights are drawn, not zero


def test_init_params_depend_on_the_seed_only() -> None:
    a = models.init_params("mlp", 4, 2, seed=1)
    b = models.init_params("mlp", 4, 2, seed=1)
    c = models.init_params("mlp", 4, 2, seed=2)

    for p, q in zip(a, b):
        np.testing.assert_array_equal(p, q)
    assert not np.array_equal(a[0], c[0])


def test_unknown_model_is_rejected() -> None:
    with pytest.raises(ValueError, match="unknown model 'svm'"):
        models.init_params("svm", 4, 2)


@pytest.mark.parametrize("model", models.MODELS)
def test_fit_learns_separable_blobs(model: str) -> None:
    x, y = _blobs()
    params = models.init_params(model, 4, 3, hidden_units=16, seed=0)
    loss_before, _ = models.evaluate(model, params, x, y, num_classes=3)

    new, metrics = models.fit(
        model,
        params,
        x,
        y,
        num_classes=3,
        epochs=5,
        batch_size=16,
        learning_rate=0.1,
        rng=np.random.default_rng(0),
    )

    loss, accuracy = models.evaluate(model, new, x, y, num_classes=3)
    assert loss < loss_before / 3
    assert accuracy > 0.95
    assert metrics["train_loss"] == pytest.approx(loss, rel=1e-5)
    assert metrics["train_accuracy"] == accuracy
    assert all(p.dtype == np.float32 for p in new)


@pytest.mark.parametrize("model", models.MODELS)
def test_fit_never_writes_into_read_only_inputs(model: str) -> None:
    x, y = _blobs(50)
    params = models.init_params(model, 4, 3, hidden_units=8, seed=0)
    frozen_params = _read_only(params)
    frozen_x, frozen_y = _read_only([x, y])

    new, _ = models.fit(
        model,
        frozen_params,
        frozen_x,
        frozen_y,
        num_classes=3,
        epochs=2,
        batch_size=8,
        learning_rate=0.1,
        rng=np.random.default_rng(0),
    )

    for before, after in zip(params, frozen_params):
        np.testing.assert_array_equal(before, after)
    assert all(
        n.flags.writeable and not np.shares_memory(n, p)
        for n, p in zip(new, frozen_params)
    )
    assert not np.array_equal(new[0], params[0])


def test_fit_is_deterministic_for_the_same_rng_seed() -> None:
    x, y = _blobs(60)
    params = models.init_params("mlp", 4, 3, hidden_units=8, seed=0)

    def run(seed: int) -> list[NDArray]:
        new, _ = models.fit(
            "mlp",
            params,
            x,
            y,
            num_classes=3,
            epochs=1,
            batch_size=7,
            learning_rate=0.05,
            rng=np.random.default_rng(seed),
        )
        return new

    np.testing.assert_array_equal(run(4)[0], run(4)[0])
    assert not np.array_equal(run(4)[0], run(5)[0])


def test_fit_accepts_float64_params_and_returns_float32() -> None:
    x, y = _blobs(30)
    params = [p.astype(np.float64) for p in models.init_params("logreg", 4, 3)]

    new, _ = models.fit(
        "logreg",
        params,
        x,
        y,
        num_classes=3,
        epochs=1,
        batch_size=10,
        learning_rate=0.1,
        rng=np.random.default_rng(0),
    )

    assert [p.dtype for p in new] == [np.float32, np.float32]


def test_fit_reports_divergence_instead_of_returning_nan() -> None:
    x, y = _blobs(60)
    params = models.init_params("mlp", 4, 3, hidden_units=8, seed=0)
    huge = np.asarray(x, np.float32) * 1e6

    with pytest.raises(ValueError, match="diverged"):
        models.fit(
            "mlp",
            params,
            huge,
            y,
            num_classes=3,
            epochs=3,
            batch_size=4,
            learning_rate=100.0,
            rng=np.random.default_rng(0),
        )


@pytest.mark.parametrize(
    ("x_shape", "y", "fragment"),
    [
        ((0, 4), [], "no examples"),
        ((3, 5), [0, 1, 2], r"shapes \[\(4, 3\), \(3,\)\], expected \[\(5, 3\)"),
        ((3, 4), [0, 1, 3], r"labels must be in 0..2"),
        ((3, 4), [0, 1], r"need x of shape"),
    ],
)
def test_evaluate_rejects_bad_inputs(
    x_shape: tuple[int, int], y: list[int], fragment: str
) -> None:
    params = models.init_params("logreg", 4, 3)
    x = np.zeros(x_shape, dtype=np.float32)

    with pytest.raises(ValueError, match=fragment):
        models.evaluate("logreg", params, x, np.array(y, dtype=np.int64), num_classes=3)


def test_evaluate_of_uniform_logits_is_log_num_classes() -> None:
    params = [np.zeros((4, 3), np.float32), np.zeros(3, np.float32)]
    x, y = _blobs(20)

    loss, _ = models.evaluate("logreg", params, x, y, num_classes=3)

    assert loss == pytest.approx(np.log(3), rel=1e-6)


def test_mlp_learns_digits() -> None:
    data = load_builtin_partition("digits", (1, 1), alpha=None, seed=0)
    x_test, y_test, _ = load_builtin_test("digits")
    params = models.init_params("mlp", 64, 10, hidden_units=64, seed=0)

    new, _ = models.fit(
        "mlp",
        params,
        data.x_train,
        data.y_train,
        num_classes=10,
        epochs=10,
        batch_size=32,
        learning_rate=0.05,
        rng=np.random.default_rng(0),
    )

    _, accuracy = models.evaluate("mlp", new, x_test, y_test, num_classes=10)
    assert accuracy >= 0.94
    assert models.predict_proba("mlp", new, x_test[:5]).shape == (5, 10)


def test_regression_logreg_is_linear_regression_and_the_mlp_fits_too() -> None:
    """Squared loss: the one-output linear model reaches least squares' fit."""
    from sklearn.datasets import load_diabetes

    x, y = load_diabetes(return_X_y=True)
    x = (x - x.mean(axis=0)) / x.std(axis=0)
    z = (y - y.mean()) / y.std()
    exact = np.linalg.lstsq(np.c_[x, np.ones(len(x))], z, rcond=None)[0]
    best = float(((np.c_[x, np.ones(len(x))] @ exact - z) ** 2).mean())
    for model, tolerance in (("logreg", 0.01), ("mlp", 0.05)):
        params = models.init_params(model, x.shape[1], 1, hidden_units=16, seed=0)
        start = models.evaluate_regression(model, params, x, z)
        params, metrics = models.fit(
            model, params, x, z, num_classes=1, epochs=60, batch_size=32,
            learning_rate=0.02, rng=np.random.default_rng(0), regression=True,
        )
        assert metrics["train_loss"] == models.evaluate_regression(model, params, x, z)
        assert metrics["train_loss"] < start
        assert metrics["train_loss"] <= best + tolerance, (model, metrics, best)
        assert models.predict_values(model, params, x[:3]).shape == (3,)
