"""Fixed-point quantisation into Z_{2^32}: exact sums, error bounds, bad input."""

from __future__ import annotations

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from hypothesis.extra.numpy import arrays

from fednet.secagg.errors import SecAggError
from fednet.secagg.quantize import (
    choose_clip,
    dequantize,
    max_error,
    quantize,
    quantize_into,
)


def _ring_sum(quantised: list[list[np.ndarray]]) -> list[np.ndarray]:
    total = [np.zeros_like(a) for a in quantised[0]]
    for update in quantised:
        for acc, arr in zip(total, update):
            np.add(acc, arr, out=acc)
    return total


@settings(max_examples=60, deadline=None)
@given(
    n=st.integers(1, 50),
    raw_clip=st.floats(1e-3, 1e3),
    data=st.data(),
    stochastic=st.booleans(),
)
def test_sum_of_quantised_decodes_within_max_error(
    n: int, raw_clip: float, data: st.DataObject, stochastic: bool
) -> None:
    """Sum of n quantised vectors decodes to the float sum within max_error."""
    clip = float(np.float32(raw_clip))
    values = st.floats(-clip, clip, width=32)
    updates = [
        [data.draw(arrays(np.float32, 7, elements=values))] for _ in range(n)
    ]
    rng = np.random.default_rng(0) if stochastic else None
    summed = _ring_sum([quantize(u, clip, n, rng=rng) for u in updates])
    decoded = dequantize(summed, clip, n)[0]
    expected = np.sum([u[0].astype(np.float64) for u in updates], axis=0)
    bound = max_error(clip, n, stochastic=stochastic)
    assert np.max(np.abs(decoded - expected)) <= bound


def test_full_scale_inputs_do_not_wrap() -> None:
    """n vectors all at +clip (and all at -clip) decode to +-n*clip."""
    n, clip = 10, 2.0
    for value in (clip, -clip, 5 * clip):
        update = [np.full(4, value, np.float32)]
        summed = _ring_sum([quantize(update, clip, n)] * n)
        expected = n * float(np.clip(value, -clip, clip))
        np.testing.assert_allclose(
            dequantize(summed, clip, n)[0], expected, atol=max_error(clip, n)
        )


@settings(max_examples=200, deadline=None)
@given(clip=st.floats(1e-30, 1e30), n=st.integers(1, 1 << 16))
def test_the_ends_of_the_range_encode_to_zero_and_the_top(clip: float, n: int) -> None:
    """-clip and clip (and their neighbours inside) land in [0, M], never past.

    Any clip, not only a power of two, and any n: a value past M would carry
    into the next summand's bits of the ring sum.
    """
    top = (2**32 - 1) // n
    edge = np.array([-clip, np.nextafter(-clip, 0), np.nextafter(clip, 0), clip])
    encoded = quantize([edge], clip, n)[0]
    assert encoded[0] == 0 and encoded[-1] == top
    assert encoded.max() <= top


def test_fewer_summands_after_dropout_decode_with_summands() -> None:
    """Seven of ten planned summands decode with summands=7."""
    n, clip = 10, 1.0
    rng = np.random.default_rng(3)
    updates = [[rng.uniform(-1, 1, 50).astype(np.float32)] for _ in range(7)]
    summed = _ring_sum([quantize(u, clip, n) for u in updates])
    decoded = dequantize(summed, clip, n, summands=7)[0]
    expected = np.sum([u[0].astype(np.float64) for u in updates], axis=0)
    assert np.max(np.abs(decoded - expected)) <= max_error(clip, n)


def test_relative_error_at_default_settings_below_1e_6() -> None:
    """Ten typical updates, clip chosen from the data: relative error <= 1e-6."""
    rng = np.random.default_rng(4)
    shapes = [(300, 300), (300,), (300, 30)]
    updates = [
        [(rng.standard_normal(s) * 0.05).astype(np.float32) for s in shapes]
        for _ in range(10)
    ]
    clip = choose_clip(updates)
    summed = _ring_sum([quantize(u, clip, 10) for u in updates])
    decoded = np.concatenate([a.ravel() for a in dequantize(summed, clip, 10)])
    expected = np.sum(
        [np.concatenate([a.ravel() for a in u]).astype(np.float64) for u in updates],
        axis=0,
    )
    error = np.linalg.norm(decoded - expected) / np.linalg.norm(expected)
    assert error <= 1e-6
    assert np.max(np.abs(decoded - expected)) <= max_error(clip, 10)


def test_stochastic_rounding_is_reproducible_with_a_seeded_generator() -> None:
    """The same seed gives the same quantised values."""
    update = [np.linspace(-1, 1, 101, dtype=np.float32)]
    first = quantize(update, 1.0, 3, rng=np.random.default_rng(5))
    second = quantize(update, 1.0, 3, rng=np.random.default_rng(5))
    np.testing.assert_array_equal(first[0], second[0])


def test_choose_clip_rounds_up_to_a_power_of_two() -> None:
    """The largest |value| 3.1 gives clip 4; all zeros give 1."""
    assert choose_clip([[np.array([0.5, -3.1])], [np.array([1.0])]]) == 4.0
    assert choose_clip([[np.zeros(3)]]) == 1.0


@pytest.mark.parametrize(
    ("update", "clip", "n", "message"),
    [
        ([np.array([np.nan], np.float32)], 1.0, 2, "NaN or infinite"),
        ([np.array([np.inf], np.float32)], 1.0, 2, "NaN or infinite"),
        ([np.array([1], np.int32)], 1.0, 2, "expected a float array"),
        ([np.zeros(1, np.float32)], 0.0, 2, "clip must be positive"),
        ([np.zeros(1, np.float32)], float("nan"), 2, "clip must be positive"),
        ([np.zeros(1, np.float32)], 1.0, 0, "n must be in"),
        ([np.zeros(1, np.float32)], 1.0, True, "n must be in"),
    ],
)
def test_quantize_rejects_bad_input(
    update: list[np.ndarray], clip: float, n: int, message: str
) -> None:
    """Each kind of bad input raises SecAggError naming it."""
    with pytest.raises(SecAggError, match=message):
        quantize(update, clip, n)


def test_dequantize_rejects_bad_input() -> None:
    """A float array or too many summands raise SecAggError."""
    with pytest.raises(SecAggError, match="expected a uint32 array"):
        dequantize([np.zeros(2, np.float32)], 1.0, 2)
    with pytest.raises(SecAggError, match="summands must be in"):
        dequantize([np.zeros(2, np.uint32)], 1.0, 2, summands=3)


def test_quantize_into_chunks_equals_quantize_of_the_whole() -> None:
    """Encoding a chunk at a time into one buffer gives quantize's result."""
    rng = np.random.default_rng(3)
    update = rng.normal(0, 0.7, size=1000)  # some values beyond the clip
    out = np.empty(1000, np.uint32)
    for start in range(0, 1000, 300):
        part = slice(start, start + 300)
        quantize_into(update[part].copy(), 1.0, 10, out[part])
    np.testing.assert_array_equal(out, quantize([update], 1.0, 10)[0])


def test_quantize_into_leaves_out_unchanged_on_nan() -> None:
    """A NaN is refused before anything is written."""
    out = np.full(3, 7, np.uint32)
    with pytest.raises(SecAggError, match="NaN or infinite"):
        quantize_into(np.array([0.1, np.nan, 0.2]), 1.0, 3, out)
    np.testing.assert_array_equal(out, [7, 7, 7])
