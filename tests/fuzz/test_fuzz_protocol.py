"""protocol.parse and fields.load_object raise only ProtocolError on any input."""

from __future__ import annotations

import json
import struct
from typing import Any

from hypothesis import given
from hypothesis import strategies as st

from fednet import fields, protocol
from fednet.exceptions import ProtocolError
from fednet.fitconfig import FitConfig
from tests.fuzz.strategies import FUZZ, SCALARS, SHORT_KEYS, objects_with

TYPES = sorted(protocol.MESSAGE_TYPES)
NAMES = sorted(
    {name for cls in protocol.MESSAGE_TYPES.values() for name in cls.FIELDS}
    | set(FitConfig.FIELDS)
)
_VALID = {
    "server_round": 1,
    "task": "synthetic",
    "model": "logreg",
    "local_epochs": 1,
    "batch_size": 32,
    "learning_rate": 0.1,
    "seed": 0,
    "hidden_units": 64,
}
# FitConfig.from_dict has its own fuzz test; here a few fixed configs suffice.
CONFIGS = [
    _VALID,
    {**_VALID, "classes": ["a", "b"]},
    {**_VALID, "learning_rate": 0},
    {**_VALID, "classes": [1]},
    {k: v for k, v in _VALID.items() if k != "seed"},
    [],
]
TYPE_VALUES = st.sampled_from(TYPES) | SCALARS


@st.composite
def messages(draw: st.DrawFn) -> dict[str, Any]:
    """A JSON object around the real fields, with a valid, odd or no ``type``."""
    obj = draw(objects_with(NAMES))
    if draw(st.booleans()):
        obj["type"] = draw(TYPE_VALUES)
    if draw(st.integers(0, 3)) == 0:  # a nested config, valid or not
        obj["config"] = draw(st.sampled_from(CONFIGS))
    return obj


def _parse(data: str | bytes) -> None:
    try:
        protocol.parse(data)
    except ProtocolError:
        pass


@FUZZ
@given(st.text())
def test_parse_of_any_text_raises_only_protocol_error(text: str) -> None:
    """Arbitrary text frames parse or raise ProtocolError."""
    _parse(text)


@FUZZ
@given(messages())
def test_parse_of_json_objects_raises_only_protocol_error(obj: dict[str, Any]) -> None:
    """JSON objects with real or odd field names parse or raise ProtocolError."""
    _parse(json.dumps(obj))


@FUZZ
@given(messages(), st.lists(SCALARS | st.dictionaries(SHORT_KEYS, SCALARS), max_size=2))
def test_parse_of_binary_headers_raises_only_protocol_error(
    obj: dict[str, Any], arrays: list[Any]
) -> None:
    """Binary frames whose header is such an object parse or raise ProtocolError."""
    head = json.dumps({**obj, "arrays": arrays}).encode()
    _parse(struct.pack(">I", len(head)) + head)


@FUZZ
@given(st.binary() | st.binary().map(lambda b: struct.pack(">I", len(b)) + b))
def test_parse_of_any_bytes_raises_only_protocol_error(data: bytes) -> None:
    """Arbitrary binary frames parse or raise ProtocolError."""
    _parse(data)


@FUZZ
@given(st.text(), st.integers(min_value=0, max_value=64))
def test_load_object_returns_an_object_or_raises_protocol_error(
    text: str, max_chars: int
) -> None:
    """fields.load_object returns a dict or raises ProtocolError, nothing else."""
    try:
        assert isinstance(fields.load_object(text, max_chars), dict)
    except ProtocolError:
        pass
