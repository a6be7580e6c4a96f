"""Central DP-FedAvg: clipping, fixed-denominator mean, noise scale, shares."""

from __future__ import annotations

import re

import numpy as np
import numpy.typing as npt
import pytest

from fednet.exceptions import AggregationError
from fednet.privacy.dp import DPFedAvg, noise_share, noise_stddev
from fednet.privacy.errors import PrivacyError
from fednet.typing import NDArrays


def _f64(array: npt.NDArray[np.generic]) -> npt.NDArray[np.float64]:
    return np.asarray(array, dtype=np.float64)


def _model(seed: int = 0) -> NDArrays:
    rng = np.random.default_rng(seed)
    return [
        rng.normal(size=(4, 3)).astype(np.float32),
        rng.normal(size=5).astype(np.float32),
    ]


def _updates(model: NDArrays, count: int, scale: float = 0.1) -> list[NDArrays]:
    rng = np.random.default_rng(1)
    return [
        [(_f64(m) + scale * rng.normal(size=m.shape)).astype(np.float32) for m in model]
        for _ in range(count)
    ]


def _aggregator(
    model: NDArrays, *, clip: float, noise: float, n: float, seed: int = 7
) -> DPFedAvg:
    return DPFedAvg(
        model,
        clip_norm=clip,
        noise_multiplier=noise,
        expected_clients=n,
        rng=np.random.default_rng(seed),
    )


def _norm(arrays: list[npt.NDArray[np.float64]]) -> float:
    return float(np.sqrt(sum(np.sum(a**2) for a in arrays)))


def test_no_noise_and_large_clip_is_the_plain_mean_of_deltas() -> None:
    """Without noise or clipping, the result is global + the unweighted mean delta."""
    model = _model()
    updates = _updates(model, 5)
    agg = _aggregator(model, clip=1e6, noise=0.0, n=5)

    for i, update in enumerate(updates):
        agg.add(update, num_examples=10 * (i + 1))
    result = agg.result()

    for index, ref in enumerate(model):
        deltas = [_f64(u[index]) - _f64(ref) for u in updates]
        expected = _f64(ref) + np.mean(deltas, axis=0)
        np.testing.assert_allclose(_f64(result[index]), expected, rtol=1e-6)
        assert result[index].dtype == np.float32
    assert agg.count == 5 and agg.total_examples == 150 and agg.unclipped_count == 5


def test_one_huge_update_moves_the_model_by_at_most_clip_over_n() -> None:
    """Clipping bounds one site's influence on the average to clip_norm / n."""
    model = _model()
    honest = _updates(model, 4)
    huge: NDArrays = [(_f64(m) + 1e6).astype(np.float32) for m in model]
    # The same seed draws the same noise, so the difference is the site's alone.
    with_huge = _aggregator(model, clip=0.5, noise=1.0, n=5, seed=11)
    without = _aggregator(model, clip=0.5, noise=1.0, n=5, seed=11)

    for update in honest:
        with_huge.add(update, 1)
        without.add(update, 1)
    with_huge.add(huge, 1)
    pairs = zip(with_huge.result(), without.result())
    moved = _norm([_f64(a) - _f64(b) for a, b in pairs])

    assert moved == pytest.approx(0.5 / 5, rel=1e-4)
    assert with_huge.unclipped_count == without.unclipped_count


def test_noise_std_over_a_million_parameters_matches_the_formula() -> None:
    """The measured noise std is noise_multiplier * clip_norm / n within 1%."""
    model: NDArrays = [np.zeros(1_000_000, dtype=np.float32)]
    agg = _aggregator(model, clip=2.0, noise=1.1, n=8)

    agg.add([np.zeros(1_000_000, dtype=np.float32)], 1)
    noise = agg.result()[0].astype(np.float64)

    expected = 1.1 * 2.0 / 8
    assert agg.stddev == pytest.approx(expected)
    assert np.std(noise) == pytest.approx(expected, rel=0.01)
    assert abs(np.mean(noise)) < 5 * expected / 1000


def test_result_is_released_once() -> None:
    """A second result() returns the same release, not a fresh noise draw."""
    model = _model()
    agg = _aggregator(model, clip=1.0, noise=1.0, n=2)
    agg.add(_updates(model, 1)[0], 1)

    first, second = agg.result(), agg.result()

    for a, b in zip(first, second):
        np.testing.assert_array_equal(a, b)
    with pytest.raises(AggregationError, match="already released"):
        agg.add(_updates(model, 1)[0], 1)


def test_fold_order_does_not_matter() -> None:
    """Folding the same updates in another order gives the same model."""
    model = _model()
    updates = _updates(model, 6, scale=1.0)
    forward = _aggregator(model, clip=1.5, noise=0.5, n=6, seed=3)
    backward = _aggregator(model, clip=1.5, noise=0.5, n=6, seed=3)

    for update in updates:
        forward.add(update, 1)
    for update in reversed(updates):
        backward.add(update, 1)

    for a, b in zip(forward.result(), backward.result()):
        np.testing.assert_allclose(_f64(a), _f64(b), rtol=1e-6, atol=1e-6)


def _bad_updates() -> list[tuple[str, NDArrays]]:
    model = _model()
    nan = [m.copy() for m in model]
    nan[1][2] = np.nan
    return [
        ("expected 2 arrays, got 1", model[:1]),
        ("expected shape (4, 3), got (3, 4)", [model[0].T.copy(), model[1]]),
        ("expected dtype float32, got float64", [_f64(model[0]), model[1]]),
        ("array 1: contains NaN or infinite values", nan),
    ]


@pytest.mark.parametrize(("message", "update"), _bad_updates())
def test_malformed_update_raises_aggregation_error(
    message: str, update: NDArrays
) -> None:
    """Wrong count, shape, dtype or a NaN raise AggregationError; nothing is folded."""
    agg = _aggregator(_model(), clip=1.0, noise=0.0, n=1)

    with pytest.raises(AggregationError, match=re.escape(message)):
        agg.add(update, 1)
    assert agg.count == 0


def test_non_positive_num_examples_raise_aggregation_error() -> None:
    """num_examples is validated like the other aggregators, though unused."""
    agg = _aggregator(_model(), clip=1.0, noise=0.0, n=1)

    with pytest.raises(AggregationError, match="got 0"):
        agg.add(_model(), 0)


def test_empty_round_raises_aggregation_error() -> None:
    """No update, no release."""
    with pytest.raises(AggregationError, match="no updates"):
        _aggregator(_model(), clip=1.0, noise=1.0, n=1).result()


def test_integer_model_arrays_are_refused() -> None:
    """Noise on integer arrays makes no sense: refused at construction."""
    with pytest.raises(AggregationError, match="got int64"):
        _aggregator([np.zeros(3, dtype=np.int64)], clip=1.0, noise=1.0, n=1)


@pytest.mark.parametrize(
    ("clip", "noise", "n", "message"),
    [
        (0.0, 1.0, 1.0, "clip_norm must be positive, got 0.0"),
        (1.0, -1.0, 1.0, "noise_multiplier must be non-negative, got -1.0"),
        (1.0, 1.0, 0.0, "expected sites per round must be positive, got 0.0"),
        (float("inf"), 1.0, 1.0, "clip_norm must be positive, got inf"),
    ],
)
def test_invalid_privacy_parameters_raise_privacy_error(
    clip: float, noise: float, n: float, message: str
) -> None:
    """A bad clip norm, noise multiplier or n is refused with its value."""
    with pytest.raises(PrivacyError, match=message):
        _aggregator(_model(), clip=clip, noise=noise, n=n)


def test_distributed_shares_sum_to_the_central_noise() -> None:
    """n shares sum to std z * C; divided by n they match the central std."""
    n, z, clip, size = 10, 1.2, 0.8, 200_000
    rngs = [np.random.default_rng(100 + i) for i in range(n)]

    shares = [noise_share((size,), z, clip, n, rng) for rng in rngs]
    total = np.sum([s.astype(np.float64) for s in shares], axis=0)

    assert all(s.dtype == np.float32 and s.shape == (size,) for s in shares)
    assert np.std(total) == pytest.approx(z * clip, rel=0.01)
    assert np.std(total / n) == pytest.approx(noise_stddev(z, clip, n), rel=0.01)


def test_noise_share_rejects_a_bad_site_count() -> None:
    """n must be a positive integer."""
    with pytest.raises(PrivacyError, match="n must be a positive integer, got 0"):
        noise_share((3,), 1.0, 1.0, 0, np.random.default_rng(0))
