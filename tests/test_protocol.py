"""Every message round-trips; malformed input raises ProtocolError."""

from __future__ import annotations

import json

import numpy as np
import pytest

from fednet.exceptions import ProtocolError
from fednet.params import arrays_to_frame
from fednet.protocol import (
    Error,
    Evaluate,
    EvaluateResult,
    Fit,
    FitResult,
    Hello,
    Message,
    MessageReader,
    Status,
    UploadGrant,
    UploadRequest,
    Welcome,
    parse,
    serialize,
    serialize_parts,
)

PARAMS = [np.arange(6, dtype=np.float32).reshape(2, 3), np.ones(3, np.float32)]

MESSAGES: list[Message] = [
    Hello("site-a", "abc123", 120, "csv", {"feature_names": ["x"], "classes": ["0"]}),
    Hello("site-b", "i", 0, "synthetic"),
    Welcome("site-a", 10.0),
    Status("training"),
    Fit(3, 2, {"task": "digits", "classes": ["0", "1"], "learning_rate": 0.1}, PARAMS),
    FitResult(3, 2, 120, {"train_loss": 0.5, "train_accuracy": 1}, PARAMS),
    Evaluate(3, 2, {}, PARAMS),
    EvaluateResult(3, 2, 30, 0.25, {"accuracy": 0.9}),
    UploadRequest(3, 2, 40_000_000),
    UploadGrant(3, 2),
    Error("invalid_update", "array 0: bad shape", 3, 2),
    Error("protocol_error", "bad"),
]


@pytest.mark.parametrize("message", MESSAGES, ids=lambda m: m.type)
def test_every_message_round_trips(message: Message) -> None:
    """parse(serialize(m)) == m, arrays included."""
    back = parse(serialize(message))
    assert back == message
    if hasattr(message, "parameters"):
        arrays = back.parameters  # type: ignore[union-attr]
        for a, b in zip(message.parameters, arrays, strict=True):
            np.testing.assert_array_equal(a, b)


def test_array_messages_travel_as_binary_and_others_as_text() -> None:
    """fit, fit_result and evaluate are binary frames; the rest JSON text."""
    for message in MESSAGES:
        frame = serialize(message)
        binary = message.type in ("fit", "fit_result", "evaluate")
        assert isinstance(frame, bytearray) is binary
        assert isinstance(frame, str) is not binary


def test_text_frames_are_plain_json_with_a_type() -> None:
    """Another implementation can read control messages as JSON."""
    frame = serialize(Welcome("a", 5.0, part_bytes=1024, direct_upload_bytes=2048))
    assert json.loads(frame) == {
        "type": "welcome",
        "client_id": "a",
        "heartbeat_s": 5.0,
        "part_bytes": 1024,
        "direct_upload_bytes": 2048,
        "protocol_version": 1,
    }


@pytest.mark.parametrize(
    ("data", "match"),
    [
        ("not json", "not valid JSON"),
        ("[1, 2]", "JSON object"),
        ('{"name": "x"}', "unknown message type None"),
        ('{"type": "launch_missiles"}', "unknown message type"),
        ('{"type": "status"}', "missing field 'state'"),
        ('{"type": "status", "state": 3}', "invalid state"),
        ('{"type": "status", "state": "idle", "extra": 1}', "unknown fields"),
        (
            '{"type": "welcome", "client_id": "a", "heartbeat_s": true}',
            "invalid heartbeat_s",
        ),
        (
            '{"type": "evaluate_result", "run_id": 1, "server_round": 1, '
            '"num_examples": 1, "loss": NaN, "metrics": {}}',
            "NaN",
        ),
        (
            '{"type": "evaluate_result", "run_id": 1, "server_round": 1, '
            '"num_examples": 1, "loss": 1, "metrics": {"a": "b"}}',
            "invalid metrics",
        ),
        (
            '{"type": "fit_result", "run_id": 1, "server_round": 1, '
            '"num_examples": 1, "metrics": {}}',
            "cannot arrive in a text frame",
        ),
        ("x" * (2 << 20), "too long"),
    ],
)
def test_malformed_text_raises_protocol_error(data: str, match: str) -> None:
    """Bad JSON, unknown types, missing, extra or mistyped fields are refused."""
    with pytest.raises(ProtocolError, match=match):
        parse(data)


def test_control_message_in_binary_frame_is_refused() -> None:
    """A hello cannot hide in a binary frame."""
    frame = arrays_to_frame({"type": "status", "state": "idle"}, [])
    with pytest.raises(ProtocolError, match="binary frame"):
        parse(frame)


def test_binary_frame_with_bad_fields_is_refused() -> None:
    """Field checks apply to binary headers too."""
    frame = arrays_to_frame(
        {
            "type": "fit_result",
            "run_id": "1",
            "server_round": 1,
            "num_examples": 1,
            "metrics": {},
        },
        PARAMS,
    )
    with pytest.raises(ProtocolError, match="invalid run_id"):
        parse(frame)


def test_serialize_refuses_nan_loss() -> None:
    """A NaN cannot be sent as JSON; the sender learns it at once."""
    with pytest.raises(ProtocolError, match="cannot serialize"):
        serialize(EvaluateResult(1, 1, 1, float("nan"), {}))


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


def test_large_array_parts_are_views_not_copies() -> None:
    """Parts inside one array share its memory."""
    big = np.zeros(1 << 18, np.float32)
    parts = serialize_parts(Evaluate(1, 1, {}, [big]), 1 << 16)
    views = [p for p in parts if isinstance(p, memoryview)]
    assert views and all(np.shares_memory(np.asarray(v), big) for v in views)


def test_text_inside_a_multi_part_frame_is_refused_and_reading_recovers() -> None:
    """A control message cannot interrupt a split frame; the next frame parses."""
    parts = serialize_parts(Evaluate(1, 1, {}, [np.zeros(100, np.float32)]), 64)
    reader = MessageReader()
    assert reader.feed(bytes(parts[0])) is None
    with pytest.raises(ProtocolError, match="multi-part"):
        reader.feed(json.dumps({"type": "status", "state": "idle"}))
    text = serialize(Status("idle"))
    assert isinstance(text, str) and reader.feed(text) == Status("idle")


def test_part_overflowing_the_announced_length_is_refused() -> None:
    """More bytes than the header announced raise ProtocolError."""
    parts = serialize_parts(Evaluate(1, 1, {}, [np.zeros(100, np.float32)]), 64)
    reader = MessageReader()
    for part in parts[:-1]:
        reader.feed(bytes(part))
    with pytest.raises(ProtocolError, match="overflows"):
        reader.feed(bytes(parts[-1]) + b"extra")
