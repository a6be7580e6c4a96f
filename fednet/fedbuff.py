"""Pure NumPy FedBuff: staleness-weighted deltas folded into one buffer.

FedBuff (Nguyen et al., 2022, "Federated Learning with Buffered Asynchronous
Aggregation") keeps one model version; each client trains from the version it
was given, and its delta from that version is folded into a buffer weighted by
``num_examples`` times a staleness weight ``1 / sqrt(1 + s)``, ``s`` being how
many versions were made since. Every K updates the buffer's weighted mean delta
is applied to the model (server learning rate 1: plain FedBuff).
"""

from __future__ import annotations

import math

import numpy as np

from fednet.aggregation import BLOCK, check_update
from fednet.exceptions import AggregationError
from fednet.typing import NDArrays


def staleness_weight(staleness: int) -> float:
    """Return the weight of an update ``staleness`` versions old: 1/sqrt(1+s).

    Raises:
        AggregationError: for a negative staleness.
    """
    if staleness < 0:
        raise AggregationError(f"staleness must be at least 0, got {staleness}")
    return 1.0 / math.sqrt(1.0 + staleness)


class StalenessBuffer:
    """Fold weighted deltas into a float64 buffer as they arrive (O(model) memory).

    Args:
        reference: the current model; fixes the buffer's shapes.
    """

    def __init__(self, reference: NDArrays) -> None:
        self._sums = [np.zeros(r.size, dtype=np.float64) for r in reference]
        largest = max((r.size for r in reference), default=0)
        self._scratch = np.empty(min(largest, BLOCK), dtype=np.float64)
        self.total_weight = 0.0
        self.total_examples = 0
        self.count = 0

    def reset(self) -> None:
        """Empty the buffer for the next version."""
        for total in self._sums:
            total.fill(0.0)
        self.total_weight, self.total_examples, self.count = 0.0, 0, 0

    def fold(
        self, update: NDArrays, base: NDArrays, num_examples: int, weight: float
    ) -> None:
        """Fold ``update - base`` in with the weight ``num_examples * weight``.

        Args:
            update: a client's parameters.
            base: the model version the client trained from.
            num_examples: the client's training examples.
            weight: the staleness weight of the update.

        Raises:
            AggregationError: if the update is invalid; nothing is folded in.
        """
        check_update(base, update, num_examples)
        scale = num_examples * weight
        for total, arr, start_arr in zip(self._sums, update, base):
            flat, origin = arr.reshape(-1), start_arr.reshape(-1)
            for start in range(0, flat.size, BLOCK):
                stop = min(start + BLOCK, flat.size)
                scratch = self._scratch[: stop - start]
                np.subtract(flat[start:stop], origin[start:stop], out=scratch,
                            dtype=np.float64)
                scratch *= scale
                total[start:stop] += scratch
        self.total_weight += scale
        self.total_examples += num_examples
        self.count += 1

    def apply(self, model: NDArrays) -> NDArrays:
        """Return ``model`` plus the buffer's weighted mean delta, in its dtypes.

        Raises:
            AggregationError: if nothing was folded in.
        """
        if not self.count:
            raise AggregationError("no updates to aggregate")
        result = []
        for total, arr in zip(self._sums, model):
            mean = total / self.total_weight
            np.add(mean, arr.reshape(-1), out=mean)
            result.append(mean.astype(arr.dtype).reshape(arr.shape))
        return result


class BufferedUpdate:
    """One update's way into a StalenessBuffer (the Aggregator a Fold runs).

    Args:
        buffer: the version's buffer.
        base: the model version the client trained from.
        weight: its staleness weight.
    """

    def __init__(self, buffer: StalenessBuffer, base: NDArrays, weight: float) -> None:
        self._buffer = buffer
        self._base = base
        self.weight = weight
        self.count = 0
        self.total_examples = 0

    def add(self, update: NDArrays, num_examples: int) -> None:
        """Validate the update and fold its delta into the buffer."""
        self._buffer.fold(update, self._base, num_examples, self.weight)
        self.count += 1
        self.total_examples += num_examples

    def result(self) -> NDArrays:
        """Refuse: the buffer, not one update, makes the next version.

        Raises:
            AggregationError: always.
        """
        raise AggregationError("a buffered update has no result of its own")
