"""FedBuff's arithmetic against a direct NumPy computation on small arrays."""

from __future__ import annotations

import math

import numpy as np
import pytest

from fednet.exceptions import AggregationError
from fednet.fedbuff import BufferedUpdate, StalenessBuffer, staleness_weight
from fednet.typing import NDArrays


def _model(*values: float) -> NDArrays:
    return [np.array(values, np.float32), np.full((2, 2), values[0], np.float32)]


@pytest.mark.parametrize("staleness", [0, 1, 3, 8, 99])
def test_staleness_weight_is_one_over_sqrt_one_plus_s(staleness: int) -> None:
    """The weight of an update s versions old is 1/sqrt(1+s)."""
    assert staleness_weight(staleness) == pytest.approx(1 / math.sqrt(1 + staleness))


def test_negative_staleness_is_refused() -> None:
    """A staleness below 0 cannot happen and raises."""
    with pytest.raises(AggregationError, match="staleness"):
        staleness_weight(-1)


def test_buffer_applies_the_staleness_and_example_weighted_mean_delta() -> None:
    """model + sum(n_i w_i (u_i - b_i)) / sum(n_i w_i), array by array."""
    current, old = _model(1.0, 2.0), _model(0.0, 0.5)
    updates = [(_model(3.0, 1.0), current, 10, 0), (_model(-1.0, 4.0), old, 30, 2)]
    buffer = StalenessBuffer(current)
    for update, base, n, s in updates:
        buffer.fold(update, base, n, staleness_weight(s))
    got = buffer.apply(current)
    weights = [n / np.sqrt(1 + s) for _, _, n, s in updates]
    for i, ref in enumerate(current):
        delta = sum(
            w * (u[i].astype(np.float64) - b[i])
            for w, (u, b, _, _) in zip(weights, updates)
        )
        expected = ref + delta / sum(weights)
        np.testing.assert_allclose(got[i], expected, rtol=1e-6)
        assert got[i].dtype == np.float32 and got[i].shape == ref.shape
    assert buffer.count == 2 and buffer.total_examples == 40


def test_invalid_update_folds_nothing() -> None:
    """A NaN or a wrong shape raises, and the buffer stays as it was."""
    current = _model(1.0, 2.0)
    buffer = StalenessBuffer(current)
    bad = _model(float("nan"), 1.0)
    with pytest.raises(AggregationError):
        buffer.fold(bad, current, 5, 1.0)
    with pytest.raises(AggregationError):
        buffer.fold([np.zeros(3, np.float32)], current, 5, 1.0)
    assert buffer.count == 0
    with pytest.raises(AggregationError, match="no updates"):
        buffer.apply(current)


def test_reset_empties_the_buffer() -> None:
    """After reset, the next version is made from new updates only."""
    current = _model(0.0, 0.0)
    buffer = StalenessBuffer(current)
    buffer.fold(_model(5.0, 5.0), current, 1, 1.0)
    buffer.reset()
    buffer.fold(_model(1.0, 1.0), current, 1, 1.0)
    np.testing.assert_allclose(buffer.apply(current)[0], [1.0, 1.0])


def test_buffered_update_folds_through_the_aggregator_interface() -> None:
    """A Fold's aggregator adds to the shared buffer with its staleness weight."""
    current = _model(0.0, 0.0)
    buffer = StalenessBuffer(current)
    BufferedUpdate(buffer, current, 0.5).add(_model(2.0, 2.0), 4)
    assert buffer.total_weight == pytest.approx(2.0)
    with pytest.raises(AggregationError):
        BufferedUpdate(buffer, current, 1.0).result()
