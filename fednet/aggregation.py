"""Pure NumPy aggregation of client updates: validation, FedAvg, clipped FedAvg.

FedAvg is the weighted mean of client parameters, weights being the number of
local training examples (McMahan et al., 2017, "Communication-Efficient
Learning of Deep Networks from Decentralized Data", Algorithm 1).
"""

from __future__ import annotations

import math
from collections.abc import Iterator, Sequence

import numpy as np
import numpy.typing as npt

from fednet.exceptions import AggregationError
from fednet.typing import NDArrays

BLOCK = 1 << 16

F64 = npt.NDArray[np.float64]


def check_update(reference: NDArrays, update: NDArrays, num_examples: int) -> None:
    """Check an update and its weight before anything is folded in.

    Raises:
        AggregationError: for a weight that is not positive, or as
            :func:`validate_update`.
    """
    if num_examples <= 0:
        raise AggregationError(f"num_examples must be positive, got {num_examples}")
    validate_update(reference, update)


def validate_update(reference: NDArrays, update: NDArrays) -> None:
    """Check that an update matches the global model and holds only finite values.

    Args:
        reference: the global model the update must match.
        update: a client's parameters.

    Raises:
        AggregationError: on a different array count, shape or dtype, or a
            NaN or infinite value.
    """
    if len(update) != len(reference):
        raise AggregationError(f"expected {len(reference)} arrays, got {len(update)}")
    for index, (ref, arr) in enumerate(zip(reference, update)):
        if arr.shape != ref.shape:
            raise AggregationError(
                f"array {index}: expected shape {ref.shape}, got {arr.shape}"
            )
        if arr.dtype != ref.dtype:
            raise AggregationError(
                f"array {index}: expected dtype {ref.dtype}, got {arr.dtype}"
            )
        # A float64 sum of float32 values cannot overflow, and any NaN or inf
        # makes it non-finite: one pass, no boolean temporary.
        with np.errstate(invalid="ignore", over="ignore"):
            total = float(np.sum(arr, dtype=np.float64))
        if not math.isfinite(total):
            raise AggregationError(f"array {index}: contains NaN or infinite values")


class StreamingFedAvg:
    """Fold updates into a float64 accumulator as they arrive (O(model) memory).

    Args:
        reference: the current global model; fixes shapes and dtypes.
    """

    def __init__(self, reference: NDArrays) -> None:
        self._reference = reference
        self._sums = [np.zeros(r.size, dtype=np.float64) for r in reference]
        largest = max((r.size for r in reference), default=0)
        self._scratch = np.empty(min(largest, BLOCK), dtype=np.float64)
        self.total_examples = 0
        self.count = 0

    def reset(self, reference: NDArrays) -> bool:
        """Start over for a new global model; False if its shapes differ.

        Args:
            reference: the new global model.
        """
        if [(r.shape, r.dtype) for r in reference] != [
            (r.shape, r.dtype) for r in self._reference
        ]:
            return False
        self._reference = reference
        for total in self._sums:
            total.fill(0.0)
        self.total_examples = 0
        self.count = 0
        return True

    def add(self, update: NDArrays, num_examples: int) -> None:
        """Validate an update and fold it in, weighted by ``num_examples``.

        Raises:
            AggregationError: if the update is invalid; nothing is folded in.
        """
        check_update(self._reference, update, num_examples)
        for total, arr in zip(self._sums, update):
            flat = arr.reshape(-1)
            # Block by block, so the float64 scratch stays small and hot in cache.
            for start in range(0, flat.size, BLOCK):
                chunk = flat[start : start + BLOCK]
                scratch = self._scratch[: chunk.size]
                np.multiply(chunk, num_examples, out=scratch, casting="unsafe")
                total[start : start + chunk.size] += scratch
        self.total_examples += num_examples
        self.count += 1

    def result(self) -> NDArrays:
        """Return the weighted mean, cast back to the global model's dtypes.

        Raises:
            AggregationError: if no update was added.
        """
        if not self.count:
            raise AggregationError("no updates to aggregate")
        result = []
        for total, ref in zip(self._sums, self._reference):
            # Divide straight into the model's dtype: no float64 temporary.
            out = np.empty(ref.shape, dtype=ref.dtype)
            np.divide(total, self.total_examples, out=out.reshape(-1), casting="unsafe")
            result.append(out)
        return result


class ClippedFedAvg(StreamingFedAvg):
    """FedAvg of updates clipped to an L2 distance of ``clip_norm`` from the model.

    Each update ``w`` becomes ``g + (w - g) * min(1, clip_norm / ||w - g||)``
    (norm bounding, Sun et al., 2019, "Can You Really Backdoor Federated
    Learning?"), then is folded in weighted by ``num_examples``; streaming,
    O(model) memory like :class:`StreamingFedAvg`, whose accumulator and
    result it shares.

    Args:
        reference: the global model ``g``.
        clip_norm: the largest distance an update keeps.
    """

    def __init__(self, reference: NDArrays, *, clip_norm: float) -> None:
        super().__init__(reference)
        self.clip_norm = clip_norm

    def _blocks(self, update: NDArrays) -> Iterator[tuple[int, int, F64, F64]]:
        """Yield ``(array index, start, model block, update - model)`` in float64."""
        for index, (ref, arr) in enumerate(zip(self._reference, update)):
            flat, base = arr.reshape(-1), ref.reshape(-1)
            for start in range(0, flat.size, BLOCK):
                chunk = np.asarray(flat[start : start + BLOCK], dtype=np.float64)
                model = np.asarray(base[start : start + BLOCK], dtype=np.float64)
                yield index, start, model, chunk - model

    def add(self, update: NDArrays, num_examples: int) -> None:
        """Validate an update, clip its distance from the model and fold it in.

        Raises:
            AggregationError: if the update is invalid; nothing is folded in.
        """
        check_update(self._reference, update, num_examples)
        norm = math.sqrt(sum(float(d @ d) for _, _, _, d in self._blocks(update)))
        scale = min(1.0, self.clip_norm / norm) if norm > 0 else 1.0
        for index, start, model, delta in self._blocks(update):
            clipped = model + delta * scale
            self._sums[index][start : start + delta.size] += clipped * num_examples
        self.total_examples += num_examples
        self.count += 1


def fedavg(updates: Sequence[tuple[NDArrays, int]]) -> NDArrays:
    """Return the example-weighted mean of client parameters.

    Args:
        updates: ``(parameters, num_examples)`` per client; every parameter
            list must match the first in shapes and dtypes.

    Raises:
        AggregationError: if there are no updates, or they do not match.
    """
    if not updates:
        raise AggregationError("no updates to aggregate")
    acc = StreamingFedAvg(updates[0][0])
    for params, num_examples in updates:
        acc.add(params, num_examples)
    return acc.result()
