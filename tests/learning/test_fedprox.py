"""FedProx: the proximal term of local SGD and how ``proximal_mu`` reaches it."""

from __future__ import annotations

import numpy as np
import pytest

from fednet.client.trainer import Trainer
from fednet.config import RunConfig
from fednet.exceptions import ProtocolError
from fednet.fitconfig import FitConfig
from fednet.learning import models
from fednet.learning.datasets import load_builtin_partition
from fednet.typing import NDArrays

DIGITS = [str(d) for d in range(10)]


def _fit(model: str, params: NDArrays, mu: float, epochs: int = 2) -> NDArrays:
    rng = np.random.default_rng(0)
    x = rng.normal(size=(60, 5)).astype(np.float32)
    y = rng.integers(0, 3, size=60)
    new, _ = models.fit(model, params, x, y, num_classes=3, epochs=epochs,
                        batch_size=8, learning_rate=0.5,
                        rng=np.random.default_rng(1), proximal_mu=mu)
    return new


def _distance(a: NDArrays, b: NDArrays) -> float:
    return float(np.sqrt(sum(((x - y) ** 2).sum() for x, y in zip(a, b))))


@pytest.mark.parametrize("model", ["logreg", "mlp"])
def test_mu_zero_is_plain_sgd_bit_for_bit(model: str) -> None:
    start = models.init_params(model, 5, 3, hidden_units=4, seed=2)
    rng = np.random.default_rng(0)
    x = rng.normal(size=(60, 5)).astype(np.float32)
    y = rng.integers(0, 3, size=60)
    plain, _ = models.fit(model, start, x, y, num_classes=3, epochs=2, batch_size=8,
                          learning_rate=0.5, rng=np.random.default_rng(1))

    prox = _fit(model, start, 0.0)

    for a, b in zip(plain, prox):
        assert a.tobytes() == b.tobytes()


@pytest.mark.parametrize("model", ["logreg", "mlp"])
def test_larger_mu_stays_closer_to_the_global_model(model: str) -> None:
    start = models.init_params(model, 5, 3, hidden_units=4, seed=2)

    drift = [_distance(_fit(model, start, mu, epochs=5), start)
             for mu in (0.0, 0.5, 2.0)]

    assert drift[0] > drift[1] > drift[2] > 0


def test_two_steps_match_the_proximal_gradient_computed_by_hand() -> None:
    """Step k adds mu * (w_k - w_0) to the loss gradient (Li et al., 2020, eq. 2)."""
    start = models.init_params("logreg", 5, 3, seed=2)
    rng = np.random.default_rng(0)
    x = rng.normal(size=(16, 5)).astype(np.float32)
    y = rng.integers(0, 3, size=16)
    lr, mu = np.float32(0.5), np.float32(3.0)
    order = np.random.default_rng(1).permutation(16)
    w = [p.copy() for p in start]
    for batch in (order[:8], order[8:]):
        grads = models._gradients("logreg", w, x[batch], y[batch], False)
        w = [wi - lr * (g + mu * (wi - w0)) for wi, g, w0 in zip(w, grads, start)]

    prox, _ = models.fit("logreg", start, x, y, num_classes=3, epochs=1,
                         batch_size=8, learning_rate=0.5,
                         rng=np.random.default_rng(1), proximal_mu=3.0)

    for a, b in zip(prox, w):
        np.testing.assert_allclose(a, b, rtol=1e-5, atol=1e-6)


def test_negative_mu_is_refused() -> None:
    start = models.init_params("logreg", 5, 3, seed=2)
    with pytest.raises(ValueError, match="proximal_mu"):
        _fit("logreg", start, -1.0)


def test_fit_config_carries_mu_only_for_fedprox() -> None:
    prox = RunConfig(strategy="fedprox", proximal_mu=0.01)
    other = RunConfig(strategy="fedavg", proximal_mu=0.01)

    assert FitConfig.for_round(prox, 1, None).proximal_mu == 0.01
    assert FitConfig.for_round(other, 1, None).proximal_mu == 0.0
    wire = FitConfig.for_round(prox, 1, None).to_dict()
    assert FitConfig.from_dict(wire).proximal_mu == 0.01


def test_fit_config_without_mu_means_zero_and_negative_is_refused() -> None:
    wire = FitConfig.for_round(RunConfig(), 1, None).to_dict()
    assert "proximal_mu" not in wire  # as an older coordinator sends it

    assert FitConfig.from_dict(wire).proximal_mu == 0.0
    with pytest.raises(ProtocolError, match="proximal_mu"):
        FitConfig.from_dict({**wire, "proximal_mu": -0.5})


def test_trainer_applies_the_configured_mu() -> None:
    data = load_builtin_partition("digits", (1, 3), alpha=None, seed=0)
    trainer = Trainer(data, client_number=1)
    start = models.init_params("logreg", 64, 10, seed=0)
    base = {"task": "digits", "model": "logreg", "classes": DIGITS,
            "local_epochs": 3, "batch_size": 32, "learning_rate": 0.1, "seed": 0,
            "server_round": 1, "hidden_units": 16}

    free, _, _ = trainer.fit(start, FitConfig.from_dict(base))
    held, _, _ = trainer.fit(start, FitConfig.from_dict({**base, "proximal_mu": 1.0}))

    assert _distance(held, start) < _distance(free, start)
