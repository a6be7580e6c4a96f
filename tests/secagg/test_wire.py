"""The secure-aggregation messages: exact sizes and bounds, checked before decoding."""

from __future__ import annotations

import json
from typing import Any

import pytest

from fednet.exceptions import ProtocolError
from fednet.protocol import parse, serialize
from fednet.secagg.wire import (
    MAX_PARTIES,
    SecaggAdvertise,
    SecaggSetup,
    SecaggShares,
    SecaggSignedSetup,
)

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


def test_a_setup_names_its_prg_only_when_not_chacha20() -> None:
    """Sites of earlier releases refuse unknown fields: a ChaCha20 setup has none."""
    plain = SecaggSetup(1, 2, ("a", "b"), 2, 1.0)
    assert "prg" not in json.loads(serialize(plain))  # type: ignore[arg-type]
    assert parse(serialize(plain)) == plain
    aes = SecaggSetup(1, 2, ("a", "b"), 2, 1.0, prg="aes128-ctr")
    assert json.loads(serialize(aes))["prg"] == "aes128-ctr"  # type: ignore[arg-type]
    assert parse(serialize(aes)) == aes
    signed = SecaggSignedSetup(1, 2, ("a", "b"), 2, 1.0, prg="aes128-ctr")
    assert parse(serialize(signed)) == signed


def test_a_setup_with_an_unknown_prg_is_refused() -> None:
    """A PRG no site knows is a ProtocolError naming the field."""
    text = _text("secagg_setup", parties=["a", "b"], threshold=2, clip=1.0, prg="rc4")
    with pytest.raises(ProtocolError, match="secagg_setup: invalid prg: must be one"):
        parse(text)
