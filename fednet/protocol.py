"""Wire messages between coordinator and clients, with one parse and one serialize.

Control messages travel as text frames holding a JSON object with a ``type``
member. Messages that carry model parameters (``fit``, ``fit_result``,
``evaluate``) travel as binary frames: the same JSON object as the header of
:func:`fednet.params.arrays_to_frame`, followed by the raw array bytes. A
binary frame larger than the peer's ``part_bytes`` is sent as consecutive
binary WebSocket messages (:func:`serialize_parts`, read back by
:class:`fednet.reader.MessageReader`).

A client whose ``fit_result`` exceeds ``direct_upload_bytes`` (both announced
in ``welcome``) first sends ``upload_request`` and waits for ``upload_grant``:
the coordinator lets only a few large uploads in at once, which bounds its
memory whatever the number of clients.
"""

from __future__ import annotations

import dataclasses
import json
from dataclasses import dataclass, field
from typing import Any, ClassVar, Union, get_args

from fednet import fields
from fednet.exceptions import ProtocolError
from fednet.fitconfig import FitConfig
from fednet.params import (
    DEFAULT_LIMITS,
    Limits,
    arrays_to_frame,
    arrays_to_parts,
    frame_to_arrays,
)
from fednet.secagg.wire import SecaggMessage
from fednet.trainer_messages import InitRequest as InitRequest
from fednet.trainer_messages import InitResult as InitResult
from fednet.trainer_messages import Trainers as Trainers
from fednet.typing import NDArrays

PROTOCOL_VERSION = 1
"""The version of ``hello`` (the coordinator refuses others); a coordinator's
``welcome`` says the highest it speaks (:data:`TRAINERS_VERSION` and up know
``trainers``, ``init_request`` and ``init_result``)."""
MAX_TEXT_BYTES = 1 << 20
MAX_HELLO_CHARS = 256 << 10
"""The longest message before a welcomed ``hello`` (binary ones are refused)."""
DEFAULT_PART_BYTES = 1 << 20
DEFAULT_DIRECT_UPLOAD_BYTES = 1 << 20

_ROUND: fields.Fields = {"run_id": fields.INT, "server_round": fields.INT}


@dataclass(frozen=True)
class Hello:
    """First message of a client: who it is and what data it holds."""

    type: ClassVar[str] = "hello"
    name: str
    instance: str
    num_examples: int
    task: str
    schema: dict[str, Any] | None = None
    protocol_version: int = PROTOCOL_VERSION
    client_version: str = ""
    # A CSV site's summary (fednet.learning.fedstats), checked when merged.
    stats: dict[str, Any] | None = None
    capabilities: tuple[str, ...] = ()  # e.g. "gossip"; none from earlier releases

    FIELDS: ClassVar[fields.Fields] = {
        "name": fields.TEXT,
        "instance": fields.TEXT,
        "num_examples": fields.INT,
        "task": fields.TEXT,
        "schema": fields.optional_field(fields.object_field),
        "stats": fields.optional_field(fields.object_field),
        "protocol_version": fields.INT,
        "client_version": fields.TEXT,
        "capabilities": fields.str_tuple_field(64, 64),
    }


@dataclass(frozen=True)
class Welcome:
    """The coordinator's answer to ``hello``: the client's id and transfer limits."""

    type: ClassVar[str] = "welcome"
    client_id: str
    heartbeat_s: float
    part_bytes: int = DEFAULT_PART_BYTES
    direct_upload_bytes: int = DEFAULT_DIRECT_UPLOAD_BYTES
    protocol_version: int = PROTOCOL_VERSION

    FIELDS: ClassVar[fields.Fields] = {
        "client_id": fields.TEXT,
        "heartbeat_s": fields.FLOAT,
        "part_bytes": fields.INT,
        "direct_upload_bytes": fields.INT,
        "protocol_version": fields.INT,
    }


@dataclass(frozen=True)
class UploadRequest:
    """A client's large ``fit_result`` of ``nbytes`` is ready to send."""

    type: ClassVar[str] = "upload_request"
    run_id: int
    server_round: int
    nbytes: int

    FIELDS: ClassVar[fields.Fields] = {**_ROUND, "nbytes": fields.INT}


@dataclass(frozen=True)
class UploadGrant:
    """The coordinator is ready to receive the requested ``fit_result``."""

    type: ClassVar[str] = "upload_grant"
    run_id: int
    server_round: int

    FIELDS: ClassVar[fields.Fields] = _ROUND


@dataclass(frozen=True)
class Status:
    """A client's state changed (idle, training, evaluating, sending)."""

    type: ClassVar[str] = "status"
    state: str

    FIELDS: ClassVar[fields.Fields] = {"state": fields.TEXT}


@dataclass(frozen=True)
class Fit:
    """Train the given global model locally with this config."""

    type: ClassVar[str] = "fit"
    run_id: int
    server_round: int
    config: FitConfig
    parameters: NDArrays = field(compare=False, repr=False)

    FIELDS: ClassVar[fields.Fields] = {**_ROUND, "config": FitConfig.from_dict}


@dataclass(frozen=True)
class FitResult:
    """A client's locally trained parameters for one round."""

    type: ClassVar[str] = "fit_result"
    run_id: int
    server_round: int
    num_examples: int
    metrics: dict[str, float]
    parameters: NDArrays = field(compare=False, repr=False)

    FIELDS: ClassVar[fields.Fields] = {
        **_ROUND, "num_examples": fields.INT, "metrics": fields.metrics_field,
    }


@dataclass(frozen=True)
class Evaluate:
    """Evaluate the given global model on the client's validation split."""

    type: ClassVar[str] = "evaluate"
    run_id: int
    server_round: int
    config: FitConfig
    parameters: NDArrays = field(compare=False, repr=False)

    FIELDS: ClassVar[fields.Fields] = {**_ROUND, "config": FitConfig.from_dict}


@dataclass(frozen=True)
class EvaluateResult:
    """Loss and metrics of the global model on a client's validation split."""

    type: ClassVar[str] = "evaluate_result"
    run_id: int
    server_round: int
    num_examples: int
    loss: float
    metrics: dict[str, float]

    FIELDS: ClassVar[fields.Fields] = {
        **_ROUND,
        "num_examples": fields.INT,
        "loss": fields.FLOAT,
        "metrics": fields.eval_metrics_field,
    }


@dataclass(frozen=True)
class Error:
    """Something went wrong; ``code`` is machine-readable, ``message`` for people."""

    type: ClassVar[str] = "error"
    code: str
    message: str
    run_id: int | None = None
    server_round: int | None = None

    FIELDS: ClassVar[fields.Fields] = {
        "code": fields.TEXT,
        "message": fields.TEXT,
        "run_id": fields.OPTIONAL_INT,
        "server_round": fields.OPTIONAL_INT,
    }


Message = Union[
    Hello, Welcome, Status, Fit, FitResult, Evaluate, EvaluateResult,
    UploadRequest, UploadGrant, Error, Trainers, InitRequest, InitResult,
    SecaggMessage,  # secure aggregation's stages (fednet.secagg.wire)
]
MESSAGE_TYPES: dict[str, type[Message]] = {cls.type: cls for cls in get_args(Message)}
BINARY_TYPES = frozenset({"fit", "fit_result", "evaluate", "init_result"})

for _cls in MESSAGE_TYPES.values():  # parameters travel as arrays, not as JSON
    fields.check_table(_cls, _cls.FIELDS, exclude=("parameters",))


def _header(message: Message) -> dict[str, Any]:
    # OMIT_DEFAULTS: left out at the default, so earlier releases still parse it
    omit = getattr(message, "OMIT_DEFAULTS", ())
    header: dict[str, Any] = {"type": message.type}
    for f in dataclasses.fields(message):
        value = getattr(message, f.name)
        if f.name != "parameters" and not (f.name in omit and value == f.default):
            header[f.name] = value.to_dict() if isinstance(value, FitConfig) else value
    try:
        json.dumps(header, allow_nan=False)
    except (TypeError, ValueError) as e:
        raise ProtocolError(f"cannot serialize {message.type}: {e}") from None
    return header


def serialize(message: Message) -> str | bytearray:
    """Encode a message as a text frame (str) or a binary frame (bytearray).

    Raises:
        ProtocolError: if a field cannot travel (NaN, unsupported dtype).
    """
    header = _header(message)
    if message.type in BINARY_TYPES:
        return arrays_to_frame(header, getattr(message, "parameters"))
    return json.dumps(header, separators=(",", ":"))


def serialize_parts(
    message: Message, part_bytes: int = DEFAULT_PART_BYTES
) -> list[str | bytes | memoryview]:
    """Encode a message as the WebSocket messages that carry it, in order.

    Binary messages are split into parts of at most ``part_bytes`` (the first
    part holds the whole header); array bytes are not copied.

    Raises:
        ProtocolError: if a field cannot travel (NaN, unsupported dtype).
    """
    header = _header(message)
    if message.type in BINARY_TYPES:
        params: NDArrays = getattr(message, "parameters")
        return list(arrays_to_parts(header, params, part_bytes))
    return [json.dumps(header, separators=(",", ":"))]


def parse(
    data: str | bytes | bytearray | memoryview, limits: Limits = DEFAULT_LIMITS
) -> Message:
    """Decode one text or binary frame into a message.

    Raises:
        ProtocolError: for anything malformed, unknown or out of bounds.
    """
    arrays: NDArrays | None = None
    if isinstance(data, str):
        obj = fields.load_object(data, MAX_TEXT_BYTES)
    else:
        obj, arrays = frame_to_arrays(data, limits)
    kind = obj.pop("type", None)
    cls = MESSAGE_TYPES.get(kind) if isinstance(kind, str) else None
    if cls is None:
        raise ProtocolError(f"unknown message type {kind!r}")
    if (arrays is not None) != (cls.type in BINARY_TYPES):
        frame = "binary" if arrays is not None else "text"
        raise ProtocolError(f"{cls.type} cannot arrive in a {frame} frame")
    return _build(cls, obj, arrays)


def _build(cls: type[Message], obj: dict[str, Any], arrays: NDArrays | None) -> Message:
    kwargs = fields.build_fields(cls, cls.FIELDS, obj, cls.type)
    if unknown := sorted(set(obj) - set(cls.FIELDS)):
        raise ProtocolError(f"{cls.type}: unknown fields {unknown}")
    if arrays is not None:
        kwargs["parameters"] = arrays
    return cls(**kwargs)
