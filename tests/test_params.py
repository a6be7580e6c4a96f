"""Binary frames: arrays round-trip without copies; malformed frames raise."""

from __future__ import annotations

import json
import struct

import numpy as np
import pytest

from fednet.buffers import BufferPool
from fednet.exceptions import ProtocolError
from fednet.params import (
    Limits,
    arrays_to_frame,
    arrays_to_parts,
    frame_length,
    frame_to_arrays,
    max_frame_length,
)
from fednet.reader import FrameAssembler


def _arrays() -> list[np.ndarray]:
    rng = np.random.default_rng(0)
    return [
        rng.standard_normal((64, 10)).astype(np.float32),
        rng.standard_normal(10).astype(np.float32),
        np.arange(7, dtype=np.int64),
        np.float16(1.5) * np.ones((3, 1, 2), dtype=np.float16),
        np.zeros((0, 5), dtype=np.float32),
    ]


def test_round_trip_keeps_values_shapes_and_dtypes() -> None:
    """Arrays of several dtypes and shapes come back equal."""
    arrays = _arrays()
    header, back = frame_to_arrays(arrays_to_frame({"type": "fit", "x": 1}, arrays))
    assert header == {"type": "fit", "x": 1}
    for a, b in zip(arrays, back, strict=True):
        assert a.dtype == b.dtype and a.shape == b.shape
        np.testing.assert_array_equal(a, b)


def test_decoded_arrays_are_aligned_read_only_views_of_the_frame() -> None:
    """Decoding does not copy: arrays share the frame's memory."""
    frame = bytes(arrays_to_frame({}, _arrays()))
    _, back = frame_to_arrays(frame)
    for array in back:
        assert not array.flags.writeable
        assert array.ctypes.data % 8 == 0 or array.size == 0
        assert array.base is not None


def test_non_contiguous_and_big_endian_inputs_are_normalised() -> None:
    """Transposed and big-endian arrays are sent little-endian and contiguous."""
    a = np.arange(12, dtype=">f4").reshape(3, 4).T
    _, (back,) = frame_to_arrays(arrays_to_frame({}, [a]))
    assert back.dtype == np.dtype("<f4")
    np.testing.assert_array_equal(back, a)


def test_object_arrays_are_refused() -> None:
    """Nothing that would need pickle can be sent."""
    with pytest.raises(ProtocolError, match="dtype"):
        arrays_to_frame({}, [np.array([{"a": 1}], dtype=object)])


def _frame(header: object, payload: bytes = b"") -> bytes:
    head = json.dumps(header).encode()
    return struct.pack(">I", len(head)) + head + payload


@pytest.mark.parametrize(
    ("frame", "match"),
    [
        (b"", "no header length"),
        (b"\x00\x00\x00\x10{}", "truncated"),
        (struct.pack(">I", 3) + b"{{{", "not valid JSON"),
        (_frame([1, 2]), "JSON object"),
        (_frame({"type": "fit"}), "'arrays'"),
        (_frame({"arrays": [{"dtype": "|O", "shape": [1]}]}), "unsupported dtype"),
        (_frame({"arrays": [{"dtype": [], "shape": [1]}]}), "unsupported dtype"),
        (_frame({"arrays": [{"dtype": {}, "shape": [1]}]}), "unsupported dtype"),
        (_frame({"arrays": [{"dtype": "<f4", "shape": [-1]}]}), "invalid shape"),
        (_frame({"arrays": [{"dtype": "<f4", "shape": "3"}]}), "invalid shape"),
        (_frame({"arrays": ["x"]}), "metadata"),
        (_frame({"arrays": [{"dtype": "<f4", "shape": [1000]}]}), "truncated"),
        (_frame({"arrays": []}, b"junk"), "trailing"),
        (struct.pack(">I", 5) + b"\xff\xfe{}!", "not valid JSON"),
    ],
)
def test_malformed_frames_raise_protocol_error(frame: bytes, match: str) -> None:
    """Each kind of malformed frame raises ProtocolError, never another error."""
    with pytest.raises(ProtocolError, match=match):
        frame_to_arrays(frame)


@pytest.mark.parametrize("shape", [[0, 2**62], [2**62, 0], [0, 2**31, 2**31]])
def test_huge_shape_of_an_empty_array_is_a_protocol_error(shape: list[int]) -> None:
    """A shape like [0, 2**62] holds no bytes yet never reaches numpy's reshape."""
    frame = _frame({"arrays": [{"dtype": "<f4", "shape": shape}]})
    with pytest.raises(ProtocolError, match="exceeds the frame size limit"):
        frame_length(frame)
    with pytest.raises(ProtocolError, match="exceeds the frame size limit"):
        frame_to_arrays(frame)


def test_max_frame_length_bounds_a_frame_with_the_longest_header() -> None:
    """A frame of these arrays with a header at the limit fits max_frame_length."""
    arrays, limits = _arrays(), Limits(max_header_bytes=4096)
    frame = arrays_to_frame({"pad": "x" * 3000}, arrays)
    assert len(frame) <= max_frame_length(arrays, limits)
    assert max_frame_length(arrays, limits) < len(frame) + 4096 + 8 * len(arrays)


def test_limits_are_enforced_before_decoding() -> None:
    """Header size, array count and total size are bounded."""
    frame = arrays_to_frame({"pad": "x" * 100}, [np.zeros(4, np.float32)] * 3)
    with pytest.raises(ProtocolError, match="header"):
        frame_to_arrays(frame, Limits(max_header_bytes=50))
    with pytest.raises(ProtocolError, match="arrays exceed"):
        frame_to_arrays(frame, Limits(max_arrays=2))
    with pytest.raises(ProtocolError, match="exceeds the limit"):
        frame_to_arrays(frame, Limits(max_total_bytes=64))


def _joined(pool: BufferPool, arrays: list[np.ndarray], part_bytes: int = 256) -> list:
    assembler = FrameAssembler(pool=pool)
    frame = None
    for part in arrays_to_parts({}, arrays, part_bytes):
        frame = assembler.feed(bytes(part))
    assert frame is not None
    return frame_to_arrays(frame)[1]


def _buffer_of(array: np.ndarray) -> object:
    base: object = array
    while isinstance(base, np.ndarray):
        base = base.base
    assert isinstance(base, memoryview)
    return base.obj


def test_pool_reuses_the_buffer_of_a_released_frame() -> None:
    """A joined frame's buffer, once released, is the next frame's buffer."""
    pool = BufferPool(max_free=2)
    first = _joined(pool, [np.arange(1000, dtype=np.float32)])
    pool.release(first)
    pool.release(first)  # a second release must not hand the buffer out twice
    second = _joined(pool, [np.ones(1000, dtype=np.float32)])
    np.testing.assert_array_equal(second[0], np.ones(1000, np.float32))
    assert _buffer_of(second[0]) is _buffer_of(first[0])
    assert pool.acquire(4000) is not _buffer_of(first[0])


def test_pool_ignores_single_part_frames_and_keeps_at_most_max_free() -> None:
    """Arrays over the transport's bytes are not pooled; the pool stays bounded."""
    pool = BufferPool(max_free=1)
    (single,) = frame_to_arrays(bytes(arrays_to_frame({}, [np.zeros(4, np.float32)])))[
        1
    ]
    pool.release([single])
    assert pool._free == []
    for _ in range(3):
        pool.release(_joined(pool, [np.zeros(500, np.float32)]))
        pool.release([np.frombuffer(bytearray(2000), np.float32)])
    assert len(pool._free) == 1


def test_deeply_nested_header_is_a_protocol_error() -> None:
    """A header of 200,000 nested lists is refused, not a RecursionError."""
    header = b"[" * 200_000
    frame = struct.pack(">I", len(header)) + header
    with pytest.raises(ProtocolError, match="nested too deeply"):
        frame_to_arrays(frame)
