"""PyTorch modules as trainers (skipped where torch is not installed)."""

from __future__ import annotations

import sys
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import numpy as np
import pytest

from fednet.learning.trainers.base import TrainConfig, TrainerContext
from fednet.learning.trainers.registry import load_trainer
from fednet.learning.trainers.torch_adapter import TorchTrainer
from tests.trainers.federation import digits_sites, digits_test, federate

torch = pytest.importorskip("torch")

EXAMPLE = Path(__file__).resolve().parents[2] / "examples" / "torch-digits-cnn"


def _context(num_classes: int | None = 3) -> TrainerContext:
    rng = np.random.default_rng(0)
    x = rng.standard_normal((64, 5)).astype(np.float32)
    if num_classes is None:
        y: Any = x @ np.arange(5.0)
    else:
        y = np.arange(64, dtype=np.int64) % num_classes
    x.flags.writeable = False
    return TrainerContext(x, y, x[:16], y[:16], num_classes)


def _net(out: int = 3, dropout: float = 0.0) -> Any:
    with torch.random.fork_rng(devices=[]):
        torch.manual_seed(0)
        return torch.nn.Sequential(
            torch.nn.Linear(5, 8),
            torch.nn.BatchNorm1d(8),
            torch.nn.ReLU(),
            torch.nn.Dropout(dropout),
            torch.nn.Linear(8, out),
        )


def _start() -> list[np.ndarray]:
    """Return copies of the initial parameters of ``_net()``."""
    trainer = TorchTrainer(_net(), _context(), kind="t")
    return [p.copy() for p in trainer.get_parameters()]


@pytest.fixture(autouse=True)
def one_thread() -> Iterator[None]:
    """Train on one thread: OpenMP threads spin badly on a busy 2-core machine."""
    threads = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(threads)


@pytest.fixture
def example() -> Iterator[None]:
    """Make the example site package importable from its source directory."""
    sys.path.insert(0, str(EXAMPLE))
    yield
    sys.path.remove(str(EXAMPLE))


def test_architecture_is_the_state_dict_with_buffers() -> None:
    """Names and order follow state_dict, buffers (int64 counters too) included."""
    trainer = TorchTrainer(_net(), _context(), kind="tiny")

    arch = trainer.architecture()

    assert arch.kind == "torch.tiny"
    assert arch.names == tuple(_net().state_dict())
    assert "1.num_batches_tracked" in arch.names
    assert arch.dtypes[arch.names.index("1.num_batches_tracked")] == "int64"
    assert arch.shapes[0] == (8, 5)


def test_get_parameters_are_views_of_the_module_tensors() -> None:
    """On the CPU the arrays share the tensors' memory (no copy)."""
    trainer = TorchTrainer(_net(), _context(), kind="tiny")

    params = trainer.get_parameters()
    with torch.no_grad():
        trainer.module[0].weight.fill_(2.5)

    np.testing.assert_array_equal(params[0], 2.5)


def test_set_parameters_copies_read_only_arrays_in() -> None:
    """Read-only frame buffers are copied into the tensors, without a warning."""
    trainer = TorchTrainer(_net(), _context(), kind="tiny")
    incoming = [np.ones_like(p) for p in trainer.get_parameters()]
    for p in incoming:
        p.flags.writeable = False

    trainer.set_parameters(incoming)

    np.testing.assert_array_equal(trainer.module[0].weight.detach().numpy(), 1.0)
    assert not np.shares_memory(trainer.get_parameters()[0], incoming[0])


def test_fit_is_deterministic_with_dropout_and_leaves_global_rng_alone() -> None:
    """Equal seeds give equal parameters; torch's global generator is restored."""
    start = _start()
    config = TrainConfig(epochs=2, batch_size=8, learning_rate=0.05, seed=3)

    torch.manual_seed(123)
    expected_draw = torch.rand(1)
    torch.manual_seed(123)
    first = TorchTrainer(_net(dropout=0.5), _context(), kind="t").fit(start, config)
    second = TorchTrainer(_net(dropout=0.5), _context(), kind="t").fit(start, config)

    assert torch.equal(torch.rand(1), expected_draw)
    for a, b in zip(first[0], second[0]):
        np.testing.assert_array_equal(a, b)
    assert first[1] == 64 and np.isfinite(first[2]["train_loss"])


def test_proximal_mu_keeps_the_model_near_the_global_one() -> None:
    """A large FedProx mu moves the weights less than plain SGD does."""
    start = _start()

    def drift(mu: float) -> float:
        trainer = TorchTrainer(_net(), _context(), kind="t")
        config = TrainConfig(
            epochs=3, batch_size=8, learning_rate=0.05, proximal_mu=mu
        )
        new = trainer.fit(start, config)[0]
        return float(np.linalg.norm(new[0] - start[0]))

    assert drift(10.0) < 0.5 * drift(0.0)


def test_regression_uses_mse_and_reports_r2() -> None:
    """Without classes the default loss is MSE; (n,) targets meet (n, 1) outputs."""
    trainer = TorchTrainer(_net(out=1), _context(None), kind="reg")
    config = TrainConfig(epochs=30, batch_size=16, learning_rate=0.05)

    new, _, _ = trainer.fit(trainer.get_parameters(), config)
    loss, num_examples, metrics = trainer.evaluate(new, config)

    assert num_examples == 16
    assert loss == pytest.approx(metrics["mse"], rel=1e-5)
    assert metrics["r2"] > 0.5


def test_parameters_of_another_architecture_are_refused() -> None:
    """A state dict of another width is refused before training."""
    trainer = TorchTrainer(_net(), _context(), kind="t")
    other = TorchTrainer(_net(out=4), _context(4), kind="t").get_parameters()

    with pytest.raises(ValueError, match="4.weight: expected float32 \\(3, 8\\)"):
        trainer.fit(other, TrainConfig())


def test_divergence_is_reported() -> None:
    """A learning rate that overflows raises ValueError, not NaN parameters."""
    trainer = TorchTrainer(_net(out=1), _context(None), kind="reg")

    with pytest.raises(ValueError, match="diverged"):
        trainer.fit(trainer.get_parameters(), TrainConfig(learning_rate=1e30))


@pytest.mark.skipif(not torch.cuda.is_available(), reason="no CUDA device here")
def test_cuda_device_trains_and_returns_host_arrays() -> None:
    """With device="cuda" the arrays come back to the host, same architecture."""
    cpu = TorchTrainer(_net(), _context(), kind="t")
    gpu = TorchTrainer(_net(), _context(), kind="t", device="cuda")

    new, _, _ = gpu.fit(cpu.get_parameters(), TrainConfig())

    assert gpu.architecture() == cpu.architecture()
    assert all(isinstance(p, np.ndarray) for p in new)


def test_example_cnn_fingerprint_depends_on_its_width(example: None) -> None:
    """The example CNN's architecture changes with its channel width."""
    from fednet_digits_cnn import DigitsCNN

    context = digits_sites()[0]
    narrow = TorchTrainer(DigitsCNN(10, width=8), context, kind="digits_cnn")
    default = load_trainer("fednet_digits_cnn:make_trainer", context)

    assert narrow.architecture().fingerprint != default.architecture().fingerprint


def test_example_cnn_federation_reaches_95_percent(example: None) -> None:
    """Three label-skewed digit sites train the example CNN to >= 0.95 test accuracy."""
    sites = digits_sites(alpha=0.5)
    trainers = [load_trainer("fednet_digits_cnn:make_trainer", s) for s in sites]
    judge = load_trainer("fednet_digits_cnn:make_trainer", digits_test())
    config = TrainConfig(epochs=2, batch_size=32, learning_rate=0.05)

    params = federate(trainers, trainers[0].get_parameters(), 10, config)
    _, _, metrics = judge.evaluate(params, config)

    assert metrics["accuracy"] >= 0.95


def test_predictions_are_softmax_probabilities_or_values() -> None:
    """predict agrees with evaluate: its argmax is the accuracy, its values the MSE."""
    config = TrainConfig(epochs=5, batch_size=16, learning_rate=0.05)
    clf = TorchTrainer(_net(), _context(), kind="t")
    params = [p.copy() for p in clf.fit(clf.get_parameters(), config)[0]]
    proba = clf.predict(params, _context().x_val)
    _, _, metrics = clf.evaluate(params, config)
    assert proba.shape == (16, 3)
    np.testing.assert_allclose(proba.sum(axis=1), 1.0, rtol=1e-6)
    assert (proba.argmax(axis=1) == _context().y_val).mean() == metrics["accuracy"]
    reg = TorchTrainer(_net(out=1), _context(None), kind="reg")
    rparams = [p.copy() for p in reg.fit(reg.get_parameters(), config)[0]]
    values = reg.predict(rparams, _context(None).x_val)
    _, _, rmetrics = reg.evaluate(rparams, config)
    assert values.shape == (16,)
    assert float(((values - _context(None).y_val) ** 2).mean()) == pytest.approx(
        rmetrics["mse"], rel=1e-4)
