"""A PyTorch module, its loss and its optimiser, as a trainer of the protocol.

torch is never a dependency of fednet (``pip install fednet[torch]``): it is
imported when a :class:`TorchTrainer` is made, so importing this module
works without it and the error comes only on use. Parameters are the
module's ``state_dict`` (buffers included) in its order; on the CPU they
leave as views of the tensors and come in with one copy into them.
"""

from __future__ import annotations

import importlib
import warnings
from collections.abc import Callable, Iterable
from typing import Any

import numpy as np

from fednet.exceptions import FednetError
from fednet.learning.trainers.base import (
    Architecture,
    EvaluateResult,
    FitResult,
    TrainConfig,
    TrainerContext,
    check_parameters,
)
from fednet.typing import Metrics, NDArray, NDArrays

LossFactory = Callable[[], Any]
OptimizerFactory = Callable[[Iterable[Any], float], Any]
EVAL_BATCH = 1024
# torch.from_numpy warns on read-only arrays since writing would be undefined;
# the tensors made here from frames and site data are only ever read.
_READ_ONLY = "The given NumPy array is not writable"


class TorchUnavailable(FednetError):
    """torch is not installed where the PyTorch adapter is used."""


def import_torch() -> Any:
    """Return the torch module.

    Raises:
        TorchUnavailable: if torch cannot be imported, saying how to install it.
    """
    try:
        return importlib.import_module("torch")
    except ImportError as e:
        raise TorchUnavailable(
            f"the PyTorch adapter needs torch, which cannot be imported ({e});"
            " install it at this site: pip install 'fednet[torch]'"
        ) from e


def _tensor(torch: Any, array: NDArray) -> Any:
    """Return a CPU tensor sharing ``array``'s memory (native byte order)."""
    if not array.dtype.isnative:
        array = array.astype(array.dtype.newbyteorder("="))
    if not array.flags.c_contiguous:
        array = array.copy(order="C")  # not np.ascontiguousarray: it makes 0-d 1-d
    with warnings.catch_warnings():
        warnings.filterwarnings("ignore", message=_READ_ONLY, category=UserWarning)
        return torch.from_numpy(array)


def _default_optimizer(torch: Any) -> OptimizerFactory:
    def make(params: Iterable[Any], lr: float) -> Any:
        return torch.optim.SGD(params, lr=lr)

    return make


class TorchTrainer:
    """A ``torch.nn.Module`` trained on one site's data.

    Args:
        module: the model; its ``state_dict`` is the federated parameters.
        context: the site's data.
        kind: the model's name, declared in the fingerprint as ``torch.<kind>``.
        loss_factory: returns the loss module (mean reduction); default
            cross-entropy for classification, mean squared error otherwise.
        optimizer_factory: ``(parameters, learning_rate) -> optimiser``, made
            anew each round; default plain SGD.
        device: where to train (``cpu``, ``cuda``, ``cuda:1``, ``mps``).

    Raises:
        TorchUnavailable: if torch is not installed.
        ValueError: if the state dict breaks the architecture's bounds.
    """

    def __init__(
        self,
        module: Any,
        context: TrainerContext,
        *,
        kind: str,
        loss_factory: LossFactory | None = None,
        optimizer_factory: OptimizerFactory | None = None,
        device: str = "cpu",
    ) -> None:
        torch = self._torch = import_torch()
        self._device = torch.device(device)
        self._module = module.to(self._device)
        self._ctx = context
        classify = context.num_classes is not None
        default_loss = torch.nn.CrossEntropyLoss if classify else torch.nn.MSELoss
        self._loss_factory = loss_factory or default_loss
        self._optimizer_factory = optimizer_factory or _default_optimizer(torch)
        label = torch.int64 if classify else torch.float32
        self._train = self._to_device(context.x_train, context.y_train, label)
        self._val = self._to_device(context.x_val, context.y_val, label)
        names = list(self._module.state_dict())
        self._arch = Architecture.from_arrays(
            f"torch.{kind}", names, self.get_parameters()
        )

    def _to_device(self, x: NDArray, y: NDArray, label: Any) -> tuple[Any, Any]:
        torch = self._torch
        xs = _tensor(torch, np.asarray(x, dtype=np.float32))
        ys = _tensor(torch, np.asarray(y)).to(label)
        return xs.to(self._device), ys.to(self._device)

    @property
    def module(self) -> Any:
        """Return the trained ``torch.nn.Module``."""
        return self._module

    def architecture(self) -> Architecture:
        """Return the state dict's names, shapes and dtypes."""
        return self._arch

    def get_parameters(self) -> NDArrays:
        """Return the state dict as arrays, in its order.

        On the CPU these are views of the module's tensors (no copy): they
        change with the next :meth:`fit` or :meth:`set_parameters`; copy
        them to keep them.
        """
        return [t.detach().cpu().numpy() for t in self._module.state_dict().values()]

    def set_parameters(self, parameters: NDArrays) -> None:
        """Copy ``parameters`` into the module's tensors (one copy each).

        Raises:
            ValueError: if they do not match the architecture.
        """
        check_parameters(self._arch, parameters)
        with self._torch.no_grad():
            for tensor, array in zip(self._module.state_dict().values(), parameters):
                tensor.copy_(_tensor(self._torch, array))

    def fit(self, parameters: NDArrays, config: TrainConfig) -> FitResult:
        """Train ``config.epochs`` epochs of minibatches from ``parameters``.

        Shuffles and dropout draw from torch's generator seeded with
        ``[seed, server_round, site_number]``, restored afterwards. With
        ``proximal_mu`` the loss adds ``mu/2 * ||w - parameters||^2`` (FedProx,
        Li et al. 2020).

        Returns:
            ``(new_parameters, num_examples, {"train_loss"})``: the mean loss
            of the last epoch; the parameters are views (see
            :meth:`get_parameters`).

        Raises:
            ValueError: on parameters that do not match, or divergence.
        """
        torch = self._torch
        self.set_parameters(parameters)
        seed = np.random.SeedSequence(config.local_seed(self._ctx.site_number))
        devices = [self._device.index or 0] if self._device.type == "cuda" else []
        with torch.random.fork_rng(devices=devices):
            torch.manual_seed(int(seed.generate_state(1)[0]))
            train_loss = self._train_epochs(config)
        new = self.get_parameters()
        if not np.isfinite(train_loss) or not all(np.isfinite(p).all() for p in new):
            raise ValueError(
                "training diverged to non-finite values"
                f" (learning_rate={config.learning_rate})"
            )
        return new, self._ctx.num_examples, {"train_loss": train_loss}

    def _train_epochs(self, config: TrainConfig) -> float:
        """Run the epochs and return the mean loss of the last one."""
        torch, module = self._torch, self._module
        x, y = self._train
        weights = [p for p in module.parameters() if p.requires_grad]
        anchor = [w.detach().clone() for w in weights] if config.proximal_mu else []
        optimizer = self._optimizer_factory(weights, config.learning_rate)
        loss_fn = self._loss_factory()
        module.train()
        total = 0.0
        for _ in range(config.epochs):
            order = torch.randperm(len(x)).to(self._device)
            total = 0.0
            for start in range(0, len(x), config.batch_size):
                batch = order[start : start + config.batch_size]
                optimizer.zero_grad()
                out = module(x[batch])
                loss = loss_fn(out, _shaped(y[batch], out))
                total += float(loss.detach()) * len(batch)
                if anchor:
                    drift = sum(((w - a) ** 2).sum() for w, a in zip(weights, anchor))
                    loss = loss + config.proximal_mu / 2 * drift
                loss.backward()
                optimizer.step()
        return total / max(len(x), 1)

    def evaluate(self, parameters: NDArrays, config: TrainConfig) -> EvaluateResult:
        """Measure ``parameters`` on the validation split (and keep them).

        Returns:
            ``(loss, num_examples, metrics)``: the mean loss; ``accuracy`` for
            classification, ``mse`` and ``r2`` for regression.

        Raises:
            ValueError: on parameters that do not match, or no validation rows.
        """
        torch, module = self._torch, self._module
        self.set_parameters(parameters)
        x, y = self._val
        if not len(x):
            raise ValueError("no validation examples")
        loss_fn = self._loss_factory()
        module.eval()
        total, outs = 0.0, []
        with torch.no_grad():
            for start in range(0, len(x), EVAL_BATCH):
                out = module(x[start : start + EVAL_BATCH])
                target = _shaped(y[start : start + EVAL_BATCH], out)
                total += float(loss_fn(out, target)) * len(out)
                outs.append(out)
        out = torch.cat(outs).cpu().numpy()
        return total / len(x), len(x), _metrics(out, y.cpu().numpy(), self._ctx)

    def predict(self, parameters: NDArrays, x: NDArray) -> NDArray:
        """Return softmax probabilities ``(n, classes)``, or values ``(n,)``."""
        torch, module = self._torch, self._module
        self.set_parameters(parameters)
        module.eval()
        rows = torch.as_tensor(np.asarray(x, dtype=np.float32), device=self._device)
        with torch.no_grad():
            out = torch.cat([module(rows[i : i + EVAL_BATCH])
                             for i in range(0, len(rows), EVAL_BATCH)])
        if self._ctx.num_classes is not None:
            out = torch.softmax(out, dim=1)
        else:
            out = out.reshape(len(rows))
        result: NDArray = out.cpu().numpy().astype(np.float64)
        return result


def _shaped(target: Any, out: Any) -> Any:
    """Return a regression target in the output's shape ((n,) -> (n, 1))."""
    if target.is_floating_point() and target.shape != out.shape:
        if target.numel() == out.numel():
            return target.view_as(out)
    return target


def _metrics(out: NDArray, y: NDArray, ctx: TrainerContext) -> Metrics:
    if ctx.num_classes is not None:
        return {"accuracy": float((out.argmax(axis=1) == y).mean())}
    truth = y.astype(np.float64)
    pred = out.reshape(truth.shape).astype(np.float64)
    mse = float(((pred - truth) ** 2).mean())
    spread = float(truth.var())
    metrics = {"mse": mse}
    if spread > 0:
        metrics["r2"] = 1.0 - mse / spread
    return metrics
