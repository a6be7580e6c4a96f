"""Robust aggregators: median, trimmed mean, Krum, Multi-Krum, norm-bounded FedAvg.

Coordinate-wise median and trimmed mean: Yin et al., 2018, "Byzantine-Robust
Distributed Learning: Towards Optimal Statistical Rates". Krum and Multi-Krum:
Blanchard et al., 2017, "Machine Learning with Adversaries: Byzantine Tolerant
Gradient Descent". Norm-bounded FedAvg: Sun et al., 2019, "Can You Really
Backdoor Federated Learning?". Conventions follow Flower's ``aggregate.py``.

All but the last need every update of a round at once: each is written as one
row of a scratch file (unlinked as soon as it is created) and read back in
column chunks of at most :data:`CHUNK_BYTES`, with positioned reads rather
than a mapping, so the pages read never count towards the server's RSS.
"""

from __future__ import annotations

import os
import tempfile
from collections.abc import Iterator, Sequence
from pathlib import Path
from typing import IO, Any

import numpy as np
import numpy.typing as npt

from fednet.aggregation import BLOCK, check_update
from fednet.exceptions import AggregationError
from fednet.typing import NDArray, NDArrays

CHUNK_BYTES = 4 << 20

Floats = npt.NDArray[np.floating[Any]]


class RowFile:
    """One round's updates as the rows of a scratch file (float32 or float64).

    Args:
        reference: the global model; fixes the row width and dtype.
        directory: where the scratch file goes (None: the system's temp dir).
    """

    def __init__(self, reference: NDArrays, directory: Path | None) -> None:
        self.width = sum(r.size for r in reference)
        f32 = all(r.dtype == np.float32 for r in reference)
        self.dtype = np.dtype(np.float32 if f32 else np.float64)
        self.rows = 0
        self._directory = directory
        self._file: IO[bytes] | None = None

    def append(self, update: NDArrays) -> None:
        """Write an update as the next row.

        Raises:
            AggregationError: if the scratch file cannot be written.
        """
        try:
            if self._file is None:
                self._file = tempfile.TemporaryFile(
                    dir=self._directory, prefix="fednet-round-"
                )
            fd, offset = self._file.fileno(), self._offset(self.rows, 0)
            for arr in update:
                flat = arr.reshape(-1)
                for start in range(0, flat.size, BLOCK):
                    chunk = np.ascontiguousarray(
                        flat[start : start + BLOCK], dtype=self.dtype
                    )
                    data = chunk.data.cast("B")
                    while data:
                        written = os.pwrite(fd, data, offset)
                        data, offset = data[written:], offset + written
        except OSError as e:
            raise AggregationError(f"cannot store the update: {e}") from None
        self.rows += 1

    def chunks(self, num_rows: int) -> Iterator[tuple[int, int]]:
        """Yield column ranges so that ``num_rows`` rows of one fit CHUNK_BYTES."""
        step = max(1, CHUNK_BYTES // (max(num_rows, 1) * self.dtype.itemsize))
        for start in range(0, self.width, step):
            yield start, min(start + step, self.width)

    def read(self, rows: Sequence[int], start: int, end: int) -> Floats:
        """Return columns ``start:end`` of ``rows``, shape (len(rows), end - start).

        Raises:
            AggregationError: if the scratch file cannot be read.
        """
        assert self._file is not None
        out: Floats = np.empty((len(rows), end - start), dtype=self.dtype)
        for k, row in enumerate(rows):
            try:
                got = os.preadv(self._file.fileno(), [out[k]], self._offset(row, start))
            except OSError as e:
                raise AggregationError(f"cannot read the updates: {e}") from None
            if got != out[k].nbytes:
                raise AggregationError(f"short read of update {row}: {got} bytes")
        return out

    def close(self) -> None:
        """Close (and so delete) the scratch file."""
        if self._file is not None:
            self._file.close()
            self._file = None

    def _offset(self, row: int, column: int) -> int:
        return (row * self.width + column) * self.dtype.itemsize


def unflatten(flat: NDArray, reference: NDArrays) -> NDArrays:
    """Split a flat vector into arrays shaped and typed like ``reference``."""
    out, start = [], 0
    for ref in reference:
        piece = flat[start : start + ref.size].reshape(ref.shape)
        out.append(piece.astype(ref.dtype, copy=False))
        start += ref.size
    return out


class _Rows:
    """Store every update of a round; the subclass combines them in ``result``."""

    def __init__(self, reference: NDArrays, directory: Path | None) -> None:
        self._reference = reference
        self._rows = RowFile(reference, directory)
        self.weights: list[int] = []
        self.total_examples = 0
        self.count = 0

    def add(self, update: NDArrays, num_examples: int) -> None:
        """Validate an update and store it (its ``num_examples`` is kept).

        Raises:
            AggregationError: if the update is invalid or cannot be stored.
        """
        check_update(self._reference, update, num_examples)
        self._rows.append(update)
        self.weights.append(num_examples)
        self.total_examples += num_examples
        self.count += 1

    def result(self) -> NDArrays:
        """Combine the stored updates and delete the scratch file.

        Raises:
            AggregationError: if no update was added.
        """
        if not self.count:
            raise AggregationError("no updates to aggregate")
        try:
            flat = np.empty(self._rows.width, dtype=self._rows.dtype)
            rows = range(self.count)
            for start, end in self._rows.chunks(self.count):
                flat[start:end] = self._combine(self._rows.read(rows, start, end))
            return unflatten(flat, self._reference)
        finally:
            self.close()

    def close(self) -> None:
        """Delete the scratch file."""
        self._rows.close()

    def _combine(self, block: Floats) -> NDArray:
        raise NotImplementedError


class FedMedian(_Rows):
    """Coordinate-wise median; ``num_examples`` is ignored (as in Flower).

    An even count averages the two middle values, as ``np.median`` does.
    """

    def _combine(self, block: Floats) -> NDArray:
        return np.median(block, axis=0)


class FedTrimmedAvg(_Rows):
    """Coordinate-wise mean without the ``int(beta * n)`` lowest and highest values.

    Unweighted, as Flower's ``FedTrimmedAvg`` (scipy's ``trim_mean``).

    Args:
        trim_fraction: ``beta``, the fraction cut at each end, below 0.5.
    """

    def __init__(
        self, reference: NDArrays, directory: Path | None, *, trim_fraction: float
    ) -> None:
        super().__init__(reference, directory)
        self.trim_fraction = trim_fraction

    def _combine(self, block: Floats) -> NDArray:
        cut = int(self.trim_fraction * self.count)
        kept = np.sort(block, axis=0)[cut : self.count - cut]
        mean: NDArray = np.mean(kept, axis=0, dtype=np.float64)
        return mean


class Krum(_Rows):
    """Krum: the update closest to its ``n - f - 2`` nearest neighbours.

    Pairwise squared distances are summed as each update arrives (reading the
    earlier rows back), so ``result`` only ranks. Multi-Krum (``multi``)
    averages the ``n - f`` best, weighted by ``num_examples`` as in Flower;
    Krum returns the best one. Ties go to the earlier update.

    Args:
        num_malicious: ``f``, the attackers assumed among the round's clients.
        multi: Multi-Krum instead of Krum.
    """

    def __init__(
        self,
        reference: NDArrays,
        directory: Path | None,
        *,
        num_malicious: int,
        multi: bool = False,
    ) -> None:
        super().__init__(reference, directory)
        self.num_malicious = num_malicious
        self.multi = multi
        self.distances = np.zeros((0, 0), dtype=np.float64)

    def add(self, update: NDArrays, num_examples: int) -> None:
        """Validate and store an update; add its distances to the earlier ones.

        Raises:
            AggregationError: if the update is invalid or cannot be stored.
        """
        check_update(self._reference, update, num_examples)
        self._rows.append(update)
        new = self.count
        to_new = np.zeros(new, dtype=np.float64)
        try:
            for start, end in self._rows.chunks(new + 1):
                block = self._rows.read(range(new + 1), start, end)
                diff = block[:new].astype(np.float64) - block[new]
                to_new += np.einsum("ij,ij->i", diff, diff)
        except AggregationError:
            self._rows.rows -= 1  # the next update overwrites the row
            raise
        grown = np.zeros((new + 1, new + 1), dtype=np.float64)
        grown[:new, :new] = self.distances
        grown[new, :new] = grown[:new, new] = to_new
        self.distances = grown
        self.weights.append(num_examples)
        self.total_examples += num_examples
        self.count += 1

    def scores(self) -> NDArray:
        """Return each update's Krum score (Blanchard et al., 2017, Section 4)."""
        n = self.count
        closest = max(1, n - self.num_malicious - 2)  # Flower's floor of 1
        others = [np.delete(self.distances[i], i) for i in range(n)]
        return np.array([np.sort(d)[:closest].sum() for d in others])

    def result(self) -> NDArrays:
        """Return the Krum (or Multi-Krum) choice and delete the scratch file.

        Raises:
            AggregationError: if no update was added.
        """
        if not self.count:
            raise AggregationError("no updates to aggregate")
        try:
            order = np.argsort(self.scores(), kind="stable")
            keep = max(1, self.count - self.num_malicious) if self.multi else 1
            chosen = sorted(int(i) for i in order[:keep])
            weights = np.array([self.weights[i] for i in chosen], dtype=np.float64)
            weights /= weights.sum()
            flat = np.empty(self._rows.width, dtype=self._rows.dtype)
            for start, end in self._rows.chunks(len(chosen)):
                block = self._rows.read(chosen, start, end)
                flat[start:end] = weights @ block
            return unflatten(flat, self._reference)
        finally:
            self.close()
