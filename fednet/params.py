"""NumPy arrays to and from binary frames: a JSON header, then the raw bytes.

Frame layout (all integers big-endian)::

    +----------+----------------------+---------+--------+---------+-----
    | uint32 H | H bytes UTF-8 JSON   | pad to 8| array 0| pad to 8| ...
    +----------+----------------------+---------+--------+---------+-----

The JSON header is an object whose ``"arrays"`` member lists, per array,
``{"dtype": "<f4", "shape": [64, 10]}``. Array *i* starts at the first offset
(counted from the start of the frame) that is a multiple of 8 after the end of
the previous part, so arrays decode aligned with :func:`numpy.frombuffer`
without a copy. Only little-endian numeric dtypes are accepted; nothing is
ever unpickled.
"""

from __future__ import annotations

import json
import math
import struct
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

import numpy as np

from fednet.exceptions import ProtocolError
from fednet.typing import NDArray, NDArrays

ALIGN = 8
ALLOWED_DTYPES = frozenset({"<f2", "<f4", "<f8", "|i1", "|u1", "<i4", "<i8"})
_LEN = struct.Struct(">I")


@dataclass(frozen=True)
class Limits:
    """Bounds a decoder enforces before it trusts a frame.

    Attributes:
        max_header_bytes: the longest JSON header.
        max_arrays: the most arrays in one frame.
        max_total_bytes: the longest frame, a joined multi-part one included;
            also bounds each array's shape (zero dimensions counted as one).
        max_dims: the most dimensions of one array.
    """

    max_header_bytes: int = 1 << 20
    max_arrays: int = 1024
    max_total_bytes: int = 1 << 30
    max_dims: int = 32


DEFAULT_LIMITS = Limits()


def _pad(offset: int) -> int:
    return -offset % ALIGN


def _dtype_str(array: NDArray) -> str:
    dtype = (
        array.dtype.newbyteorder("<") if array.dtype.byteorder == ">" else array.dtype
    )
    return str(dtype.str)


def _prepare(arrays: Sequence[NDArray]) -> list[NDArray]:
    prepared = []
    for array in arrays:
        array = np.asarray(array)
        if array.dtype.byteorder == ">":
            array = array.astype(array.dtype.newbyteorder("<"))
        if _dtype_str(array) not in ALLOWED_DTYPES:
            raise ProtocolError(f"unsupported array dtype {array.dtype}")
        prepared.append(np.ascontiguousarray(array))
    return prepared


def _segments(header: dict[str, Any], arrays: Sequence[NDArray]) -> list[memoryview]:
    """Return the frame as a list of buffers: prefix + header, pads, array bytes."""
    prepared = _prepare(arrays)
    meta = [{"dtype": _dtype_str(a), "shape": list(a.shape)} for a in prepared]
    head = json.dumps({**header, "arrays": meta}, separators=(",", ":")).encode()
    offset = _LEN.size + len(head)
    segments = [memoryview(_LEN.pack(len(head)) + head)]
    for array in prepared:
        if pad := _pad(offset):
            segments.append(memoryview(bytes(pad)))
            offset += pad
        if array.nbytes:
            segments.append(array.reshape(-1).view(np.uint8).data)
        offset += array.nbytes
    return segments


def arrays_to_frame(header: dict[str, Any], arrays: Sequence[NDArray]) -> bytearray:
    """Serialize a JSON header and arrays into one binary frame.

    Args:
        header: JSON-serialisable fields; ``"arrays"`` is added here.
        arrays: numeric arrays; non-contiguous or big-endian ones are
            converted, others are copied once into the frame.

    Returns:
        The frame, ready for ``send_bytes``.

    Raises:
        ProtocolError: if an array has a dtype the wire does not carry.
    """
    segments = _segments(header, arrays)
    frame = bytearray(sum(len(s) for s in segments))
    view, offset = memoryview(frame), 0
    for segment in segments:
        view[offset : offset + len(segment)] = segment
        offset += len(segment)
    return frame


def arrays_to_parts(
    header: dict[str, Any], arrays: Sequence[NDArray], part_bytes: int
) -> list[memoryview | bytes]:
    """Serialize like :func:`arrays_to_frame`, split into parts of ``part_bytes``.

    The first part holds the whole prefix and header; the others are the
    following bytes of the same frame. Parts that fall inside one array are
    views of its memory (no copy), so a large model is sent without ever being
    copied into one buffer.
    """
    parts: list[memoryview | bytes] = []
    pending: list[memoryview] = []
    size = 0
    segments = _segments(header, arrays)
    capacity = max(part_bytes, len(segments[0]))
    for segment in segments:
        while len(segment):
            take = min(len(segment), capacity - size)
            pending.append(segment[:take])
            size += take
            segment = segment[take:]
            if size == capacity:
                parts.append(pending[0] if len(pending) == 1 else b"".join(pending))
                pending, size, capacity = [], 0, part_bytes
    if pending:
        parts.append(pending[0] if len(pending) == 1 else b"".join(pending))
    return parts


def frame_length(
    first_part: bytes | bytearray | memoryview, limits: Limits = DEFAULT_LIMITS
) -> int:
    """Return the total length of the frame whose first part is given.

    Raises:
        ProtocolError: if the prefix or header is malformed or over the limits.
    """
    view = memoryview(first_part)
    end = _header_end(view, limits)
    metas = _parse_header(view[_LEN.size : end])["arrays"]
    if len(metas) > limits.max_arrays:
        raise ProtocolError(f"{len(metas)} arrays exceed the limit")
    total = end
    for index, meta in enumerate(metas):
        dtype, shape = _parse_array_meta(index, meta, limits)
        total += _pad(total) + dtype.itemsize * math.prod(shape)
        if total > limits.max_total_bytes:
            raise ProtocolError(f"frame of more than {total} bytes exceeds the limit")
    return total


def max_frame_length(arrays: Sequence[NDArray], limits: Limits = DEFAULT_LIMITS) -> int:
    """Return the longest frame that carries arrays of these sizes.

    That is the length prefix, the longest header the limits allow, the
    largest padding before each array and the arrays' bytes: what a client may
    send back for a model of this shape.
    """
    padded = sum(ALIGN - 1 + np.asarray(a).nbytes for a in arrays)
    return _LEN.size + limits.max_header_bytes + padded


def frame_to_arrays(
    frame: bytes | bytearray | memoryview, limits: Limits = DEFAULT_LIMITS
) -> tuple[dict[str, Any], NDArrays]:
    """Decode a binary frame into its JSON header and read-only array views.

    Args:
        frame: the bytes of one binary WebSocket message.
        limits: bounds checked before anything is allocated.

    Returns:
        The header (without ``"arrays"``) and the arrays, as views on ``frame``.

    Raises:
        ProtocolError: on any malformed, truncated or oversized frame.
    """
    view = memoryview(frame)
    if len(view) > limits.max_total_bytes:
        raise ProtocolError(f"frame of {len(view)} bytes exceeds the limit")
    end = _header_end(view, limits)
    header = _parse_header(view[_LEN.size : end])
    metas = header.pop("arrays")
    if len(metas) > limits.max_arrays:
        raise ProtocolError(f"{len(metas)} arrays exceed the limit")
    arrays: NDArrays = []
    offset = end
    for index, meta in enumerate(metas):
        dtype, shape = _parse_array_meta(index, meta, limits)
        offset += _pad(offset)
        nbytes = dtype.itemsize * math.prod(shape)
        if offset + nbytes > len(view):
            raise ProtocolError(f"array {index} is truncated")
        array = np.frombuffer(view, dtype=dtype, count=math.prod(shape), offset=offset)
        arrays.append(array.reshape(shape))
        offset += nbytes
    if offset != len(view):
        raise ProtocolError(f"{len(view) - offset} trailing bytes after the arrays")
    return header, arrays


def _header_end(view: memoryview, limits: Limits) -> int:
    if len(view) < _LEN.size:
        raise ProtocolError(f"frame of {len(view)} bytes has no header length")
    (head_len,) = _LEN.unpack_from(view, 0)
    if head_len > limits.max_header_bytes:
        raise ProtocolError(f"header of {head_len} bytes exceeds the limit")
    end = _LEN.size + head_len
    if end > len(view):
        raise ProtocolError(f"header of {head_len} bytes is truncated")
    return int(end)


def _parse_header(raw: memoryview) -> dict[str, Any]:
    try:
        header = json.loads(bytes(raw))
    except (UnicodeDecodeError, ValueError) as e:
        raise ProtocolError(f"header is not valid JSON: {e}") from None
    except RecursionError:
        raise ProtocolError("header is nested too deeply") from None
    if not isinstance(header, dict):
        raise ProtocolError("header must be a JSON object")
    if not isinstance(header.get("arrays"), list):
        raise ProtocolError("header has no 'arrays' list")
    return header


def _parse_array_meta(
    index: int, meta: Any, limits: Limits
) -> tuple[np.dtype[Any], tuple[int, ...]]:
    """Return an array's dtype and shape, refusing a shape numpy cannot hold.

    The shape's extent, the product of its non-zero dimensions times the item
    size, must fit in the frame size limit, even for an empty array: numpy
    refuses ``reshape`` to ``(0, 2**62)`` with a ValueError.
    """
    if not isinstance(meta, dict):
        raise ProtocolError(f"array {index}: metadata must be an object")
    dtype_str, shape = meta.get("dtype"), meta.get("shape")
    if not isinstance(dtype_str, str) or dtype_str not in ALLOWED_DTYPES:
        raise ProtocolError(f"array {index}: unsupported dtype {dtype_str!r}")
    if (
        not isinstance(shape, list)
        or len(shape) > limits.max_dims
        or not all(isinstance(d, int) and not isinstance(d, bool) for d in shape)
        or any(d < 0 for d in shape)
    ):
        raise ProtocolError(f"array {index}: invalid shape {_show(shape)}")
    dtype = np.dtype(dtype_str)
    extent = dtype.itemsize
    for dim in shape:
        extent *= max(dim, 1)
        if extent > limits.max_total_bytes:
            raise ProtocolError(
                f"array {index}: shape {_show(shape)} exceeds the frame size limit"
            )
    return dtype, tuple(shape)


def _show(value: Any) -> str:
    text = repr(value)
    return text if len(text) <= 80 else text[:77] + "..."
