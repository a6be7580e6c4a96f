"""The secure-aggregation messages: exact sizes and bounds, checked before decoding."""

from __future__ import annotations

import json
from typing import Any

import pytest

from fednet.exceptions import ProtocolError
from fednet.protocol import parse, serialize
from fednet.secagg.wire import MAX_PARTIES, SecaggAdvertise, SecaggShares

KEY = "ab" * 32
CIPHERTEXT = "0f" * 160


def _text(kind: str, **fields: Any) -> str:
    return json.dumps({"type": kind, "run_id": 1, "server_round": 2, **fields})


@pytest.mark.parametrize(
    "key",
    ["ab" * 31, "ab" * 33, "AB" * 32, "zz" * 32, 7, None],
    ids=["short", "long", "uppercase", "not-hex", "number", "null"],
)
def test_an_advertised_key_must_be_32_bytes_of_lowercase_hex(key: Any) -> None:
    """Anything but 64 lowercase hex characters is a ProtocolError naming the field."""
    with pytest.raises(ProtocolError, match="secagg_advertise: invalid c_public"):
        parse(_text("secagg_advertise", c_public=key, s_public=KEY))


def test_an_advertisement_round_trips() -> None:
    """parse(serialize(m)) == m."""
    message = SecaggAdvertise(1, 2, KEY, KEY)
    assert parse(serialize(message)) == message


@pytest.mark.parametrize(
    "shares",
    [
        [["site-b"]],
        [["site-b", CIPHERTEXT, "extra"]],
        [["site-b", CIPHERTEXT[:-2]]],
        [["x" * 257, CIPHERTEXT]],
        [["site-b", CIPHERTEXT]] * (MAX_PARTIES + 1),
        {"site-b": CIPHERTEXT},
    ],
    ids=["short-entry", "long-entry", "short-ciphertext", "long-id", "too-many",
         "object"],
)
def test_shares_are_bounded_lists_of_pairs(shares: Any) -> None:
    """Wrong arity, size, id length or count: refused before anything is decoded."""
    with pytest.raises(ProtocolError, match="secagg_shares: invalid shares"):
        parse(_text("secagg_shares", shares=shares))


def test_shares_at_the_bound_parse() -> None:
    """MAX_PARTIES entries of the longest ids still fit in one text frame."""
    entries = tuple((f"{i:0256d}", CIPHERTEXT) for i in range(MAX_PARTIES))
    message = SecaggShares(1, 2, entries)
    assert parse(serialize(message)) == message
