"""Wire messages between coordinator and clients, with one parse and one serialize.

Control messages travel as text frames holding a JSON object with a ``type``
member. Messages that carry model parameters (``fit``, ``fit_result``,
``evaluate``) travel as binary frames: the same JSON object as the header of
:func:`fednet.params.arrays_to_frame`, followed by the raw array bytes. A
binary frame larger than the peer's ``part_bytes`` is sent as consecutive
binary WebSocket messages (:func:`serialize_parts`, :class:`MessageReader`).

A client whose ``fit_result`` exceeds ``direct_upload_bytes`` (both announced
in ``welcome``) first sends ``upload_request`` and waits for ``upload_grant``:
the coordinator lets only a few large uploads in at once, which bounds its
memory whatever the number of clients.
"""

from __future__ import annotations

import dataclasses
import json
import math
from dataclasses import dataclass, field
from typing import Any, Callable, ClassVar, Union

from fednet.exceptions import ProtocolError
from fednet.params import (
    DEFAULT_LIMITS,
    BufferPool,
    FrameAssembler,
    Limits,
    arrays_to_frame,
    arrays_to_parts,
    frame_to_arrays,
)
from fednet.typing import NDArrays

PROTOCOL_VERSION = 1
MAX_TEXT_BYTES = 1 << 20
DEFAULT_PART_BYTES = 1 << 20
DEFAULT_DIRECT_UPLOAD_BYTES = 1 << 20


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


@dataclass(frozen=True)
class Welcome:
    """The coordinator's answer to ``hello``: the client's id and transfer limits."""

    type: ClassVar[str] = "welcome"
    client_id: str
    heartbeat_s: float
    part_bytes: int = DEFAULT_PART_BYTES
    direct_upload_bytes: int = DEFAULT_DIRECT_UPLOAD_BYTES
    protocol_version: int = PROTOCOL_VERSION


@dataclass(frozen=True)
class UploadRequest:
    """A client's large ``fit_result`` of ``nbytes`` is ready to send."""

    type: ClassVar[str] = "upload_request"
    run_id: int
    server_round: int
    nbytes: int


@dataclass(frozen=True)
class UploadGrant:
    """The coordinator is ready to receive the requested ``fit_result``."""

    type: ClassVar[str] = "upload_grant"
    run_id: int
    server_round: int


@dataclass(frozen=True)
class Status:
    """A client's state changed (idle, training, evaluating, sending)."""

    type: ClassVar[str] = "status"
    state: str


@dataclass(frozen=True)
class Fit:
    """Train the given global model locally with this config."""

    type: ClassVar[str] = "fit"
    run_id: int
    server_round: int
    config: dict[str, Any]
    parameters: NDArrays = field(compare=False, repr=False)


@dataclass(frozen=True)
class FitResult:
    """A client's locally trained parameters for one round."""

    type: ClassVar[str] = "fit_result"
    run_id: int
    server_round: int
    num_examples: int
    metrics: dict[str, float]
    parameters: NDArrays = field(compare=False, repr=False)


@dataclass(frozen=True)
class Evaluate:
    """Evaluate the given global model on the client's validation split."""

    type: ClassVar[str] = "evaluate"
    run_id: int
    server_round: int
    config: dict[str, Any]
    parameters: NDArrays = field(compare=False, repr=False)


@dataclass(frozen=True)
class EvaluateResult:
    """Loss and metrics of the global model on a client's validation split."""

    type: ClassVar[str] = "evaluate_result"
    run_id: int
    server_round: int
    num_examples: int
    loss: float
    metrics: dict[str, float]


@dataclass(frozen=True)
class Error:
    """Something went wrong; ``code`` is machine-readable, ``message`` for people."""

    type: ClassVar[str] = "error"
    code: str
    message: str
    run_id: int | None = None
    server_round: int | None = None


Message = Union[
    Hello,
    Welcome,
    Status,
    Fit,
    FitResult,
    Evaluate,
    EvaluateResult,
    UploadRequest,
    UploadGrant,
    Error,
]
MESSAGE_TYPES: dict[str, type[Message]] = {
    cls.type: cls
    for cls in (
        Hello,
        Welcome,
        Status,
        Fit,
        FitResult,
        Evaluate,
        EvaluateResult,
        UploadRequest,
        UploadGrant,
        Error,
    )
}
BINARY_TYPES = frozenset({"fit", "fit_result", "evaluate"})


def _header(message: Message) -> dict[str, Any]:
    fields = {
        f.name: getattr(message, f.name)
        for f in dataclasses.fields(message)
        if f.name != "parameters"
    }
    header = {"type": message.type, **fields}
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
    if isinstance(data, str):
        if len(data) > MAX_TEXT_BYTES:
            raise ProtocolError(f"text frame of {len(data)} characters is too long")
        try:
            obj = json.loads(data, parse_constant=_reject_constant)
        except ValueError as e:
            raise ProtocolError(f"text frame is not valid JSON: {e}") from None
        if not isinstance(obj, dict):
            raise ProtocolError("message must be a JSON object")
        arrays: NDArrays | None = None
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


class MessageReader:
    """Parse the messages of one connection, joining multi-part binary frames.

    Args:
        limits: bounds on binary frames (a joined frame included).
        pool: reuses the buffers of joined frames; give a message's arrays
            back with ``pool.release(message.parameters)`` once done with them.
    """

    def __init__(
        self, limits: Limits = DEFAULT_LIMITS, pool: BufferPool | None = None
    ) -> None:
        self.limits = limits
        self._assembler = FrameAssembler(limits, pool)

    def feed(self, data: str | bytes | bytearray) -> Message | None:
        """Take one WebSocket message; return a complete message or None.

        Raises:
            ProtocolError: for malformed input; a partial frame is dropped.
        """
        if isinstance(data, str):
            if self._assembler.in_progress:
                self._assembler.reset()
                raise ProtocolError("text frame inside a multi-part binary frame")
            return parse(data, self.limits)
        try:
            frame = self._assembler.feed(data)
        except ProtocolError:
            self._assembler.reset()
            raise
        return None if frame is None else parse(frame, self.limits)

    @property
    def in_progress(self) -> bool:
        """Return whether a multi-part binary frame has begun but not ended."""
        return self._assembler.in_progress

    def reset(self) -> None:
        """Drop a partly received multi-part frame."""
        self._assembler.reset()


def _reject_constant(name: str) -> Any:
    raise ValueError(f"{name} is not allowed")


def _build(cls: type[Message], obj: dict[str, Any], arrays: NDArrays | None) -> Message:
    kwargs: dict[str, Any] = {}
    for f in dataclasses.fields(cls):
        if f.name == "parameters":
            kwargs["parameters"] = arrays
            continue
        if f.name not in obj:
            if f.default is dataclasses.MISSING:
                raise ProtocolError(f"{cls.type}: missing field {f.name!r}")
            continue
        value = obj.pop(f.name)
        check = _CHECKS[str(f.type)]
        if not check(value):
            raise ProtocolError(f"{cls.type}: invalid {f.name} {value!r:.80}")
        kwargs[f.name] = float(value) if str(f.type) == "float" else value
    if obj:
        raise ProtocolError(f"{cls.type}: unknown fields {sorted(obj)}")
    return cls(**kwargs)


def _is_int(v: Any) -> bool:
    return isinstance(v, int) and not isinstance(v, bool) and -(2**63) <= v < 2**63


def _is_float(v: Any) -> bool:
    return (isinstance(v, float) and math.isfinite(v)) or _is_int(v)


def _is_metrics(v: Any) -> bool:
    return (
        isinstance(v, dict)
        and len(v) <= 256
        and all(isinstance(k, str) and _is_float(x) for k, x in v.items())
    )


_CHECKS: dict[str, Callable[[Any], bool]] = {
    "str": lambda v: isinstance(v, str) and len(v) <= 4096,
    "int": _is_int,
    "float": _is_float,
    "int | None": lambda v: v is None or _is_int(v),
    "dict[str, Any]": lambda v: isinstance(v, dict),
    "dict[str, Any] | None": lambda v: v is None or isinstance(v, dict),
    "dict[str, float]": _is_metrics,
}
