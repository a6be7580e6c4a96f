"""MessageReader joins multi-part binary frames and recovers from bad ones."""

from __future__ import annotations

import json

import numpy as np
import pytest

from fednet.buffers import BufferPool
from fednet.exceptions import ProtocolError
from fednet.fitconfig import FitConfig
from fednet.protocol import Evaluate, FitResult, Status, serialize, serialize_parts
from fednet.reader import MessageReader
from fednet.typing import NDArrays

SYNTHETIC = FitConfig(
    server_round=1,
    task="synthetic",
    model="logreg",
    local_epochs=1,
    batch_size=32,
    learning_rate=0.1,
    seed=0,
    hidden_units=64,
)


@pytest.mark.parametrize("part_bytes", [64, 100, 1 << 20])
def test_parts_reassemble_into_the_same_message(part_bytes: int) -> None:
    """A fit split into parts reads back equal, whatever the part size."""
    rng = np.random.default_rng(0)
    params = [
        rng.standard_normal((50, 7)).astype(np.float32),
        np.arange(3, dtype=np.int64),
    ]
    message = FitResult(1, 4, 9, {"train_loss": 0.1}, params)
    parts = serialize_parts(message, part_bytes)
    assert len(parts) >= (2 if part_bytes < 1000 else 1)
    assert all(len(p) <= max(part_bytes, len(parts[0])) for p in parts)
    assert b"".join(bytes(p) for p in parts) == bytes(serialize(message))
    reader = MessageReader()
    results = [reader.feed(bytes(p)) for p in parts]
    assert results[:-1] == [None] * (len(parts) - 1)
    back = results[-1]
    assert back == message
    for a, b in zip(params, back.parameters, strict=True):  # type: ignore[union-attr]
        np.testing.assert_array_equal(a, b)


def test_text_inside_a_multi_part_frame_is_refused_and_reading_recovers() -> None:
    """A control message cannot interrupt a split frame; the next frame parses."""
    message = Evaluate(1, 1, SYNTHETIC, [np.zeros(100, np.float32)])
    parts = serialize_parts(message, 64)
    reader = MessageReader()
    assert reader.feed(bytes(parts[0])) is None
    with pytest.raises(ProtocolError, match="multi-part"):
        reader.feed(json.dumps({"type": "status", "state": "idle"}))
    text = serialize(Status("idle"))
    assert isinstance(text, str) and reader.feed(text) == Status("idle")


def test_part_overflowing_the_announced_length_is_refused() -> None:
    """More bytes than the header announced raise ProtocolError."""
    message = Evaluate(1, 1, SYNTHETIC, [np.zeros(100, np.float32)])
    parts = serialize_parts(message, 64)
    reader = MessageReader()
    for part in parts[:-1]:
        reader.feed(bytes(part))
    with pytest.raises(ProtocolError, match="overflows"):
        reader.feed(bytes(parts[-1]) + b"extra")


class _CountingPool(BufferPool):
    """A pool that counts the buffers asked of it."""

    def __init__(self) -> None:
        super().__init__()
        self.acquired: list[int] = []

    def acquire(self, size: int) -> bytearray:
        self.acquired.append(size)
        return super().acquire(size)


def _split_fit_result(part_bytes: int = 256) -> tuple[FitResult, list[bytes]]:
    params: NDArrays = [np.arange(1000, dtype=np.float32)]
    message = FitResult(1, 1, 9, {}, params)
    return message, [bytes(p) for p in serialize_parts(message, part_bytes)]


def test_declared_length_is_read_from_the_first_part_without_allocating() -> None:
    """The whole frame's length is known from part one; nothing is joined yet."""
    message, parts = _split_fit_result()
    pool = _CountingPool()
    reader = MessageReader(pool=pool)
    declared = reader.declared_length(parts[0])
    assert declared == sum(len(p) for p in parts)
    assert pool.acquired == [] and not reader.in_progress
    results = [reader.feed(p) for p in parts]
    assert results[-1] == message and pool.acquired == [declared]


def test_declared_length_is_none_for_text_and_following_parts() -> None:
    """Only a message that starts a binary frame declares a length."""
    _, parts = _split_fit_result()
    reader = MessageReader()
    assert reader.declared_length('{"type": "status", "state": "idle"}') is None
    assert reader.feed(parts[0]) is None
    assert reader.declared_length(parts[1]) is None
