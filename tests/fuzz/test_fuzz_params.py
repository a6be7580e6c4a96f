"""params.frame_to_arrays raises only ProtocolError on any frame."""

from __future__ import annotations

import json
import math
import struct
from typing import Any

import numpy as np
from hypothesis import given
from hypothesis import strategies as st

from fednet.exceptions import ProtocolError
from fednet.params import ALIGN, ALLOWED_DTYPES, Limits, frame_to_arrays
from tests.fuzz.strategies import FUZZ, HUGE_INTS, SCALARS

ODD = SCALARS | st.lists(SCALARS, max_size=2) | st.dictionaries(st.text(), SCALARS)
DTYPES = st.sampled_from(sorted(ALLOWED_DTYPES)) | st.sampled_from(
    ["|O", "<U4", ">f4", "f4", "", "<f16", "V8"]
) | ODD
DIMS = (
    st.integers(min_value=0, max_value=4)
    | st.integers(min_value=-3, max_value=-1)
    | HUGE_INTS
    | st.integers(min_value=2**31, max_value=2**64)
    | ODD
)
SHAPES = (
    st.lists(DIMS, max_size=4)
    | st.sampled_from([[1] * 33, [0] * 33, [1] * 32])
    | ODD
)
METAS = st.fixed_dictionaries(
    {"dtype": DTYPES, "shape": SHAPES},
    optional={"offset": st.integers() | ODD},
) | ODD
LIMITS = st.just(Limits()) | st.builds(
    Limits,
    max_header_bytes=st.integers(min_value=0, max_value=512),
    max_arrays=st.integers(min_value=0, max_value=4),
    max_total_bytes=st.integers(min_value=0, max_value=4096),
    max_dims=st.integers(min_value=0, max_value=5),
)
MAX_PAYLOAD = 1 << 16
DTYPE_NAMES = [str(name) for name in ALLOWED_DTYPES]


def _payload_length(start: int, metas: list[Any]) -> int:
    """The bytes the arrays need after the header, or a small guess if invalid."""
    offset = start
    for meta in metas:
        size = 8  # an odd meta: guess a small payload
        if isinstance(meta, dict) and meta.get("dtype") in DTYPE_NAMES:
            shape = meta.get("shape")
            if isinstance(shape, list) and all(type(d) is int for d in shape):
                size = np.dtype(meta["dtype"]).itemsize * max(0, math.prod(shape))
        offset += -offset % ALIGN + size
        if offset > MAX_PAYLOAD:
            return MAX_PAYLOAD
    return max(0, offset - start)


@st.composite
def frames(draw: st.DrawFn) -> bytes:
    """A length prefix and JSON header around mutated array metadata and bytes."""
    metas = draw(st.lists(METAS, max_size=4))
    header: dict[str, Any] = {"type": "fit_result", "arrays": metas}
    if draw(st.booleans()):
        header = {"arrays": draw(ODD)}
    head = json.dumps(header).encode()
    length = len(head) + draw(st.sampled_from([0, 0, 0, -1, 1, 2**32 - 1 - len(head)]))
    prefix = struct.pack(">I", max(0, min(length, 2**32 - 1)))
    size = _payload_length(4 + len(head), metas if isinstance(metas, list) else [])
    size += draw(st.sampled_from([0, 0, 0, -1, 1, -8, 8]) | st.integers(-64, 64))
    junk = draw(st.just(b"") | st.binary(max_size=8))
    return prefix + head + junk + bytes(max(0, size))


def _check(frame: bytes, limits: Limits) -> None:
    try:
        _, arrays = frame_to_arrays(frame, limits)
    except ProtocolError:
        return
    assert sum(a.nbytes for a in arrays) <= len(frame)
    for array in arrays:
        assert array.nbytes <= len(frame)
        assert np.shares_memory(array, np.frombuffer(frame, np.uint8)) or not array.size


@FUZZ
@given(st.binary(), LIMITS)
def test_any_bytes_decode_or_raise_protocol_error(frame: bytes, limits: Limits) -> None:
    """Arbitrary bytes decode or raise ProtocolError, nothing else."""
    _check(frame, limits)


@FUZZ
@given(frames(), LIMITS)
def test_structured_frames_decode_within_the_frame_or_raise_protocol_error(
    frame: bytes, limits: Limits
) -> None:
    """Mutated headers and payloads raise ProtocolError; decoded arrays fit."""
    _check(frame, limits)
