"""MessageReader.feed raises only ProtocolError and stays usable afterwards."""

from __future__ import annotations

import numpy as np
from hypothesis import given
from hypothesis import strategies as st

from fednet.exceptions import ProtocolError
from fednet.params import Limits
from fednet.protocol import FitResult, Status, serialize, serialize_parts
from fednet.reader import MessageReader
from tests.fuzz.strategies import FUZZ

RESULT = FitResult(
    run_id=1,
    server_round=1,
    num_examples=3,
    metrics={"loss": 0.5},
    parameters=[np.arange(12, dtype=np.float32).reshape(3, 4), np.ones(5, np.int64)],
)
PARTS = [bytes(p) for p in serialize_parts(RESULT, part_bytes=48)]
FRAME = bytes(serialize(RESULT))
LIMITS = Limits(max_total_bytes=1 << 16)


@st.composite
def pieces(draw: st.DrawFn) -> bytes | str:
    """One WebSocket message: a real part, a mangled one, bytes or text."""
    kind = draw(st.sampled_from(["part", "cut", "flip", "bytes", "text", "frame"]))
    if kind == "text":
        return draw(st.text(max_size=32) | st.just(serialize(Status("idle"))))
    if kind == "bytes":
        return draw(st.binary(max_size=64))
    data = FRAME if kind == "frame" else draw(st.sampled_from(PARTS))
    if kind == "cut":
        return data[: draw(st.integers(0, len(data)))]
    if kind == "flip":
        at = draw(st.integers(0, len(data) - 1))
        flipped = data[at] ^ draw(st.integers(1, 255))
        return data[:at] + bytes([flipped]) + data[at + 1 :]
    return data


@FUZZ
@given(st.lists(pieces(), max_size=8), st.lists(st.booleans(), min_size=8, max_size=8))
def test_feed_raises_only_protocol_error_and_the_reader_recovers(
    sequence: list[bytes | str], ask_length: list[bool]
) -> None:
    """Any parts raise only ProtocolError; after reset a valid message parses."""
    reader = MessageReader(LIMITS)
    for data, ask in zip(sequence, ask_length):
        try:
            if ask:  # what the coordinator does before it joins a frame
                reader.declared_length(data)
            reader.feed(data)
        except ProtocolError:
            assert not reader.in_progress
    if reader.in_progress:
        reader.reset()
    assert reader.feed(serialize(Status("idle"))) == Status("idle")
    result = None
    for part in PARTS:
        result = reader.feed(part)
    assert isinstance(result, FitResult)
    assert result.num_examples == RESULT.num_examples
