"""FedAvg against hand-computed values; validation of updates."""

from __future__ import annotations

import numpy as np
import pytest

from fednet.aggregation import StreamingFedAvg, fedavg, validate_update
from fednet.exceptions import AggregationError
from fednet.strategies import FedAvg


def test_fedavg_weights_by_num_examples() -> None:
    """Two clients with 1 and 3 examples: (1*a + 3*b) / 4."""
    a = [np.array([1.0, 2.0], np.float32), np.array([[0.0]], np.float32)]
    b = [np.array([5.0, 6.0], np.float32), np.array([[4.0]], np.float32)]
    result = fedavg([(a, 1), (b, 3)])
    np.testing.assert_allclose(result[0], [4.0, 5.0])
    np.testing.assert_allclose(result[1], [[3.0]])
    assert [r.dtype for r in result] == [np.float32, np.float32]


def test_streaming_equals_batch_mean_in_float64() -> None:
    """Folding updates one by one matches a float64 weighted mean."""
    rng = np.random.default_rng(1)
    updates = [
        ([rng.standard_normal(100).astype(np.float32)], int(n)) for n in (5, 17, 30)
    ]
    expected = sum(p[0].astype(np.float64) * n for p, n in updates) / 52
    acc = StreamingFedAvg(updates[0][0])
    for params, n in updates:
        acc.add(params, n)
    np.testing.assert_allclose(acc.result()[0], expected, rtol=1e-6)
    assert (acc.count, acc.total_examples) == (3, 52)


def test_equal_models_average_to_themselves_exactly() -> None:
    """Averaging identical float32 parameters returns them bit for bit."""
    p = [np.random.default_rng(2).standard_normal(1000).astype(np.float32)]
    np.testing.assert_array_equal(fedavg([(p, 3), (p, 7)])[0], p[0])


def test_accepts_read_only_views() -> None:
    """Updates decoded from frames are read-only; aggregation does not write them."""
    p = np.ones(4, np.float32)
    p.flags.writeable = False
    np.testing.assert_array_equal(fedavg([([p], 2)])[0], p)


@pytest.mark.parametrize(
    ("update", "match"),
    [
        ([np.zeros(3, np.float32)], "expected 2 arrays"),
        ([np.zeros(4, np.float32), np.zeros(2, np.float32)], "shape"),
        ([np.zeros(3, np.float64), np.zeros(2, np.float32)], "dtype"),
        ([np.array([0, np.nan, 0], np.float32), np.zeros(2, np.float32)], "NaN"),
        ([np.array([0, np.inf, 0], np.float32), np.zeros(2, np.float32)], "NaN"),
        ([np.zeros(3, np.float32), np.array([-np.inf, np.inf], np.float32)], "NaN"),
    ],
)
def test_invalid_updates_are_rejected(update: list[np.ndarray], match: str) -> None:
    """Wrong count, shape, dtype or non-finite values raise AggregationError."""
    reference = [np.zeros(3, np.float32), np.zeros(2, np.float32)]
    with pytest.raises(AggregationError, match=match):
        validate_update(reference, update)


def test_rejected_update_leaves_accumulator_untouched() -> None:
    """A NaN update folded into a round changes nothing."""
    ref = [np.zeros(3, np.float32)]
    acc = StreamingFedAvg(ref)
    acc.add([np.ones(3, np.float32)], 2)
    with pytest.raises(AggregationError):
        acc.add([np.array([1, np.nan, 1], np.float32)], 5)
    np.testing.assert_array_equal(acc.result()[0], np.ones(3, np.float32))
    assert acc.total_examples == 2


def test_nonpositive_weight_and_empty_input_raise() -> None:
    """Zero examples and no updates at all are errors."""
    with pytest.raises(AggregationError, match="positive"):
        StreamingFedAvg([np.zeros(1, np.float32)]).add([np.zeros(1, np.float32)], 0)
    with pytest.raises(AggregationError, match="no updates"):
        fedavg([])


def test_reset_accumulator_gives_the_same_result_as_a_fresh_one() -> None:
    """A reused accumulator forgets the previous round entirely."""
    ref = [np.zeros((3, 2), np.float32)]
    acc = StreamingFedAvg(ref)
    acc.add([np.full((3, 2), 9.0, np.float32)], 4)
    assert acc.reset(ref)
    acc.add([np.full((3, 2), 1.0, np.float32)], 1)
    acc.add([np.full((3, 2), 3.0, np.float32)], 1)
    np.testing.assert_array_equal(acc.result()[0], np.full((3, 2), 2.0, np.float32))
    assert (acc.count, acc.total_examples) == (2, 2)
    assert not acc.reset([np.zeros(6, np.float32)])


def test_fedavg_strategy_reuses_its_accumulator_while_shapes_hold() -> None:
    """Round after round the same buffers serve; a new shape gets new ones."""
    strategy = FedAvg()
    first = strategy.aggregator([np.zeros(4, np.float32)])
    assert strategy.aggregator([np.ones(4, np.float32)]) is first
    assert strategy.aggregator([np.ones(5, np.float32)]) is not first
