"""A site encodes its delta chunk by chunk, as quantising the whole would, and
its replies whole."""

from __future__ import annotations

import asyncio

import numpy as np
import pytest
from hypothesis import example, given, settings
from hypothesis import strategies as st

from fednet.client import work
from fednet.client.encoding import CHUNK, encode_delta
from fednet.protocol import FitResult, serialize_parts
from fednet.secagg.wire import SecaggUnmaskResult
from fednet.secagg.errors import SecAggError
from fednet.secagg.quantize import quantize


def test_encode_delta_equals_quantize_of_the_clipped_weighted_delta() -> None:
    """Across chunk boundaries, into a slice of a larger buffer."""
    rng = np.random.default_rng(0)
    size = 2 * CHUNK + 5
    old = rng.normal(0, 1, size).astype(np.float32)
    new = old + rng.normal(0, 0.8, size).astype(np.float32)
    flat = np.zeros(size + 1, np.uint32)
    _, clipped = encode_delta(new, old, 1.0, 0.25, 10, out=flat[:size])
    change = new.astype(np.float64) - old
    delta = np.clip(change, -1.0, 1.0) * 0.25
    np.testing.assert_array_equal(flat[:size], quantize([delta], 1.0, 10)[0])
    assert flat[size] == 0
    assert clipped == np.count_nonzero(np.abs(change) > 1.0) > 0
    fresh, _ = encode_delta(new, old, 1.0, 0.25, 10)
    np.testing.assert_array_equal(fresh, flat[:size])


def test_encode_delta_refuses_a_nan() -> None:
    """A NaN in the trained model never becomes a ring element."""
    new = np.array([0.5, np.nan], np.float32)
    with pytest.raises(SecAggError, match="NaN"):
        encode_delta(new, np.zeros(2, np.float32), 1.0, 1.0, 3)


@pytest.mark.parametrize("weight", [1.0, 2.0])
def test_encode_delta_at_and_beyond_the_clip_range(weight: float) -> None:
    """Changes at +-clip stay, larger ones are cut and counted; a weight above 1
    (which leaves the range again) is clipped a second time, as quantize does."""
    old = np.zeros(6, np.float32)
    new = np.array([-1.0, 1.0, 0.5, -0.25, 3.0, -7.0], np.float32)
    out, clipped = encode_delta(new, old, 1.0, weight, 4)
    delta = np.clip(new.astype(np.float64), -1.0, 1.0) * weight
    np.testing.assert_array_equal(out, quantize([delta], 1.0, 4)[0])
    assert clipped == 2


@settings(max_examples=200, deadline=None)
@given(
    clip=st.floats(2.0**-20, 2.0**20, width=32),
    weight=st.floats(1e-9, 1.0),
    n=st.integers(1, 1 << 16),
)
@example(clip=1.0, weight=1.0, n=1)
@example(clip=0.75, weight=1.0, n=3)
@example(clip=3.0, weight=1.0, n=10)
def test_weighted_changes_at_the_clip_range_stay_in_the_ring_range(
    clip: float, weight: float, n: int
) -> None:
    """Any clip, weight up to 1 and n: codes stay in [0, M] (none carries).

    The fast path skips the range check after weighting and the clipping
    pass after rounding; this is what it relies on.
    """
    top = (2**32 - 1) // n
    old = np.zeros(4, np.float32)
    new = np.array([-clip, clip, -3 * clip, 3 * clip], np.float32)
    out, clipped = encode_delta(new, old, clip, weight, n)
    assert clipped == 2
    assert int(out.max()) <= top
    assert out[0] == out[2] and out[1] == out[3]
    if weight == 1.0:
        assert out[0] == 0 and out[1] == top


def test_a_reply_is_encoded_whole_whether_text_or_binary() -> None:
    """Text replies (encoded on the loop) and model frames (in a thread) alike."""
    text = SecaggUnmaskResult(1, 2, (("a", "0f" * 66),), ())
    model = FitResult(1, 2, 5, {}, [np.arange(300_000, dtype=np.float32)])
    assert asyncio.run(work.reply_parts(text, 1 << 20)) == serialize_parts(text)
    parts = asyncio.run(work.reply_parts(model, 1 << 18))
    assert len(parts) > 1
    assert [bytes(p) for p in parts] == [
        bytes(p) for p in serialize_parts(model, 1 << 18)  # type: ignore[arg-type]
    ]
