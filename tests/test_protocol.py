"""Every message round-trips; malformed input raises ProtocolError."""

from __future__ import annotations

import dataclasses
import json
from typing import Any

import numpy as np
import pytest

from fednet.config import RunConfig
from fednet.exceptions import ProtocolError
from fednet.fields import check_table, int_field
from fednet.fitconfig import FitConfig
from fednet.learning.trainers.architecture import Architecture
from fednet.params import arrays_to_frame
from fednet.secagg.wire import (
    SecaggAdvertise,
    SecaggConsistency,
    SecaggConsistencySignature,
    SecaggRoster,
    SecaggSetup,
    SecaggShares,
    SecaggSignedAdvertise,
    SecaggSignedRoster,
    SecaggSignedSetup,
    SecaggSignedUnmask,
    SecaggUnmask,
    SecaggUnmaskResult,
)
from fednet.protocol import (
    BINARY_TYPES,
    MESSAGE_TYPES,
    Error,
    Evaluate,
    EvaluateResult,
    Fit,
    FitResult,
    Hello,
    InitRequest,
    InitResult,
    Message,
    Status,
    Trainers,
    UploadGrant,
    UploadRequest,
    Welcome,
    parse,
    serialize,
    serialize_parts,
)

PARAMS = [np.arange(6, dtype=np.float32).reshape(2, 3), np.ones(3, np.float32)]
CONFIG = FitConfig(
    server_round=2,
    task="digits",
    model="logreg",
    local_epochs=1,
    batch_size=32,
    learning_rate=0.1,
    seed=0,
    hidden_units=64,
    classes=("0", "1"),
)
SYNTHETIC = dataclasses.replace(CONFIG, task="synthetic", classes=None)

MESSAGES: list[Message] = [
    Hello("site-a", "abc123", 120, "csv", {"feature_names": ["x"], "classes": ["0"]}),
    Hello("site-b", "i", 0, "synthetic"),
    Welcome("site-a", 10.0),
    Status("training"),
    Fit(3, 2, CONFIG, PARAMS),
    FitResult(3, 2, 120, {"train_loss": 0.5, "train_accuracy": 1}, PARAMS),
    Evaluate(3, 2, SYNTHETIC, PARAMS),
    EvaluateResult(3, 2, 30, 0.25, {"accuracy": 0.9}),
    UploadRequest(3, 2, 40_000_000),
    UploadGrant(3, 2),
    # secure aggregation's stages (docs/protocol.md#secure-aggregation)
    SecaggSetup(3, 2, ("site-a", "site-b"), 2, 1.0),
    SecaggAdvertise(3, 2, "ab" * 32, "cd" * 32),
    SecaggRoster(3, 2, (("site-a", "ab" * 32, "cd" * 32),), 120),
    SecaggShares(3, 2, (("site-b", "0f" * 160),)),
    SecaggUnmask(3, 2, ("site-c",), ("site-a", "site-b")),
    SecaggUnmaskResult(3, 2, (("site-c", "01" * 66),), (("site-a", "02" * 66),)),
    SecaggSignedSetup(3, 2, ("site-a", "site-b"), 2, 1.0),
    SecaggSignedAdvertise(3, 2, "ab" * 32, "cd" * 32, "30" * 70, "0f" * 600),
    SecaggSignedRoster(
        3, 2, (("site-a", "ab" * 32, "cd" * 32, "30" * 70, "0f" * 600),), 120
    ),
    SecaggConsistency(3, 2, ("site-c",), ("site-a", "site-b")),
    SecaggConsistencySignature(3, 2, "30" * 70),
    SecaggSignedUnmask(3, 2, ("site-c",), ("site-a", "site-b"),
                       (("site-a", "30" * 70), ("site-b", "30" * 71))),
    Error("invalid_update", "array 0: bad shape", 3, 2),
    Error("protocol_error", "bad"),
    Trainers(({"name": "logreg", "fingerprint": "ab" * 32},
              {"name": "cnn", "fingerprint": ""})),
    InitRequest(3, CONFIG),
    InitResult(3, Architecture.from_arrays("k", ["W", "b"], PARAMS).to_dict(), PARAMS),
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
        binary = message.type in ("fit", "fit_result", "evaluate", "init_result")
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


def test_large_array_parts_are_views_not_copies() -> None:
    """Parts inside one array share its memory."""
    big = np.zeros(1 << 18, np.float32)
    parts = serialize_parts(Evaluate(1, 1, SYNTHETIC, [big]), 1 << 16)
    views = [p for p in parts if isinstance(p, memoryview)]
    assert views and all(np.shares_memory(np.asarray(v), big) for v in views)


def _frame(message: Message, changes: dict[str, Any]) -> str | bytearray:
    """Return ``message`` serialized with some header members replaced."""
    frame = serialize(message)
    if isinstance(frame, str):
        return json.dumps({**json.loads(frame), **changes})
    header = {
        f.name: getattr(message, f.name)
        for f in dataclasses.fields(message)
        if f.name != "parameters"
    }
    if "config" in header:
        header["config"] = header["config"].to_dict()
    return arrays_to_frame({"type": message.type, **header, **changes}, PARAMS)


def _field_cases() -> list[tuple[Message, str]]:
    examples = {m.type: m for m in MESSAGES}
    assert set(examples) == set(MESSAGE_TYPES), "a message type has no example"
    return [
        (message, f.name)
        for message in examples.values()
        for f in dataclasses.fields(message)
        if f.name != "parameters"
    ]


@pytest.mark.parametrize(
    "bad", [[None], True, {"x": [None]}], ids=["list", "bool", "object"]
)
@pytest.mark.parametrize(
    ("message", "name"), _field_cases(), ids=lambda c: getattr(c, "type", c)
)
def test_every_field_with_a_malformed_value_names_the_field(
    message: Message, name: str, bad: Any
) -> None:
    """A mistyped value of any field raises ProtocolError naming type and field."""
    if name in ("schema", "stats") and isinstance(bad, dict):
        pytest.skip(f"any JSON object is a {name} on the wire (checked on use)")
    field = f"^{message.type}: (invalid )?{name}:"
    with pytest.raises(ProtocolError, match=field):
        parse(_frame(message, {name: bad}))


def test_message_tables_name_every_field_and_only_fields() -> None:
    """Each message's table covers its JSON fields (parameters travel as arrays)."""
    for cls in MESSAGE_TYPES.values():
        names = {f.name for f in dataclasses.fields(cls)}
        assert set(cls.FIELDS) == names - {"parameters"}
        assert ("parameters" in names) == (cls.type in BINARY_TYPES)


def test_a_field_without_a_converter_fails_the_table_check() -> None:
    """check_table, run at import, names a missing and a stray converter."""

    @dataclasses.dataclass(frozen=True)
    class Ping:
        sent: int
        nonce: int

    check_table(Ping, {"sent": int_field(), "nonce": int_field()})
    with pytest.raises(TypeError, match=r"without a converter \['nonce'\]"):
        check_table(Ping, {"sent": int_field()})
    with pytest.raises(TypeError, match=r"converters without a field \['extra'\]"):
        check_table(Ping, {"sent": int_field(), "nonce": int_field(), "extra": int})


def test_fit_config_travels_as_a_json_object_with_a_class_list() -> None:
    """The config of a fit is a plain JSON object another implementation reads."""
    frame = serialize(Fit(1, 2, CONFIG, []))
    assert isinstance(frame, bytearray)
    header_len = int.from_bytes(frame[:4], "big")
    header = json.loads(bytes(frame[4 : 4 + header_len]))
    fields = dataclasses.asdict(CONFIG)
    assert fields.pop("proximal_mu") == 0.0  # not sent when 0 (FedProx off)
    assert fields.pop("preprocess") is None  # not sent without one
    assert fields.pop("statistics") is False  # not asked for: not sent
    assert fields.pop("regression") is False  # classification: not sent
    assert fields.pop("peer_models") == 0  # not a gossip step: not sent
    assert header["config"] == {**fields, "classes": ["0", "1"]}


def test_fit_config_of_an_older_coordinator_parses() -> None:
    """Extra RunConfig keys (rounds, strategy, ...) in a fit's config are ignored."""
    old = {**RunConfig().to_dict(), "classes": ["0", "1"], "server_round": 2}
    header = {"type": "fit", "run_id": 1, "server_round": 2, "config": old}
    message = parse(arrays_to_frame(header, []))
    assert isinstance(message, Fit)
    assert message.config == CONFIG


def test_malformed_fit_config_names_the_message_and_the_key() -> None:
    """A bad config key surfaces as ``fit: config: invalid <key>``."""
    bad = {**CONFIG.to_dict(), "batch_size": 0}
    with pytest.raises(ProtocolError, match="^fit: config: invalid batch_size"):
        parse(_frame(Fit(1, 2, CONFIG, PARAMS), {"config": bad}))


@pytest.mark.parametrize(
    "trainers",
    [
        "logreg",
        [{"name": "logreg"}],
        [{"name": "bad name", "fingerprint": ""}],
        [{"name": "x", "fingerprint": "zz"}],
        [{"name": "x", "fingerprint": ""}, {"name": "x", "fingerprint": ""}],
        [{"name": f"t{i}", "fingerprint": ""} for i in range(65)],
    ],
)
def test_malformed_trainers_are_refused(trainers: Any) -> None:
    """A trainers message is bounded: names, fingerprints, count, no duplicates."""
    with pytest.raises(ProtocolError, match="trainers"):
        parse(json.dumps({"type": "trainers", "trainers": trainers}))
