"""Softmax models as pure functions over lists of float32 parameter arrays.

``logreg`` is multinomial logistic regression, parameters ``[W, b]`` with
``W`` of shape (features, classes). ``mlp`` has one ReLU hidden layer,
parameters ``[W1, b1, W2, b2]``. Both minimise softmax cross-entropy with
plain minibatch SGD. For regression (``regression=True``) the same models
have one output and minimise half the squared error: ``logreg`` is then
linear regression.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import numpy as np
import numpy.typing as npt

from fednet.typing import NDArray, NDArrays

MODELS = ("logreg", "mlp")

F32 = npt.NDArray[np.float32]


def param_shapes(
    model: str, num_features: int, num_classes: int, hidden_units: int = 64
) -> list[tuple[int, ...]]:
    """Return the shape of each parameter array of ``model``.

    Raises:
        ValueError: on an unknown model or a non-positive size.
    """
    if model not in MODELS:
        raise ValueError(
            f"unknown model {model!r}; expected one of {', '.join(MODELS)}"
        )
    if min(num_features, num_classes, hidden_units) < 1:
        raise ValueError(
            f"sizes must be positive, got num_features={num_features},"
            f" num_classes={num_classes}, hidden_units={hidden_units}"
        )
    if model == "logreg":
        return [(num_features, num_classes), (num_classes,)]
    return [
        (num_features, hidden_units),
        (hidden_units,),
        (hidden_units, num_classes),
        (num_classes,),
    ]


def init_params(
    model: str,
    num_features: int,
    num_classes: int,
    *,
    hidden_units: int = 64,
    seed: int = 0,
) -> NDArrays:
    """Draw initial float32 parameters.

    Weights feeding a ReLU use He normal init (He et al. 2015), the others
    Glorot uniform (Glorot & Bengio 2010); biases start at zero.

    Raises:
        ValueError: on an unknown model or a non-positive size.
    """
    shapes = param_shapes(model, num_features, num_classes, hidden_units)
    rng = np.random.default_rng(seed)
    params: NDArrays = []
    for index, shape in enumerate(shapes):
        if len(shape) == 1:
            params.append(np.zeros(shape, dtype=np.float32))
        elif model == "mlp" and index == 0:
            std = np.sqrt(2.0 / shape[0])
            params.append((rng.standard_normal(shape) * std).astype(np.float32))
        else:
            limit = np.sqrt(6.0 / (shape[0] + shape[1]))
            params.append(rng.uniform(-limit, limit, shape).astype(np.float32))
    return params


def check_params(
    model: str, params: Sequence[NDArray], num_features: int, num_classes: int
) -> None:
    """Check that ``params`` fit ``model`` for these sizes (any hidden width).

    Raises:
        ValueError: naming the shapes found and expected.
    """
    ok = len(params) == 4 and np.ndim(params[0]) == 2
    hidden = np.shape(params[0])[1] if model == "mlp" and ok else 1
    expected = param_shapes(model, num_features, num_classes, hidden)
    got = [tuple(np.shape(p)) for p in params]
    if got != expected:
        raise ValueError(f"{model} parameters have shapes {got}, expected {expected}")


def _checked(
    model: str,
    params: Sequence[NDArray],
    x: NDArray,
    y: NDArray,
    num_classes: int,
    regression: bool = False,
) -> tuple[list[F32], F32, npt.NDArray[Any]]:
    """Validate inputs; return float32 copies of params and x, y as int64
    class indices (float32 targets for regression)."""
    if model not in MODELS:
        raise ValueError(
            f"unknown model {model!r}; expected one of {', '.join(MODELS)}"
        )
    xs = np.asarray(x, dtype=np.float32)
    ys = np.asarray(y)
    if xs.ndim != 2 or ys.ndim != 1 or xs.shape[0] != ys.shape[0]:
        raise ValueError(
            f"need x of shape (n, features) and y of shape (n,),"
            f" got {xs.shape} and {ys.shape}"
        )
    if xs.shape[0] == 0:
        raise ValueError("no examples")
    if regression:
        check_params(model, params, xs.shape[1], 1)
        copies = [np.array(p, dtype=np.float32, copy=True) for p in params]
        return copies, xs, ys.astype(np.float32)
    if not np.issubdtype(ys.dtype, np.integer):
        raise ValueError(f"labels must be integer class indices, got {ys.dtype}")
    if ys.min() < 0 or ys.max() >= num_classes:
        raise ValueError(
            f"labels must be in 0..{num_classes - 1}, got {ys.min()}..{ys.max()}"
        )
    check_params(model, params, xs.shape[1], num_classes)
    copies = [np.array(p, dtype=np.float32, copy=True) for p in params]
    return copies, xs, ys.astype(np.int64, copy=False)


def _forward(model: str, params: list[F32], x: F32) -> tuple[F32, F32 | None]:
    """Return the logits and, for the MLP, the hidden activations."""
    if model == "logreg":
        return x @ params[0] + params[1], None
    hidden = np.maximum(x @ params[0] + params[1], 0.0)
    return hidden @ params[2] + params[3], hidden


def _log_softmax(logits: F32) -> F32:
    shifted = logits - logits.max(axis=1, keepdims=True)
    out: F32 = shifted - np.log(np.exp(shifted).sum(axis=1, keepdims=True))
    return out


def _gradients(
    model: str, params: list[F32], x: F32, y: npt.NDArray[Any], regression: bool
) -> list[F32]:
    logits, hidden = _forward(model, params, x)
    if regression:  # half the squared error
        delta = (logits - y[:, None]) / np.float32(len(y))
    else:
        delta = np.exp(_log_softmax(logits))
        delta[np.arange(len(y)), y] -= 1.0
        delta /= np.float32(len(y))
    if model == "logreg":
        return [x.T @ delta, delta.sum(axis=0)]
    assert hidden is not None
    back = (delta @ params[2].T) * (hidden > 0)
    return [x.T @ back, back.sum(axis=0), hidden.T @ delta, delta.sum(axis=0)]


def fit(
    model: str,
    params: Sequence[NDArray],
    x: NDArray,
    y: NDArray,
    *,
    num_classes: int,
    epochs: int,
    batch_size: int,
    learning_rate: float,
    rng: np.random.Generator,
    proximal_mu: float = 0.0,
    regression: bool = False,
) -> tuple[NDArrays, dict[str, float]]:
    """Train locally with minibatch SGD on softmax cross-entropy.

    The inputs are never written to (they may be read-only buffers).

    Args:
        model: one of :data:`MODELS`.
        params: current parameters, shapes as in :func:`param_shapes`.
        x: features, shape (n, features).
        y: class indices in ``0..num_classes-1``, shape (n,).
        num_classes: width of the output layer.
        epochs: passes over the data, each in a fresh random order from ``rng``.
        batch_size: examples per SGD step (the last batch may be smaller).
        learning_rate: SGD step size.
        rng: source of the shuffles.
        proximal_mu: FedProx's ``mu``: adds ``mu/2 * ||w - params||^2`` to the
            loss, pulling the local model towards ``params`` (Li et al.,
            2020, "Federated Optimization in Heterogeneous Networks"); 0 is
            plain SGD.
        regression: ``y`` holds numbers, the model one output (squared error).

    Returns:
        New float32 parameter arrays and ``{"train_loss", "train_accuracy"}``
        measured on ``x, y`` after training (regression: ``train_loss``, the
        mean squared error).

    Raises:
        ValueError: on inconsistent shapes, bad hyper-parameters, no examples,
            or if training diverges to non-finite values.
    """
    if epochs < 1 or batch_size < 1 or not learning_rate > 0 or not proximal_mu >= 0:
        raise ValueError(
            f"need epochs >= 1, batch_size >= 1, learning_rate > 0,"
            f" proximal_mu >= 0; got {epochs}, {batch_size}, {learning_rate},"
            f" {proximal_mu}"
        )
    weights, xs, ys = _checked(model, params, x, y, num_classes, regression)
    anchor = [w.copy() for w in weights] if proximal_mu else None
    lr, mu = np.float32(learning_rate), np.float32(proximal_mu)
    # A too large learning rate overflows; that is reported below, not warned.
    with np.errstate(over="ignore", invalid="ignore"):
        for _ in range(epochs):
            order = rng.permutation(len(ys))
            for start in range(0, len(ys), batch_size):
                batch = order[start : start + batch_size]
                grads = _gradients(model, weights, xs[batch], ys[batch], regression)
                for i, grad in enumerate(grads):
                    if anchor is not None:
                        grad += mu * (weights[i] - anchor[i])
                    weights[i] -= lr * grad
    if not all(np.isfinite(w).all() for w in weights):
        raise ValueError(
            "training diverged to non-finite parameters"
            f" (learning_rate={learning_rate})"
        )
    if regression:
        return list(weights), {"train_loss": _squared_error(model, weights, xs, ys)}
    loss, accuracy = _loss_accuracy(model, weights, xs, ys)
    return list(weights), {"train_loss": loss, "train_accuracy": accuracy}


def _squared_error(model: str, params: list[F32], x: F32, y: npt.NDArray[Any]) -> float:
    out, _ = _forward(model, params, x)
    return float(((out[:, 0].astype(np.float64) - y) ** 2).mean())


def _loss_accuracy(
    model: str, params: list[F32], x: F32, y: npt.NDArray[np.int64]
) -> tuple[float, float]:
    logits, _ = _forward(model, params, x)
    log_probs = _log_softmax(logits)
    loss = float(-log_probs[np.arange(len(y)), y].astype(np.float64).mean())
    accuracy = float((logits.argmax(axis=1) == y).mean())
    return loss, accuracy


def evaluate(
    model: str,
    params: Sequence[NDArray],
    x: NDArray,
    y: NDArray,
    *,
    num_classes: int,
) -> tuple[float, float]:
    """Return the mean cross-entropy loss and the accuracy of ``params`` on x, y.

    Raises:
        ValueError: on inconsistent shapes or no examples.
    """
    weights, xs, ys = _checked(model, params, x, y, num_classes)
    return _loss_accuracy(model, weights, xs, ys)


def evaluate_regression(
    model: str, params: Sequence[NDArray], x: NDArray, y: NDArray
) -> float:
    """Return the mean squared error of a one-output model on x, y.

    Raises:
        ValueError: on inconsistent shapes or no examples.
    """
    weights, xs, ys = _checked(model, params, x, y, 1, regression=True)
    return _squared_error(model, weights, xs, ys)


def predict_values(model: str, params: Sequence[NDArray], x: NDArray) -> F32:
    """Return a one-output model's prediction for each row of ``x``."""
    xs = np.asarray(x, dtype=np.float32)
    weights = [np.asarray(p, dtype=np.float32) for p in params]
    out, _ = _forward(model, weights, xs)
    return out[:, 0]


def predict_proba(model: str, params: Sequence[NDArray], x: NDArray) -> F32:
    """Return the softmax class probabilities of each row of ``x``."""
    xs = np.asarray(x, dtype=np.float32)
    weights = [np.asarray(p, dtype=np.float32) for p in params]
    logits, _ = _forward(model, weights, xs)
    return np.exp(_log_softmax(logits)).astype(np.float32)
