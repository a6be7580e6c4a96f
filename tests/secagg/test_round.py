"""End-to-end in-memory rounds: 10 parties, threshold 7, with dropouts."""

from __future__ import annotations

import numpy as np
import pytest

from fednet.secagg.errors import SecAggError
from fednet.secagg.prg import PRGS
from fednet.secagg.quantize import choose_clip, dequantize, max_error, quantize
from tests.secagg.harness import (
    finish_round,
    make_updates,
    ring_sum,
    stage_round,
    stage_shares,
)

SITES = [f"site-{i:02d}" for i in range(10)]


def _assert_equal(result: list[np.ndarray], expected: list[np.ndarray]) -> None:
    assert [r.shape for r in result] == [e.shape for e in expected]
    for r, e in zip(result, expected):
        np.testing.assert_array_equal(r, e)


@pytest.mark.parametrize("prg", PRGS)
def test_no_dropout_gives_the_exact_quantised_sum(prg: str) -> None:
    """All 10 parties stay: the unmasked result equals the plain ring sum."""
    updates = make_updates(10, 1001)
    staged = stage_round(updates, 7, prg=prg)
    assert staged.request.dropped == ()
    _assert_equal(finish_round(staged), ring_sum(updates.values()))


@pytest.mark.parametrize("prg", PRGS)
def test_three_dropped_before_masked_input_are_recovered(prg: str) -> None:
    """3 parties vanish after sharing keys: the sum of the other 7 comes out."""
    updates = make_updates(10, 500, seed=1)
    gone = set(SITES[2:5])
    staged = stage_round(updates, 7, drop_before_input=gone, prg=prg)
    assert set(staged.request.dropped) == gone
    expected = ring_sum([u for p, u in updates.items() if p not in gone])
    _assert_equal(finish_round(staged), expected)
    assert staged.collector.survivors == tuple(p for p in SITES if p not in gone)


@pytest.mark.parametrize("prg", PRGS)
def test_three_dropped_after_masked_input_are_recovered(prg: str) -> None:
    """3 parties vanish after sending masked input: the sum of all 10 comes out."""
    updates = make_updates(10, 500, seed=2)
    staged = stage_round(updates, 7, prg=prg)
    result = finish_round(staged, drop_after_input=SITES[-3:])
    _assert_equal(result, ring_sum(updates.values()))


def test_four_dropped_before_masked_input_fail_the_round() -> None:
    """Only 6 masked inputs for threshold 7: a clear reason, and no later call."""
    updates = make_updates(10, 50, seed=3)
    with pytest.raises(SecAggError, match="only 6 masked inputs, threshold 7"):
        stage_round(updates, 7, drop_before_input=SITES[:4])


def test_four_dropped_after_masked_input_fail_the_round() -> None:
    """Only 6 unmask responses for threshold 7: the round fails and stays failed."""
    staged = stage_round(make_updates(10, 50, seed=4), 7)
    with pytest.raises(SecAggError, match="only 6 unmask responses, threshold 7"):
        finish_round(staged, drop_after_input=SITES[:4])
    assert staged.collector.failure == "only 6 unmask responses, threshold 7"
    with pytest.raises(SecAggError, match="round failed"):
        staged.collector.result()


def test_float_updates_round_trip_within_max_error() -> None:
    """Quantise, mask, sum, unmask, dequantise: plain float sum within max_error."""
    rng = np.random.default_rng(5)
    floats = {
        p: [(rng.standard_normal(2000) * 0.05).astype(np.float32)] for p in SITES
    }
    clip = choose_clip(list(floats.values()))
    updates = {p: quantize(u, clip, 10) for p, u in floats.items()}
    gone = SITES[:3]
    staged = stage_round(updates, 7, drop_before_input=gone)
    result = dequantize(finish_round(staged), clip, 10, summands=7)[0]
    expected = np.sum([floats[p][0] for p in SITES[3:]], axis=0, dtype=np.float64)
    assert np.max(np.abs(result - expected)) <= max_error(clip, 10)
    relative = np.linalg.norm(result - expected) / np.linalg.norm(expected)
    assert relative <= 1e-6


def test_masked_input_is_uncorrelated_with_the_update() -> None:
    """Over 10^5 parameters, |corr(frame the collector gets, true update)| < 0.01."""
    rng = np.random.default_rng(6)
    truth = rng.standard_normal(100_000).astype(np.float32)
    shared = stage_shares(SITES, [(100_000,)], 7, seed=8)
    quantised = quantize([truth], 4.0, 10)
    frame = shared.parties[SITES[1]].masked_input(quantised, shared.routed[SITES[1]])
    received = frame[0].astype(np.float64)
    assert abs(np.corrcoef(received, truth.astype(np.float64))[0, 1]) < 0.01
    assert abs(np.corrcoef(received, quantised[0].astype(np.float64))[0, 1]) < 0.01
    assert abs(np.corrcoef(quantised[0], truth)[0, 1]) > 0.99


def test_fedavg_weights_travel_as_an_extra_raw_array() -> None:
    """Sites send num_examples * x quantised plus num_examples raw; mean recovers.

    The survivors' total weight is unknown in advance, so each site scales by
    its own num_examples and the weight sum is aggregated alongside.
    """
    rng = np.random.default_rng(9)
    params = {p: (rng.standard_normal(300) * 0.1).astype(np.float32) for p in SITES}
    weights = {p: int(rng.integers(10, 500)) for p in SITES}
    clip = 1.0 * 500
    updates = {
        p: quantize([params[p] * weights[p]], clip, 10)
        + [np.array([weights[p]], np.uint32)]
        for p in SITES
    }
    staged = stage_round(updates, 7, drop_before_input=SITES[7:])
    summed = finish_round(staged)
    total = int(summed[1][0])
    mean = dequantize(summed[:1], clip, 10, summands=7)[0] / total
    kept = SITES[:7]
    expected = sum(params[p].astype(np.float64) * weights[p] for p in kept)
    assert total == sum(weights[p] for p in kept)
    np.testing.assert_allclose(mean, expected / total, atol=max_error(clip, 10) / total)
