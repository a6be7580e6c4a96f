"""Server optimisers of the FedOpt family: pure NumPy, no I/O.

Reddi et al., 2021, "Adaptive Federated Optimization" (FedAdam, FedYogi,
FedAdagrad, Algorithm 2) and Hsu et al., 2019, "Measuring the Effects of
Non-Identical Data Distribution for Federated Visual Classification"
(FedAvgM). Each round, the FedAvg mean of the clients' models minus the
current global model is a pseudo-gradient ``d``; the optimiser turns it into
the next global model, as Flower's strategies of the same names do.

The state (moments) has the model's shapes and dtypes and is updated in
place; each round's arithmetic runs in float64 over blocks of
:data:`~fednet.aggregation.BLOCK` values and is rounded once into the state
and the new model. The state alone decides the next step, so a run resumed
from a saved model and state computes what the uninterrupted run computes.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
import numpy as np
import numpy.typing as npt

from fednet.aggregation import BLOCK
from fednet.config import RunConfig
from fednet.exceptions import AggregationError
from fednet.typing import NDArray, NDArrays

F64 = npt.NDArray[np.float64]
ServerState = dict[str, NDArray]
"""An optimiser's state by name (``m_0``, ``v_0``, ...: moment, array index)."""

DEFAULT_LEARNING_RATE = {
    "fedadam": 0.1,
    "fedyogi": 0.01,
    "fedadagrad": 0.1,
    "fedavgm": 1.0,
}
"""Flower's server learning rate (eta) per strategy: what 0 in RunConfig means."""
DEFAULT_TAU = {"fedadam": 1e-9, "fedyogi": 1e-3, "fedadagrad": 1e-9}
"""Flower's tau per strategy: what 0 in RunConfig means."""


class ServerOptimizer:
    """Turn the round's FedAvg mean into the next global model.

    Subclasses name their moments in ``moments`` and update them in
    :meth:`_update`.
    """

    name = ""
    moments: tuple[str, ...] = ()

    def __init__(self) -> None:
        self._state: dict[str, list[NDArray]] = {}

    def step(self, current: NDArrays, average: Sequence[NDArray]) -> NDArrays:
        """Return the next global model; update the state in place.

        Args:
            current: the global model the round started from (not written).
            average: the FedAvg mean of the round's updates, array by array,
                in any float dtype and shaped like ``current`` or flat.

        Raises:
            AggregationError: if ``average`` does not match ``current``.
        """
        if len(average) != len(current) or any(
            a.size != c.size for a, c in zip(average, current)
        ):
            raise AggregationError("the average does not match the global model")
        if self.moments and not self._state:
            self._state = {k: [np.zeros_like(c) for c in current] for k in self.moments}
        result = []
        for index, (model, mean) in enumerate(zip(current, average)):
            out = np.empty(model.shape, dtype=model.dtype)
            flat, target, new = model.reshape(-1), mean.reshape(-1), out.reshape(-1)
            for start in range(0, flat.size, BLOCK):
                block = slice(start, start + BLOCK)
                x = flat[block].astype(np.float64)
                state = [self._state[k][index].reshape(-1)[block] for k in self.moments]
                d = target[block].astype(np.float64) - x
                new[block] = x + self._update(d, state)
            result.append(out)
        return result

    def _update(self, d: F64, state: list[NDArray]) -> F64:
        """Update the state views in place from ``d``; return the model's step."""
        raise NotImplementedError

    def state(self) -> ServerState:
        """Return the state arrays (shared, not copies; empty before a step)."""
        return {
            f"{k}_{i}": array
            for k in self.moments
            for i, array in enumerate(self._state.get(k, ()))
        }

    def load_state(self, state: Mapping[str, NDArray], reference: NDArrays) -> None:
        """Restore a state from :meth:`state` (e.g. read from a checkpoint).

        Args:
            state: the arrays by name; empty means no step was taken yet.
            reference: the global model the state belongs to.

        Raises:
            AggregationError: if names, shapes or dtypes do not match the model.
        """
        expected = {f"{k}_{i}" for k in self.moments for i in range(len(reference))}
        if not state:
            self._state = {}
            return
        if set(state) != expected:
            raise AggregationError(
                f"{self.name} state holds {sorted(state)}, expected {sorted(expected)}"
            )
        for name, array in state.items():
            ref = reference[int(name.rsplit("_", 1)[1])]
            if array.shape != ref.shape or array.dtype != ref.dtype:
                raise AggregationError(
                    f"{self.name} state {name}: {array.dtype}{list(array.shape)} does"
                    f" not match the model's {ref.dtype}{list(ref.shape)}"
                )
        self._state = {
            k: [np.array(state[f"{k}_{i}"]) for i in range(len(reference))]
            for k in self.moments
        }


class FedAdam(ServerOptimizer):
    """m = b1 m + (1 - b1) d; v = b2 v + (1 - b2) d²; x += eta m / (√v + tau)."""

    name = "fedadam"
    moments = ("m", "v")

    def __init__(self, *, eta: float, beta_1: float, beta_2: float, tau: float) -> None:
        super().__init__()
        self.eta, self.beta_1, self.beta_2, self.tau = eta, beta_1, beta_2, tau

    def _update(self, d: F64, state: list[NDArray]) -> F64:
        m_view, v_view = state
        m = self.beta_1 * m_view.astype(np.float64) + (1.0 - self.beta_1) * d
        v = self._second_moment(v_view.astype(np.float64), d * d)
        m_view[...], v_view[...] = m, v
        step: F64 = self.eta * m / (np.sqrt(v) + self.tau)
        return step

    def _second_moment(self, v: F64, d2: F64) -> F64:
        out: F64 = self.beta_2 * v + (1.0 - self.beta_2) * d2
        return out


class FedYogi(FedAdam):
    """FedAdam whose second moment moves additively: v -= (1 - b2) d² sign(v - d²)."""

    name = "fedyogi"

    def _second_moment(self, v: F64, d2: F64) -> F64:
        out: F64 = v - (1.0 - self.beta_2) * d2 * np.sign(v - d2)
        return out


class FedAdagrad(ServerOptimizer):
    """v += d²; x += eta d / (√v + tau) (Flower's FedAdagrad: no first moment)."""

    name = "fedadagrad"
    moments = ("v",)

    def __init__(self, *, eta: float, tau: float) -> None:
        super().__init__()
        self.eta, self.tau = eta, tau

    def _update(self, d: F64, state: list[NDArray]) -> F64:
        (v_view,) = state
        v = v_view.astype(np.float64) + d * d
        v_view[...] = v
        step: F64 = self.eta * d / (np.sqrt(v) + self.tau)
        return step


class FedAvgM(ServerOptimizer):
    """Server SGD with momentum on g = -d: u = mu u + g; x -= lr u (u = g if mu = 0).

    With lr = 1 and mu = 0 the new model is the FedAvg mean.
    """

    name = "fedavgm"

    def __init__(self, *, server_learning_rate: float, server_momentum: float) -> None:
        super().__init__()
        self.lr, self.mu = server_learning_rate, server_momentum
        self.moments = ("momentum",) if server_momentum > 0 else ()

    def _update(self, d: F64, state: list[NDArray]) -> F64:
        g = -d
        if state:
            (u_view,) = state
            g = self.mu * u_view.astype(np.float64) + g
            u_view[...] = g
        step: F64 = -self.lr * g
        return step


def optimizer_from_config(config: RunConfig) -> ServerOptimizer | None:
    """Return the server optimiser a RunConfig's strategy uses, or None.

    A ``server_learning_rate`` or ``tau`` of 0 takes Flower's default for the
    strategy (:data:`DEFAULT_LEARNING_RATE`, :data:`DEFAULT_TAU`).
    """
    name = config.strategy
    if name not in DEFAULT_LEARNING_RATE:
        return None
    eta = config.server_learning_rate or DEFAULT_LEARNING_RATE[name]
    if name == "fedavgm":
        return FedAvgM(server_learning_rate=eta, server_momentum=config.server_momentum)
    tau = config.tau or DEFAULT_TAU[name]
    if name == "fedadagrad":
        return FedAdagrad(eta=eta, tau=tau)
    adam = FedAdam if name == "fedadam" else FedYogi
    return adam(eta=eta, beta_1=config.beta_1, beta_2=config.beta_2, tau=tau)
